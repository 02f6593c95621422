"""The in-process event bus: typed events published by the Backend and the pipeline, and the
subscribers that wait on them (`wait_for_file`, the long poll). Publishing never blocks on a
subscriber: a callback runs inline and must be quick; a `Subscription` has a bounded queue and
is marked `overflowed` (and stops receiving) when its reader falls behind.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger("mockserver.events")


@dataclass(frozen=True)
class Event:
    """Base of every event. `id` (increasing from 1) and `at` are set by the bus."""

    id: int = field(default=0, kw_only=True)
    at: datetime = field(default=datetime.min.replace(tzinfo=UTC), kw_only=True)

    @property
    def type(self) -> str:
        return _TYPES.get(type(self), type(self).__name__)


@dataclass(frozen=True)
class FileClaimed(Event):
    """A dropped file was moved into PROCESSING."""

    login: str
    name: str


@dataclass(frozen=True)
class FileFinished(Event):
    """A file is done: its verdict recorded, the file in ARCHIVES or INVALIDS under
    `final_name`, its recap dealt with (docs/design.md, "Events": `file.finished`)."""

    login: str
    name: str
    file_id: int
    final_name: str
    folder: str
    status: str
    reason: str | None
    sms_count: int
    cost: int


@dataclass(frozen=True)
class MailWritten(Event):
    """A recap e-mail was delivered to the Maildir."""

    login: str
    file_id: int
    message_id: str


@dataclass(frozen=True)
class AccountChanged(Event):
    """An account was created, updated (credits, password, ...), charged for a file, or
    removed (contract 9.1: "credits included": its credits after the change; None once
    removed)."""

    login: str
    change: str  # "created", "updated", "charged" or "removed"
    credits: int | None = None


@dataclass(frozen=True)
class PlatformReset(Event):
    """The platform was reset (`POST /api/reset`, `MockServer.reset()`: type `reset`)."""


# Contract 9.1's session and file events, published by the protocol adapters. `protocol` is
# "ftp" or "sftp" (a drop through the HTTP API or the control room: "http"); `name` is a
# path inside the login's tree as the client gave it, `/SEND_SMS/x.csv`.


@dataclass(frozen=True)
class SessionLogin(Event):
    """A login succeeded."""

    login: str
    protocol: str
    address: str


@dataclass(frozen=True)
class SessionLoginFailed(Event):
    """A login was refused: `reason` "credentials" or "locked_out" (or "fault")."""

    login: str
    protocol: str
    address: str
    reason: str


@dataclass(frozen=True)
class UploadClosed(Event):
    """An upload ended complete: `bytes` written."""

    login: str
    protocol: str
    name: str
    bytes: int


@dataclass(frozen=True)
class UploadRefused(Event):
    """An upload was refused or cut: `reason` in a few words (too_large, permission,
    busy, cut, failed, fault...); its partial file, if any, is removed."""

    login: str
    protocol: str
    name: str
    reason: str


@dataclass(frozen=True)
class FileRenamed(Event):
    login: str
    protocol: str
    name: str
    new_name: str


@dataclass(frozen=True)
class FileDeleted(Event):
    login: str
    protocol: str
    name: str


@dataclass(frozen=True)
class SmsSent(Event):
    """A scheduled campaign's send date passed (by the platform's clock): its SMS are sent."""

    login: str
    file_id: int
    campaign: str
    sms_count: int


@dataclass(frozen=True)
class FaultFired(Event):
    """A fault rule fired (contract 9.2). `login` None: not tied to one login."""

    login: str | None
    rule_id: int
    on: str
    action: str
    protocol: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ClockChanged(Event):
    """The virtual clock was set, advanced or returned to real time (contract 9.3)."""

    now: datetime
    frozen: bool


_TYPES: dict[type[Event], str] = {
    SessionLogin: "session.login",
    SessionLoginFailed: "session.login_failed",
    UploadClosed: "upload.closed",
    UploadRefused: "upload.refused",
    FileRenamed: "file.renamed",
    FileDeleted: "file.deleted",
    FileClaimed: "file.claimed",
    FileFinished: "file.finished",
    MailWritten: "mail.written",
    AccountChanged: "account.changed",
    SmsSent: "sms.sent",
    FaultFired: "fault.fired",
    ClockChanged: "clock.changed",
    PlatformReset: "reset",
}
EVENT_TYPES = tuple(_TYPES.values())


def event_login(event: Event) -> str | None:
    """The login an event concerns; None for one of the whole platform (reset, clock)."""
    login = getattr(event, "login", None)
    return login if isinstance(login, str) else None


Callback = Callable[[Event], None]
RETAINED = 10_000  # contract 9.1: "at least the last 10,000" events, for a replay


class Subscription:
    """A bounded queue of events for one reader. When full, the reader has fallen behind:
    the subscription is closed and `overflowed` is set, never does the publisher wait."""

    def __init__(self, bus: EventBus, maxlen: int) -> None:
        self._bus = bus
        self._maxlen = maxlen
        self._queue: deque[Event] = deque()
        self._cond = threading.Condition()
        self.overflowed = False
        self.closed = False

    def _offer(self, event: Event) -> None:
        with self._cond:
            if self.closed:
                return
            if len(self._queue) >= self._maxlen:
                self.overflowed = True
                self.closed = True
                self._queue.clear()
                self._bus._unsubscribe(self._offer)  # nothing more is kept for it
            else:
                self._queue.append(event)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when `timeout` passes or the subscription is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self.closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._queue.popleft()

    def close(self) -> None:
        self._bus._unsubscribe(self._offer)
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Thread-safe publish/subscribe. Ids increase by one per event, and every subscriber sees
    the events in id order, including those a callback publishes (they are delivered after
    the event being delivered). Subscribing never waits for a delivery in progress."""

    def __init__(
        self, clock: Callable[[], datetime] | None = None, *, retain: int = RETAINED
    ) -> None:
        # Contract 9.1: the last `retain` events, for a replay (`retained`). Appended when an
        # event is stamped, under `_deliver`: whoever subscribes, then reads the ring, misses
        # nothing (an event not yet in the ring is delivered to it).
        self._ring: deque[Event] = deque(maxlen=retain)
        self._ring_lock = threading.Lock()
        # One delivery at a time, so ids and delivery order agree. Re-entrant: a callback
        # may publish (a fault rule firing, say); its event is queued on this thread.
        self._deliver = threading.RLock()
        self._subs = threading.Lock()  # guards `_callbacks`, replaced, never mutated
        self._callbacks: tuple[Callback, ...] = ()
        self._local = threading.local()
        self._ids = itertools.count(1)
        self._clock = clock or (lambda: datetime.now(UTC))

    def publish(self, event: Event) -> Event:
        """Stamp `event` with its id and time and hand it to every subscriber. A subscriber
        that raises is logged, never propagated to the publisher."""
        with self._deliver:
            stamped = _stamp(event, next(self._ids), self._clock())
            with self._ring_lock:
                self._ring.append(stamped)
            queued: deque[Event] | None = getattr(self._local, "queued", None)
            if queued is not None:  # published from a callback of this very delivery
                queued.append(stamped)
                return stamped
            queued = self._local.queued = deque([stamped])
            try:
                while queued:
                    current = queued.popleft()
                    for callback in self._callbacks:
                        try:
                            callback(current)
                        except Exception:
                            log.exception("event subscriber failed on %s", current.type)
            finally:
                self._local.queued = None
        return stamped

    def retained(self, after: int) -> tuple[list[Event], int | None]:
        """The retained events with an id above `after`, in id order, and the oldest id
        retained (None: none yet). Never waits for a delivery in progress."""
        with self._ring_lock:
            ring = list(self._ring)
        oldest = ring[0].id if ring else None
        if oldest is None or after < oldest:
            return ring, oldest
        return ring[after - oldest + 1 :], oldest

    @property
    def last_id(self) -> int:
        """The id of the latest event published (0: none yet)."""
        with self._ring_lock:
            return self._ring[-1].id if self._ring else 0

    def delivering(self) -> bool:
        """Whether this thread is inside a delivery (a callback is running on it)."""
        return getattr(self._local, "queued", None) is not None

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call `callback(event)` for every later event; returns the function that stops it.
        The callback runs on the publisher's thread and must be quick."""
        with self._subs:
            self._callbacks = (*self._callbacks, callback)
        return lambda: self._unsubscribe(callback)

    def subscription(self, maxlen: int = 1000) -> Subscription:
        """A bounded queue of every later event (use as a context manager)."""
        sub = Subscription(self, maxlen)
        self.subscribe(sub._offer)
        return sub

    def _unsubscribe(self, callback: Callback) -> None:
        with self._subs:
            callbacks = list(self._callbacks)
            if callback in callbacks:
                callbacks.remove(callback)
                self._callbacks = tuple(callbacks)

    @property
    def subscribers(self) -> int:
        return len(self._callbacks)


def _stamp(event: Event, event_id: int, at: datetime) -> Event:
    return dataclasses.replace(event, id=event_id, at=at)
