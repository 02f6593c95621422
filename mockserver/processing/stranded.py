"""Records a failed MOVE or MAIL step left unfinished while the platform runs (an I/O error, a
step hook that raised): each scan finishes them as start-up recovery does, one keyed job per
record, with a growing pause between the attempts at one that keeps failing."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from pathlib import Path

from mockserver.processing.faulting import Crashed, Stalled
from mockserver.processing.flight import InFlight
from mockserver.processing.intake import guarded
from mockserver.processing.pipeline import FileContext, Pipeline
from mockserver.processing.scheduler import Scheduler
from mockserver.spool import FileKey, Spool
from mockserver.store import FileRecord, Store
from mockserver.tree import Folder

log = logging.getLogger("mockserver.processor")

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


class Stranded:
    """Finds and finishes stranded records; thread-safe."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        flight: InFlight,
        scheduler: Scheduler,
        pipeline: Pipeline,
    ) -> None:
        self.store = store
        self.spool = spool
        self._flight = flight
        self._scheduler = scheduler
        self._pipeline = pipeline
        self._lock = threading.Lock()
        # record id -> (failures so far, not before this monotonic time)
        self._backoff: dict[int, tuple[int, float]] = {}
        self._unreadable: set[int] = set()

    def scan(self) -> None:
        """Queue a job for each unfinished record no earlier attempt is waiting out. Only the
        records a worker is finishing right now are unfinished in the normal run, so this is
        a handful, whatever the load."""
        now = time.monotonic()
        for record in self.store.unfinished():
            key = FileKey.parse(record.claim_key)
            if key is None:
                self._unreadable_key(record)
                continue
            with self._lock:
                _, not_before = self._backoff.get(record.id, (0, 0.0))
            if now < not_before:
                continue
            self.queue(record)

    def queue(self, record: FileRecord, due: float | None = None) -> None:
        """Queue the job that finishes `record` at `due` (monotonic; None: now)."""
        key = FileKey.parse(record.claim_key)
        if key is None:
            self._unreadable_key(record)
            return
        job = guarded(
            record.login, Path(record.name), functools.partial(self._attempt, record, key)
        )
        # Keyed: a record waits in the queue once, however many scans see it.
        self._scheduler.schedule(due, job, key=("resume", record.id, record.claim_key))

    def _attempt(self, record: FileRecord, key: FileKey) -> None:
        try:
            self.finish(record, key)
        except Stalled as stall:  # contract 9.2: later, not a failure
            self.queue(record, time.monotonic() + stall.rule.seconds)
            return
        except Crashed:  # contract 9.2: abandoned here, recovered now (the step is not met again)
            self.queue(record)
            return
        except Exception:
            with self._lock:
                failures, _ = self._backoff.get(record.id, (0, 0.0))
                pause = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2**failures)
                self._backoff[record.id] = (failures + 1, time.monotonic() + pause)
            raise
        with self._lock:
            self._backoff.pop(record.id, None)

    def finish(self, record: FileRecord, key: FileKey) -> None:
        """Finish `record` unless a worker has it, it is done, it is no longer the same file
        (a reset removed it; ids are not reused since, but a database of an earlier version
        did reuse them: the claim key decides), or its file is still in PROCESSING (the
        adopting scan resumes that one at MOVE)."""
        if not self._flight.hold(record.login, key):
            return  # a worker has it: it is not stranded
        try:
            fresh = self.store.file_record(record.id)
            if (
                fresh is None
                or fresh.done
                or (fresh.login, fresh.claim_key) != (record.login, record.claim_key)
            ):
                return
            if fresh.stored_name is None and self._in_processing(fresh.login, key):
                return
            ctx = FileContext(
                fresh.login, fresh.original_name, None, self._pipeline.now(), recovering=True
            )
            ctx.record = fresh
            self._pipeline.finish(ctx)
        finally:
            self._flight.release(record.login, key)

    def _in_processing(self, login: str, key: FileKey) -> bool:
        folder = self.spool.folder(login, Folder.PROCESSING)
        for name in self.spool.entries(login, Folder.PROCESSING):
            with contextlib.suppress(OSError):
                if key.same_file(os.lstat(folder / name)):
                    return True
        return False

    def _unreadable_key(self, record: FileRecord) -> None:
        with self._lock:
            if record.id in self._unreadable:
                return
            self._unreadable.add(record.id)
        log.warning(
            "login=%s file=%s has an unreadable claim key %r; finished at the next start",
            record.login,
            record.name,
            record.claim_key,
        )

    def forget(self) -> None:
        """After a reset: the records are gone, and their ids will be reused."""
        with self._lock:
            self._backoff.clear()
            self._unreadable.clear()
