"""The platform's virtual clock (contract 9.3): one `PlatformClock` says what "now" is for
everything the platform dates (send dates passed or not, the recap's wording, recorded times,
event times). Real time by default; frozen at a moment, advanced, or back to real time at run
time. Timeouts and waits stay on `time.monotonic()`: only the platform's notion of the date
is virtual.

Also the pure rules of what a clock change may be (`parse_instant`, `clock_request`), shared
by the config check of `processing.clock` and `PUT /api/clock`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mockserver.core.filename import PARIS

Listener = Callable[[datetime, bool], None]

# The longest single advance (about a century): enough for any send date, far from the
# year 9999 where datetime arithmetic overflows.
MAX_ADVANCE_SECONDS = 100 * 366 * 86_400.0
INSTANT_HINT = "an ISO-8601 date-time such as 2030-07-16T12:00:00+02:00 (no offset: Europe/Paris)"


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_instant(text: Any) -> datetime:
    """An ISO-8601 date-time as an aware UTC datetime. Without an offset it is Europe/Paris
    wall time, as the 14 digits of a file name are (contract 5.10). ValueError otherwise."""
    if not isinstance(text, str) or not text.strip() or len(text) > 64:
        raise ValueError(f"must be {INSTANT_HINT}")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"must be {INSTANT_HINT}, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PARIS)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"must be {INSTANT_HINT}, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class ClockRequest:
    """One change of `PUT /api/clock`: freeze at `now`, advance by `seconds`, or go real."""

    action: Literal["set", "advance", "real"]
    now: datetime | None = None
    seconds: float = 0.0


CLOCK_FIELDS = ("now", "advance_seconds", "real")


def clock_request(body: Mapping[str, Any]) -> ClockRequest:
    """The change a `PUT /api/clock` body asks for: exactly one of `{"now": ISO}`,
    `{"advance_seconds": N}` (a number > 0: the clock only moves forward by it; set `now`
    to go back) or `{"real": true}`. ValueError naming the field otherwise."""
    unknown = [key for key in body if key not in CLOCK_FIELDS]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (allowed: {', '.join(CLOCK_FIELDS)})")
    given = [key for key in CLOCK_FIELDS if key in body]
    if len(given) != 1:
        raise ValueError("give exactly one of now, advance_seconds, real")
    key = given[0]
    value = body[key]
    if key == "now":
        try:
            return ClockRequest("set", now=parse_instant(value))
        except ValueError as exc:
            raise ValueError(f"now {exc}") from None
    if key == "advance_seconds":
        return ClockRequest("advance", seconds=advance_seconds(value))
    if value is not True:
        raise ValueError("real must be true (to leave the virtual clock for real time)")
    return ClockRequest("real")


def advance_seconds(value: Any) -> float:
    """A number of seconds > 0 and at most `MAX_ADVANCE_SECONDS`; ValueError naming it."""
    what = f"advance_seconds must be a number of seconds > 0 and <= {MAX_ADVANCE_SECONDS:.0f}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(what)
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_ADVANCE_SECONDS:
        raise ValueError(f"{what}, got {value!r}")
    return seconds


class PlatformClock:
    """What "now" is for one platform; callable (a `backend.Clock`). Thread-safe.

    Real: `source()` (the system's time) plus an offset that `advance` adds to. Frozen: a
    fixed moment that only `set` and `advance` move. `reset()` returns to the configured
    state (`start`: frozen there; None: real time). Every change calls the listeners with
    the new `(now, frozen)` (the Backend publishes `clock.changed`)."""

    def __init__(
        self, start: datetime | None = None, *, source: Callable[[], datetime] = utc_now
    ) -> None:
        self._source = source
        self._start = None if start is None else _aware(start)
        self._lock = threading.Lock()
        self._frozen_at = self._start
        self._offset = timedelta(0)
        self._listeners: tuple[Listener, ...] = ()

    def __call__(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return self._source() + self._offset

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen_at is not None

    def on_change(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(now, frozen)` after every change; returns the function that stops."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return remove

    def set(self, moment: datetime) -> datetime:
        """Freeze the clock at `moment` (a naive one is Europe/Paris wall time); returns it."""
        return self._change(lambda: (_aware(moment), timedelta(0)))

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by `seconds` (> 0): a frozen clock stays frozen there; a real
        one runs on, that much ahead of real time. ValueError for another number."""
        step = timedelta(seconds=advance_seconds(seconds))

        def moved() -> tuple[datetime | None, timedelta]:
            try:
                if self._frozen_at is not None:
                    return self._frozen_at + step, self._offset
                return None, self._offset + step
            except OverflowError:
                raise ValueError("advance_seconds goes past the year 9999") from None

        return self._change(moved)

    def real(self) -> datetime:
        """Back to real time (no offset)."""
        return self._change(lambda: (None, timedelta(0)))

    def reset(self) -> datetime:
        """Back to the configured state: frozen at the start given, else real time."""
        return self._change(lambda: (self._start, timedelta(0)), only_if_changed=True)

    def _change(
        self,
        new: Callable[[], tuple[datetime | None, timedelta]],
        *,
        only_if_changed: bool = False,
    ) -> datetime:
        with self._lock:
            before = (self._frozen_at, self._offset)
            self._frozen_at, self._offset = new()
            changed = before != (self._frozen_at, self._offset)
            listeners = self._listeners
        now = self.now()
        if changed or not only_if_changed:
            frozen = self.frozen
            for listener in listeners:
                listener(now, frozen)
        return now


def _aware(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"a datetime is needed, got {type(moment).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PARIS)
    return moment.astimezone(UTC)
