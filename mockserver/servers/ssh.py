"""The SSH side of the SFTP server (`SshConnection`, one per connection): password logins
against the live accounts, the login lockout, the connection cap and the idle timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import asyncssh

from mockserver.servers import sftp_faults
from mockserver.tree import valid_login

if TYPE_CHECKING:
    from mockserver.servers.sftp import SftpServer

log = logging.getLogger("mockserver.sftp")


def quiet_asyncssh() -> None:
    """asyncssh logs every connection and channel at INFO: keep it to warnings unless the user
    configured its logger or is debugging ours."""
    ssh_log = logging.getLogger("asyncssh")
    if ssh_log.level == logging.NOTSET and not log.isEnabledFor(logging.DEBUG):
        ssh_log.setLevel(logging.WARNING)


class SshConnection(asyncssh.SSHServer):
    """One per connection: password authentication against the live account table.

    Every other request (port forwarding, sessions other than SFTP) keeps asyncssh's default
    refusal.
    """

    def __init__(self, owner: SftpServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None
        self._address = ""
        self._login = ""  # once logged in
        self._peer_name = ""
        self._counted = False  # holds a slot of the connection limiter
        self._failures = 0
        self._last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner.connections[conn] = self
        peer = conn.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self._peer()
        refusal = self._owner.guard.sftp_connections.acquire(self._address)
        if refusal is not None:
            log.warning("SFTP connection from %s refused: %s", self._address, refusal)
            # After asyncssh has sent its version line: the client then reads the reason.
            asyncio.get_running_loop().call_soon(
                conn.disconnect, asyncssh.DISC_TOO_MANY_CONNECTIONS, refusal
            )
            return
        self._counted = True
        log.debug("SFTP connection from %s", self._peer())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._login:
            log.info("login=%s SFTP disconnected from %s", self._login, self._peer())
        else:
            log.debug("SFTP connection from %s closed before login", self._peer())
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._counted:
            self._counted = False
            self._owner.guard.sftp_connections.release(self._address)
        if self._conn is not None:
            self._owner.connections.pop(self._conn, None)

    # -- idle timeout: asyncssh has a login timeout but no idle one --------------------------

    def auth_completed(self) -> None:
        if self._owner.idle_timeout > 0:
            self.touch()
            self._arm_idle_timer(self._owner.idle_timeout)

    def touch(self) -> None:
        """An SFTP request arrived: the session is not idle."""
        self._last_activity = asyncio.get_running_loop().time()

    def _arm_idle_timer(self, delay: float) -> None:
        self._idle_timer = asyncio.get_running_loop().call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self._conn is None:
            return
        idle_for = asyncio.get_running_loop().time() - self._last_activity
        limit = self._owner.idle_timeout
        if idle_for < limit:
            self._arm_idle_timer(limit - idle_for)
            return
        log.info("SFTP connection from %s closed: idle for %.0f s", self._peer(), idle_for)
        self._conn.disconnect(asyncssh.DISC_BY_APPLICATION, "idle timeout")

    # -- authentication ------------------------------------------------------------------------

    def _refuse_if_locked_out(self, username: str, *, announce: bool = True) -> None:
        """`announce` False: this very attempt's failure was already announced."""
        lock = self._owner.guard.lockout.refusal(self._address, username)
        if lock is not None:
            seconds = round(lock.seconds)
            log.info(
                "SFTP login from %s refused: %s locked out for %d s",
                self._peer(),
                lock.scope,
                seconds,
            )
            if announce:
                self._owner.announce.login_failed(username, self._peer(), "locked_out")
            raise asyncssh.PermissionDenied(lock.reason)

    def begin_auth(self, username: str) -> bool:
        self._refuse_if_locked_out(username)
        return True  # every login needs a password: never the "none" method

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        peer = self._peer()
        self._refuse_if_locked_out(username)
        # Accounts change at run time (HTTP API): ask the authenticator every time, off the
        # loop because a hashed password costs one scrypt.
        ok = valid_login(username) and await asyncio.to_thread(
            self._owner.auth.authenticate, username, password
        )
        if ok:
            if self._conn is not None and not await sftp_faults.login_allowed(
                self._conn, self._owner.faults, username
            ):
                return False  # contract 9.2: an injected refusal, not a failed login
            self._login = username
            log.info("login=%s SFTP login from %s", username, peer)
            self._owner.announce.login(username, peer)
            return True
        self._failures += 1
        log.warning("SFTP login failed for %r from %s (%d)", username[:64], peer, self._failures)
        self._owner.announce.login_failed(username, peer, "credentials")
        # Counted at once (not after the delay): parallel guessers are counted too.
        locked = self._owner.guard.lockout.failed(self._address, username)
        if locked:
            log.warning(
                "SFTP logins from %s (or for %r) locked out after repeated failures",
                self._address,
                username[:64],
            )
        await asyncio.sleep(self._owner.failed_login_delay)
        if locked:
            self._refuse_if_locked_out(username, announce=False)
        if self._failures >= self._owner.max_auth_attempts:
            raise asyncssh.PermissionDenied("too many authentication failures")
        return False

    def _peer(self) -> str:
        if self._peer_name or self._conn is None:
            return self._peer_name or "?"
        peer = self._conn.get_extra_info("peername")
        # Kept: once the connection is lost, asyncssh no longer knows it.
        self._peer_name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        return self._peer_name
