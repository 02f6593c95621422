"""The SFTP face of the platform (manual 4.1 "sftp://sftp.allmysms.com/ (sur le port 61022)"):
asyncssh wiring with password logins only, one confined SFTP session per login (contract 4),
the size limit on every write, the upload-complete hook, and the `[limits]` (connection caps,
login lockout, login and idle timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar, cast

import asyncssh
from asyncssh import (
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_READ,
    FXF_TRUNC,
    FXF_WRITE,
    SFTPAttrs,
    SFTPError,
    SFTPFailure,
    SFTPName,
    SFTPOpUnsupported,
    SFTPPermissionDenied,
)

from mockserver.auth import Authenticator
from mockserver.config import Config
from mockserver.limits import Guard, guard_for
from mockserver.servers import policy
from mockserver.servers.hostkey import (
    HostKeyError,
    fingerprint_of,
    host_key_path,
    load_or_create_host_key,
)
from mockserver.tree import Layout, login_root, make_tree, valid_login
from mockserver.writes import OpenWrites

__all__ = ["HostKeyError", "SftpServer", "load_or_create_host_key"]

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

OnUpload = Callable[[str, Path], None]

P = ParamSpec("P")
R = TypeVar("R")

_WRITE_FLAGS = FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC | FXF_EXCL
_MAX_READ = 256 * 1024
_MAX_OFFSET = 2**63 - 1  # off_t


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
    ) -> None:
        """`guard` (the lockout and connection counters) defaults to the one shared by every
        server of the same data dir, so the FTP server's failures count here too."""
        self.config = config
        self.auth = auth
        self.open_writes = open_writes
        self.on_upload = on_upload
        self.guard = guard or guard_for(config.server.data_dir, config.limits)
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
        self._conns: dict[asyncssh.SSHServerConnection, _SshServer] = {}

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
        """Load (or make) the host key and listen; raises HostKeyError or OSError (port)."""
        if self._acceptor is not None:
            raise RuntimeError("the SFTP server is already started")
        self._key = load_or_create_host_key(self.host_key_path)
        _quiet_asyncssh()
        server = self.config.server
        self._acceptor = await asyncssh.listen(
            server.host,
            server.sftp_port,
            server_factory=lambda: _SshServer(self),
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
            # forwarding is refused by _SshServer's defaults.
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
        conns = list(self._conns)
        for conn in conns:
            conn.close()
        if conns:
            waits = asyncio.gather(*(conn.wait_closed() for conn in conns))
            try:
                await asyncio.wait_for(waits, timeout)
            except TimeoutError:
                log.warning("some SFTP connections did not close within %.0f s", timeout)
        self._conns.clear()

    def _open_session(self, chan: asyncssh.SSHServerChannel[bytes]) -> _ConfinedSftp:
        login = str(chan.get_extra_info("username"))
        connection = self._conns.get(cast(asyncssh.SSHServerConnection, chan.get_connection()))
        server = self.config.server
        try:
            # The app makes every tree; remaking it here only repairs a tree deleted by hand.
            root = make_tree(server.data_dir, server.layout, login)
        except (OSError, ValueError) as exc:
            log.warning("login=%s: cannot prepare the folder tree: %s", login, exc)
            root = login_root(server.data_dir, login)
        return _ConfinedSftp(chan, self, login, root, server.layout, connection)


def _quiet_asyncssh() -> None:
    """asyncssh logs every connection and channel at INFO: keep it to warnings unless the user
    configured its logger or is debugging ours."""
    ssh_log = logging.getLogger("asyncssh")
    if ssh_log.level == logging.NOTSET and not log.isEnabledFor(logging.DEBUG):
        ssh_log.setLevel(logging.WARNING)


class _SshServer(asyncssh.SSHServer):
    """One per connection: password authentication against the live account table.

    Every other request (port forwarding, sessions other than SFTP) keeps asyncssh's default
    refusal.
    """

    def __init__(self, owner: SftpServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None
        self._address = ""
        self._counted = False  # holds a slot of the connection limiter
        self._failures = 0
        self._last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._conns[conn] = self
        peer = conn.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        refusal = self._owner.guard.sftp_connections.acquire(self._address)
        if refusal is not None:
            log.warning("SFTP connection from %s refused: %s", self._address, refusal)
            # After asyncssh has sent its version line: the client then reads the reason.
            asyncio.get_running_loop().call_soon(
                conn.disconnect, asyncssh.DISC_TOO_MANY_CONNECTIONS, refusal
            )
            return
        self._counted = True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._counted:
            self._counted = False
            self._owner.guard.sftp_connections.release(self._address)
        if self._conn is not None:
            self._owner._conns.pop(self._conn, None)

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

    def _refuse_if_locked_out(self) -> None:
        remaining = self._owner.guard.lockout.remaining(self._address)
        if remaining:
            raise asyncssh.PermissionDenied(
                "too many failed logins from your address;"
                f" try again in {max(1, round(remaining))} s"
            )

    def begin_auth(self, username: str) -> bool:
        self._refuse_if_locked_out()
        return True  # every login needs a password: never the "none" method

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        peer = self._peer()
        self._refuse_if_locked_out()
        # Accounts change at run time (HTTP API): ask the authenticator every time, off the
        # loop because a hashed password costs one scrypt.
        ok = valid_login(username) and await asyncio.to_thread(
            self._owner.auth.authenticate, username, password
        )
        if ok:
            log.info("login=%s SFTP login from %s", username, peer)
            return True
        self._failures += 1
        log.warning("SFTP login failed for %r from %s (%d)", username[:64], peer, self._failures)
        # Counted at once (not after the delay): parallel guessers are counted too.
        locked = self._owner.guard.lockout.failed(self._address)
        if locked:
            log.warning("SFTP logins from %s locked out after repeated failures", self._address)
        await asyncio.sleep(self._owner.failed_login_delay)
        if locked:
            self._refuse_if_locked_out()
        if self._failures >= self._owner.max_auth_attempts:
            raise asyncssh.PermissionDenied("too many authentication failures")
        return False

    def _peer(self) -> str:
        if self._conn is None:
            return "?"
        peer = self._conn.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


# -- the confined SFTP session --------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Handle:
    """An open file: a raw descriptor, its virtual and real paths, and what it may do."""

    fd: int
    virtual: str
    real: Path
    writable: bool
    append: bool
    ident: tuple[int, int]  # (st_dev, st_ino) at open: remove only this very file
    too_large: bool = False
    failed: bool = False  # a write failed (disk full, I/O error)
    closed: bool = False

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # asyncssh's "ranges@asyncssh.com" extension seeks the file object it was given.
        return os.lseek(self.fd, offset, whence)


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Every failure becomes an SFTP status, never an "Uncaught exception" carrying real paths
    (contract 4: "never a crash, and the connection stays usable")."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if args and isinstance(args[0], _ConfinedSftp):
            args[0].touch()
        try:
            return method(*args, **kwargs)
        except SFTPError:
            raise
        except OSError as exc:
            # asyncssh maps the errno to a status; drop the file name (it is a real path).
            raise OSError(exc.errno, exc.strerror or "I/O error") from None
        except Exception:
            log.exception("SFTP %s failed", method.__name__)
            raise SFTPFailure("internal error") from None

    return wrapper


class _ConfinedSftp(asyncssh.SFTPServer):
    """One SFTP session, confined to the login's tree (contract 4).

    The client sees `/` = the login root. Every path goes through `policy.normalise` and
    `policy.confine` (no `..` escape, no backslash or NUL, never through a symbolic link), and
    every permission comes from `servers.policy`, the same rules the FTP server applies.
    """

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        owner: SftpServer,
        login: str,
        root: Path,
        layout: Layout,
        connection: _SshServer | None = None,
    ) -> None:
        super().__init__(chan)  # no chroot: asyncssh's chroot only rewrites paths
        self._owner = owner
        self._connection = connection
        self._login = login
        self._root = root
        self._layout = layout
        self._limit = owner.config.limits.max_file_bytes
        self._handles: set[_Handle] = set()

    def touch(self) -> None:
        """Every request counts as activity for the idle timeout."""
        if self._connection is not None:
            self._connection.touch()

    # -- paths ----------------------------------------------------------------------------

    def _virtual(self, path: bytes) -> str:
        virtual = policy.normalise(os.fsdecode(path))
        if virtual is None:
            raise SFTPPermissionDenied("invalid path")
        return virtual

    def _real(self, virtual: str) -> Path:
        real = policy.confine(self._root, virtual)
        if real is None:
            raise SFTPPermissionDenied("access denied: outside your folder tree or a link")
        return real

    def _require(self, decision: policy.Decision, what: str, virtual: str) -> None:
        if not decision:
            log.info("login=%s SFTP refused %s %s: %s", self._login, what, virtual, decision.reason)
            raise SFTPPermissionDenied(decision.reason)

    def _entry_stat(self, real: Path) -> os.stat_result:
        """lstat of something the client may see: a folder or a regular file, nothing else."""
        st = os.lstat(real)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise SFTPPermissionDenied("access denied: not a regular file or folder")
        return st

    # -- names and attributes -------------------------------------------------------------

    @_guarded
    def realpath(self, path: bytes) -> bytes:
        # A virtual path only, never the real one; `..` of `/` is `/`.
        return os.fsencode(self._virtual(path))

    @_guarded
    def stat(self, path: bytes) -> os.stat_result:
        virtual = self._virtual(path)
        self._require(policy.may_list(virtual, self._layout, self._login), "stat", virtual)
        return self._entry_stat(self._real(virtual))

    @_guarded
    def lstat(self, path: bytes) -> os.stat_result:
        # No link is ever followed (confine refuses one anywhere in the path): stat == lstat.
        return self.stat(path)

    def format_user(self, uid: int | None) -> str:
        return self._login

    def format_group(self, gid: int | None) -> str:
        return self._login

    async def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:
        entries = self._list(path)
        for entry in entries:
            yield entry

    @_guarded
    def _list(self, path: bytes) -> list[SFTPName]:
        virtual = self._virtual(path)
        self._require(policy.may_list(virtual, self._layout, self._login), "list", virtual)
        real = self._real(virtual)
        st = self._entry_stat(real)
        if not stat.S_ISDIR(st.st_mode):
            raise SFTPFailure("not a folder")
        parent_virtual = policy.normalise(virtual + "/..") or "/"
        parent = self._real(parent_virtual)
        names = [
            SFTPName(b".", attrs=SFTPAttrs.from_local(st)),
            SFTPName(b"..", attrs=SFTPAttrs.from_local(os.lstat(parent))),
        ]
        with os.scandir(real) as listing:
            found = list(listing)
        for entry in sorted(found, key=lambda e: e.name):
            entry_st = entry.stat(follow_symlinks=False)
            if not (stat.S_ISREG(entry_st.st_mode) or stat.S_ISDIR(entry_st.st_mode)):
                # A link (or device, FIFO...) planted on disk: never shown, never followed.
                log.warning(
                    "login=%s: hiding %s/%s (not a regular file or folder)",
                    self._login,
                    virtual.rstrip("/"),
                    entry.name,
                )
                continue
            names.append(SFTPName(os.fsencode(entry.name), attrs=SFTPAttrs.from_local(entry_st)))
        return names

    @_guarded
    def readlink(self, path: bytes) -> bytes:
        raise SFTPPermissionDenied(
            policy.may_link(self._virtual(path), self._layout, self._login).reason
        )

    @_guarded
    def statvfs(self, path: bytes) -> os.statvfs_result:
        raise SFTPOpUnsupported("statvfs is not supported")

    @_guarded
    def fstatvfs(self, file_obj: object) -> os.statvfs_result:
        raise SFTPOpUnsupported("statvfs is not supported")

    # -- files ----------------------------------------------------------------------------

    @_guarded
    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> _Handle:
        virtual = self._virtual(path)
        writing = bool(pflags & _WRITE_FLAGS)
        if writing:
            # Contract 4: "upload ... only in SEND_SMS", files directly in it.
            self._require(policy.may_write(virtual, self._layout, self._login), "upload", virtual)
        else:
            self._require(policy.may_read(virtual, self._layout, self._login), "read", virtual)
        real = self._real(virtual)
        if writing and self._owner.open_writes.is_open(real):
            raise SFTPFailure("this file is being uploaded by another session")
        if writing:
            flags = os.O_RDWR if pflags & FXF_READ else os.O_WRONLY
            flags |= os.O_CREAT if pflags & FXF_CREAT else 0
            flags |= os.O_EXCL if pflags & FXF_EXCL else 0
        else:
            flags = os.O_RDONLY
        # O_NOFOLLOW: a link planted between the check and here is not followed either;
        # O_NONBLOCK: a FIFO planted on disk cannot hang the loop (refused just below).
        fd = os.open(real, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise SFTPFailure("not a regular file")
            if writing and st.st_nlink > 1:
                # A hard link planted on disk would let a write reach a file outside the tree.
                raise SFTPPermissionDenied("access denied: the file has other links")
            if writing and pflags & FXF_TRUNC:
                os.ftruncate(fd, 0)  # only once the file is known to be an ordinary one
        except BaseException:
            os.close(fd)
            raise
        handle = _Handle(
            fd=fd,
            virtual=virtual,
            real=real,
            writable=writing,
            append=bool(pflags & FXF_APPEND),
            ident=(st.st_dev, st.st_ino),
        )
        self._handles.add(handle)
        if writing:
            # Registered until close: its rename is refused and the processor never judges it
            # (ARCHITECTURE pitfall 2).
            self._owner.open_writes.opened(real)
            log.debug("login=%s SFTP upload started %s", self._login, virtual)
        return handle

    def open56(self, path: bytes, desired_access: int, flags: int, attrs: SFTPAttrs) -> object:
        raise SFTPOpUnsupported("SFTP version 3 only")

    @staticmethod
    def _handle(file_obj: object) -> _Handle:
        if not isinstance(file_obj, _Handle) or file_obj.closed:
            raise SFTPFailure("invalid handle")
        return file_obj

    @_guarded
    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        fd = self._handle(file_obj).fd
        if offset > _MAX_OFFSET:
            return b""  # past any file's end (and past what pread accepts): end of file
        # A short read is normal SFTP; a client asking for 4 GiB at once gets a slice (like
        # OpenSSH's 256 KiB cap) instead of a 4 GiB buffer.
        return os.pread(fd, min(size, _MAX_READ), offset)

    @_guarded
    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        handle = self._handle(file_obj)
        if not handle.writable:
            raise SFTPPermissionDenied("file not opened for writing")
        if handle.append:
            offset = os.fstat(handle.fd).st_size
        # Manual 4.1: "la taille maximale des fichiers déposés ne doit pas dépasser 8 Mo".
        # offset + length, so a sparse write at a huge offset is refused too.
        if handle.too_large or offset + len(data) > self._limit:
            if not handle.too_large:
                log.warning(
                    "login=%s SFTP upload %s refused: over %d bytes",
                    self._login,
                    handle.virtual,
                    self._limit,
                )
            handle.too_large = True
            raise SFTPFailure(f"file too large: limit {self._limit} bytes")
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(handle.fd, view, offset)
                offset += written
                view = view[written:]
        except OSError as exc:
            # A full disk (or an I/O error) leaves a hole: this upload can no longer be
            # complete, so at close it is removed, never handed to the processor.
            if not handle.failed:
                log.warning(
                    "login=%s SFTP upload %s failed: %s",
                    self._login,
                    handle.virtual,
                    exc.strerror or exc,
                )
            handle.failed = True
            raise
        return len(data)

    @_guarded
    def fstat(self, file_obj: object) -> os.stat_result:
        return os.fstat(self._handle(file_obj).fd)

    @_guarded
    def fsync(self, file_obj: object) -> None:
        os.fsync(self._handle(file_obj).fd)

    @_guarded
    def close(self, file_obj: object) -> None:
        if not isinstance(file_obj, _Handle) or file_obj.closed:
            return
        # asyncssh also closes the handles a session leaves open when its channel goes away:
        # such an upload never finished.
        self._finish(file_obj, interrupted=self.channel.is_closing())

    def _finish(self, handle: _Handle, interrupted: bool) -> None:
        handle.closed = True
        self._handles.discard(handle)
        with contextlib.suppress(OSError):
            os.close(handle.fd)
        if not handle.writable:
            return
        if handle.too_large or handle.failed or interrupted:
            # An upload refused for its size, failed or cut off is not left half-written; it
            # is removed while still registered as open, so the processor never sees it.
            self._remove_if_same(handle)
            self._owner.open_writes.closed(handle.real)
            log.info(
                "login=%s SFTP upload %s %s; partial file removed",
                self._login,
                handle.virtual,
                "too large" if handle.too_large else "failed" if handle.failed else "interrupted",
            )
            return
        self._owner.open_writes.closed(handle.real)
        if not handle.real.exists():
            return  # deleted by the client before closing
        log.info("login=%s SFTP upload complete %s", self._login, handle.virtual)
        self._notify(handle.real)

    def _remove_if_same(self, handle: _Handle) -> None:
        try:
            st = os.lstat(handle.real)
            if (st.st_dev, st.st_ino) == handle.ident:
                os.unlink(handle.real)
        except OSError:
            pass

    def _notify(self, real: Path) -> None:
        try:
            self._owner.on_upload(self._login, real)
        except Exception:  # the hook only enqueues; a bug there must not break the session
            log.exception("login=%s upload hook failed for %s", self._login, real.name)

    def exit(self) -> None:
        for handle in list(self._handles):
            self._finish(handle, interrupted=True)

    # -- attributes -----------------------------------------------------------------------

    @_guarded
    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        virtual = self._virtual(path)
        self._set_attrs(virtual, self._real(virtual), attrs, None)

    @_guarded
    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        self.setstat(path, attrs)

    @_guarded
    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        handle = self._handle(file_obj)
        self._set_attrs(handle.virtual, handle.real, attrs, handle)

    def _set_attrs(
        self, virtual: str, real: Path, attrs: SFTPAttrs, handle: _Handle | None
    ) -> None:
        """Contract 4: "never ... change modes". Mode and owner requests that change nothing
        are accepted (OpenSSH `put -p` sends them); times and size, which clients set after an
        upload (`put -p`, rclone, WinSCP), are applied where uploads are allowed, size within
        the limit; anything else is a permission error and nothing is changed."""
        st = os.fstat(handle.fd) if handle else self._entry_stat(real)
        if attrs.permissions is not None and stat.S_IMODE(attrs.permissions) != stat.S_IMODE(
            st.st_mode
        ):
            self._require(policy.may_chmod(virtual, self._layout, self._login), "chmod", virtual)
        if (attrs.uid is not None and attrs.uid != st.st_uid) or (
            attrs.gid is not None and attrs.gid != st.st_gid
        ):
            self._require(policy.may_chmod(virtual, self._layout, self._login), "chown", virtual)
        if attrs.owner is not None or attrs.group is not None:
            self._require(policy.may_chmod(virtual, self._layout, self._login), "chown", virtual)
        new_size = attrs.size if attrs.size is not None and attrs.size != st.st_size else None
        times = attrs.atime is not None or attrs.mtime is not None
        if new_size is not None:
            self._require(policy.may_write(virtual, self._layout, self._login), "truncate", virtual)
            if new_size > self._limit:
                raise SFTPFailure(f"file too large: limit {self._limit} bytes")
            if handle is None and self._owner.open_writes.is_open(real):
                raise SFTPFailure("this file is being uploaded by another session")
        if times:
            self._require(
                policy.may_set_times(virtual, self._layout, self._login), "set times", virtual
            )
        if new_size is not None:
            if handle is not None:
                os.ftruncate(handle.fd, new_size)
            else:
                os.truncate(real, new_size)
        if times:
            atime_ns = _ns(attrs.atime, attrs.atime_ns, st.st_atime_ns)
            mtime_ns = _ns(attrs.mtime, attrs.mtime_ns, st.st_mtime_ns)
            if handle is not None:
                os.utime(handle.fd, ns=(atime_ns, mtime_ns))
            else:
                os.utime(real, ns=(atime_ns, mtime_ns), follow_symlinks=False)

    # -- names ----------------------------------------------------------------------------

    @_guarded
    def remove(self, path: bytes) -> None:
        virtual = self._virtual(path)
        # Contract 4: delete in SEND_SMS, ARCHIVES and INVALIDS, never a folder.
        self._require(policy.may_delete(virtual, self._layout, self._login), "delete", virtual)
        real = self._real(virtual)
        if not stat.S_ISREG(self._entry_stat(real).st_mode):
            raise SFTPPermissionDenied("only files can be deleted")
        os.unlink(real)
        log.info("login=%s SFTP deleted %s", self._login, virtual)

    @_guarded
    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, "rename")

    @_guarded
    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        # OpenSSH's posix-rename overwrites on a real server; here it must not (contract 4:
        # "A rename never overwrites an existing file", ARCHITECTURE pitfall 7).
        self._rename(oldpath, newpath, "posix-rename")

    def _rename(self, oldpath: bytes, newpath: bytes, what: str) -> None:
        src_virtual, dst_virtual = self._virtual(oldpath), self._virtual(newpath)
        decision = policy.may_rename(src_virtual, dst_virtual, self._layout, self._login)
        self._require(decision, what, f"{src_virtual} -> {dst_virtual}")
        src, dst = self._real(src_virtual), self._real(dst_virtual)
        if not stat.S_ISREG(self._entry_stat(src).st_mode):
            raise SFTPPermissionDenied("only files can be renamed")
        if self._owner.open_writes.is_open(src):
            # ARCHITECTURE pitfall 2: never hand a half-written file to the processor.
            raise SFTPFailure("the file is still being uploaded; close it before renaming")
        if os.path.lexists(dst):
            raise SFTPFailure("the target exists: a rename never overwrites a file")
        os.rename(src, dst)
        log.info("login=%s SFTP %s %s -> %s", self._login, what, src_virtual, dst_virtual)
        self._notify(dst)

    @_guarded
    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        virtual = self._virtual(path)
        self._require(policy.may_mkdir(virtual, self._layout, self._login), "mkdir", virtual)
        raise SFTPOpUnsupported("folders cannot be created")

    @_guarded
    def rmdir(self, path: bytes) -> None:
        virtual = self._virtual(path)
        self._require(policy.may_rmdir(virtual, self._layout, self._login), "rmdir", virtual)
        raise SFTPOpUnsupported("folders cannot be removed")

    @_guarded
    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        virtual = self._virtual(newpath)
        self._require(policy.may_link(virtual, self._layout, self._login), "symlink", virtual)
        raise SFTPOpUnsupported("links are not supported")

    @_guarded
    def link(self, oldpath: bytes, newpath: bytes) -> None:
        # Both SSH_FXP_LINK and OpenSSH's "hardlink@openssh.com" land here.
        virtual = self._virtual(newpath)
        self._require(policy.may_link(virtual, self._layout, self._login), "link", virtual)
        raise SFTPOpUnsupported("links are not supported")


def _ns(seconds: int | None, nanos: int | None, current: int) -> int:
    if seconds is None:
        return current
    return seconds * 1_000_000_000 + (nanos or 0)
