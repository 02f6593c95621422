"""A timed queue of plain callables run by a small pool of worker threads: work waiting for
its due time holds no thread; `paused()` keeps every worker idle; `stop` finishes only the
work marked `finish_on_stop` (its wait cut short) and drops the rest.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

log = logging.getLogger("mockserver.processor")

Job = Callable[[], None]

# The longest a worker waits on the queue in one go, whatever the next job's due time: a wait
# past `threading.TIMEOUT_MAX` raises OverflowError (the queue is looked at again anyway).
MAX_WAIT_SECONDS = 3600.0


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    job: Job = field(compare=False)
    key: Hashable | None = field(compare=False, default=None)
    finish_on_stop: bool = field(compare=False, default=False)
    background: bool = field(compare=False, default=False)


class _WorkerFlag(threading.local):
    active = False


class Scheduler:
    """Runs `job()` at or after `due` (a `time.monotonic()` value) on one of `workers`
    threads. Thread-safe; a job that raises is logged and the worker carries on."""

    def __init__(self, workers: int, *, name: str = "allmysms-processor") -> None:
        self._workers_n = max(1, workers)
        self._name = name
        # One lock, two conditions (issue 15): `_cond` wakes workers, one for each job that
        # becomes the earliest; `_idle` wakes those waiting for the workers to be idle
        # (`wait_idle`, `paused`). One condition woken in full for every job and every
        # finished job woke every idle worker twice a file: a GIL hand-off and a thread
        # switch each.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._keys: set[Hashable] = set()  # keys of jobs waiting in the heap
        self._busy = 0
        self._paused = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._worker = _WorkerFlag()

    def start(self) -> None:
        for i in range(self._workers_n):
            t = threading.Thread(target=self._work, name=f"{self._name}-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def schedule(
        self,
        due: float | None,
        job: Job,
        *,
        key: Hashable | None = None,
        finish_on_stop: bool = False,
        background: bool = False,
    ) -> bool:
        """Queue `job` for `due` (None: now). `key`: refused while a job with the same key
        waits. `finish_on_stop`: run even after `stop` (then without waiting for `due`).
        `background`: not waited for by `wait_idle` (a periodic job). False when refused."""
        with self._cond:
            if self._stopping and not finish_on_stop:
                return False
            if key is not None:
                if key in self._keys:
                    return False
                self._keys.add(key)
            now = time.monotonic()
            when = now if due is None or self._stopping else due
            entry = _Entry(when, next(self._seq), job, key, finish_on_stop, background)
            heapq.heappush(self._heap, entry)
            if when <= now or self._heap[0] is entry:
                # Due now, or the earliest job: one waiting worker takes it, or waits for
                # its due time. Any other job changes no waiting worker's wait; the worker
                # that takes a job wakes another while jobs remain (`_next_locked`).
                self._cond.notify()
            return True

    def stop(self) -> None:
        """Refuse new jobs; keep only the `finish_on_stop` ones, due now. Workers end once
        the queue is empty (`join`)."""
        with self._cond:
            self._stopping = True
            kept = [entry for entry in self._heap if entry.finish_on_stop]
            for entry in kept:
                entry.due = 0.0
            self._heap = kept
            heapq.heapify(self._heap)
            self._keys.clear()
            self._cond.notify_all()
            self._idle.notify_all()

    def join(self, deadline: float) -> bool:
        """Wait for the workers until `deadline` (monotonic); True when all ended."""
        ok = True
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
            ok = ok and not t.is_alive()
        return ok

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job but background ones is queued and no worker is busy."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy or any(not entry.background for entry in self._heap):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
            return True

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No job runs inside this block; queued jobs wait and resume after. Not from a job
        (a step hook, an event callback on a worker): it would wait for itself forever."""
        if self._worker.active:
            raise RuntimeError("cannot pause the processor from one of its own workers")
        with self._lock:
            self._paused += 1
            while self._busy:
                self._idle.wait()
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1
                if not self._paused:
                    self._cond.notify_all()

    @property
    def busy(self) -> int:
        """How many workers are running a job now."""
        with self._lock:
            return self._busy

    def waiting(self, *, finish_on_stop: bool) -> int:
        """How many queued jobs are (or are not) marked `finish_on_stop`."""
        with self._lock:
            return sum(1 for entry in self._heap if entry.finish_on_stop is finish_on_stop)

    def _work(self) -> None:
        self._worker.active = True
        while True:
            with self._cond:
                entry = self._next_locked()
                if entry is None:
                    return
                self._busy += 1
            try:
                entry.job()
            except Exception:  # a job logs its own failures; this keeps the worker alive
                log.exception("a scheduled job failed")
            finally:
                with self._lock:
                    self._busy -= 1
                    self._idle.notify_all()

    def _next_locked(self) -> _Entry | None:
        while True:
            if self._stopping and not self._heap:
                return None
            if self._heap and not self._paused:
                wait = self._heap[0].due - time.monotonic()
                if wait <= 0:
                    entry = heapq.heappop(self._heap)
                    if entry.key is not None:
                        self._keys.discard(entry.key)
                    if self._heap:
                        self._cond.notify()  # the next job's turn: another worker looks
                    return entry
                self._cond.wait(min(wait, MAX_WAIT_SECONDS))
            else:
                self._cond.wait()
