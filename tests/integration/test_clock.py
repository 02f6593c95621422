"""Contract 9.3, the virtual clock over the processing platform: it decides `scheduled` or
`sent`, the recap's wording and the recorded times; when it passes a campaign's send date an
`sms.sent` event is published, once per file."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mockserver.core.filename import PARIS
from mockserver.events import Event, Subscription
from tests.support.platform import NAME, Platform, make_config

# NAME's send date: 2030-07-16 12:00 Paris (CEST) = 10:00 UTC.
SEND = datetime(2030, 7, 16, 10, 0, tzinfo=UTC)
HOUR_BEFORE = "2030-07-16T11:00:00+02:00"
ROWS = b'"0612345678";"Bonjour"\n"33711223344";"Salut"\n"+44 7911 123456";"Hello"\n'


def drain(sub: Subscription) -> list[Event]:
    events = []
    while (event := sub.get(0)) is not None:
        events.append(event)
    return events


def of_type(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.type == kind]


def test_advancing_past_the_send_date_sends_the_campaign_once(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """Contract 9.3: a scheduled campaign turns `sent` when the frozen clock is advanced past
    its date, with one `sms.sent` event (login, file_id, campaign, sms_count); the recap and
    the verdict's times are the virtual clock's. docs/spec.md 9.3: a clock set back and
    moved past the date again announces nothing twice."""
    p = platform_factory(make_config(tmp_path / "d", clock=HOUR_BEFORE))
    clock = p.backend.clock
    with p.backend.bus.subscription() as sub:
        p.drop()
        done = p.wait_file(NAME)
        assert datetime.fromisoformat(done["processed_at"]) == SEND - timedelta(hours=1)
        assert datetime.fromisoformat(done["received_at"]) == SEND - timedelta(hours=1)
        assert {m["status"] for m in p.messages()} == {"scheduled"}
        (mail,) = p.backend.mail()
        assert "programmés" in mail["body"]
        assert "envoyés" not in mail["body"]
        assert p.processor.wait_idle(10)
        assert of_type(drain(sub), "sms.sent") == []

        clock.advance(3599)
        assert {m["status"] for m in p.messages()} == {"scheduled"}
        assert of_type(drain(sub), "sms.sent") == []

        clock.advance(1)
        assert {m["status"] for m in p.messages()} == {"sent"}
        events = drain(sub)
        assert [e.type for e in events] == ["clock.changed", "sms.sent"]
        sent = events[1]
        assert (sent.login, sent.file_id, sent.campaign, sent.sms_count) == (  # type: ignore[attr-defined]
            "alice",
            done["id"],
            "Promo",
            3,
        )
        assert sent.at == SEND

        clock.set(SEND - timedelta(days=1))  # back: the SMS read as scheduled again...
        assert {m["status"] for m in p.messages()} == {"scheduled"}
        clock.advance(2 * 86_400)  # ...and past the date again: no second event
        assert of_type(drain(sub), "sms.sent") == []


def test_a_send_date_already_past_is_sent_at_once_with_envoyes(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """Contract 9.3: a file whose date the clock has already passed is sent as soon as it is
    recorded: `sms.sent` right after its `file.finished`; its recap says "envoyés"."""
    p = platform_factory(make_config(tmp_path / "d", clock="2030-07-17T09:00:00+02:00"))
    with p.backend.bus.subscription() as sub:
        p.drop()
        done = p.wait_file(NAME)
        assert p.processor.wait_idle(10)
        types = [e.type for e in drain(sub)]
    assert types[-2:] == ["file.finished", "sms.sent"]
    assert types.count("sms.sent") == 1
    assert {m["status"] for m in p.messages()} == {"sent"}
    (mail,) = p.backend.mail()
    assert "envoyés" in mail["body"]
    assert done["processed_at"].startswith("2030-07-17T07:00:00")


def test_real_time_sends_on_a_timer(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """Contract 9.3 on real time: nobody touches the clock; the one timer publishes `sms.sent`
    when the send date, two seconds ahead, passes."""
    p = platform_factory(make_config(tmp_path / "d"))
    when = (datetime.now(PARIS) + timedelta(seconds=2)).replace(microsecond=0)
    name = f"Soon_{when:%Y%m%d%H%M%S}_HQ.csv"
    with p.backend.bus.subscription() as sub:
        p.drop(name, ROWS)
        done = p.wait_file(name)
        assert {m["status"] for m in p.messages()} == {"scheduled"}
        deadline = time.monotonic() + 10
        sent = None
        while sent is None and time.monotonic() < deadline:
            event = sub.get(deadline - time.monotonic())
            if event is not None and event.type == "sms.sent":
                sent = event
    assert sent is not None, "no sms.sent within 10 s"
    assert sent.file_id == done["id"]  # type: ignore[attr-defined]
    assert datetime.now(UTC) >= when
    assert {m["status"] for m in p.messages()} == {"sent"}
    assert p.processor.sends.scheduled == 0


def test_files_of_an_earlier_run_are_never_announced(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """docs/spec.md 9.3: a file processed before the platform started gets no `sms.sent`,
    even when this run's clock passes its send date."""
    first = platform_factory(make_config(tmp_path / "d", clock=HOUR_BEFORE))
    first.drop()
    first.wait_file(NAME)
    assert first.processor.stop(10)  # (the fixture closes its store)
    second = platform_factory(make_config(tmp_path / "d", clock=HOUR_BEFORE))
    with second.backend.bus.subscription() as sub:
        second.backend.clock.advance(7200)
        assert {m["status"] for m in second.messages()} == {"sent"}
        assert [e.type for e in drain(sub)] == ["clock.changed"]


def test_reset_forgets_scheduled_files_and_restores_the_clock(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """docs/spec.md 9.3: a reset returns the clock to `processing.clock` (with a
    `clock.changed` after the `reset` event) and nothing of the emptied platform is sent."""
    p = platform_factory(make_config(tmp_path / "d", clock=HOUR_BEFORE))
    p.drop()
    p.wait_file(NAME)
    assert p.processor.wait_idle(10)
    p.backend.clock.advance(600)
    with p.backend.bus.subscription() as sub:
        p.backend.reset()
        assert p.backend.clock.now() == SEND - timedelta(hours=1)
        p.backend.clock.advance(7200)
        types = [e.type for e in drain(sub)]
    assert types == ["reset", "clock.changed", "clock.changed"]
    assert p.processor.sends.scheduled == 0
