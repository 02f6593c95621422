"""What every session of one FTP server shares (`Context`), and the background runner that keeps
password checks off pyftpdlib's single loop thread.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mockserver.auth import Authenticator
from mockserver.config import LimitsConfig
from mockserver.faults import Faults
from mockserver.health import Health
from mockserver.limits import Guard
from mockserver.servers.announce import Announce
from mockserver.servers.dropbox import OnUpload
from mockserver.tree import Layout, login_root
from mockserver.writes import OpenWrites

log = logging.getLogger("mockserver.ftp")

_AUTH_WORKERS = 4


class Background:
    """Runs blocking calls (a password check may cost one scrypt, ~0.1 s) off pyftpdlib's loop,
    which would otherwise freeze every session meanwhile, and hands each result back to the
    loop thread (pyftpdlib is not thread-safe): `submit` and `run_ready` are loop-thread only."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._done: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.pending = 0

    def submit(self, call: Callable[[], object], then: Callable[[object], None]) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                _AUTH_WORKERS, thread_name_prefix="allmysms-mock-ftp-auth"
            )
        self.pending += 1

        def run() -> None:
            try:
                result = call()
            except Exception as exc:  # handed to `then`, on the loop thread
                result = exc
            self._done.put(lambda: then(result))

        self._executor.submit(run)

    def run_ready(self) -> None:
        while True:
            try:
                done = self._done.get_nowait()
            except queue.Empty:
                return
            self.pending -= 1
            try:
                done()
            except Exception:
                log.exception("FTP: a background result could not be applied")

    def shutdown(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


@dataclass(slots=True)
class Confined:
    """The path a session has just confined (`policy.confine`: normalised, no link below the
    root) and judged for the command it is now handing to pyftpdlib, set only for the length
    of that synchronous call (loop thread only). pyftpdlib checks the same path again through
    `Filesystem.validpath` and `Authorizer.has_perm`; those skip the second `lstat` walk for
    this very path, and walk any other path in full (issue 15)."""

    real: str | None = None
    virtual: str = "/"
    login: str = ""

    def vouches(self, real: str | None, login: str | None = None) -> bool:
        return real is not None and real == self.real and (login is None or login == self.login)

    @contextlib.contextmanager
    def vouching(self, real: str, virtual: str, login: str) -> Iterator[None]:
        """For the length of the `with` block: `real` (`virtual` of `login`) was confined."""
        self.real, self.virtual, self.login = real, virtual, login
        try:
            yield
        finally:
            self.real = None


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a session needs, shared by the handler class of one server instance."""

    data_dir: Path
    layout: Layout
    max_file_bytes: int
    auth: Authenticator
    open_writes: OpenWrites
    on_upload: OnUpload
    limits: LimitsConfig
    guard: Guard
    background: Background = field(default_factory=Background)
    # Contract 9.2: the fault rules fired on protocol operations (`servers.ftp.faults`).
    faults: Faults = field(default_factory=Faults)
    announce: Announce = field(default_factory=Announce)  # contract 9.1's session events
    # Issue 16: the platform's problems (a listener that cannot accept, the data dir lost).
    health: Health = field(default_factory=Health)
    # Open sessions (loop thread only): pyftpdlib takes a session off its map while a login
    # is checked or a failed one is delayed, so `close_all` alone would not close it.
    sessions: set[Any] = field(default_factory=set)
    confined: Confined = field(default_factory=Confined)

    def root(self, login: str) -> str:
        return _root(self.data_dir, login)


@functools.lru_cache(maxsize=256)
def _root(data_dir: Path, login: str) -> str:
    """A login's root as a string: a pure function of its arguments, asked on every command."""
    return os.path.abspath(login_root(data_dir, login))
