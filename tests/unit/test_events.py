"""The event bus (docs/design.md, "Events"): ids in publication order, a subscriber's bug or
slowness never reaches the publisher, bounded queues."""

from __future__ import annotations

import threading

import pytest

from mockserver.events import (
    AccountChanged,
    Event,
    EventBus,
    FileClaimed,
    FileFinished,
    PlatformReset,
)


def test_ids_increase_in_publication_order_and_types_are_named() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    first = bus.publish(FileClaimed(login="alice", name="A.csv"))
    second = bus.publish(PlatformReset())
    assert [e.id for e in seen] == [first.id, second.id] == [1, 2]
    assert [e.type for e in seen] == ["file.claimed", "reset"]
    assert seen[0].at.tzinfo is not None


def test_a_failing_subscriber_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    later: list[Event] = []

    def broken(_event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(later.append)
    bus.publish(AccountChanged(login="bob", change="created"))
    assert [e.type for e in later] == ["account.changed"]
    assert "subscriber failed" in caplog.text


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    seen: list[Event] = []
    stop = bus.subscribe(seen.append)
    assert bus.subscribers == 1
    stop()
    bus.publish(PlatformReset())
    assert seen == []
    assert bus.subscribers == 0


def test_a_reader_that_falls_behind_is_dropped_never_waited_for() -> None:
    """A slow subscriber never slows the platform: its queue is bounded; past the bound it
    is closed and marked `overflowed`, and publishing stays immediate."""
    bus = EventBus()
    with bus.subscription(maxlen=10) as slow:
        for i in range(1000):  # nobody reads: the publisher must go on regardless
            bus.publish(FileClaimed(login="alice", name=f"{i}.csv"))
        assert slow.overflowed
        assert slow.closed
        assert slow.get(timeout=0) is None
        assert bus.subscribers == 0  # dropped at once, not when its reader gets round to it
    assert bus.subscribers == 0


def test_subscription_get_waits_for_the_next_event() -> None:
    bus = EventBus()
    with bus.subscription() as sub:
        assert sub.get(timeout=0.01) is None
        threading.Timer(
            0.05,
            lambda: bus.publish(
                FileFinished(
                    login="a",
                    name="N.csv",
                    file_id=1,
                    final_name="TreatedByMSI_N.csv",
                    folder="ARCHIVES",
                    status="archived",
                    reason=None,
                    sms_count=1,
                    cost=1,
                )
            ),
        ).start()
        got = sub.get(timeout=10)
        assert isinstance(got, FileFinished)
        assert got.file_id == 1


def test_a_callback_may_publish_without_deadlock() -> None:
    bus = EventBus()
    seen: list[str] = []

    def echo(event: Event) -> None:
        seen.append(event.type)
        if isinstance(event, FileClaimed):
            bus.publish(PlatformReset())

    bus.subscribe(echo)
    done = threading.Event()
    threading.Thread(
        target=lambda: (bus.publish(FileClaimed(login="a", name="n")), done.set()), daemon=True
    ).start()
    assert done.wait(10), "publishing from a callback deadlocked"
    assert seen == ["file.claimed", "reset"]


def test_every_subscriber_sees_ids_in_order_even_when_a_callback_publishes() -> None:
    """A callback's own event is delivered after the one being delivered, to everybody."""
    bus = EventBus()
    first: list[int] = []
    second: list[int] = []

    def republish(event: Event) -> None:
        first.append(event.id)
        if isinstance(event, FileClaimed):
            bus.publish(PlatformReset())

    bus.subscribe(republish)
    bus.subscribe(lambda event: second.append(event.id))
    bus.publish(FileClaimed(login="a", name="n"))
    assert first == [1, 2]
    assert second == [1, 2]


def test_subscribing_never_waits_for_a_delivery_in_progress() -> None:
    """The HTTP long poll subscribes on the asyncio loop shared with SFTP: a slow delivery on
    a worker thread must not hold it."""
    bus = EventBus()
    in_delivery = threading.Event()
    release = threading.Event()

    def slow(_event: Event) -> None:
        in_delivery.set()
        release.wait(10)

    bus.subscribe(slow)
    publisher = threading.Thread(target=lambda: bus.publish(PlatformReset()))
    publisher.start()
    try:
        assert in_delivery.wait(10)
        subscribed = threading.Event()
        threading.Thread(
            target=lambda: (bus.subscribe(lambda _event: None), subscribed.set())
        ).start()
        assert subscribed.wait(5), "subscribe waited for the delivery"
        assert bus.subscribers == 2
    finally:
        release.set()
        publisher.join(10)
