"""One reader's view of the event stream (contract 9.1): the retained events after a given id,
then the live ones, with no gap and no duplicate between the two, optionally for one login.
Used by `GET /api/events` and by `MockServer.events` / `wait_for`.

No gap: the reader subscribes *before* it reads the ring (`EventBus.retained`); an event is put
in the ring when it is stamped, before any delivery, so every event is either in what was read
or delivered to the subscription afterwards. No duplicate: a live event with an id already
replayed is skipped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from mockserver.events import RETAINED, Event, EventBus, Subscription, event_login

EventTest = Callable[
    [dict[str, Any]], bool
]  # `MockServer.wait_for`'s predicate, on an event's view


class EventsLost(RuntimeError):
    """Events a reader asked for are gone: older than the retained ones, or dropped because
    the reader fell behind."""


class _Notifying(Subscription):
    """A `Subscription` that calls `on_offer()` after each event it is offered (accepted or
    the one that overflows it), on the publisher's thread: the hook must be quick."""

    def __init__(self, bus: EventBus, maxlen: int, on_offer: Callable[[], None]) -> None:
        super().__init__(bus, maxlen)
        self._on_offer = on_offer

    def _offer(self, event: Event) -> None:
        super()._offer(event)
        self._on_offer()


class Feed:
    """Retained events after `after` (None: none, only what is published from now on), then
    live ones, as `Event` objects in id order; with `login`, only the events of that login
    and those of the whole platform (`login` null: `reset`, `clock.changed`).

    `lost` says whether events after `after` are no longer retained: `after` is older than
    the oldest retained event (more than `RETAINED` events ago), or higher than any id of
    this run (ids start again at 1 when the server restarts); the replay then starts at the
    oldest retained event. The live part is a bounded queue of `maxlen` events: a reader
    that falls that far behind is dropped (`overflowed`), never does it slow a publisher.
    Close it (or use it as a context manager) to unsubscribe."""

    def __init__(
        self,
        bus: EventBus,
        *,
        after: int | None = None,
        login: str | None = None,
        maxlen: int = 1000,
        on_offer: Callable[[], None] | None = None,
    ) -> None:
        self.login = login
        self.lost = False
        self.oldest: int | None = None
        # Subscribe first, then read the ring: see the module's docstring.
        if on_offer is None:
            self._sub = Subscription(bus, maxlen)
        else:
            self._sub = _Notifying(bus, maxlen, on_offer)
        bus.subscribe(self._sub._offer)
        newest = bus.last_id
        if after is None:
            start = newest
        elif after > newest:
            # An id of an earlier run: everything retained of this run is new to the reader.
            self.lost, start = True, 0
        else:
            start = after
        replay, self.oldest = bus.retained(start)
        if self.oldest is not None and start < self.oldest - 1:
            self.lost = True
        self._replay: deque[Event] = deque(replay)
        self.last_id = replay[-1].id if replay else start  # the newest id handed over or skipped

    @property
    def overflowed(self) -> bool:
        """The live queue filled up: the reader fell behind and is dropped."""
        return self._sub.overflowed and not self._replay

    @property
    def dropped(self) -> bool:
        """The live queue overflowed (events may still wait in the replay)."""
        return self._sub.overflowed

    @property
    def closed(self) -> bool:
        return self._sub.closed and not self._replay

    def get(self, timeout: float | None = 0) -> Event | None:
        """The next event for this reader: retained ones first, then live; None when
        `timeout` passes (0: do not wait) or the feed is closed or overflowed."""
        while self._replay:
            event = self._replay.popleft()
            if self._wanted(event):
                return event
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            live = self._sub.get(remaining)
            if live is None:
                return None
            if live.id <= self.last_id:
                continue  # already replayed
            self.last_id = live.id
            if self._wanted(live):
                return live

    def _wanted(self, event: Event) -> bool:
        if self.login is None:
            return True
        owner = event_login(event)
        return owner is None or owner == self.login

    def close(self) -> None:
        self._sub.close()
        self._replay.clear()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(
    bus: EventBus,
    after: int | None = None,
    timeout: float | None = 5.0,
    login: str | None = None,
    maxlen: int = RETAINED,
) -> Iterator[Event]:
    """The events after id `after` that are still retained (None: none, only those published
    from the call on), then the live ones, in id order, until `timeout` seconds pass without
    one (or for ever with `timeout` None). `login`: that login's events and the platform's.
    `EventsLost` when `after` is no longer retained, or when the reader falls `maxlen`
    events behind."""
    with Feed(bus, after=after, login=login, maxlen=maxlen) as feed:
        if feed.lost:
            raise EventsLost(f"events after {after} are no longer retained (oldest: {feed.oldest})")
        while True:
            event = feed.get(timeout)
            if event is None:
                if feed.dropped:
                    raise EventsLost(f"the reader fell {maxlen} events behind")
                return
            yield event


def wait_for_event(
    bus: EventBus,
    predicate: Callable[[Event], bool],
    timeout: float,
    after: int | None = None,
) -> Event:
    """The first event satisfying `predicate` among those published after the call (with
    `after`: the retained events after that id first, then live ones); TimeoutError when
    `timeout` passes. Subscribed before anything is read: an event published while the call
    starts is never missed. To wait for the effect of your own action, read `bus.last_id`
    (`MockServer.last_event_id`) before it and pass it as `after`."""
    deadline = time.monotonic() + timeout
    with Feed(bus, after=after, maxlen=RETAINED) as feed:
        while True:
            event = feed.get(max(0.0, deadline - time.monotonic()))
            if event is None:
                if feed.dropped:
                    raise EventsLost("the waiter fell behind")
                raise TimeoutError(f"no such event within {timeout:g} s")
            if predicate(event):
                return event
