"""`MockServer`: the whole platform in one process (FTP, SFTP, HTTP API, processor, store).

It owns the lifecycle only: the data-dir lock, the threads, the asyncio loop and the ports.
The state and every operation on it belong to its `Backend` (`srv.backend`); the methods here
delegate to it and render its typed rows as the contract's JSON shapes (`mockserver.views`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from mockserver.app.facade import PlatformFacade
from mockserver.backend import Backend, BackendError
from mockserver.config import Config, dotted_key, load_config
from mockserver.health import (
    HTTP,
    SFTP,
    DataDirWatch,
    loop_exception_handler,
    raise_open_files_limit,
)
from mockserver.limits import Guard
from mockserver.mailbox import Mailbox
from mockserver.processing import Processor, ProcessorError
from mockserver.servers.aioloop import new_loop
from mockserver.servers.ftp import FtpServer
from mockserver.servers.ftp.compat import IncompatiblePyftpdlib
from mockserver.servers.hostkey import HostKeyError
from mockserver.servers.http import HttpApi
from mockserver.servers.sftp import IncompatibleAsyncssh, SftpServer
from mockserver.spool import Spool
from mockserver.store import Store
from mockserver.writes import OpenWrites

log = logging.getLogger("mockserver")
_T = TypeVar("_T")

LOCK_NAME = ".allmysms-mock.lock"


class StartupError(RuntimeError):
    """The platform could not start; the message is one line a user can act on."""


class MockServer(PlatformFacade):
    """The AllMySMS FTP/SFTP platform, in-process.

    >>> with MockServer() as srv:           # free ports, temporary data dir, account demo/demo
    ...     srv.ftp_port, srv.sftp_port, srv.http_url
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> None:
        """Without `config`, use the embedded defaults on free ports (0) and a temporary data
        dir (removed at stop). `settings` are dotted overrides, e.g.
        `MockServer(**{"processing.delay_seconds": 1.0})` or `MockServer(delay_seconds=1.0)`
        for the short keys (`config.dotted_key`: `[processing]`, `[limits]`, and the server's
        `layout`, `host`, `passive_ports`, `masquerade_address`, `api_token`)."""
        self._tmpdir: str | None = None
        overrides: dict[str, Any] = {}
        if config is None:
            overrides.update({"server.ftp_port": 0, "server.sftp_port": 0, "server.http_port": 0})
            if data_dir is None:
                self._tmpdir = tempfile.mkdtemp(prefix="allmysms-mock-")
                data_dir = self._tmpdir
                # Removed at stop, or when a server that never started is collected.
                weakref.finalize(self, shutil.rmtree, self._tmpdir, ignore_errors=True)
        if data_dir is not None:
            overrides["server.data_dir"] = str(data_dir)
        for key, value in settings.items():
            overrides[dotted_key(key)] = value
        if config is None or overrides:
            config = load_config(None, env={}, overrides=overrides, base=config)
        self.config: Config = config
        self._lock = threading.Lock()
        self._started = False
        self._ready = False
        self._lock_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._processor: Processor | None = None
        self._ftp: FtpServer | None = None
        self._sftp: SftpServer | None = None
        self._http: HttpApi | None = None
        self._watch: DataDirWatch | None = None
        self._listeners: dict[int, str] = {}  # port -> part, for the loop's handler
        self._lost = contextlib.ExitStack()  # the processor's pause once the data dir is lost
        self.backend = Backend(config)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> MockServer:
        """Start every part; return once all listen. Re-raises any start-up error here."""
        with self._lock:
            if self._started:
                raise RuntimeError("MockServer already started")
            self._started = True
        try:
            self._start(timeout)
        except BaseException:
            self._shutdown()
            with self._lock:
                self._started = False
            raise
        return self

    def _start(self, timeout: float) -> None:
        cfg = self.config
        data_dir = cfg.server.data_dir
        raise_open_files_limit()  # issue 16: the hard limit, not the often low soft one
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create data dir {data_dir}: {exc.strerror}") from None
        self._lock_fd = _lock_data_dir(data_dir)
        backend = self.backend
        try:
            backend.open()
        except BackendError as exc:
            raise StartupError(str(exc)) from None
        self._processor = Processor.over(backend)
        try:
            # Issue 16: recovery never delays the listeners; `begin()` below queues it.
            self._processor.start(begin=False)
        except ProcessorError as exc:
            raise StartupError(str(exc)) from None
        # Issue 16: the data dir or its database removed or replaced while running.
        self._watch = DataDirWatch(
            data_dir, data_dir / "state.sqlite3", backend.health, self._data_dir_lost
        )
        self._watch.start()
        submit = self._processor.submit
        self._ftp = FtpServer(cfg, backend, backend.open_writes, submit, **self._server_parts())
        try:
            self._ftp.start()
        except IncompatiblePyftpdlib as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(
                _port_error("FTP", cfg.server.host, cfg.server.ftp_port, exc)
            ) from None
        # Issue 16: our exception handler is on the loop before any server listens on it,
        # and the loop's listeners back off once when out of descriptors (servers.aioloop).
        self._listeners.clear()
        self._loop = new_loop(loop_exception_handler(backend.health, lambda: self._listeners))
        ready = threading.Event()
        self._loop_thread = threading.Thread(
            target=self._run_loop, args=(ready,), name="allmysms-mock-loop", daemon=True
        )
        self._loop_thread.start()
        ready.wait(timeout)
        fut = asyncio.run_coroutine_threadsafe(self._astart(), self._loop)
        fut.result(timeout)
        # Everything listens: recover what a crash left, then scan SEND_SMS, on a worker.
        self._processor.begin()
        self._ready = True

    def _run_loop(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        self._loop.run_forever()
        # Drain what stop() left pending, then close the loop in its own thread.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    async def _astart(self) -> None:
        cfg = self.config
        assert self._processor is not None
        backend = self.backend
        submit = self._processor.submit
        self._sftp = SftpServer(cfg, backend, backend.open_writes, submit, **self._server_parts())
        try:
            await self._sftp.start()
        except (HostKeyError, IncompatibleAsyncssh) as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(
                _port_error("SFTP", cfg.server.host, cfg.server.sftp_port, exc)
            ) from None
        self._http = HttpApi(backend, self._ports, on_upload=submit)
        try:
            await self._http.start()
        except OSError as exc:
            raise StartupError(
                _port_error("HTTP", cfg.server.host, cfg.server.http_port, exc)
            ) from None
        self._listeners.update({self._sftp.port: SFTP, self._http.port: HTTP})

    def _data_dir_lost(self) -> None:
        """The watch's thread: no file is processed any more (its verdict would be lost)."""
        if self._processor is not None:
            self._lost.enter_context(self._processor.paused())

    async def _astop(self) -> None:
        if self._http is not None:
            await self._http.stop()
        if self._sftp is not None:
            await self._sftp.stop()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, let the file being processed finish, release every resource."""
        with self._lock:
            if not self._started:
                return
            self._started = False
        self._shutdown(timeout)

    def _shutdown(self, timeout: float = 30.0) -> None:
        self._ready = False
        errors: list[BaseException] = []

        def attempt(fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as exc:  # keep releasing the rest, report the first problem
                errors.append(exc)

        if self._loop is not None and self._loop.is_running():
            loop = self._loop
            attempt(lambda: asyncio.run_coroutine_threadsafe(self._astop(), loop).result(timeout))
            loop.call_soon_threadsafe(loop.stop)
        if self._loop_thread is not None:
            self._loop_thread.join(timeout)
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.close()
        if self._ftp is not None:
            attempt(self._ftp.stop)
        if self._watch is not None:
            attempt(self._watch.stop)
        attempt(self._lost.close)
        if self._processor is not None:
            attempt(lambda: self._processor.stop(timeout) if self._processor else None)
        attempt(self.backend.close)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._loop = self._loop_thread = None
        self._watch = None
        self._ftp = self._sftp = self._http = None
        self._processor = None
        self._lock_fd = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if errors:
            log.warning("while stopping: %s", errors[0])

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it listens ------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.config.server.host

    @property
    def data_dir(self) -> Path:
        return self.config.server.data_dir

    @property
    def ftp_port(self) -> int:
        return self._need(self._ftp).port

    @property
    def sftp_port(self) -> int:
        return self._need(self._sftp).port

    @property
    def http_port(self) -> int:
        return self._need(self._http).port

    @property
    def ftp_url(self) -> str:
        return f"ftp://{_url_host(self.host)}:{self.ftp_port}"

    @property
    def sftp_url(self) -> str:
        return f"sftp://{_url_host(self.host)}:{self.sftp_port}"

    @property
    def http_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.http_port}"

    @property
    def host_key_fingerprint(self) -> str:
        return self._need(self._sftp).fingerprint

    @property
    def running(self) -> bool:
        return self._started and self._ready

    def _ports(self) -> dict[str, int] | None:
        """The listening ports once every part is ready, else None (for `/health`)."""
        if not self.running or self._ftp is None or self._sftp is None:
            return None
        return {"ftp_port": self._ftp.port, "sftp_port": self._sftp.port}

    # -- parts, for tests ------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.backend.store

    @property
    def mailbox(self) -> Mailbox:
        return self.backend.mailbox

    @property
    def spool(self) -> Spool:
        return self.backend.spool

    @property
    def processor(self) -> Processor:
        return self._need(self._processor)

    @property
    def open_writes(self) -> OpenWrites:
        return self.backend.open_writes

    @property
    def guard(self) -> Guard:
        return self.backend.guard

    def _server_parts(self) -> dict[str, Any]:
        """What both protocol servers take from the Backend: the lockout and caps, the fault
        rules, the event bus and the health report."""
        backend = self.backend
        return {
            "guard": backend.guard,
            "faults": backend.faults,
            "publish": backend.publish,
            "health": backend.health,
        }

    @staticmethod
    def _need(part: _T | None) -> _T:
        if part is None:
            raise RuntimeError("MockServer is not running: call start() or use `with`")
        return part


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _port_error(what: str, host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot listen for {what} on {host}:{port}: {reason}"


def _lock_data_dir(data_dir: Path) -> int:
    """One platform per data dir: a second `serve` on it is refused with a clear message."""
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StartupError(
            f"data dir {data_dir} is already used by another running allmysms-mock"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
