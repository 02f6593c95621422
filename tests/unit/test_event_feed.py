"""Contract 9.1's replay (`event_feed.Feed` over `EventBus`'s ring): no gap and no duplicate
between the retained events and the live ones, even while another thread publishes; `lost`
when the ring no longer holds what was asked; the login filter."""

from __future__ import annotations

import threading

from mockserver.event_feed import Feed
from mockserver.events import AccountChanged, EventBus, PlatformReset


def test_replay_then_live_has_no_gap_and_no_duplicate_under_concurrent_publishing() -> None:
    bus = EventBus(retain=100_000)
    total = 20_000
    started = threading.Event()

    def publish() -> None:
        for i in range(total):
            if i == 1000:
                started.set()
            bus.publish(AccountChanged(login="demo", change="updated"))

    thread = threading.Thread(target=publish)
    thread.start()
    started.wait(10)
    with Feed(bus, after=0, maxlen=total) as feed:  # opened mid-flow
        ids = []
        while len(ids) < total:
            event = feed.get(10)
            assert event is not None
            ids.append(event.id)
    thread.join()
    assert ids == list(range(1, total + 1))


def test_lost_when_after_is_older_than_the_ring_or_of_an_earlier_run() -> None:
    bus = EventBus(retain=5)
    for _ in range(10):
        bus.publish(AccountChanged(login="demo", change="updated"))
    assert Feed(bus, after=4).lost  # 5 is gone
    kept = Feed(bus, after=5)
    assert not kept.lost
    assert [kept.get().id for _ in range(5)] == [6, 7, 8, 9, 10]  # type: ignore[union-attr]
    earlier_run = Feed(bus, after=50)
    assert earlier_run.lost
    assert earlier_run.get().id == 6  # type: ignore[union-attr]


def test_login_filter_keeps_the_platform_events() -> None:
    bus = EventBus()
    bus.publish(AccountChanged(login="demo", change="updated"))
    bus.publish(AccountChanged(login="acme", change="updated"))
    bus.publish(PlatformReset())
    feed = Feed(bus, after=0, login="acme")
    assert [feed.get().type for _ in range(2)] == ["account.changed", "reset"]  # type: ignore[union-attr]
    assert feed.get() is None
