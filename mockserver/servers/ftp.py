"""The FTP front-end (pyftpdlib): logins from the Authenticator, each confined to its tree with
the permissions of `servers.policy` (contract 4), the 8 Mo limit enforced during the transfer,
every write handle registered in `OpenWrites`, the upload-complete hook, and the `[limits]`
(connection caps, login lockout, idle and login timeouts, passive ports kept in their range).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import re
import secrets
import stat
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mockserver import __version__
from mockserver.auth import Authenticator
from mockserver.config import Config, LimitsConfig
from mockserver.limits import Guard, guard_for
from mockserver.servers import policy
from mockserver.tree import Layout, login_root, make_tree, valid_login
from mockserver.writes import OpenWrites

with warnings.catch_warnings():
    # On Python 3.11 pyftpdlib imports the stdlib asyncore/asynchat, which warn that they are
    # deprecated (3.12+ gets pyftpdlib's own copy); nothing for our users to act on.
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*asyn(core|chat)")
    from pyftpdlib.authorizers import AuthenticationFailed, AuthorizerError
    from pyftpdlib.exceptions import FilesystemError
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

log = logging.getLogger("mockserver.ftp")

OnUpload = Callable[[str, Path], None]

# The permissions pyftpdlib advertises in MLSD "perm" facts; what is really allowed is decided
# per path by `policy` (a client is refused with 550 rather than not trying).
_ADVERTISED_PERMS = "elradfwT"
_WRITE_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT,  # truncated after the checks in `open`
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "r+b": os.O_RDWR,
}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# Control characters never go into a reply line (see _Session.respond).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Loop granularity: how late a stop() or a scheduled callback may be noticed; shorter while a
# password check runs in the background (its result is picked up at the next tick).
_TICK = 0.05
_FAST_TICK = 0.002
_AUTH_WORKERS = 4


class _Background:
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


@dataclass(frozen=True, slots=True)
class _Context:
    """Everything a session needs, shared by the handler class of one server instance."""

    data_dir: Path
    layout: Layout
    max_file_bytes: int
    auth: Authenticator
    open_writes: OpenWrites
    on_upload: OnUpload
    limits: LimitsConfig
    guard: Guard
    background: _Background = field(default_factory=_Background)
    # Open sessions (loop thread only): pyftpdlib takes a session off its map while a login
    # is checked or a failed one is delayed, so `close_all` alone would not close it.
    sessions: set[Any] = field(default_factory=set)

    def root(self, login: str) -> str:
        return os.path.abspath(login_root(self.data_dir, login))


class FileTooLarge(OSError):
    """A write would take the file past `limits.max_file_bytes`."""


class _UploadFile:
    """A file being uploaded: refuses bytes past the size limit (checked on every write, so a
    REST at a huge offset cannot make a sparse file either) and stays registered in `OpenWrites`
    until closed, whatever ends the transfer.
    """

    def __init__(
        self, raw: IO[bytes], name: str, limit: int, registry: OpenWrites, fresh: bool
    ) -> None:
        self._raw = raw
        self.name = name
        # Created or truncated by this upload (STOR, STOU), not resumed or appended to: if the
        # transfer never starts, nothing of value is lost by removing it.
        self.fresh = fresh
        self._limit = limit
        self._registry = registry
        registry.opened(name)
        self._registered = True

    def write(self, data: bytes) -> int:
        if self._raw.tell() + len(data) > self._limit:
            raise FileTooLarge(errno.EFBIG, f"file larger than {self._limit} bytes")
        # Unbuffered: a full disk fails this write, never a later flush in close(); pyftpdlib
        # ignores the count, so a short write is finished here.
        view = memoryview(data)
        while view:
            written = self._raw.write(view)
            view = view[written or 0 :]
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            if self._registered:
                self._registered = False
                self._registry.closed(self.name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._raw, attr)


class _Authorizer:
    """pyftpdlib's authorizer interface, asking the Authenticator on every login (accounts change
    at run time) and the policy on every permission check (a second line behind the handler).
    """

    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        if not valid_login(username) or not self._ctx.auth.authenticate(username, password):
            address = str(getattr(handler, "remote_ip", ""))
            # Counted at once (not after the delay): parallel guessers are counted too.
            if self._ctx.guard.lockout.failed(address):
                log.warning("FTP logins from %s locked out after repeated failures", address)
            else:
                log.info("FTP login failed for %r from %s", username[:64], address)
            # An empty message lets pyftpdlib answer "Anonymous access not allowed." or
            # "Authentication failed." (530), after its failed-login delay.
            raise AuthenticationFailed("")

    def get_home_dir(self, username: str) -> str:
        try:
            # Idempotent: an account added at run time always finds its four folders.
            make_tree(self._ctx.data_dir, self._ctx.layout, username)
        except (OSError, ValueError) as exc:
            raise AuthorizerError(f"cannot open the home folder: {exc}") from None
        return self._ctx.root(username)

    def get_msg_login(self, username: str) -> str:
        return f"Welcome {username}: upload to SEND_SMS as .tmp, then rename to .csv."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        return None

    def terminate_impersonation(self, username: str) -> None:
        return None

    def get_perms(self, username: str) -> str:
        return _ADVERTISED_PERMS

    def has_user(self, username: str) -> bool:
        return self._ctx.auth.exists(username)

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        if not valid_login(username):
            return False
        root = self._ctx.root(username)
        virtual = "/" if path is None else policy.to_virtual(Path(root), Path(path))
        if virtual is None or policy.confine(Path(root), virtual) is None:
            return False
        layout = self._ctx.layout
        if perm in "elr":
            return bool(policy.may_read(virtual, layout, username))
        if perm in "waT":
            return bool(policy.may_write(virtual, layout, username))
        if perm == "d":
            return bool(policy.may_delete(virtual, layout, username))
        if perm == "f":
            return bool(policy.may_rename_from(virtual, layout, username))
        return False  # m (MKD), M (SITE CHMOD) and anything unknown


class _Filesystem(AbstractedFS):  # type: ignore[misc]
    """The login's tree as pyftpdlib sees it: virtual paths go through `policy`, symbolic links
    are neither listed nor followed, and nothing here changes the process-wide cwd (pyftpdlib's
    default `chdir` calls `os.chdir`, which would move every other thread of the mock).
    """

    @property
    def _ctx(self) -> _Context:
        ctx: _Context = self.cmd_channel.ctx
        return ctx

    def ftp2fs(self, ftppath: str) -> str:
        virtual = policy.normalise(ftppath, self.cwd)
        if virtual is None:
            # The handler answers bad paths before they get here; this is the backstop.
            raise FilesystemError("invalid path")
        return str(policy.real_path(Path(self.root), virtual))

    def fs2ftp(self, fspath: str) -> str:
        virtual = policy.to_virtual(Path(self.root), Path(fspath))
        return "/" if virtual is None else virtual

    def validpath(self, path: str) -> bool:
        virtual = policy.to_virtual(Path(self.root), Path(path))
        return virtual is not None and policy.confine(Path(self.root), virtual) is not None

    def chdir(self, path: str) -> None:
        if os.path.islink(path) or not os.path.isdir(path):
            raise OSError(errno.ENOTDIR, "Not a directory")
        self.cwd = self.fs2ftp(path)

    def open(self, filename: str, mode: str) -> Any:
        if mode != "rb" and mode not in _WRITE_FLAGS:
            raise FilesystemError(f"unsupported open mode {mode!r}")
        flags = os.O_RDONLY if mode == "rb" else _WRITE_FLAGS[mode]
        # O_NOFOLLOW: a link swapped in after the path checks is still not followed;
        # O_NONBLOCK: a FIFO planted on disk cannot freeze the (single-threaded) server.
        fd = os.open(filename, flags | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, 0o644)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FilesystemError("not a regular file")
            if mode != "rb" and st.st_nlink > 1:
                # A hard link planted on disk could point at a file outside the tree.
                raise FilesystemError("cannot write a file that has other links")
            os.set_blocking(fd, True)
            if mode == "wb":
                os.ftruncate(fd, 0)  # only now: O_TRUNC would have cut before the checks
            raw = os.fdopen(fd, mode, buffering=-1 if mode == "rb" else 0)
        except BaseException:
            os.close(fd)
            raise
        if mode == "rb":
            return raw
        return _UploadFile(
            raw, filename, self._ctx.max_file_bytes, self._ctx.open_writes, fresh=mode == "wb"
        )

    def mkstemp(
        self, suffix: str = "", prefix: str = "", dir: str | None = None, mode: str = "wb"
    ) -> Any:
        """STOU: a new unique name in `dir` (created exclusively, never following a link)."""
        base = dir if dir is not None else self.ftp2fs(self.cwd)
        for _ in range(50):
            name = os.path.join(base, f"{prefix}{secrets.token_hex(4)}{suffix}")
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC)
            except FileExistsError:
                continue
            raw = os.fdopen(fd, "wb", buffering=0)
            return _UploadFile(
                raw, name, self._ctx.max_file_bytes, self._ctx.open_writes, fresh=True
            )
        raise OSError(errno.EEXIST, "No usable unique file name found")

    def listdir(self, path: str) -> list[str]:
        # A link planted on disk is invisible: listing it would show (and MLSD would stat)
        # its target outside the tree.
        return [name for name in os.listdir(path) if not os.path.islink(os.path.join(path, name))]

    def listdirinfo(self, path: str) -> list[str]:
        return self.listdir(path)

    def remove(self, path: str) -> None:
        if self._ctx.open_writes.is_open(path):
            raise FilesystemError("the file is being uploaded by another session")
        os.remove(path)

    def rename(self, src: str, dst: str) -> None:
        # Contract 4: "A rename never overwrites an existing file."
        if os.path.lexists(dst):
            raise FilesystemError("the target name already exists; a rename never overwrites")
        os.rename(src, dst)

    def mkdir(self, path: str) -> None:
        raise FilesystemError(str(policy.may_mkdir("/", self._ctx.layout, "").reason))

    def rmdir(self, path: str) -> None:
        raise FilesystemError(str(policy.may_rmdir("/", self._ctx.layout, "").reason))

    def chmod(self, path: str, mode: int) -> None:
        raise FilesystemError(str(policy.may_chmod("/", self._ctx.layout, "").reason))


class _DataChannel(DTPHandler):  # type: ignore[misc]
    """Answers 552 (RFC 959: "exceeded storage allocation") when an upload passes the limit,
    452 ("insufficient storage space in system") when the disk is full, 426 with the reason on
    another file error; the handler's on_incomplete_file_received then removes the partial file.
    """

    def handle_error(self) -> None:
        exc = sys.exc_info()[1]
        cause = getattr(exc, "__cause__", None)
        if isinstance(exc, FileTooLarge) or isinstance(cause, FileTooLarge):
            limit = self.cmd_channel.ctx.max_file_bytes
            self._resp = (
                f"552 File exceeds the size limit of {limit} bytes; transfer aborted.",
                logging.getLogger("pyftpdlib").info,
            )
            self.close()
            return
        # pyftpdlib wraps a file error without its errno ("426 None; transfer aborted.").
        error = cause if isinstance(cause, OSError) else exc
        if isinstance(error, OSError) and error.errno is not None:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                reply = "452 Insufficient storage space; transfer aborted."
            else:
                reply = f"426 {os.strerror(error.errno)}; transfer aborted."
            name = os.path.basename(str(getattr(self.file_obj, "name", "?")))
            log.warning("FTP transfer of %s failed: %s", name, os.strerror(error.errno))
            self._resp = (reply, logging.getLogger("pyftpdlib").info)
            self.close()
            return
        super().handle_error()


class _NoPassivePort(Exception):
    """Every port of the passive range is taken."""


# Where the class lives moved between pyftpdlib versions; the handler attribute did not.
_PassiveDTP: type[Any] = FTPHandler.passive_dtp


class _PassiveListener(_PassiveDTP):  # type: ignore[misc]
    """A passive data listener that stays inside `server.passive_ports`: when the range is
    exhausted pyftpdlib falls back to a kernel-chosen port (which Docker or a firewall would
    not let through); here the client gets 425 instead and may retry."""

    def bind(self, addr: tuple[str, int]) -> None:
        if addr[1] == 0 and self.cmd_channel.passive_ports:
            self.close()
            raise _NoPassivePort
        super().bind(addr)

    def listen(self, num: int) -> None:
        ports = self.cmd_channel.passive_ports
        if ports and not ports[0] <= self.socket.getsockname()[1] <= ports[-1]:
            self.close()  # not bound in the range (a bind error skipped every port)
            raise _NoPassivePort
        super().listen(num)


# A temporary refusal (450, RFC 959 "file unavailable (e.g., file busy)"): the file is still
# being written, so renaming, replacing or deleting it must wait (ARCHITECTURE pitfall 2).
_BUSY = policy.Decision(False, "the file is still being uploaded by another session")

# Commands whose argument is a path (each one is checked by `_decide`).
_READ_CMDS = frozenset(
    {"CWD", "XCWD", "LIST", "NLST", "MLSD", "MLST", "STAT", "SIZE", "MDTM", "RETR"}
)
_CREATE_CMDS = frozenset({"STOR", "APPE", "STOU", "RNTO", "MKD", "XMKD"})
_PATH_CMDS = _READ_CMDS | _CREATE_CMDS | {"DELE", "RNFR", "RMD", "XRMD", "MFMT"}


class _Session(FTPHandler):  # type: ignore[misc]
    """One control connection. Every path argument is normalised, confined and judged by
    `policy` before pyftpdlib sees it; a bad path gets an error reply, never a dropped
    connection (ARCHITECTURE pitfall 6: pyftpdlib raises on a NUL byte in a path).
    """

    ctx: _Context  # set on the per-server subclass
    _rnfr: str | None  # pyftpdlib's pending RNFR source (a real path)
    _in_dtp_queue: Any  # pyftpdlib's upload waiting for its data connection: (file, cmd)
    _out_dtp_queue: Any  # pyftpdlib's download waiting for it: (data, producer?, file, cmd)
    _counted = False  # holds a slot of the connection limiter
    _login_timer: Any = None

    # -- connection limits and timeouts ---------------------------------------------------

    def handle(self) -> None:
        refusal = self.ctx.guard.ftp_connections.acquire(self.remote_ip)
        if refusal is not None:
            log.warning("FTP connection from %s refused: %s", self.remote_ip, refusal)
            self.respond(f"421 {refusal[:1].upper()}{refusal[1:]}; try again later.")
            self.close_when_done()
            return
        self._counted = True
        self.ctx.sessions.add(self)
        self._start_login_timer()
        super().handle()

    def _start_login_timer(self) -> None:
        self._cancel_login_timer()
        self._login_timer = self.ioloop.call_later(
            self.ctx.limits.login_timeout_seconds, self._login_expired, _errback=self.handle_error
        )

    def _cancel_login_timer(self) -> None:
        timer, self._login_timer = self._login_timer, None
        if timer is not None and not timer.cancelled:
            timer.cancel()

    def _login_expired(self) -> None:
        self._login_timer = None
        if self.authenticated or self._closed or self._closing:
            return
        log.info("FTP connection from %s closed: no login in time", self.remote_ip)
        self.respond("421 Login timed out.", logfun=logging.getLogger("pyftpdlib").info)
        self.close_when_done()

    def flush_account(self) -> None:
        # USER while logged in, REIN: logged out again, so the login clock starts again.
        super().flush_account()
        if self._counted and not self._closed:
            self._start_login_timer()

    def handle_auth_success(self, home: str, password: str, msg_login: str) -> None:
        self._cancel_login_timer()
        super().handle_auth_success(home, password, msg_login)

    def _locked_out(self) -> bool:
        remaining = self.ctx.guard.lockout.remaining(self.remote_ip)
        if not remaining:
            return False
        self.respond(
            "421 Too many failed logins from your address;"
            f" try again in {max(1, round(remaining))} s."
        )
        self.close_when_done()
        return True

    def ftp_USER(self, line: str) -> Any:
        if self._locked_out():
            return None
        return super().ftp_USER(line)

    def ftp_PASS(self, line: str) -> Any:
        if self._locked_out():
            return None
        if self.authenticated or not self.username:
            return super().ftp_PASS(line)  # pyftpdlib's 503 replies
        username = self.username
        # No command is read (and those already read wait) until the check is answered.
        self.del_channel()
        if self._held is None:
            self._held = []

        def check() -> object:
            try:
                self.authorizer.validate_authentication(username, line, self)
            except (AuthenticationFailed, AuthorizerError) as err:
                return err
            return None

        self.ctx.background.submit(check, lambda error: self._checked(username, line, error))
        return None

    def _checked(self, username: str, password: str, error: object) -> None:
        """The password check's answer, back on the loop thread."""
        if self._closed:
            return
        self.add_channel()
        if error is None:
            try:
                home = self.authorizer.get_home_dir(username)
                msg_login = self.authorizer.get_msg_login(username)
            except (AuthenticationFailed, AuthorizerError) as err:
                self.handle_auth_failed(str(err), password)
                return
            self.handle_auth_success(home, password, msg_login)
            self._release_held()
        elif isinstance(error, AuthenticationFailed | AuthorizerError):
            self.handle_auth_failed(str(error), password)
        else:
            log.error("FTP login check failed: %s", error)
            self.handle_auth_failed("", password)

    # pyftpdlib answers a failed login after `auth_failed_timeout`, but commands it has already
    # read would be answered before that 530: a pipelining client would pair replies with the
    # wrong commands (found by the fuzzer). Such lines wait for the 530, in order.
    _held: list[bytes] | None = None
    _in_buffer: list[bytes]
    _in_buffer_len: int

    def handle_auth_failed(self, msg: str, password: str) -> None:
        if self._held is None:
            self._held = []
        super().handle_auth_failed(msg, password)

    def found_terminator(self) -> None:
        if self._held is not None:
            self._held.append(b"".join(self._in_buffer))
            self._in_buffer = []
            self._in_buffer_len = 0
            return
        super().found_terminator()

    def on_login_failed(self, username: str, password: str) -> None:
        self._release_held()

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        while held and self._held is None and not (self._closed or self._closing):
            line = held.pop(0)
            self._in_buffer = [line]
            self._in_buffer_len = len(line)
            self.found_terminator()
        if self._held is not None:  # another failed login: the rest waits for its reply
            self._held[:0] = held

    def _make_epasv(self, extmode: bool = False) -> None:
        try:
            super()._make_epasv(extmode)
        except _NoPassivePort:
            self._dtp_acceptor = None
            log.warning("FTP passive port range exhausted (%s)", self.remote_ip)
            self.respond("425 No free passive port; try again later.")

    # -- transfers waiting for their data connection -------------------------------------

    def _drop_queued(self) -> None:
        """A transfer command replaces one still waiting for its data connection: close the
        waiting file (pyftpdlib would drop it unclosed, and its upload would stay registered
        as open for writing, so the file could never be renamed)."""
        upload, self._in_dtp_queue = self._in_dtp_queue, None
        if upload is not None:
            self._abandon_upload(upload[0])
        download, self._out_dtp_queue = self._out_dtp_queue, None
        if download is not None and download[2] is not None:
            download[2].close()

    def _abandon_upload(self, file: Any) -> None:
        file.close()
        if isinstance(file, _UploadFile) and file.fresh:
            # Created or emptied by a STOR whose data never came: like an aborted upload,
            # nothing is left for the processor (an empty .csv would be judged Empty_File).
            self.on_incomplete_file_received(file.name)

    def ftp_STOR(self, file: str, mode: str = "w") -> Any:
        self._drop_queued()
        return super().ftp_STOR(file, mode)

    def ftp_STOU(self, line: str) -> Any:
        self._drop_queued()
        return super().ftp_STOU(line)

    def ftp_RETR(self, file: str) -> Any:
        self._drop_queued()
        return super().ftp_RETR(file)

    def ftp_LIST(self, path: str) -> Any:
        self._drop_queued()
        return super().ftp_LIST(path)

    def ftp_NLST(self, path: str) -> Any:
        self._drop_queued()
        return super().ftp_NLST(path)

    def ftp_MLSD(self, path: str) -> Any:
        self._drop_queued()
        return super().ftp_MLSD(path)

    def close(self) -> None:
        if not self._closed:
            self._cancel_login_timer()
            upload = getattr(self, "_in_dtp_queue", None)
            if upload is not None:
                self._in_dtp_queue = None
                self._abandon_upload(upload[0])
            if self._counted:
                self._counted = False
                self.ctx.guard.ftp_connections.release(self.remote_ip)
            self.ctx.sessions.discard(self)
        super().close()

    # -- command checks --------------------------------------------------------------------

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        try:
            self._checked_command(line, cmd, arg)
        except Exception:  # the connection must survive anything a command triggers
            log.exception("FTP command failed: %s", cmd)
            self.respond("451 Requested action aborted: local error in processing.")

    def _checked_command(self, line: str, cmd: str, arg: str) -> None:
        if not self.authenticated or cmd not in self.proto_cmds:
            super().pre_process_command(line, cmd, arg)
            return
        if cmd == "SITE" and arg.split(" ")[0].upper() == "CHMOD":
            self._refuse("550", policy.may_chmod("/", self.ctx.layout, self.username).reason)
            return
        if cmd not in _PATH_CMDS or (self.proto_cmds[cmd]["arg"] is True and not arg):
            super().pre_process_command(line, cmd, arg)  # pyftpdlib answers syntax errors
            return
        if cmd == "STAT" and not arg:
            super().pre_process_command(line, cmd, arg)
            return

        prefix = ""
        text = arg
        if cmd == "MFMT":
            if " " not in arg:
                super().pre_process_command(line, cmd, arg)
                return
            prefix, text = arg.split(" ", 1)
            prefix += " "
        elif cmd in ("LIST", "NLST", "STAT"):
            # "LIST -la /SEND_SMS": drop ls-style options some clients send.
            while text.startswith("-"):
                text = text.partition(" ")[2]
        if cmd == "STOU" and not text:
            text = self.fs.cwd + "/ftpd"
        elif not text:
            text = "/" if cmd in ("CWD", "XCWD") else self.fs.cwd

        # RFC 959: RNTO consumes the RNFR before it, whether it then succeeds or is refused.
        pending: str | None = None
        if cmd == "RNTO":
            pending, self._rnfr = self._rnfr, None
        virtual = policy.normalise(text, self.fs.cwd)
        code = "553" if cmd in _CREATE_CMDS else "550"
        if virtual is None:
            self._refuse(code, "Invalid path (NUL, control character or backslash)")
            return
        root = Path(self.fs.root)
        real = policy.confine(root, virtual)
        if real is None:
            self._refuse("550", "Path not available")
            return
        decision = self._decide(cmd, virtual, real, pending)
        if not decision:
            self._refuse("450" if decision is _BUSY else code, decision.reason)
            return
        if cmd == "RNTO":
            self._rnfr = pending
        super().pre_process_command(line, cmd, prefix + virtual)

    def _decide(
        self, cmd: str, virtual: str, real: Path, pending: str | None = None
    ) -> policy.Decision:
        layout, login, writes = self.ctx.layout, self.username, self.ctx.open_writes
        if cmd in _READ_CMDS:
            return policy.may_read(virtual, layout, login)
        if cmd in ("STOR", "APPE"):
            decision = policy.may_write(virtual, layout, login)
            return _BUSY if decision and writes.is_open(real) else decision
        if cmd == "STOU":
            # The unique name is made in the argument's folder, which must be SEND_SMS.
            return policy.may_write(virtual.rsplit("/", 1)[0] + "/x", layout, login)
        if cmd == "MFMT":
            return policy.may_set_times(virtual, layout, login)
        if cmd == "DELE":
            decision = policy.may_delete(virtual, layout, login)
            return _BUSY if decision and writes.is_open(real) else decision
        if cmd in ("MKD", "XMKD"):
            return policy.may_mkdir(virtual, layout, login)
        if cmd in ("RMD", "XRMD"):
            return policy.may_rmdir(virtual, layout, login)
        if cmd == "RNFR":
            decision = policy.may_rename_from(virtual, layout, login)
            if decision and writes.is_open(real):
                # ARCHITECTURE pitfall 2: never let x.tmp become x.csv while it is written.
                return _BUSY
            if decision and real.exists() and not real.is_file():
                return policy.Decision(False, "only files can be renamed")
            return decision
        if cmd == "RNTO":
            src_real = pending
            if not src_real:
                return policy.Decision(True)  # pyftpdlib answers 503 (RNFR first)
            src = policy.to_virtual(Path(self.fs.root), Path(src_real))
            if src is None:
                return policy.Decision(False, "invalid source")
            decision = policy.may_rename(src, virtual, layout, login)
            if not decision:
                return decision
            if writes.is_open(src_real):
                return _BUSY
            if os.path.lexists(real):
                return policy.Decision(False, "the target exists; a rename never overwrites")
            return decision
        return policy.Decision(False, "not allowed")

    def respond(self, resp: str, logfun: Any = None) -> None:
        # pyftpdlib echoes the client's command in some replies ('500 Command "..." not
        # understood.'): a CR or LF in it would split the reply and desynchronise the client
        # (found by tests/integration/test_fuzz_ftp.py). One reply, one line.
        safe = _CONTROL.sub("?", resp)
        if logfun is None:
            super().respond(safe)
        else:
            super().respond(safe, logfun=logfun)

    def _refuse(self, code: str, reason: str) -> None:
        text = reason[:1].upper() + reason[1:] if reason else "Not allowed"
        self.respond(f"{code} {text}.")

    # -- hooks ----------------------------------------------------------------------------

    def _notify(self, path: str) -> None:
        try:
            self.ctx.on_upload(self.username, Path(path))
        except Exception:  # a broken hook must not take the FTP session down
            log.exception("upload hook failed for %s", path)

    def on_file_received(self, file: str) -> None:
        self._notify(file)

    def on_incomplete_file_received(self, file: str) -> None:
        # Aborted, cut or oversized: a partial file is never left for the processor.
        if self.ctx.open_writes.is_open(file):
            return
        try:
            os.remove(file)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove partial upload %s: %s", file, exc)

    def ftp_RNTO(self, path: str) -> Any:
        result = super().ftp_RNTO(path)
        if result:
            self._notify(result[1])
        return result


def _handler_class(
    config: Config, ctx: _Context, auth_failed_delay: float, banner: str
) -> type[FTPHandler]:
    """A fresh subclass per server: pyftpdlib keeps its settings in class attributes."""
    first, last = config.server.passive_ports
    limits = config.limits
    idle = limits.idle_timeout_seconds or None  # 0: never
    # The data channel's idle timeout too: a stalled transfer holds a file open for writing.
    data_channel = type("AllMySmsDataChannel", (_DataChannel,), {"timeout": idle})
    attrs: dict[str, Any] = {
        "ctx": ctx,
        "authorizer": _Authorizer(ctx),
        "abstracted_fs": _Filesystem,
        "dtp_handler": data_channel,
        "passive_dtp": _PassiveListener,
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
    return type("AllMySmsFtpHandler", (_Session,), attrs)


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
    ) -> None:
        """`auth_failed_delay` overrides `limits.login_failure_delay_seconds`; `guard` (the
        lockout and connection counters) defaults to the one shared by every server of the
        same data dir, so the SFTP server's failures count here too."""
        self._config = config
        self.guard = guard or guard_for(config.server.data_dir, config.limits)
        self._ctx = _Context(
            data_dir=config.server.data_dir,
            layout=config.server.layout,
            max_file_bytes=config.limits.max_file_bytes,
            auth=auth,
            open_writes=open_writes,
            on_upload=on_upload,
            limits=config.limits,
            guard=self.guard,
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
        pyftpdlib_logger = logging.getLogger("pyftpdlib")
        if not pyftpdlib_logger.handlers:
            # Otherwise pyftpdlib's loop configures logging to stderr by itself.
            pyftpdlib_logger.addHandler(logging.NullHandler())
        handler = _handler_class(self._config, self._ctx, self._auth_failed_delay, self._banner)
        ioloop = IOLoop()
        try:
            server = FTPServer(
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
