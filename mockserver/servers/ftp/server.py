"""The FTP listener (`FtpServer`): a fresh handler class per server, pyftpdlib's single-threaded
loop served in a daemon thread, started and stopped by the app.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from mockserver import __version__
from mockserver.auth import Authenticator
from mockserver.config import Config
from mockserver.faults import Faults
from mockserver.health import FTP, Health, accept_problem
from mockserver.limits import Guard, guard_for
from mockserver.servers.announce import Announce
from mockserver.servers.dropbox import OnUpload, Publish, no_events
from mockserver.servers.ftp import compat
from mockserver.servers.ftp.authorizer import Authorizer
from mockserver.servers.ftp.compat import FTPHandler, IOLoop, ListenerBase
from mockserver.servers.ftp.context import Context
from mockserver.servers.ftp.fs import Filesystem
from mockserver.servers.ftp.session import Session
from mockserver.servers.ftp.transfer import DataChannel, PassiveListener
from mockserver.writes import OpenWrites

log = logging.getLogger("mockserver.ftp")

# Loop granularity: how late a stop() or a scheduled callback may be noticed; shorter while a
# password check runs in the background (its result is picked up at the next tick).
_TICK = 0.05
_FAST_TICK = 0.002


class _ToOurs(logging.Handler):
    """Hands a pyftpdlib record to the `mockserver.ftp` logger's handlers (printed once, in the
    format the user chose; its name stays `pyftpdlib`)."""

    def emit(self, record: logging.LogRecord) -> None:
        log.handle(record)


def route_pyftpdlib_log() -> None:
    """pyftpdlib logs every session at INFO ("FTP session opened", "USER 'x' logged in.", each
    transfer, DELE, RNTO) and traces its calls at DEBUG; our own `mockserver.ftp` lines say all
    of that in the SFTP server's words, so only its warnings and errors (an exception inside
    pyftpdlib) are kept, passed to our handler. A `pyftpdlib` logger the user configured (it
    has handlers) is left as it is; without any, pyftpdlib would configure stderr itself."""
    lib = logging.getLogger("pyftpdlib")
    if lib.handlers:
        return
    lib.addHandler(_ToOurs())
    if lib.level == logging.NOTSET:
        lib.setLevel(logging.WARNING)
    lib.propagate = False  # the root logger's handlers would print it a second time


class Listener(ListenerBase):
    """The FTP listener: a failed accept (out of descriptors) pauses it and is reported to
    `health` (once, by `Health`), the next accept that works clears it (issue 16)."""

    health: Health

    def accept_failed(self, exc: OSError) -> None:
        self.health.report(FTP, accept_problem(exc))

    def accept_worked(self) -> None:
        if self.health.problem(FTP) is not None:
            self.health.clear(FTP)


def handler_class(
    config: Config, ctx: Context, auth_failed_delay: float, banner: str
) -> type[FTPHandler]:
    """A fresh subclass per server: pyftpdlib keeps its settings in class attributes."""
    first, last = config.server.passive_ports
    limits = config.limits
    idle = limits.idle_timeout_seconds or None  # 0: never
    # The data channel's idle timeout too: a stalled transfer holds a file open for writing.
    data_channel = type("AllMySmsDataChannel", (DataChannel,), {"timeout": idle})
    attrs: dict[str, Any] = {
        "ctx": ctx,
        "authorizer": Authorizer(ctx),
        "abstracted_fs": Filesystem,
        "dtp_handler": data_channel,
        "passive_dtp": PassiveListener,
        "banner": banner,
        "timeout": idle,
        "max_login_attempts": limits.max_login_attempts,
        "auth_failed_timeout": auth_failed_delay,
        "passive_ports": list(range(first, last + 1)),
        "masquerade_address": config.server.masquerade_address or None,
        "masquerade_address_map": {},
        "permit_foreign_addresses": False,
        "permit_privileged_ports": False,
        "encoding": "utf8",
        "unicode_errors": "replace",
    }
    return type("AllMySmsFtpHandler", (Session,), attrs)


class FtpServer:
    """The FTP listener, served by pyftpdlib's single-threaded async loop in a daemon thread."""

    def __init__(
        self,
        config: Config,
        auth: Authenticator,
        open_writes: OpenWrites,
        on_upload: OnUpload,
        *,
        auth_failed_delay: float | None = None,
        banner: str | None = None,
        guard: Guard | None = None,
        faults: Faults | None = None,
        publish: Publish = no_events,
        health: Health | None = None,
    ) -> None:
        """`auth_failed_delay` overrides `limits.login_failure_delay_seconds`; `guard` (the
        lockout and connection counters) defaults to the one shared by every server of the
        same data dir, so the SFTP server's failures count here too; `faults`: the rules
        fired on protocol operations (contract 9.2; the Backend's), none by default."""
        self._config = config
        self.guard = guard or guard_for(config.server.data_dir, config.limits)
        self._ctx = Context(
            data_dir=config.server.data_dir,
            layout=config.server.layout,
            max_file_bytes=config.limits.max_file_bytes,
            auth=auth,
            open_writes=open_writes,
            on_upload=on_upload,
            limits=config.limits,
            guard=self.guard,
            faults=Faults() if faults is None else faults,
            announce=Announce(publish, "ftp"),
            health=Health() if health is None else health,
        )
        self._auth_failed_delay = (
            config.limits.login_failure_delay_seconds
            if auth_failed_delay is None
            else auth_failed_delay
        )
        self._banner = banner or f"allmysms-mockserver {__version__} FTP ready."
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the FTP server is not started")
        return self._port

    def start(self) -> None:
        """Bind (OSError if the address is taken), then serve in a thread; returns listening."""
        if self._thread is not None:
            raise RuntimeError("the FTP server is already started")
        compat.verify()  # one line naming what an unsupported pyftpdlib lacks
        route_pyftpdlib_log()
        handler = handler_class(self._config, self._ctx, self._auth_failed_delay, self._banner)
        ioloop = IOLoop()
        try:
            listener = type("AllMySmsFtpListener", (Listener,), {"health": self._ctx.health})
            server = listener(
                (self._config.server.host, self._config.server.ftp_port),
                handler,
                ioloop=ioloop,
                backlog=128,
            )
        except BaseException:
            ioloop.close()
            raise
        # pyftpdlib's own cap counts every socket (listener, passive listeners, data channels):
        # a backstop well above ours, which counts control connections.
        server.max_cons = 3 * self._config.limits.max_connections + 16
        server.max_cons_per_ip = 0
        self._server = server
        self._port = int(server.address[1])
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="allmysms-mock-ftp", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        server = self._server
        ioloop = server.ioloop
        background = self._ctx.background
        try:
            timeout = _TICK
            while not self._stopping.is_set():
                soonest = ioloop.loop(timeout, blocking=False)
                background.run_ready()
                tick = _FAST_TICK if background.pending else _TICK
                timeout = tick if soonest is None else max(0.0, min(tick, soonest))
        except Exception:
            log.exception("the FTP server loop failed")
        finally:
            # Closing from the loop's own thread: pyftpdlib's sockets are not thread-safe.
            for session in list(self._ctx.sessions):  # those off pyftpdlib's map too
                try:
                    session.close()
                except Exception:
                    log.exception("cannot close an FTP session")
            if server.paused:  # off the loop's map: close_all would miss it
                server.close()
            server.close_all()
            background.shutdown()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listener and every session, and join the thread (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the FTP server thread did not stop within %.1f s", timeout)
        self._thread = None
        self._server = None
