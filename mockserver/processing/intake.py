"""How dropped files are noticed: the FTP/SFTP hook (`submit`), the watchdog observer, the
settle and grace of files written straight on disk, the start-up scan and periodic rescan.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from mockserver.core.text import cause_of, printable_name
from mockserver.processing.scheduler import Job, Scheduler
from mockserver.spool import Spool
from mockserver.store import Store
from mockserver.tree import Folder
from mockserver.writes import OpenWrites

if TYPE_CHECKING:
    from mockserver.config import Config

log = logging.getLogger("mockserver.processor")

# A file put straight on disk and noticed only by `created` (no close event: polling mode, a
# hard link, an NFS writer) or by a rescan is judged once its last modification is this old.
DEFAULT_SETTLE_SECONDS = 1.0
# A close seen by watchdog (not by the FTP/SFTP hook) waits this long after the last write:
# a server removes an aborted upload right after closing it, and the protocol hook is the
# authoritative "upload complete" signal (docs/spec.md 5.2.1).
CLOSE_GRACE_SECONDS = 0.25


class ProcessorError(RuntimeError):
    """The processor cannot start; the message is one line a user can act on."""


class _QuietStopRace(logging.Filter):
    """watchdog logs an *error* when its inotify thread is asked for events while being
    stopped, a harmless race at shutdown; keep it out of the user's terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in str(record.msg)


def _quiet_watchdog_stop_race() -> None:
    logger = logging.getLogger("watchdog.observers.inotify")
    if not any(isinstance(f, _QuietStopRace) for f in logger.filters):
        logger.addFilter(_QuietStopRace())


def guarded(login: str, path: Path | None, job: Job) -> Job:
    """`job`, with a failure logged on one line naming the file (it stays where it is)."""

    def run() -> None:
        try:
            job()
        except Exception as exc:
            log.error(
                "login=%s file=%s processing failed: %s (left in place, retried at the next scan)",
                login,
                printable_name(path.name) if path else "-",
                cause_of(exc),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )

    return run


# The events `_Events` acts on natively. watchdog turns the list into the inotify mask, so the
# kernel no longer reports the opens, reads, writes, attribute changes and deletions it
# ignored (each was a wake-up of watchdog's threads: issue 15). New folders are still watched.
NATIVE_EVENTS: list[type[FileSystemEvent]] = [FileMovedEvent, FileClosedEvent, FileCreatedEvent]


class _Events(FileSystemEventHandler):
    """watchdog -> intake: only hands paths over; the intake decides."""

    def __init__(self, intake: Intake, polling: bool) -> None:
        self._intake = intake
        self._polling = polling

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        kind = event.event_type
        if kind == "moved":
            # A rename into SEND_SMS means the file is complete (manual 4.2: "remplacer
            # l'extension .tmp par .csv afin que le traitement démarre").
            self._intake.notice(os.fsdecode(event.dest_path), settled=True)
        elif kind == "closed":
            # Linux IN_CLOSE_WRITE: its writer has closed it (docs/spec.md 5.2.1).
            self._intake.notice(os.fsdecode(event.src_path), settled=True, closed=True)
        elif kind == "created" or (kind == "modified" and self._polling):
            # `created` fires mid-write: wait until the file stops changing.
            self._intake.notice(os.fsdecode(event.src_path), settled=False)


class Intake:
    """Turns "a path may hold a new file" into `ready(login, path)` once the file is
    complete, "a file sits in PROCESSING" (a scan) into `adopt(login, name)`, and calls
    `resume()` at the end of each scan for the records a failed step left unfinished."""

    def __init__(
        self,
        config: Config,
        store: Store,
        spool: Spool,
        open_writes: OpenWrites,
        scheduler: Scheduler,
        *,
        ready: Callable[[str, Path], None],
        adopt: Callable[[str, str], None],
        resume: Callable[[], None] = lambda: None,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    ) -> None:
        from mockserver.core.filename import is_temporary

        self._is_temporary: Callable[[str], bool] = is_temporary
        self.config = config
        self.store = store
        self.spool = spool
        self.open_writes = open_writes
        self._scheduler = scheduler
        self._ready = ready
        self._adopt = adopt
        self._resume = resume
        self._settle = max(0.0, settle_seconds)
        proc = config.processing
        self._pickup_delay = max(0.0, float(proc.pickup_delay_seconds))
        self._rescan_every = float(proc.rescan_seconds)
        self._observer: BaseObserver | None = None
        self._unknown_logged: set[str] = set()
        self.watch_mode: str = "none"  # what actually runs: "native" or "polling"

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
        full = Path(os.path.abspath(path))
        # processing.pickup_delay_seconds: a complete file stays visible in SEND_SMS a while.
        due = time.monotonic() + self._pickup_delay if settled and self._pickup_delay else None
        if not settled:
            self._settle_later(login, full, grace=False, due=due)
        elif closed:
            self._settle_later(login, full, grace=True, due=due)
        else:
            self._pickup_later(login, full, due)

    def rescan(self) -> None:
        """Look at every login's SEND_SMS (and PROCESSING, for files no worker holds): the
        start-up scan, and the periodic one that catches events inotify dropped."""
        for acc in self.store.accounts():
            login = acc.login
            send = self.spool.folder(login, Folder.SEND_SMS)
            for name in self.spool.entries(login, Folder.SEND_SMS):
                if not self._is_temporary(name):
                    self._settle_later(login, send / name, grace=False)
            for name in self.spool.entries(login, Folder.PROCESSING):
                self._adopt(login, name)
        self._resume()

    def rescan_periodically(self) -> None:
        """Rescan every `processing.rescan_seconds` (0: never) until the scheduler stops."""
        if self._rescan_every <= 0:
            return

        def again() -> None:
            try:
                guarded("", None, self.rescan)()
            finally:
                self.rescan_periodically()

        self._scheduler.schedule(time.monotonic() + self._rescan_every, again, background=True)

    # -- settle, grace, pickup -----------------------------------------------------------

    def _settle_later(
        self, login: str, path: Path, *, grace: bool, due: float | None = None
    ) -> None:
        kind = "grace" if grace else "settle"
        job = guarded(login, path, lambda: self._settle_check(login, path, grace=grace))
        self._scheduler.schedule(due, job, key=(kind, str(path)))

    def _pickup_later(self, login: str, path: Path, due: float | None = None) -> None:
        job = guarded(login, path, lambda: self._pickup(login, path))
        self._scheduler.schedule(due, job, key=("pickup", str(path)))

    def _settle_check(self, login: str, path: Path, *, grace: bool) -> None:
        st = self.spool.probe(path)
        if st is None or self.open_writes.is_open(path):
            return  # gone, or an FTP/SFTP upload still open: its close will submit it
        min_age = min(self._settle, CLOSE_GRACE_SECONDS) if grace else self._settle
        age = time.time() - st.st_mtime
        if age >= min_age:
            self._pickup(login, path)
        else:
            self._settle_later(login, path, grace=grace, due=time.monotonic() + min_age - age)

    def _pickup(self, login: str, path: Path) -> None:
        if self.open_writes.is_open(path):
            return  # docs/spec.md 5.2.1: a file still being written is never judged
        if self._pickup_delay:
            # processing.pickup_delay_seconds counts from the file's last change of name or
            # content (ctime), whichever path found it: hook, watchdog or rescan.
            st = self.spool.probe(path)
            wait = self._pickup_delay - (time.time() - st.st_ctime) if st else 0.0
            if wait > 0:
                self._pickup_later(login, path, time.monotonic() + wait)
                return
        if self.store.account(login) is None:
            if login not in self._unknown_logged:
                self._unknown_logged.add(login)
                log.warning("login=%s has a folder but no account; its files are ignored", login)
            return
        self._ready(login, path)

    # -- the watcher ---------------------------------------------------------------------

    def start_watching(self) -> None:
        """Start the observer (`processing.watch_mode`); sets `watch_mode` to what runs."""
        _quiet_watchdog_stop_race()
        mode = self.config.processing.watch_mode
        path = str(self.spool.accounts_dir)
        if mode in ("auto", "native"):
            observer: BaseObserver = Observer()
            try:
                observer.schedule(
                    _Events(self, polling=False), path, recursive=True, event_filter=NATIVE_EVENTS
                )
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

    def stop_watching(self, deadline: float) -> bool:
        """Stop the observer; True when its thread ended before `deadline` (monotonic)."""
        if self._observer is None:
            return True
        self._observer.stop()
        self._observer.join(max(0.1, deadline - time.monotonic()))
        return not self._observer.is_alive()
