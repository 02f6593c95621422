"""The FTP control connection (`Session`): every path argument normalised, confined and judged
by `policy` before pyftpdlib sees it, one reply line per command, the connection limits, login
lockout and timeouts, and the upload hooks.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from mockserver.core.faults import FaultRule
from mockserver.health import DATA_DIR
from mockserver.servers import dropbox, policy
from mockserver.servers.ftp import decisions, nat
from mockserver.servers.ftp import faults as ftp_faults
from mockserver.servers.ftp.compat import AuthenticationFailed, AuthorizerError, HandlerBase
from mockserver.servers.ftp.context import Context
from mockserver.servers.ftp.fs import UploadFile

log = logging.getLogger("mockserver.ftp")

# Control characters never go into a reply line (see Session.respond).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Commands whose argument is a path (each one checked by `decisions.decide`); log words.
_PATH_CMDS, _CREATE_CMDS, _WHAT = decisions.PATH_CMDS, decisions.CREATE_CMDS, decisions.WHAT


class Session(HandlerBase):
    """One control connection. Every path argument is normalised, confined and judged by
    `policy` before pyftpdlib sees it; a bad path gets an error reply, never a dropped
    connection (pyftpdlib itself raises on a NUL byte in a path; docs/spec.md 4.4).
    """

    ctx: Context  # set on the per-server subclass
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
        log.debug("FTP connection from %s", self.peer)
        if self.masquerade_address and nat.on_link(self.remote_ip, nat.read_routes()):
            # A client on the server's own network (another container on it): its PASV
            # replies name the address it connected to, not the one for clients outside.
            self.masquerade_address = None
        self.ctx.sessions.add(self)
        self._start_login_timer()
        super().handle()

    @property
    def peer(self) -> str:
        return f"{self.remote_ip}:{self.remote_port}"

    def _start_login_timer(self) -> None:
        self._cancel_login_timer()
        self._login_timer = self.call_later_guarded(
            self.ctx.limits.login_timeout_seconds, self._login_expired
        )

    def _cancel_login_timer(self) -> None:
        timer, self._login_timer = self._login_timer, None
        if timer is not None and not timer.cancelled:
            timer.cancel()

    def _login_expired(self) -> None:
        self._login_timer = None
        if self.authenticated or self.is_closed or self.is_closing:
            return
        log.info("FTP connection from %s closed: no login in time", self.remote_ip)
        self.respond("421 Login timed out.", logfun=logging.getLogger("pyftpdlib").info)
        self.close_when_done()

    def flush_account(self) -> None:
        # USER while logged in, REIN: logged out again, so the login clock starts again.
        super().flush_account()
        if self._counted and not self.is_closed:
            self._start_login_timer()

    def handle_auth_success(self, home: str, password: str, msg_login: str) -> None:
        self._cancel_login_timer()
        super().handle_auth_success(home, password, msg_login)

    def on_login(self, username: str) -> None:
        log.info("login=%s FTP login from %s", username, self.peer)
        self.ctx.announce.login(username, self.peer)

    def _locked_out(self, username: str) -> bool:
        lock = self.ctx.guard.lockout.refusal(self.remote_ip, username)
        if lock is None:
            return False
        log.info(
            "FTP login from %s refused: %s locked out for %d s",
            self.peer,
            lock.scope,
            round(lock.seconds),
        )
        self.ctx.announce.login_failed(username, self.peer, "locked_out")
        self.respond(f"421 {lock.reason[:1].upper()}{lock.reason[1:]}.")
        self.close_when_done()
        return True

    def ftp_USER(self, line: str) -> Any:
        if self._locked_out(line):
            return None
        return super().ftp_USER(line)

    def ftp_PASS(self, line: str) -> Any:
        if self._locked_out(self.username or ""):
            return None
        if self.authenticated or not self.username:
            return super().ftp_PASS(line)  # pyftpdlib's 503 replies
        username = self.username
        self.pause_commands()  # until the check is answered

        def check() -> object:
            try:
                self.authorizer.validate_authentication(username, line, self)
            except (AuthenticationFailed, AuthorizerError) as err:
                return err
            return None

        then = partial(self._checked, username, line)  # after a login fault, if any
        self.ctx.background.submit(check, partial(ftp_faults.login_checked, self, username, then))
        return None

    def _checked(self, username: str, password: str, error: object) -> None:
        """The password check's answer, back on the loop thread."""
        if self.is_closed:
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

    def handle_auth_failed(self, msg: str, password: str) -> None:
        if self._held is None:
            self._held = []
        super().handle_auth_failed(msg, password)

    def found_terminator(self) -> None:
        if self._held is not None:
            self._held.append(self.take_line())
            return
        super().found_terminator()

    def on_login_failed(self, username: str, password: str) -> None:
        self._release_held()

    def pause_commands(self) -> None:
        """Read no further command, and keep those already read, until `resume_commands`."""
        self.del_channel()
        if self._held is None:
            self._held = []

    def resume_commands(self, first: Callable[[], None]) -> None:
        self.add_channel()
        first()
        self._release_held()

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        while held and self._held is None and not (self.is_closed or self.is_closing):
            self.run_line(held.pop(0))
        if self._held is not None:  # another failed login: the rest waits for its reply
            self._held[:0] = held

    def passive_range_exhausted(self) -> None:
        log.warning("FTP passive port range exhausted (%s)", self.remote_ip)
        self.respond("425 No free passive port; try again later.")

    # -- transfers waiting for their data connection -------------------------------------

    def _drop_queued(self) -> None:
        """A transfer command replaces one still waiting for its data connection: close the
        waiting file (pyftpdlib would drop it unclosed, and its upload would stay registered
        as open for writing, so the file could never be renamed)."""
        upload = self.take_waiting_upload()
        if upload is not None:
            self._abandon_upload(upload[0])
        download = self.take_waiting_download()
        if download is not None and download[2] is not None:
            download[2].close()

    def _abandon_upload(self, file: Any) -> None:
        file.close()
        if isinstance(file, UploadFile) and file.fresh:
            # Created or emptied by a STOR whose data never came: like an aborted upload,
            # nothing is left for the processor (an empty .csv would be judged Empty_File).
            self.on_incomplete_file_received(file.name)

    def close(self) -> None:
        if not self.is_closed:
            if self.authenticated:
                log.info("login=%s FTP disconnected from %s", self.username, self.peer)
            else:
                log.debug("FTP connection from %s closed before login", self.peer)
            self._cancel_login_timer()
            upload = self.take_waiting_upload()
            if upload is not None:
                self._abandon_upload(upload[0])
            if self._counted:
                self._counted = False
                self.ctx.guard.ftp_connections.release(self.remote_ip)
            self.ctx.sessions.discard(self)
        super().close()

    # -- command checks --------------------------------------------------------------------

    # Set by the filesystem when a file turned out busy (claimed by an upload of either
    # protocol) inside pyftpdlib's command: its 550 reply goes out as 450 (see `respond`).
    busy_refusal = False

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        self.busy_refusal = False
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
            reason = policy.may_chmod("/", self.ctx.layout, self.username).reason
            raw = arg.partition(" ")[2].partition(" ")[2]
            self._refuse("550", reason, "chmod", policy.normalise(raw, self.fs.cwd) or ascii(raw))
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
            pending = self.take_rename_source()
        virtual = policy.normalise(text, self.fs.cwd)
        code = "553" if cmd in _CREATE_CMDS else "550"
        what = _WHAT.get(cmd, "list")
        if virtual is None:
            reason = "Invalid path (NUL, control character or backslash)"
            self._refuse(code, reason, what, ascii(text))
            return
        root = Path(self.fs.root)
        real = policy.confine(root, virtual)
        if real is None:
            self._refuse("550", "Path not available", what, virtual)
            return
        if what in ("upload", "rename") and self.ctx.health.problem(DATA_DIR) is not None:
            # Issue 16: the data dir is gone; whatever lands now would be lost at restart.
            self._refuse("451", "platform storage unavailable", what, virtual)
            return
        go = partial(self._go, line, cmd, prefix, virtual, real, pending, code, what)
        name = (pending and self.virtual_of(pending)) if cmd == "RNTO" else virtual
        # contract 9.2; a command a `delay` holds runs later: its path is confined again then
        if not ftp_faults.command_intercepted(self, cmd, name, partial(go, later=True)):
            go(later=False)

    def _go(
        self,
        line: str,
        cmd: str,
        prefix: str,
        virtual: str,
        real: Path,
        pending: str | None,
        code: str,
        what: str,
        *,
        later: bool,
    ) -> None:
        """The command, its path judged by `policy` (`later`: after a fault's delay; the disk
        may have changed, so the path is confined again)."""
        ctx = self.ctx
        if later:
            again = policy.confine(Path(self.fs.root), virtual)
            if again is None:
                return self._refuse("550", "Path not available", what, virtual)
            real = again
        decision = decisions.decide(
            cmd,
            virtual,
            real,
            pending,
            Path(self.fs.root),
            ctx.layout,
            self.username,
            ctx.open_writes,
        )
        if not decision:
            target = f"{self.virtual_of(pending)} -> {virtual}" if cmd == "RNTO" else virtual
            busy = decision is decisions.BUSY
            if what == "upload":
                self.ctx.announce.upload_refused(
                    self.username, virtual, "busy" if busy else "permission"
                )
            self._refuse("450" if busy else code, decision.reason, what, target)
            return
        if cmd == "RNTO":
            self.put_rename_source(pending)
        # pyftpdlib checks this path again (validpath, has_perm): confined just above, it is
        # not walked a second and a third time (`Confined`; any other path still is).
        with ctx.confined.vouching(str(real), virtual, self.username):
            super().pre_process_command(line, cmd, prefix + virtual)

    def respond(self, resp: str, logfun: Any = None) -> None:
        # pyftpdlib echoes the client's command in some replies ('500 Command "..." not
        # understood.'): a CR or LF in it would split the reply and desynchronise the client
        # (found by tests/integration/test_fuzz_ftp.py). One reply, one line.
        safe = _CONTROL.sub("?", resp)
        if self.busy_refusal and safe.startswith("550 "):
            # RFC 959 450 "file unavailable (e.g., file busy)": the client may retry.
            self.busy_refusal = False
            safe = "450 " + safe[4:]
        if logfun is None:
            super().respond(safe)
        else:
            super().respond(safe, logfun=logfun)

    def _refuse(self, code: str, reason: str, what: str, target: str) -> None:
        log.info("login=%s FTP refused %s %s: %s", self.username, what, target, reason)
        text = reason[:1].upper() + reason[1:] if reason else "Not allowed"
        self.respond(f"{code} {text}.")

    # -- hooks ----------------------------------------------------------------------------

    def virtual_of(self, real: str | None) -> str:
        """The login's view of a real path (for the log: the session's fs may be gone)."""
        if not real:
            return "?"
        virtual = policy.to_virtual(self.ctx.root(self.username), real)
        return virtual or os.path.basename(real)

    def _notify(self, path: str) -> None:
        dropbox.notify_upload(self.ctx.on_upload, self.username, Path(path), log)

    # Why the current upload failed ("too large", "failed"), set by its data channel.
    upload_failure: str | None = None
    # A `truncate` fault for the next file opened for upload (servers.ftp.faults).
    upload_cut: FaultRule | None = None

    def on_file_received(self, file: str) -> None:
        try:
            size = os.stat(file).st_size
        except OSError:
            return  # deleted by another session meanwhile
        virtual = self.virtual_of(file)
        log.info("login=%s FTP upload complete %s (%d bytes)", self.username, virtual, size)
        self.ctx.announce.upload_closed(self.username, virtual, size)
        self._notify(file)

    def on_incomplete_file_received(self, file: str) -> None:
        # Aborted, cut or oversized: a partial file is never left for the processor.
        why, self.upload_failure = self.upload_failure or "interrupted", None
        try:
            dropbox.remove_partial(file, self.ctx.open_writes)
        except OSError as exc:
            log.warning("cannot remove partial upload %s: %s", file, exc)
            return
        if not os.path.lexists(file):  # else open for writing again by another session
            virtual = self.virtual_of(file)
            log.info("login=%s FTP upload %s %s; partial file removed", self.username, virtual, why)
        self.ctx.announce.upload_refused(self.username, self.virtual_of(file), why)

    def ftp_DELE(self, path: str) -> Any:
        result = super().ftp_DELE(path)
        if result:
            virtual = self.virtual_of(result)
            log.info("login=%s FTP deleted %s", self.username, virtual)
            self.ctx.announce.deleted(self.username, virtual)
        return result

    def renamed(self, src_real: str, dst_real: str) -> None:
        """The file system's rename is done (called under the open-writes lock, see
        `dropbox.rename_no_replace`): logged and announced before any pickup of the new name."""
        src, dst = self.virtual_of(src_real), self.virtual_of(dst_real)
        log.info("login=%s FTP %s %s -> %s", self.username, "rename", src, dst)
        self.ctx.announce.renamed(self.username, src, dst)

    def ftp_RNTO(self, path: str) -> Any:
        result = super().ftp_RNTO(path)
        if result:
            self._notify(result[1])
        return result


def _dropping_queued(name: str) -> Callable[..., Any]:
    """`name` (a transfer command) of pyftpdlib, after `Session._drop_queued`."""
    command = getattr(HandlerBase, name)

    def transfer(self: Session, *args: Any, **kwargs: Any) -> Any:
        self._drop_queued()
        return command(self, *args, **kwargs)

    transfer.__name__ = name
    return transfer


for _name in ("ftp_STOR", "ftp_STOU", "ftp_RETR", "ftp_LIST", "ftp_NLST", "ftp_MLSD"):
    setattr(Session, _name, _dropping_queued(_name))
