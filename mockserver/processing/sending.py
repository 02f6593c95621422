"""`sms.sent` (contract 9.1, 9.3): when the platform's clock passes the send date of an
archived file, its SMS are sent: one `SmsSent` event for the file, exactly once.

The files still scheduled are a heap ordered by send date, fed by `file.finished`. The clock
passing a date is noticed three ways: right after a file is finished (a date already past:
sent at once), when the clock changes (`clock.changed`: set or advanced), and by one timer
thread waiting, on real time, for the earliest date still ahead (not while the clock is
frozen: then only a change can move it). A file leaves the heap when its event is published,
so a clock set back and moved forward again never announces it twice. Files finished before
this platform started (an earlier run) are never announced.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from mockserver.events import ClockChanged, Event, EventBus, FileFinished, PlatformReset, SmsSent
from mockserver.store import Store

log = logging.getLogger("mockserver.processor")

# The longest the timer waits in one go (a wait past `threading.TIMEOUT_MAX` raises).
MAX_WAIT_SECONDS = 3600.0

# (send timestamp, file id, login, campaign, sms count)
_Due = tuple[float, int, str, str, int]


class SendWatch:
    """Publishes `sms.sent` for the archived files whose send date the clock passes."""

    def __init__(self, store: Store, bus: EventBus, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[_Due] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unsubscribe = bus.subscribe(self._on_event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="allmysms-sends", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._unsubscribe()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def scheduled(self) -> int:
        """How many finished files still wait for their send date."""
        with self._cond:
            return len(self._heap)

    def _on_event(self, event: Event) -> None:
        # On the publisher's thread: a point read of the store at most, then a heap push.
        if isinstance(event, FileFinished):
            if event.status == "archived" and event.sms_count > 0:
                self._add(event.file_id)
        elif isinstance(event, ClockChanged):
            self.release()
            with self._cond:
                self._cond.notify_all()  # the timer's wait is wrong now
        elif isinstance(event, PlatformReset):
            with self._cond:
                self._heap.clear()  # their files are gone

    def _add(self, file_id: int) -> None:
        record = self._store.file_record(file_id)
        if record is None or record.send_at is None:
            return
        due = datetime.fromisoformat(record.send_at).timestamp()
        entry = (due, record.id, record.login, record.campaign or "", record.sms_count)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                # The timer waits for the earliest date: only a new earliest one changes its
                # wait (waking it for every file cost a thread switch each: issue 15).
                self._cond.notify_all()
        self.release()

    def release(self) -> None:
        """Publish `sms.sent` for every file whose send date is at or before now."""
        now = self._clock().timestamp()
        due: list[_Due] = []
        with self._cond:
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap))
        for _, file_id, login, campaign, count in due:
            self._bus.publish(
                SmsSent(login=login, file_id=file_id, campaign=campaign, sms_count=count)
            )

    def _wait_seconds(self) -> float | None:
        """Real seconds until the earliest send date; None: nothing to wait for (no file
        scheduled, or a frozen clock, which only a change moves)."""
        if not self._heap or getattr(self._clock, "frozen", False):
            return None
        left = self._heap[0][0] - self._clock().timestamp()
        return min(max(left, 0.0), MAX_WAIT_SECONDS)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                wait = self._wait_seconds()
                if wait is None or wait > 0:
                    self._cond.wait(wait)
                if self._stopping:
                    return
            try:
                self.release()
            except Exception:  # keep the timer alive; the next change or file retries
                log.exception("sms.sent release failed")
