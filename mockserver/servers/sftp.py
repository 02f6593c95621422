"""The SFTP face of the platform (manual 4.1 "sftp://sftp.allmysms.com/ (sur le port 61022)"):
the listener (`SftpServer`) on the asyncio loop, password logins only (`servers.ssh`), one
confined session per login (`servers.sftp_session`, contract 4).
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import asyncssh

from mockserver.auth import Authenticator
from mockserver.config import Config
from mockserver.faults import Faults
from mockserver.health import SFTP, Health
from mockserver.limits import Guard, guard_for
from mockserver.servers import sftp_compat
from mockserver.servers.announce import Announce
from mockserver.servers.dropbox import OnUpload, Publish, no_events
from mockserver.servers.hostkey import (
    HostKeyError,
    fingerprint_of,
    host_key_path,
    load_or_create_host_key,
)
from mockserver.servers.sftp_compat import IncompatibleAsyncssh
from mockserver.servers.sftp_faults import FaultedSftp
from mockserver.servers.ssh import SshConnection, quiet_asyncssh
from mockserver.tree import login_root, make_tree
from mockserver.writes import OpenWrites

__all__ = [
    "HostKeyError",
    "IncompatibleAsyncssh",
    "OnUpload",
    "SftpServer",
    "load_or_create_host_key",
]

log = logging.getLogger("mockserver.sftp")


class _PrintableArgs(logging.Filter):
    """Client paths may hold lone surrogates (names that are not UTF-8): they are logged
    escaped, so no handler (a file, pytest-xdist, JSON) fails on them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.encode("utf-8", "backslashreplace").decode("utf-8")
                if isinstance(arg, str)
                else arg
                for arg in record.args
            )
        return True


log.addFilter(_PrintableArgs())


class SftpServer:
    """The SFTP listener on the running asyncio loop (the HTTP API shares that loop)."""

    def __init__(
        self,
        config: Config,
        auth: Authenticator,
        open_writes: OpenWrites,
        on_upload: OnUpload,
        *,
        guard: Guard | None = None,
        faults: Faults | None = None,
        publish: Publish = no_events,
        health: Health | None = None,
    ) -> None:
        """`guard` (the lockout and connection counters) defaults to the one shared by every
        server of the same data dir, so the FTP server's failures count here too; `faults`:
        the rules fired on protocol operations (contract 9.2; the Backend's), none by default."""
        self.config = config
        self.auth = auth
        self.open_writes = open_writes
        self.on_upload = on_upload
        self.announce = Announce(publish, "sftp")  # contract 9.1's session events
        self.guard = guard or guard_for(config.server.data_dir, config.limits)
        self.faults = Faults() if faults is None else faults
        self.health = Health() if health is None else health  # issue 16
        limits = config.limits
        # Failed logins cost this much (slows guessing); the connection drops after
        # `max_auth_attempts` failures, like OpenSSH's MaxAuthTries.
        self.failed_login_delay = limits.login_failure_delay_seconds
        self.max_auth_attempts = limits.max_login_attempts
        self.login_timeout = limits.login_timeout_seconds
        self.idle_timeout = limits.idle_timeout_seconds
        self.host_key_path = host_key_path(config.server.data_dir)
        self._key: asyncssh.SSHKey | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self.connections: dict[asyncssh.SSHServerConnection, SshConnection] = {}

    @property
    def port(self) -> int:
        if self._acceptor is None:
            raise RuntimeError("the SFTP server is not started")
        return self._acceptor.get_port()

    @property
    def fingerprint(self) -> str:
        """The host key's `SHA256:...` fingerprint (what clients show on first connection)."""
        if self._key is None:
            raise RuntimeError("the SFTP server is not started")
        return fingerprint_of(self._key)

    async def start(self) -> None:
        """Load (or make) the host key and listen; raises IncompatibleAsyncssh, HostKeyError
        or OSError (port)."""
        if self._acceptor is not None:
            raise RuntimeError("the SFTP server is already started")
        # OpenSSH's tolerance of bytes after a request's fields (rclone 1.60's padded writes);
        # one line naming what an unsupported asyncssh lacks.
        sftp_compat.install()
        self._key = load_or_create_host_key(self.host_key_path)
        quiet_asyncssh()
        server = self.config.server
        self._acceptor = await asyncssh.listen(
            server.host,
            server.sftp_port,
            server_factory=self._accepted,
            server_host_keys=[self._key],
            server_version="AllMySMSMock",
            # Password logins only (manual 4.1: "login", "pass"); no "none", keys, kbd-interactive.
            password_auth=True,
            public_key_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            gss_host=None,
            gss_auth=False,
            gss_kex=False,
            # Only the SFTP subsystem: no shell, exec, scp, pty, agent or X11 forwarding; port
            # forwarding is refused by SshConnection's defaults.
            sftp_factory=self._open_session,
            allow_scp=False,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            login_timeout=self.login_timeout,
        )
        log.info("SFTP listening on %s:%d (host key %s)", server.host, self.port, self.fingerprint)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, close every connection and wait until they are gone."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            await acceptor.wait_closed()
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        if conns:
            waits = asyncio.gather(*(conn.wait_closed() for conn in conns))
            try:
                await asyncio.wait_for(waits, timeout)
            except TimeoutError:
                log.warning("some SFTP connections did not close within %.0f s", timeout)
        self.connections.clear()

    def _accepted(self) -> SshConnection:
        """A new connection: accepting works (again, after running out of descriptors)."""
        if self.health.problem(SFTP) is not None:
            self.health.clear(SFTP)
        return SshConnection(self)

    def _open_session(self, chan: asyncssh.SSHServerChannel[bytes]) -> FaultedSftp:
        login = str(chan.get_extra_info("username"))
        connection = self.connections.get(cast(asyncssh.SSHServerConnection, chan.get_connection()))
        server = self.config.server
        try:
            # The app makes every tree; remaking it here only repairs a tree deleted by hand.
            root = make_tree(server.data_dir, server.layout, login)
        except (OSError, ValueError) as exc:
            log.warning("login=%s: cannot prepare the folder tree: %s", login, exc)
            root = login_root(server.data_dir, login)
        return FaultedSftp(chan, self, login, root, server.layout, connection)
