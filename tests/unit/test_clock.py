"""Contract 9.3, the virtual clock: `PlatformClock` (frozen, advanced, real, reset), the pure
rules of a `PUT /api/clock` body and of `processing.clock`, and contract 9.4's
`processing.mode` setting."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.clock import (
    MAX_ADVANCE_SECONDS,
    PlatformClock,
    clock_request,
    parse_instant,
)
from mockserver.config import ConfigError, load_config

T0 = datetime(2030, 7, 16, 10, 0, tzinfo=UTC)


class Source:
    """A real-time source the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_frozen_clock_stays_and_moves_only_when_told() -> None:
    """Contract 9.3: `{"now": ISO}` freezes the clock there; `advance_seconds` moves it."""
    source = Source()
    clock = PlatformClock(source=source)
    changes: list[tuple[datetime, bool]] = []
    clock.on_change(lambda now, frozen: changes.append((now, frozen)))
    assert clock() == T0
    assert not clock.frozen
    clock.set(datetime(2031, 1, 1, 12, 0, tzinfo=UTC))
    source.now += timedelta(hours=5)  # real time runs; the frozen clock does not
    assert clock.now() == datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
    assert clock.frozen
    clock.advance(90)
    assert clock.now() == datetime(2031, 1, 1, 12, 1, 30, tzinfo=UTC)
    clock.real()
    assert clock.now() == source.now
    assert not clock.frozen
    assert changes == [
        (datetime(2031, 1, 1, 12, 0, tzinfo=UTC), True),
        (datetime(2031, 1, 1, 12, 1, 30, tzinfo=UTC), True),
        (source.now, False),
    ]


def test_advance_on_a_real_clock_runs_ahead_of_real_time() -> None:
    """docs/spec.md 9.3: advancing a running clock keeps it running, that much ahead."""
    source = Source()
    clock = PlatformClock(source=source)
    clock.advance(3600)
    assert clock.now() == T0 + timedelta(hours=1)
    assert not clock.frozen
    source.now += timedelta(seconds=10)
    assert clock.now() == T0 + timedelta(hours=1, seconds=10)
    clock.real()
    assert clock.now() == source.now


def test_a_naive_moment_is_paris_wall_time() -> None:
    """docs/spec.md 9.3: a date-time without offset is Europe/Paris, like a file's 14 digits."""
    clock = PlatformClock()
    clock.set(datetime(2030, 7, 16, 12, 0))  # CEST, UTC+2
    assert clock.now() == T0
    assert parse_instant("2030-01-16T12:00:00") == datetime(2030, 1, 16, 11, 0, tzinfo=UTC)
    assert parse_instant("2030-07-16T10:00:00Z") == T0


def test_reset_returns_to_the_configured_state() -> None:
    """docs/spec.md 9.3: a reset puts the clock back as `processing.clock` says."""
    clock = PlatformClock(T0)
    clock.advance(600)
    clock.reset()
    assert clock.now() == T0
    assert clock.frozen
    real = PlatformClock(source=Source())
    real.set(datetime(2040, 1, 1, tzinfo=UTC))
    real.reset()
    assert not real.frozen
    assert real.now() == T0


@pytest.mark.parametrize(
    "seconds", [0, -1, math.inf, math.nan, True, "60", MAX_ADVANCE_SECONDS * 2]
)
def test_advance_refuses_what_is_not_forward(seconds: Any) -> None:
    """docs/spec.md 9.3: the clock only moves forward by `advance` (N > 0)."""
    clock = PlatformClock(T0)
    with pytest.raises(ValueError, match="advance_seconds"):
        clock.advance(seconds)
    assert clock.now() == T0


def test_advance_past_year_9999_is_a_value_error() -> None:
    clock = PlatformClock(datetime(9999, 12, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="9999"):
        clock.advance(MAX_ADVANCE_SECONDS)


# -- PUT /api/clock bodies ---------------------------------------------------------------------


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1)))
def test_now_body_round_trips_any_aware_moment(moment: datetime) -> None:
    """Contract 9.3: `{"now": ISO}` freezes the clock at exactly that moment."""
    aware = moment.replace(tzinfo=UTC)
    change = clock_request({"now": aware.isoformat()})
    assert change.action == "set"
    assert change.now == aware


@given(st.floats(min_value=1e-6, max_value=MAX_ADVANCE_SECONDS) | st.integers(1, 10**9))
def test_advance_body_takes_any_positive_number(seconds: float) -> None:
    change = clock_request({"advance_seconds": seconds})
    assert change.action == "advance"
    assert change.seconds == float(seconds)


@given(
    st.one_of(
        st.floats(max_value=0),
        st.floats(allow_nan=True).filter(lambda x: not math.isfinite(x)),
        st.booleans(),
        st.text(),
        st.none(),
        st.lists(st.integers()),
    )
)
def test_advance_body_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError, match="advance_seconds"):
        clock_request({"advance_seconds": value})


@given(st.text().filter(lambda t: not _is_iso(t)) | st.integers() | st.none())
def test_now_body_refuses_what_is_no_date_time(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^now "):
        clock_request({"now": value})


def _is_iso(text: str) -> bool:
    try:
        parse_instant(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, "exactly one"),
        ({"now": "2030-01-01T00:00:00Z", "real": True}, "exactly one"),
        ({"real": False}, "real must be true"),
        ({"real": 1}, "real must be true"),
        ({"speed": 2}, "unknown field 'speed'"),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        clock_request(body)


def test_real_body() -> None:
    assert clock_request({"real": True}).action == "real"


# -- settings ------------------------------------------------------------------------------------


def test_processing_clock_and_mode_settings() -> None:
    """Contract 3: `processing.clock` ("" or ISO) and `processing.mode` ("auto", "manual")."""
    cfg = load_config(None, env={}, overrides={})
    assert cfg.processing.clock == ""
    assert cfg.processing.mode == "auto"
    cfg = load_config(
        None,
        env={"ALLMYSMS_MOCK_PROCESSING_CLOCK": "2030-07-16T12:00:00"},
        overrides={"processing.mode": "manual"},
    )
    assert cfg.processing.clock == "2030-07-16T12:00:00"
    assert cfg.processing.mode == "manual"


@pytest.mark.parametrize(
    ("key", "value"),
    [("processing.clock", "tomorrow"), ("processing.clock", 5), ("processing.mode", "step")],
)
def test_bad_clock_or_mode_is_one_line_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={}, overrides={key: value})
    message = str(info.value)
    assert key in message
    assert "\n" not in message
