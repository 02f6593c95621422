"""Issue 16: 1,000 long polls cost the processor one bus callback and a dict lookup per
event, whatever their number (`servers.http.connections.LongPolls`)."""

from __future__ import annotations

import asyncio
import contextlib

from mockserver.events import EventBus, FileFinished, PlatformReset
from mockserver.servers.http.connections import LongPolls


def finished(name: str, final_name: str) -> FileFinished:
    return FileFinished(
        login="demo",
        name=name,
        file_id=1,
        final_name=final_name,
        folder="ARCHIVES",
        status="archived",
        reason=None,
        sms_count=1,
        cost=1,
    )


def test_a_thousand_waiters_are_one_subscriber_woken_by_name() -> None:
    bus = EventBus()

    async def main() -> None:
        polls = LongPolls(bus, cap=1002)
        with contextlib.ExitStack() as stack:
            events = [stack.enter_context(polls.waiter(f"f{i}.csv")) for i in range(1000)]
            same = stack.enter_context(polls.waiter("f7.csv"))
            assert polls.waiting == 1001
            assert bus.subscribers == 1
            bus.publish(finished("f7.csv", "TreatedByMSI_f7.csv"))
            await asyncio.sleep(0.01)
            assert [i for i, e in enumerate(events) if e.is_set()] == [7]
            assert same.is_set()
            # Waiting for the final name works too (like the `name=` filter).
            final = stack.enter_context(polls.waiter("TreatedByMSI_f9.csv"))
            bus.publish(finished("f9.csv", "TreatedByMSI_f9.csv"))
            await asyncio.sleep(0.01)
            assert final.is_set()
            assert events[9].is_set()
            bus.publish(PlatformReset())
            await asyncio.sleep(0.01)
            assert all(e.is_set() for e in events)
        assert polls.waiting == 0
        assert bus.subscribers == 0

    asyncio.run(main())
