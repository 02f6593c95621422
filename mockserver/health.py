"""What keeps the platform from serving fully (issue 16): a listener that cannot accept (out of
file descriptors), the data dir removed or replaced under the running mock. The parts report
and clear their problem here; `GET /health` answers 503 `degraded` while any is set. Each
change is logged once, however often a part reports it (no flood of tracebacks).
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("mockserver")

# The parts a problem belongs to (the keys of `/health`'s `problems`).
FTP = "ftp"
SFTP = "sftp"
HTTP = "http"
DATA_DIR = "data_dir"


# A part that fails again within this long of its last logged failure (a listener that
# recovers and runs out again at each burst of connections) is not logged again: /health
# still shows it, and the next message logged says how many episodes were left out.
QUIET_SECONDS = 60.0


class Health:
    """The platform's current problems, by part; thread-safe (FTP has its own thread, SFTP
    and HTTP share the asyncio loop, the data-dir watch has its own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._problems: dict[str, str] = {}
        self._logged_at: dict[str, float] = {}  # part -> when its last failure was logged
        self._silent: dict[str, int] = {}  # part -> episodes not logged since then
        self._logged: set[str] = set()  # parts whose current problem was logged

    def report(self, part: str, reason: str) -> None:
        """`part` has a problem; logged (at error level) only when it is new for that part,
        and at most once per QUIET_SECONDS for a part that keeps failing and recovering."""
        with self._lock:
            if part in self._problems:
                return
            self._problems[part] = reason
            now = self._clock()
            last = self._logged_at.get(part)
            if last is not None and now - last < QUIET_SECONDS:
                self._silent[part] = self._silent.get(part, 0) + 1
                return
            self._logged_at[part] = now
            self._logged.add(part)
            silent = self._silent.pop(part, 0)
        more = f" (and {silent} more times in the last minute)" if silent else ""
        log.error("degraded: %s: %s%s", part, reason, more)

    def clear(self, part: str) -> None:
        """`part` works again; logged once, only if its problem was logged."""
        with self._lock:
            reason = self._problems.pop(part, None)
            logged = part in self._logged
            self._logged.discard(part)
        if reason is not None and logged:
            log.warning("recovered: %s works again (%s)", part, reason)

    def problem(self, part: str) -> str | None:
        with self._lock:
            return self._problems.get(part)

    def problems(self) -> dict[str, str]:
        with self._lock:
            return dict(self._problems)


def out_of_descriptors(exc: BaseException) -> bool:
    """An accept (or open) that failed for want of descriptors or kernel memory: a pressure
    that passes, unlike a closed socket."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOBUFS,
        errno.ENOMEM,
    )


def accept_problem(exc: BaseException) -> str:
    """The reason `/health` and the log give for a listener that cannot accept."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot accept connections: {reason.lower()}; retrying"


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one (a no-op when they are equal or the hard
    limit is unlimited beyond what the kernel takes); returns the (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.debug("open files limit raised from %d to %d (hard %s)", soft, target, hard)
            soft = target
        except (ValueError, OSError) as exc:
            log.debug("open files limit stays %d (hard %s): %s", soft, hard, exc)
    else:
        log.debug("open files limit %d (hard %s)", soft, hard)
    return soft, hard


def open_files_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class DataDirWatch:
    """Every `interval` seconds, checks that the data dir and its database are still the
    inodes the platform opened (a `rm -rf` or a swap while running would otherwise go on into
    an unlinked database, lost at restart). On a change: `Health.report(DATA_DIR, ...)` and
    `on_lost()` once; nothing is automatic after that (docs/spec.md: restart the mock)."""

    def __init__(
        self,
        data_dir: Path,
        database: Path,
        health: Health,
        on_lost: Callable[[], None],
        interval: float = 1.0,
    ) -> None:
        self._paths = (data_dir, database)
        self._health = health
        self._on_lost = on_lost
        self._interval = interval
        self._expected = tuple(self._identity(p) for p in self._paths)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _identity(path: Path) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def check(self) -> str | None:
        """The problem, or None while both are where they were (one stat each)."""
        for path, expected in zip(self._paths, self._expected, strict=True):
            now = self._identity(path)
            if now is None:
                return f"{path} was removed while running; restart the mock"
            if now != expected:
                return f"{path} was replaced while running; restart the mock"
        return None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="allmysms-mock-datadir", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            problem = self.check()
            if problem is not None:
                self._health.report(DATA_DIR, problem)
                try:
                    self._on_lost()
                except Exception:
                    log.exception("cannot pause the platform after losing its data dir")
                return  # nothing more to watch: the state is gone

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None


LoopHandler = Callable[[Any, dict[str, Any]], None]


def loop_exception_handler(health: Health, parts: Callable[[], dict[int, str]]) -> LoopHandler:
    """An asyncio exception handler: asyncio retries a listener's accept that ran out of
    descriptors a second later, but logs it with a traceback every time (thousands of them);
    here it is reported to `health` instead (logged once), the part named by the listening
    port (`parts()`: port -> part). Anything else goes to the loop's default handler."""

    def handle(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        sock = context.get("socket")
        if exc is not None and sock is not None and out_of_descriptors(exc):
            try:
                port = int(sock.getsockname()[1])
            except (OSError, IndexError, TypeError, ValueError):
                port = -1
            health.report(parts().get(port, "listener"), accept_problem(exc))
            return
        loop.default_exception_handler(context)

    return handle
