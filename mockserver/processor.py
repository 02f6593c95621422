"""The platform's processing loop (manual 4.3, contract 5): notice files dropped in SEND_SMS,
claim them into PROCESSING, judge them, record verdict + SMS + credits once, move them to
ARCHIVES or INVALIDS, mail the recap; and finish at start-up whatever a crash cut short.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import heapq
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from mockserver.core.models import Account, Verdict
from mockserver.events import EventBus, FileClaimed, FileFinished, MailWritten
from mockserver.mailbox import Mailbox, message_id
from mockserver.spool import Claim, FileKey, Spool, printable_name
from mockserver.store import FileRecord, InsufficientCredits, Store
from mockserver.tree import Folder
from mockserver.writes import OpenWrites

if TYPE_CHECKING:
    from mockserver.config import Config

log = logging.getLogger("mockserver.processor")

JudgeFn = Callable[[str, bytes, Account, datetime], Verdict]
Clock = Callable[[], datetime]

CRASH_ENV = "ALLMYSMS_MOCK_CRASH_AT"
CRASH_POINTS = ("after_claim", "after_record", "after_move", "after_mail")

# A file put straight on disk and noticed only by `created` (no close event: polling mode, a
# hard link, an NFS writer) or by a rescan is judged once its last modification is this old.
DEFAULT_SETTLE_SECONDS = 1.0
# A close seen by watchdog (not by the FTP/SFTP hook) waits this long after the last write:
# a server removes an aborted upload right after closing it, and the protocol hook is the
# authoritative "upload complete" signal (ARCHITECTURE pitfall 1: protocol hooks first).
CLOSE_GRACE_SECONDS = 0.25
DEFAULT_WORKERS = 4
# The longest a worker waits on the queue in one go, whatever the next task's due time.
MAX_WAIT_SECONDS = 3600.0

TaskKind = Literal["pickup", "settle", "grace", "process", "rescan"]


@dataclass(order=True)
class _Task:
    due: float
    seq: int
    kind: TaskKind = field(compare=False)
    login: str = field(compare=False, default="")
    path: Path | None = field(compare=False, default=None)
    claim: Claim | None = field(compare=False, default=None)
    received_at: datetime | None = field(compare=False, default=None)
    recovering: bool = field(compare=False, default=False)


class _QuietStopRace(logging.Filter):
    """watchdog logs an *error* when its inotify thread is asked for events while being
    stopped, a harmless race at shutdown; keep it out of the user's terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in str(record.msg)


logging.getLogger("watchdog.observers.inotify").addFilter(_QuietStopRace())


# A big file builds ~150k small objects; the cyclic GC, re-run on every allocation batch,
# would cost about a third of the time judging and recording it (bench/pipeline.py) while
# finding nothing to free. It is paused for such files only, and re-enabled right after.
GC_PAUSE_BYTES = 256 * 1024


class _GcPause:
    """Counted across worker threads: the GC is off while any big file is in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._restore = True

    @contextlib.contextmanager
    def __call__(self, active: bool) -> Iterator[None]:
        if not active:
            yield
            return
        with self._lock:
            if self._holders == 0:
                self._restore = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._restore:
                    gc.enable()


_gc_paused = _GcPause()


class ProcessorError(RuntimeError):
    """The processor cannot start; the message is one line a user can act on."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Events(FileSystemEventHandler):
    """watchdog -> processor: only hands paths over; the processor decides."""

    def __init__(self, processor: Processor, polling: bool) -> None:
        self._processor = processor
        self._polling = polling

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        kind = event.event_type
        if kind == "moved":
            # A rename into SEND_SMS means the file is complete (manual 4.2: "remplacer
            # l'extension .tmp par .csv afin que le traitement démarre").
            self._processor.notice(os.fsdecode(event.dest_path), settled=True)
        elif kind == "closed":
            # Linux IN_CLOSE_WRITE: its writer has closed it (ARCHITECTURE pitfall 1).
            self._processor.notice(os.fsdecode(event.src_path), settled=True, closed=True)
        elif kind == "created" or (kind == "modified" and self._polling):
            # `created` fires mid-write: wait until the file stops changing.
            self._processor.notice(os.fsdecode(event.src_path), settled=False)


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
        clock: Clock = _utc_now,
        workers: int = DEFAULT_WORKERS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        bus: EventBus | None = None,
    ) -> None:
        if judge is None:
            from mockserver.core.judge import judge as real_judge

            judge = real_judge
        from mockserver.core.filename import is_temporary

        self._is_temporary: Callable[[str], bool] = is_temporary
        self._judge: JudgeFn = judge
        self.config = config
        self.store = store
        self.spool = spool
        self.mailbox = mailbox
        self.open_writes = open_writes
        self.bus = bus or EventBus()
        self._clock = clock
        self._workers_n = max(1, workers)
        self._settle = max(0.0, settle_seconds)
        proc = config.processing
        self._delay = max(0.0, float(proc.delay_seconds))
        self._pickup_delay = max(0.0, float(proc.pickup_delay_seconds))
        self._rescan_every = float(proc.rescan_seconds)
        self._crash_at = os.environ.get(CRASH_ENV) or None
        if self._crash_at is not None and self._crash_at not in CRASH_POINTS:
            raise ValueError(f"{CRASH_ENV}={self._crash_at}: not one of {', '.join(CRASH_POINTS)}")

        self._cond = threading.Condition()
        self._heap: list[_Task] = []
        self._seq = itertools.count()
        self._queued: set[tuple[str, str]] = set()  # (kind, path) waiting in the heap
        self._inflight: set[tuple[str, str]] = set()  # (login, name) claimed, not yet placed
        self._active: set[tuple[str, FileKey]] = set()  # claims a worker is processing now
        self._waiting: dict[tuple[str, str], Path] = {}  # same name already in PROCESSING
        self._busy = 0
        self._paused = 0
        self._started = False
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._observer: BaseObserver | None = None
        self._unknown_logged: set[str] = set()
        self.watch_mode: str = "none"  # what actually runs: "native" or "polling"

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Recover what a crash left, start the workers, watch the tree, scan SEND_SMS."""
        with self._cond:
            if self._started:
                raise RuntimeError("processor already started")
            self._started = True
        try:
            for acc in self.store.accounts():
                self.spool.ensure(acc.login)
            self.spool.accounts_dir.mkdir(parents=True, exist_ok=True)
            self.recover()
            for i in range(self._workers_n):
                t = threading.Thread(target=self._work, name=f"allmysms-processor-{i}", daemon=True)
                t.start()
                self._threads.append(t)
            # Watch before scanning so that nothing dropped in between is missed.
            self._start_observer()
        except BaseException:
            self.stop(5)
            raise
        self.rescan()
        if self._rescan_every > 0:
            self._push(_Task(time.monotonic() + self._rescan_every, next(self._seq), "rescan"))

    def _start_observer(self) -> None:
        mode = self.config.processing.watch_mode
        path = str(self.spool.accounts_dir)
        if mode in ("auto", "native"):
            observer: BaseObserver = Observer()
            try:
                observer.schedule(_Events(self, polling=False), path, recursive=True)
                observer.start()
            except OSError as exc:
                with contextlib.suppress(Exception):
                    observer.stop()
                reason = exc.strerror or str(exc)
                if mode == "native":
                    raise ProcessorError(
                        f"cannot watch {path} with inotify: {reason};"
                        ' set processing.watch_mode = "polling" (or "auto")'
                    ) from None
                log.warning("native file watching unavailable (%s); polling instead", reason)
            else:
                self._observer, self.watch_mode = observer, "native"
                return
        interval = float(self.config.processing.poll_interval)
        observer = PollingObserver(timeout=interval)
        observer.schedule(_Events(self, polling=True), path, recursive=True)
        observer.start()
        self._observer, self.watch_mode = observer, "polling"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop accepting; finish the files already in PROCESSING (their delay is cut short);
        leave the rest in SEND_SMS for the next start. True when every thread ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._started or self._stopping:
                return True
            self._stopping = True
            kept = [task for task in self._heap if task.kind == "process"]
            for task in kept:
                task.due = 0.0
            self._heap = kept
            heapq.heapify(self._heap)
            self._queued.clear()
            self._cond.notify_all()
        ok = True
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(max(0.1, deadline - time.monotonic()))
            ok = not self._observer.is_alive()
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
            ok = ok and not t.is_alive()
        return ok

    def __enter__(self) -> Processor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued (but the periodic rescan) and no worker is busy."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy or any(t.kind != "rescan" for t in self._heap):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    def drain(self, timeout: float = 10.0) -> bool:
        """Scan SEND_SMS now and wait until everything found is processed (for tests)."""
        self.rescan()
        return self.wait_idle(timeout)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No file is being worked on inside this block (e.g. while `POST /api/reset` empties
        the folders and the store); queued work waits and resumes after."""
        with self._cond:
            self._paused += 1
            while self._busy:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._paused -= 1
                self._cond.notify_all()

    # -- entry points --------------------------------------------------------------------

    def submit(self, login: str, path: str | os.PathLike[str]) -> None:
        """An upload completed or a file was renamed in (FTP/SFTP hook): cheap, never blocks,
        any thread. Duplicates are harmless: only one claim of a file can succeed."""
        self.notice(path, settled=True)

    def notice(self, path: str | os.PathLike[str], *, settled: bool, closed: bool = False) -> None:
        """A path in the tree may hold a new file. `settled`: its writer has finished (a
        rename, an upload hook); `closed`: watchdog saw it closed after writing (judged after
        a short grace); otherwise it is judged once it stops changing."""
        where = self.spool.locate(path)
        if where is None or where[1] is not Folder.SEND_SMS:
            return
        login, _, name = where
        # Contract 5.1: "A file in SEND_SMS whose name ends in .tmp is never touched."
        if self._is_temporary(name):
            return
        kind: TaskKind = ("grace" if closed else "pickup") if settled else "settle"
        # processing.pickup_delay_seconds: a complete file stays visible in SEND_SMS a while.
        due = time.monotonic() + self._pickup_delay if settled and self._pickup_delay else None
        self._enqueue(kind, login, Path(os.path.abspath(path)), due)

    def rescan(self) -> None:
        """Look at every login's SEND_SMS (and PROCESSING, for files no worker holds): the
        start-up scan, and the periodic one that catches events inotify dropped."""
        for acc in self.store.accounts():
            login = acc.login
            send = self.spool.folder(login, Folder.SEND_SMS)
            for name in self.spool.entries(login, Folder.SEND_SMS):
                if not self._is_temporary(name):
                    self._enqueue("settle", login, send / name)
            for name in self.spool.entries(login, Folder.PROCESSING):
                with self._cond:
                    # Checked and taken under one lock: a pickup marks its name in flight
                    # before claiming, so a successor claimed under the same name right
                    # after its predecessor finished is never scheduled twice.
                    if (login, name) in self._inflight:
                        continue
                    claim = self.spool.claimed(login, name)
                    if claim is None:
                        continue
                    self._inflight.add((login, name))
                self._schedule_process(claim, _utc_now(), recovering=True)

    def _enqueue(self, kind: TaskKind, login: str, path: Path, due: float | None = None) -> None:
        key = (kind, str(path))
        with self._cond:
            if self._stopping or key in self._queued:
                return
            self._queued.add(key)
            self._push_locked(
                _Task(time.monotonic() if due is None else due, next(self._seq), kind, login, path)
            )

    def _push(self, task: _Task) -> None:
        with self._cond:
            if self._stopping and task.kind != "process":
                return
            self._push_locked(task)

    def _push_locked(self, task: _Task) -> None:
        heapq.heappush(self._heap, task)
        self._cond.notify_all()

    def _schedule_process(self, claim: Claim, received_at: datetime, *, recovering: bool) -> None:
        with self._cond:
            self._inflight.add((claim.login, claim.name))
        due = time.monotonic() + (0.0 if recovering else self._delay)
        task = _Task(due, next(self._seq), "process", claim.login, claim.path, claim)
        task.received_at, task.recovering = received_at, recovering
        self._push(task)

    # -- workers -------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                task = self._next_task_locked()
                if task is None:
                    return
                self._busy += 1
            try:
                self._run(task)
            except Exception as exc:  # keep the worker alive; the file stays where it is
                log.error(
                    "login=%s file=%s processing failed: %s (left in place, retried at the"
                    " next scan)",
                    task.login,
                    printable_name(task.path.name) if task.path else "-",
                    exc,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                if task.claim is not None:
                    with self._cond:
                        self._inflight.discard((task.claim.login, task.claim.name))
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _next_task_locked(self) -> _Task | None:
        while True:
            if self._stopping and not self._heap:
                return None
            if self._heap and not self._paused:
                wait = self._heap[0].due - time.monotonic()
                if wait <= 0:
                    task = heapq.heappop(self._heap)
                    self._queued.discard((task.kind, str(task.path)))
                    return task
                # Capped: a wait past `threading.TIMEOUT_MAX` raises OverflowError (the
                # heap is looked at again anyway when the cap runs out).
                self._cond.wait(min(wait, MAX_WAIT_SECONDS))
            else:
                self._cond.wait()

    def _run(self, task: _Task) -> None:
        if task.kind == "rescan":
            self.rescan()
            self._push(_Task(time.monotonic() + self._rescan_every, next(self._seq), "rescan"))
        elif task.kind in ("settle", "grace"):
            assert task.path is not None
            self._settle_check(task.login, task.path, task.kind)
        elif task.kind == "pickup":
            assert task.path is not None
            self._pickup(task.login, task.path)
        else:
            assert task.claim is not None
            assert task.received_at is not None
            self._process(task.claim, task.received_at, recovering=task.recovering)

    def _settle_check(self, login: str, path: Path, kind: TaskKind) -> None:
        st = self.spool.probe(path)
        if st is None or self.open_writes.is_open(path):
            return  # gone, or an FTP/SFTP upload still open: its close will submit it
        min_age = min(self._settle, CLOSE_GRACE_SECONDS) if kind == "grace" else self._settle
        age = time.time() - st.st_mtime
        if age >= min_age:
            self._pickup(login, path)
        else:
            self._enqueue(kind, login, path, time.monotonic() + min_age - age)

    def _pickup(self, login: str, path: Path) -> None:
        name = path.name
        if self.open_writes.is_open(path):
            return  # ARCHITECTURE pitfall 2: never judge a half file
        if self._pickup_delay:
            # processing.pickup_delay_seconds counts from the file's last change of name or
            # content (ctime), whichever path found it: hook, watchdog or rescan.
            st = self.spool.probe(path)
            wait = self._pickup_delay - (time.time() - st.st_ctime) if st else 0.0
            if wait > 0:
                self._enqueue("pickup", login, path, time.monotonic() + wait)
                return
        if self.store.account(login) is None:
            if login not in self._unknown_logged:
                self._unknown_logged.add(login)
                log.warning("login=%s has a folder but no account; its files are ignored", login)
            return
        with self._cond:
            if (login, name) in self._inflight:
                # An earlier file of that name is in PROCESSING: this one waits its turn.
                self._waiting[(login, name)] = path
                return
            self._inflight.add((login, name))
        received_at = self._clock()
        claim = self.spool.claim(login, path)
        if claim is None:
            with self._cond:
                self._inflight.discard((login, name))
                if self.spool.probe(path) is not None and os.path.lexists(
                    self.spool.folder(login, Folder.PROCESSING) / name
                ):
                    self._waiting[(login, name)] = path
            return
        self.bus.publish(FileClaimed(login=login, name=claim.name))
        self._crash("after_claim")
        self._schedule_process(claim, received_at, recovering=False)

    # -- the pipeline of one file ---------------------------------------------------------

    def _process(self, claim: Claim, received_at: datetime, *, recovering: bool) -> None:
        started = time.perf_counter()
        active = (claim.login, claim.key)
        with self._cond:
            if active in self._active:
                # A second task for a claim already being processed (two triggers raced):
                # one pipeline per file, or it could be placed or mailed twice.
                log.debug("login=%s file=%s already being processed", claim.login, claim.key)
                return
            self._active.add(active)
        try:
            record = self.store.open_claim(claim.login, str(claim.key))
            if record is None:
                data = self.spool.read(claim)
                if data is None:
                    log.info(
                        "login=%s file=%s vanished before processing",
                        claim.login,
                        printable_name(claim.name),
                    )
                    return
                limit = self.config.limits.max_file_bytes
                if len(data) > limit:
                    # Only a file put straight on disk gets here (the servers refuse larger
                    # uploads): judge it anyway, as the platform would once it has it.
                    log.warning(
                        "login=%s file=%s is %d bytes, over max_file_bytes=%d; judged anyway",
                        claim.login,
                        printable_name(claim.name),
                        len(data),
                        limit,
                    )
                with _gc_paused(len(data) >= GC_PAUSE_BYTES):
                    record = self._judge_and_record(claim, data, received_at, started)
                self._crash("after_record")
            self._place(record, claim, recovering=recovering)
        finally:
            with self._cond:
                self._active.discard(active)
                self._inflight.discard((claim.login, claim.name))
                waiting = self._waiting.pop((claim.login, claim.name), None)
            if waiting is not None:
                self.notice(waiting, settled=True)

    def _judge_and_record(
        self, claim: Claim, data: bytes, received_at: datetime, started: float
    ) -> FileRecord:
        now = self._clock()
        sender = self.config.processing.default_sender
        for _ in range(100):
            acc = self.store.account(claim.login)
            if acc is None:
                raise RuntimeError(f"account {claim.login!r} vanished")
            # A fresh snapshot each time: the verdict's Not_enough_credits (contract 5.4.4)
            # must reflect the credits at record time.
            account = Account(claim.login, acc.credits, acc.subscription, sender)
            verdict = self._judge(claim.name, data, account, now)
            elapsed = (time.perf_counter() - started) * 1000
            try:
                return self.store.record(
                    claim.login, str(claim.key), verdict, received_at, self._clock(), elapsed
                )
            except InsufficientCredits:
                continue  # credits changed meanwhile (another file, the API): judge again
        raise RuntimeError("credits keep changing; giving up on this file for now")

    def _place(self, record: FileRecord, claim: Claim | None, *, recovering: bool) -> None:
        """Move (if not yet), mark moved, mail (if not yet), mark done, log.

        On disk the file keeps the user's raw name behind the prefix, even when the store
        holds its printable form (a name put on disk that is not UTF-8 or holds a line
        break, `spool.printable_name`); a name too long for the file system is shortened
        (`spool.short_name`). The store records the name actually used."""
        login = record.login
        if record.stored_name is None:
            dest: Path | None = None
            final = _raw_final_name(record, claim)
            if recovering and claim is not None:
                # A link+unlink move cut short leaves the file in both places.
                dest = self.spool.find_placed(login, record.status, final, claim.key)
                if dest is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(claim.path)
            if dest is None and claim is not None:
                try:
                    dest = self.spool.finish(login, claim.path, final, record.status)
                except FileNotFoundError:
                    dest = None
            if dest is None and recovering and claim is None:
                key = _parse_key(record.claim_key)
                if key is not None:
                    dest = self.spool.find_placed(login, record.status, record.final_name, key)
            if dest is None:
                log.warning(
                    "login=%s file=%s recorded but no longer on disk; kept as %s",
                    login,
                    record.original_name,
                    record.final_name,
                )
                stored = record.final_name
            else:
                stored = dest.name
            self._crash("after_move")
            self.store.mark_moved(record.id, stored)
        if record.mail == "pending":
            self._mail(record, recovering=recovering)
        done = self.store.file_record(record.id)
        if done is not None:
            self._log_file(done)

    def _mail(self, record: FileRecord, *, recovering: bool) -> None:
        if not self.config.processing.recap_email:
            self._done(record.id, "skipped")
            return
        fresh = self.store.file_record(record.id)
        if fresh is None:
            return
        acc = self.store.account(record.login)
        to = acc.email if acc else ""
        if not to:
            self._done(record.id, "skipped")
            return
        if recovering and self.mailbox.has(message_id(fresh)):
            self._done(record.id, "sent")  # delivered before the crash
            return
        try:
            msg_id = self.mailbox.send_recap(fresh, to)
        except Exception as exc:
            # Whatever went wrong (a full disk, a header `email` refuses), the file is done:
            # a recap that cannot be written must never keep it from `files()` or block
            # the next start-up.
            log.warning(
                "login=%s file=%s recap not delivered: %s",
                record.login,
                printable_name(record.name),
                exc,
            )
            self._done(record.id, "failed")
            return
        self.bus.publish(MailWritten(login=record.login, file_id=record.id, message_id=msg_id))
        self._crash("after_mail")
        self._done(record.id, "sent")

    def _done(self, file_id: int, mail: str) -> None:
        done = self.store.mark_mailed(file_id, mail)
        if done is not None:
            self.bus.publish(
                FileFinished(
                    login=done.login,
                    name=done.original_name,
                    file_id=done.id,
                    status=done.status.value,
                    reason=done.reason,
                    stored_name=done.name,
                )
            )

    def _log_file(self, record: FileRecord) -> None:
        fields: dict[str, Any] = {
            "login": record.login,
            "file": record.original_name,
            "verdict": record.status.value,
            "reason": record.reason or "-",
            "sms": record.sms_count,
            "ms": round(record.processing_ms, 1),
            "final": record.name,
        }
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        log.info(text, extra={"fields": fields})

    def _crash(self, point: str) -> None:
        """Fault injection for the crash tests: die right here, as a power cut would."""
        if self._crash_at == point:
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)

    # -- recovery ------------------------------------------------------------------------

    def recover(self) -> None:
        """Contract 5.2: "a file found in PROCESSING at start-up (a crash) is judged again
        without charging or recording twice"; a file recorded but not marked moved or not
        mailed is finished. Runs before any new file is picked up.

        Each file is recovered on its own: one that fails is logged on one line and left
        where it is (retried by the periodic rescan); it never blocks start-up."""
        for acc in self.store.accounts():
            login = acc.login
            for name in self.spool.entries(login, Folder.PROCESSING):
                try:
                    claim = self.spool.claimed(login, name)
                    if claim is None:
                        continue
                    self._drop_twin(claim)
                    self._process(claim, _utc_now(), recovering=True)
                except Exception as exc:
                    self._recovery_failed(login, name, exc)
        for record in self.store.unfinished():
            try:
                self._place(record, None, recovering=True)
            except Exception as exc:
                self._recovery_failed(record.login, record.original_name, exc)

    def _recovery_failed(self, login: str, name: str, exc: Exception) -> None:
        log.error(
            "login=%s file=%s not recovered at start-up: %s (left in place, retried at the"
            " next scan)",
            login,
            printable_name(name),
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )

    def _drop_twin(self, claim: Claim) -> None:
        """A claim by link+unlink cut short leaves the same file in SEND_SMS too: drop that
        second name, or the file would be processed twice."""
        twin = self.spool.folder(claim.login, Folder.SEND_SMS) / claim.name
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(twin)
            if claim.key.same_file(st):
                os.unlink(twin)


def _raw_final_name(record: FileRecord, claim: Claim | None) -> str:
    """The final name to give on disk: the record's, with the printable form of the user's
    name swapped back for the raw one still in PROCESSING (they differ only for names put
    straight on disk that are not UTF-8 or hold a line break)."""
    final, original = record.final_name, record.original_name
    if claim is None or claim.name == original or not final.endswith(original):
        return final
    if printable_name(claim.name) != original:
        return final
    return final[: len(final) - len(original)] + claim.name


def _parse_key(text: str) -> FileKey | None:
    try:
        dev, ino, mtime, size = (int(x) for x in text.split(":"))
    except ValueError:
        return None
    return FileKey(dev, ino, mtime, size)


# -- a stand-alone runner (crash tests, benchmarks) -------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m mockserver.processor --config FILE [--until-idle]`: the processor alone
    (no FTP/SFTP/HTTP) on a data dir; used by the crash tests and the pipeline benchmark."""
    parser = argparse.ArgumentParser(prog="python -m mockserver.processor")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--until-idle", action="store_true", help="exit once nothing is left to process"
    )
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=DEFAULT_SETTLE_SECONDS)
    args = parser.parse_args(argv)

    from mockserver.config import ConfigError, load_config
    from mockserver.logs import setup_logging

    try:
        overrides = {"server.data_dir": str(args.data_dir)} if args.data_dir else None
        # The crash switch is ours, not a setting: keep it out of the config's variables.
        env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
        config = load_config(args.config, env=env, overrides=overrides)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(config.log.format, config.log.level.upper())
    data_dir = config.server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "state.sqlite3")
    try:
        store.seed_accounts(config.accounts)
        spool = Spool(data_dir, config.server.layout)
        mailbox = Mailbox(data_dir / "mailbox", config.mail)
        processor = Processor(
            config, store, spool, mailbox, OpenWrites(), settle_seconds=args.settle
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        processor.start()
        print("READY", flush=True)
        try:
            if args.until_idle:
                deadline = time.monotonic() + args.idle_timeout
                while not stop.is_set():
                    if processor.drain(max(0.1, deadline - time.monotonic())):
                        break
                    if time.monotonic() > deadline:
                        print("not idle in time", file=sys.stderr)
                        return 1
            else:
                stop.wait()
        finally:
            processor.stop()
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
