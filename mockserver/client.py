"""The reference FTP/SFTP client behind `allmysms-mock send`: a session per protocol, upload as
`<name>.tmp` then rename, and finding where a processed file landed (manual 4.2 and 4.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import posixpath
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from mockserver.core.models import PREFIX, Reason
from mockserver.core.text import one_line

if TYPE_CHECKING:
    import asyncssh

# Manual 4.3: "Dans le cas d'un fichier invalide, le nom du fichier contiendra la raison".
REASONS: dict[Reason, str] = {
    Reason.NOT_ENOUGH_CREDITS: "the account is not on subscription and lacks credits",
    Reason.EMPTY_FILE: "the file is empty or holds no valid number",
    Reason.INCORRECT_FILENAME: "the file name is not <campaign>_<YYYYMMDDHHMMSS>_HQ[_MULT].csv",
    Reason.NO_VALID_TPOA: "a sender (column 3) breaks the sender rules",
}
POLL_SECONDS = 0.2
PROGRESS_MIN_BYTES = 1 << 20  # a bar for files of 1 MiB or more, when stderr is a terminal


class SendError(Exception):
    """A connection, login or transfer problem: one line for the user, exit 2."""


class Refused(Exception):
    """The server answered a command with an error (FTP 4xx/5xx, SFTP status)."""


# -- where the file landed ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Landing:
    folder: str  # ARCHIVES or INVALIDS
    name: str  # its name there
    reason: str | None  # the reason read from an invalid file's name


def landed_as(entry: str, name: str) -> str | None:
    """The reason ('' when archived-style) if `entry` is what the platform names `name` after
    processing, else None. Contract 5.3: `TreatedByMSI_<name>` or
    `TreatedByMSI_<Reason>_<name>`, with a `-2`, `-3`, … suffix before the extension."""
    for reason in ("", *(r.value for r in REASONS)):
        base = PREFIX + (f"{reason}_" if reason else "") + name
        if entry == base:
            return reason
        stem, ext = posixpath.splitext(base)
        if re.fullmatch(re.escape(stem) + r"-[1-9][0-9]*" + re.escape(ext), entry):
            return reason
    return None


def find_landing(
    listings: Mapping[str, Iterable[str]], name: str, before: Mapping[str, set[str]]
) -> Landing | None:
    """The new entry (not in `before`) of ARCHIVES or INVALIDS that is `name` processed."""
    for folder in ("ARCHIVES", "INVALIDS"):
        for entry in sorted(listings.get(folder, ())):
            if entry in before.get(folder, set()):
                continue
            reason = landed_as(entry, name)
            if reason is None:
                continue
            if folder == "INVALIDS":
                return Landing(folder, entry, reason or None)
            return Landing(folder, entry, None)
    return None


# -- progress -----------------------------------------------------------------------------------


class Progress:
    """A one-line bar on stderr for big uploads to a terminal; silent otherwise."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.enabled = total >= PROGRESS_MIN_BYTES and _isatty(self.stream)
        self._shown = -1

    def add(self, n: int) -> None:
        self.set(self.done + n)

    def set(self, done: int) -> None:
        self.done = done
        if not self.enabled or self.total <= 0:
            return
        percent = min(100, self.done * 100 // self.total)
        if percent == self._shown:
            return
        self._shown = percent
        filled = percent * 30 // 100
        self.stream.write(
            f"\r[{'#' * filled}{' ' * (30 - filled)}] {percent:3d}% "
            f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the two transports -----------------------------------------------------------------------


class Session(Protocol):
    def upload(self, local: str, remote: str, progress: Progress) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def listdir(self, path: str) -> list[str]: ...
    def close(self) -> None: ...


class FtpSession:
    """ftplib in passive mode (the platform's FTP, manual 4.1)."""

    def __init__(self, host: str, port: int, login: str, password: str, timeout: float) -> None:
        self.ftp = ftplib.FTP()
        try:
            self.ftp.connect(host, port, timeout=timeout)
        except (OSError, EOFError, ftplib.Error) as exc:
            self.ftp.close()
            raise SendError(f"cannot connect to ftp://{host}:{port}: {why(exc)}") from None
        try:
            self.ftp.login(login, password)
        except (ftplib.error_perm, ftplib.error_temp) as exc:
            # 530 (wrong login or password) or 421 (e.g. locked out): the server's own words.
            self.close()
            raise SendError(f"login refused for {login!r}: {reply(exc)}") from None
        except (OSError, EOFError, ftplib.Error) as exc:
            self.close()
            raise SendError(f"FTP login failed: {why(exc)}") from None
        self.ftp.set_pasv(True)

    def upload(self, local: str, remote: str, progress: Progress) -> None:
        with open(local, "rb") as f:
            self.ftp.storbinary(f"STOR {remote}", f, blocksize=65536, callback=_count(progress))

    def rename(self, src: str, dst: str) -> None:
        self.ftp.rename(src, dst)

    def listdir(self, path: str) -> list[str]:
        try:
            return [posixpath.basename(n) for n in self.ftp.nlst(path)]
        except ftplib.error_perm as exc:
            # Some servers answer an empty listing with 550 "No files found".
            if "no files" in str(exc).lower():
                return []
            raise

    def close(self) -> None:
        try:
            self.ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            pass
        finally:
            self.ftp.close()


def _count(progress: Progress) -> Callable[[bytes], None]:
    def callback(block: bytes) -> None:
        progress.add(len(block))

    return callback


class SftpSession:
    """asyncssh's client on a private event loop, driven synchronously."""

    def __init__(
        self,
        host: str,
        port: int,
        login: str,
        password: str,
        timeout: float,
        known_hosts: str | None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.timeout = timeout
        self.conn: Any = None
        self.sftp: Any = None
        try:
            self._run(self._connect(host, port, login, password, known_hosts))
        except BaseException:
            self.close()
            raise

    def _run(self, coro: Any) -> Any:
        import asyncssh

        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, self.timeout * 6))
        except asyncssh.SFTPError as exc:
            raise Refused(exc.reason) from None
        except asyncssh.Error as exc:
            raise OSError(why(exc)) from None

    async def _connect(
        self, host: str, port: int, login: str, password: str, known_hosts: str | None
    ) -> None:
        import asyncssh

        try:
            self.conn = await asyncio.wait_for(
                asyncssh.connect(
                    host,
                    port,
                    username=login,
                    password=password,
                    # A local mock makes its own key: accept it (and show its fingerprint)
                    # unless a known_hosts file is given.
                    known_hosts=known_hosts,
                    # Password only: no keys or agent (each refused key counts as a failed try).
                    client_keys=None,
                    agent_path=None,
                    preferred_auth="password",
                    config=None,
                ),
                self.timeout,
            )
        except asyncssh.PermissionDenied as exc:
            raise SendError(f"login refused for {login!r}: {_ssh_refusal(exc)}") from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise SendError(f"host key not trusted ({known_hosts}): {exc.reason}") from None
        except TimeoutError:
            raise SendError(f"cannot connect to sftp://{host}:{port}: timed out") from None
        except (OSError, asyncssh.Error) as exc:
            raise SendError(f"cannot connect to sftp://{host}:{port}: {why(exc)}") from None
        key = self.conn.get_server_host_key()
        if key is not None:
            print(f"host key {key.get_fingerprint('sha256')}", file=sys.stderr)
        try:
            self.sftp = await self.conn.start_sftp_client()
        except (OSError, asyncssh.Error) as exc:
            raise SendError(f"the server refused the SFTP subsystem: {why(exc)}") from None

    def upload(self, local: str, remote: str, progress: Progress) -> None:
        def handler(_src: bytes, _dst: bytes, done: int, _total: int) -> None:
            progress.set(done)

        # No overall timeout on the transfer itself: an 8 MB file on a slow link is fine.
        import asyncssh

        try:
            self.loop.run_until_complete(self.sftp.put(local, remote, progress_handler=handler))
        except asyncssh.SFTPError as exc:
            raise Refused(exc.reason) from None
        except asyncssh.Error as exc:
            raise OSError(why(exc)) from None

    def rename(self, src: str, dst: str) -> None:
        self._run(self.sftp.rename(src, dst))

    def listdir(self, path: str) -> list[str]:
        names = self._run(self.sftp.listdir(path))
        return [str(n) for n in names if n not in (".", "..")]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.sftp is not None:
                self.sftp.exit()
                self._run(self.sftp.wait_closed())
        with contextlib.suppress(Exception):
            if self.conn is not None:
                self.conn.close()
                self._run(self.conn.wait_closed())
        self.sftp = self.conn = None
        if not self.loop.is_closed():
            with contextlib.suppress(Exception):
                self._run(self.loop.shutdown_asyncgens())
                self._run(self.loop.shutdown_default_executor())
            self.loop.close()


def why(exc: BaseException) -> str:
    """What went wrong with the connection, in words a user can act on."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, EOFError):
        return "the server closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return one_line(str(exc)) or type(exc).__name__


def _ssh_refusal(exc: asyncssh.PermissionDenied) -> str:
    """Why an SSH login was refused: the server's disconnect reason when it gave one (the
    mock's lockout says when to try again), else the usual cause. asyncssh words its own
    verdict, when the server merely rejects the password, "Permission denied for user ..."."""
    reason = one_line(exc.reason or "")
    if not reason or reason.startswith("Permission denied for user "):
        return "wrong login or password"
    return reason


def reply(exc: ftplib.Error) -> str:
    """An FTP server's refusal, on one line."""
    return one_line(str(exc))


# -- a send -----------------------------------------------------------------------------------


def connect(
    host: str,
    port: int,
    login: str,
    password: str,
    timeout: float,
    *,
    sftp: bool = False,
    known_hosts: str | None = None,
) -> Session:
    """A logged-in session; SendError (one line) when the connection or the login fails."""
    if sftp:
        return SftpSession(host, port, login, password, timeout, known_hosts)
    return FtpSession(host, port, login, password, timeout)


def step(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a transfer step; a refusal or a lost connection becomes one SendError line."""
    try:
        return fn(*args)
    except ftplib.Error as exc:
        raise SendError(f"{what}: refused: {reply(exc)}") from None
    except Refused as exc:
        raise SendError(f"{what}: refused: {exc}") from None
    except (OSError, EOFError) as exc:
        raise SendError(f"{what}: {why(exc)}") from None


def listdir(session: Session, path: str) -> list[str]:
    result: list[str] = step(f"list {path}", session.listdir, path)
    return result


def wait_for_landing(
    session: Session,
    name: str,
    archives: str,
    invalids: str,
    before: dict[str, set[str]],
    seconds: float,
) -> Landing | None:
    """Poll ARCHIVES and INVALIDS, as a client would a remote folder, until `name` lands there
    (not counting the entries in `before`) or `seconds` pass (then None)."""
    deadline = time.monotonic() + seconds
    while True:
        listings = {
            "ARCHIVES": listdir(session, archives),
            "INVALIDS": listdir(session, invalids),
        }
        landing = find_landing(listings, name, before)
        if landing is not None:
            return landing
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(POLL_SECONDS, remaining))
