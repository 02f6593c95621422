"""Records a failed MOVE or MAIL step left unfinished while the platform runs (an I/O error, a
step hook that raised, a crash fault): each scan finishes them as start-up recovery does, one
keyed job per record; one that keeps failing waits out the back-off of `processing/retries.py`
(logged, listed in `GET /api/processing`)."""

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
from mockserver.processing.pipeline import FileContext, Pipeline, Step, resume_at
from mockserver.processing.retries import Backoff
from mockserver.processing.scheduler import Scheduler
from mockserver.spool import FileKey, Spool
from mockserver.store import FileRecord, Store
from mockserver.tree import Folder

log = logging.getLogger("mockserver.processor")


class Stranded:
    """Finds and finishes stranded records; thread-safe."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        flight: InFlight,
        pipeline: Pipeline,
        scheduler: Scheduler,
        backoff: Backoff,
    ) -> None:
        self.store = store
        self.spool = spool
        self._flight = flight
        self._scheduler = scheduler
        self._pipeline = pipeline
        self._backoff = backoff
        self._lock = threading.Lock()
        self._unreadable: set[int] = set()

    def scan(self) -> None:
        """Queue a job for each unfinished record (refused while one waits, a back-off
        included). Only the records a worker is finishing right now are unfinished in the
        normal run, so this is a handful, whatever the load."""
        for record in self.store.unfinished():
            self.queue(record)

    def queue(self, record: FileRecord, due: float | None = None, *, backoff: bool = False) -> None:
        """Queue the job that finishes `record` at `due` (monotonic; None: now); `backoff`:
        a retry waiting out its pause, which `wait_idle` does not wait for."""
        key = FileKey.parse(record.claim_key)
        if key is None:
            self._unreadable_key(record)
            return
        job = guarded(record.login, Path(record.name), functools.partial(self.attempt, record))
        # Keyed: a record waits in the queue once, however many scans see it.
        key_ = ("resume", record.id, record.claim_key)
        self._scheduler.schedule(due, job, key=key_, background=backoff)

    def attempt(self, record: FileRecord) -> None:
        """One attempt at finishing `record`; a failure is logged and retried after the
        back-off (a stop drops the retry: the next start finishes the record)."""
        key = FileKey.parse(record.claim_key)
        if key is None:
            self._unreadable_key(record)
            return
        try:
            handled = self.finish(record, key)
        except Stalled as stall:  # contract 9.2: later, not a failure
            self.queue(record, time.monotonic() + stall.rule.seconds)
            return
        except Crashed:  # contract 9.2: abandoned here, recovered now (the step is not met again)
            self.queue(record)
            return
        except Exception as exc:
            retry = (record.login, record.claim_key)
            step = self._step_of(record)
            pause = self._backoff.failed(retry, record.login, record.original_name, step, exc)
            self.queue(record, time.monotonic() + pause, backoff=True)
            return
        if handled:
            self._backoff.succeeded((record.login, record.claim_key))

    def _step_of(self, record: FileRecord) -> str:
        """The step the record was at (what the store says now, if it can say)."""
        with contextlib.suppress(Exception):
            record = self.store.file_record(record.id) or record
        return (resume_at(record) or Step.MAIL).value

    def finish(self, record: FileRecord, key: FileKey) -> bool:
        """Finish `record` unless a worker has it, it is done, it is no longer the same file
        (a reset removed it; ids are not reused since, but a database of an earlier version
        did reuse them: the claim key decides), or its file is still in PROCESSING (the
        adopting scan resumes that one at MOVE). False when someone else deals with it."""
        if not self._flight.hold(record.login, key):
            return False  # a worker has it: it is not stranded
        try:
            fresh = self.store.file_record(record.id)
            if (
                fresh is None
                or fresh.done
                or (fresh.login, fresh.claim_key) != (record.login, record.claim_key)
            ):
                return True
            if fresh.stored_name is None and self._in_processing(fresh.login, key):
                return False
            ctx = FileContext(
                fresh.login, fresh.original_name, None, self._pipeline.now(), recovering=True
            )
            ctx.record = fresh
            self._pipeline.finish(ctx)
            return True
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
            self._unreadable.clear()
