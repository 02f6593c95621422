"""The platform's processing (manual 4.3, contract 5): `Processor` wires the intake, the
scheduler and the pipeline of named steps, and finishes at start-up what a crash cut short.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mockserver.core.text import cause_of, printable_name
from mockserver.events import Event, EventBus
from mockserver.mailbox import Mailbox
from mockserver.manual import Waiting, WaitingFile
from mockserver.processing.faulting import Crashed, Stalled
from mockserver.processing.flight import InFlight
from mockserver.processing.intake import (
    DEFAULT_SETTLE_SECONDS,
    Intake,
    ProcessorError,
    guarded,
)
from mockserver.processing.pipeline import (
    Clock,
    FileContext,
    Hook,
    JudgeFn,
    Pipeline,
    Step,
    first_use_judge,
    resume_at,
    utc_now,
)
from mockserver.processing.recaps import OwedRecaps
from mockserver.processing.retries import Backoff
from mockserver.processing.scheduler import Scheduler
from mockserver.processing.sending import SendWatch
from mockserver.processing.stranded import Stranded
from mockserver.retrying import Retrying
from mockserver.spool import Claim, Spool
from mockserver.store import Store
from mockserver.tree import Folder
from mockserver.writes import OpenWrites

if TYPE_CHECKING:
    from mockserver.backend import Backend
    from mockserver.config import Config
    from mockserver.faults import Faults

__all__ = [
    "DEFAULT_SETTLE_SECONDS",
    "DEFAULT_WORKERS",
    "FileContext",
    "Hook",
    "Processor",
    "ProcessorError",
    "Step",
    "resume_at",
]

log = logging.getLogger("mockserver.processor")

DEFAULT_WORKERS = 4
RETRY_SECONDS = 0.05  # a file whose record a resume job holds tries again this much later


class Processor:
    """Moves dropped files through the tree; one instance per data dir.

    Thread-safe entry points: `submit` (FTP thread, SFTP loop), `notice` (watchdog), `stop`,
    `wait_idle`, `paused`. Work runs on a small pool of worker threads fed by one timed
    queue: a file waiting out `delay_seconds` in PROCESSING holds no thread.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        spool: Spool,
        mailbox: Mailbox,
        open_writes: OpenWrites,
        *,
        judge: JudgeFn | None = None,
        clock: Clock = utc_now,
        workers: int = DEFAULT_WORKERS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        bus: EventBus | None = None,
        waiting: Waiting | None = None,
        faults: Faults | None = None,
        retrying: Retrying | None = None,
    ) -> None:
        if judge is None:
            judge = first_use_judge
        self.config = config
        self.store = store
        self.spool = spool
        self.mailbox = mailbox
        self.open_writes = open_writes
        self.bus = bus if bus is not None else EventBus()
        self._delay = max(0.0, float(config.processing.delay_seconds))
        # Contract 9.4: in manual mode a claimed file waits here until advanced.
        self._manual = config.processing.mode == "manual"
        self.waiting = waiting if waiting is not None else Waiting()
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False
        self._flight = InFlight()
        self._scheduler = Scheduler(workers)
        self._recovered = threading.Event()
        # Issue 16: files and recaps that failed wait out a back-off, listed here.
        self.retrying = retrying if retrying is not None else Retrying()
        self.backoff = Backoff(self.retrying)
        self.pipeline = Pipeline(
            config, store, spool, mailbox, judge=judge, clock=clock, bus=self.bus, faults=faults
        )
        self.sends = SendWatch(store, self.bus, clock)
        parts = (self._scheduler, self.backoff)
        self.stranded = Stranded(store, spool, self._flight, self.pipeline, *parts)
        self.recaps = OwedRecaps(store, self.pipeline.recaps, self.bus, *parts)
        self.pipeline.recap_owed = self.recaps.owed
        self.bus.subscribe(self._on_reset)
        self._intake = Intake(
            config,
            store,
            spool,
            open_writes,
            self._scheduler,
            ready=self._claim,
            adopt=self._adopt,
            resume=self._stranded_scan,
            settle_seconds=settle_seconds,
        )

    @classmethod
    def over(cls, backend: Backend, **options: Any) -> Processor:
        """The processor of an opened `backend`: its store, folders, mailbox, open writes,
        event bus and clock, and the pause its `reset()` needs. `options` as the constructor's
        (`workers`, `settle_seconds`, `judge`)."""
        processor = cls(
            backend.config,
            backend.store,
            backend.spool,
            backend.mailbox,
            backend.open_writes,
            clock=backend.clock,
            bus=backend.bus,
            waiting=backend.waiting,
            faults=backend.faults,
            retrying=backend.retrying,
            **options,
        )
        backend.set_quiesce(processor.paused)
        return processor

    @property
    def watch_mode(self) -> str:
        """What watches the tree: "native" or "polling" ("none" before `start`)."""
        return self._intake.watch_mode

    def add_hook(self, hook: Hook) -> Callable[[], None]:
        """`hook(step, ctx)` after each step of every file (`Pipeline.add_hook`)."""
        return self.pipeline.add_hook(hook)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, *, begin: bool = True) -> None:
        """Start the workers and watch the tree; then, unless `begin` is False (the app calls
        `begin()` once every server listens), `begin()`."""
        with self._lock:
            if self._started:
                raise RuntimeError("processor already started")
            self._started = True
        try:
            for acc in self.store.accounts():
                self.spool.ensure(acc.login)
            self.spool.accounts_dir.mkdir(parents=True, exist_ok=True)
            self._scheduler.start()
            self.sends.start()
            # Watch before scanning so that nothing dropped in between is missed.
            self._intake.start_watching()
        except BaseException:
            self.stop(5)
            raise
        if begin:
            self.begin()

    def begin(self) -> None:
        """Issue 16: recovery never blocks start-up. Queue it (`recover`) and, after it, the
        first scan of SEND_SMS and the periodic rescan; returns at once."""

        def recover_then_scan() -> None:
            try:
                self.recover()
            finally:
                self._recovered.set()
                self.rescan()
                self._intake.rescan_periodically()

        self._scheduler.schedule(None, guarded("", None, recover_then_scan))

    def wait_recovered(self, timeout: float = 30.0) -> bool:
        """Wait until start-up recovery made its first attempt at every file it found (each
        one done, waiting out a back-off, or held by manual mode)."""
        return self._recovered.wait(timeout)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop accepting; finish the files already in PROCESSING (their delay is cut short);
        leave the rest in SEND_SMS for the next start. True when every thread ended."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if not self._started or self._stopping:
                return True
            self._stopping = True
        self._scheduler.stop()
        self.sends.stop()
        ok = self._intake.stop_watching(deadline)
        return self._scheduler.join(deadline) and ok

    def __enter__(self) -> Processor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued (but the periodic rescan) and no worker is busy."""
        return self._scheduler.wait_idle(timeout)

    def drain(self, timeout: float = 10.0) -> bool:
        """Scan SEND_SMS now and wait until everything found is processed (for tests)."""
        self.rescan()
        return self.wait_idle(timeout)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No file is being worked on inside this block (e.g. while `POST /api/reset` empties
        the folders and the store); queued work waits and resumes after."""
        with self._scheduler.paused():
            yield

    # -- entry points --------------------------------------------------------------------

    def submit(self, login: str, path: str | os.PathLike[str]) -> None:
        """An upload completed or a file was renamed in (FTP/SFTP hook): cheap, never blocks,
        any thread. Duplicates are harmless: only one claim of a file can succeed."""
        self._intake.submit(login, path)

    def notice(self, path: str | os.PathLike[str], *, settled: bool, closed: bool = False) -> None:
        """A path in the tree may hold a new file (see `Intake.notice`)."""
        self._intake.notice(path, settled=settled, closed=closed)

    def rescan(self) -> None:
        """Look at every login's SEND_SMS (and PROCESSING, for files no worker holds): the
        start-up scan, and the periodic one that catches events inotify dropped."""
        self._intake.rescan()

    # -- from intake to pipeline ----------------------------------------------------------

    def _claim(self, login: str, path: Path) -> None:
        """A complete file in SEND_SMS: CLAIM it (one file of a name in PROCESSING at a time)
        and schedule the rest of its steps after `processing.delay_seconds`."""
        name = path.name
        if not self._flight.reserve(login, name, path):
            return  # an earlier file of that name is in PROCESSING: this one waits its turn
        try:
            ctx = self.pipeline.claim(login, path)
        except Crashed:
            self._flight.discard(login, name)
            self._recover_abandoned(login, name)
            return
        except BaseException:
            self._flight.discard(login, name)
            raise
        if ctx is None:
            processing = self.spool.folder(login, Folder.PROCESSING) / name
            self._flight.unreserve(
                login,
                name,
                path,
                lambda: self.spool.probe(path) is not None and os.path.lexists(processing),
            )
            return
        self._schedule(ctx, time.monotonic() + self._delay + ctx.held)

    def _adopt(self, login: str, name: str) -> None:
        """A scan found a file in PROCESSING that no worker holds: finish it now. A claim by
        link + unlink whose unlink failed left the same file in SEND_SMS too: that second name
        goes first, or a later scan would claim it as a new file and charge it again."""
        claim = self._flight.adopt(login, name, lambda: self.spool.claimed(login, name))
        if claim is not None:
            self.spool.drop_twin(claim)
            self._schedule(self.pipeline.recovered(claim, self.pipeline.now()), None)

    def _schedule_process(self, claim: Claim, received_at: datetime, *, recovering: bool) -> None:
        """Schedule the steps after CLAIM for `claim` (tests race two of them)."""
        ctx = FileContext(claim.login, claim.name, claim, received_at, recovering=recovering)
        self._schedule(ctx, None if recovering else time.monotonic() + self._delay)

    def _schedule(self, ctx: FileContext, due: float | None) -> None:
        assert ctx.claim is not None
        self._flight.mark(ctx.login, ctx.name)
        if self._held(ctx):
            return
        job = guarded(ctx.login, ctx.claim.path, lambda: self._process(ctx))
        self._scheduler.schedule(due, job, finish_on_stop=True)

    def _held(self, ctx: FileContext) -> bool:
        """Manual mode (contract 9.4): keep a claimed file in PROCESSING, its name taken,
        until `Waiting.advance` lets it go (its steps then run at once: `delay_seconds` is
        not added). A file already judged (a record found at recovery) is not held again.
        Holds no thread, only a callable. A stop leaves it in PROCESSING, held again at
        the next start."""
        if not self._manual or ctx.claim is None:
            return False
        if ctx.recovering and self.store.open_claim(ctx.login, str(ctx.claim.key)) is not None:
            return False
        self._flight.mark(ctx.login, ctx.name)
        waiting = WaitingFile(ctx.login, printable_name(ctx.name), ctx.received_at)
        self.waiting.hold(waiting, functools.partial(self._resume_held, ctx))
        log.info("login=%s file=%s waits in PROCESSING (manual mode)", ctx.login, waiting.name)
        return True

    def _stranded_scan(self) -> None:
        self.stranded.scan()

    def _process(self, ctx: FileContext, resumed: bool = False) -> None:
        claim = ctx.claim
        assert claim is not None
        if resumed:
            self._steps(ctx, claim, self.pipeline.resume)
            return
        taken = self._flight.begin(claim)
        if taken == "later":
            # A scan's resume job is looking at this record for a moment: come back, or the
            # file's name would stay taken with nobody to finish it.
            job = guarded(ctx.login, claim.path, lambda: self._process(ctx))
            self._scheduler.schedule(time.monotonic() + RETRY_SECONDS, job, finish_on_stop=True)
            return
        if taken == "duplicate":
            # A second task for a claim already being processed (two triggers raced).
            log.debug("login=%s file=%s already being processed", claim.login, claim.key)
            return
        self._steps(ctx, claim, self.pipeline.run)

    def _steps(self, ctx: FileContext, claim: Claim, run: Callable[[FileContext], None]) -> None:
        """`run(ctx)` on a claim this worker holds, then let the claim go; contract 9.2:
        a `stall` keeps it (the rest is queued for later, no thread waits), a `crash` lets it
        go as a killed process would and recovers the file as at a restart."""
        crashed = kept = False
        try:
            run(ctx)
        except Stalled as stall:
            job = guarded(ctx.login, claim.path, lambda: self._process(ctx, resumed=True))
            due = time.monotonic() + stall.rule.seconds
            kept = self._scheduler.schedule(due, job, finish_on_stop=True)
        except Crashed:
            crashed = True
        except Exception as exc:  # issue 16: retried after a pause, one log line
            kept = self._retry_later(ctx, claim, exc)
        else:
            self.backoff.succeeded((claim.login, str(claim.key)))
        finally:
            if not kept:
                waiting = self._flight.end(claim)
                if crashed:
                    self._recover_abandoned(claim.login, claim.name)
                if waiting is not None:
                    self.notice(waiting, settled=True)

    def _retry_later(self, ctx: FileContext, claim: Claim, exc: Exception) -> bool:
        """A step failed for a reason outside the file: the claim is kept (no scan takes it),
        its steps are queued again after the back-off; they resume at the step the store
        says, looking first for what the failed attempt did (`recovering`). At a stop the
        file is left in PROCESSING for the next start. True when queued."""
        key, stop = (claim.login, str(claim.key)), self._stopping
        pause = self.backoff.failed(key, ctx.login, ctx.name, ctx.step.value, exc, stopping=stop)
        ctx.recovering = True
        job = guarded(ctx.login, claim.path, lambda: self._process(ctx, resumed=True))
        due = time.monotonic() + pause
        return not stop and self._scheduler.schedule(due, job, finish_on_stop=True, background=True)

    def _on_reset(self, event: Event) -> None:
        if event.type == "reset":  # the records are gone and their ids will be reused
            self.stranded.forget()
            self.backoff.forget()

    def _recover_abandoned(self, login: str, name: str) -> None:
        """Contract 9.2 `crash`: recover the file as at a restart, `serve` running: left in
        PROCESSING it is adopted (judged again if never recorded, placed if it was); a record
        not moved or not mailed is resumed at its step by the stranded scan."""
        self._adopt(login, name)
        self.stranded.scan()

    # -- recovery ------------------------------------------------------------------------

    def recover(self) -> None:
        """Contract 5.2: "a file found in PROCESSING at start-up (a crash) is judged again
        without charging or recording twice"; a file recorded but not marked moved or not
        mailed is finished; an owed recap is retried. Runs on a worker once the servers
        listen (`begin`), before the first scan of SEND_SMS: each file resumes at the step the
        store and the disk say (`resume_at`), on its own: one that fails waits out its
        back-off (issue 16) and never blocks the others."""
        for acc in self.store.accounts():
            login = acc.login
            for name in self.spool.entries(login, Folder.PROCESSING):
                try:
                    find = functools.partial(self.spool.claimed, login, name)
                    claim = self._flight.adopt(login, name, find)
                    if claim is None:
                        continue  # a worker has it already (an upload's claim)
                    try:
                        self.spool.drop_twin(claim)
                        ctx = self.pipeline.recovered(claim, self.pipeline.now())
                    except BaseException:
                        self._flight.discard(login, name)
                        raise
                    if not self._held(ctx):
                        self._process(ctx)
                except Exception as exc:
                    self._recovery_failed(login, name, exc)
        for record in self.store.unfinished():
            self.stranded.attempt(record)
        self.recaps.recover()

    def _resume_held(self, ctx: FileContext) -> None:
        """An advanced file's steps, queued now (`Waiting.advance`)."""
        assert ctx.claim is not None
        job = guarded(ctx.login, ctx.claim.path, lambda: self._process(ctx))
        self._scheduler.schedule(None, job, finish_on_stop=True)

    def _recovery_failed(self, login: str, name: str, exc: Exception) -> None:
        log.error(
            "login=%s file=%s not recovered at start-up: %s (left in place, retried at the"
            " next scan)",
            login,
            printable_name(name),
            cause_of(exc),
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
