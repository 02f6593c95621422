"""`allmysms-mock send FILE`: a reference client (contract 2). Uploads as `<name>.tmp` into
SEND_SMS, renames it to its final name, and with `--wait` watches ARCHIVES/INVALIDS over the
same FTP or SFTP connection, as a customer's script would (manual 4.2 and 4.3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ftplib
import os
import posixpath
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

PREFIX = "TreatedByMSI_"
# Manual 4.3: "Dans le cas d'un fichier invalide, le nom du fichier contiendra la raison".
REASONS: dict[str, str] = {
    "Not_enough_credits": "the account is not on subscription and lacks credits",
    "Empty_File": "the file is empty or holds no valid number",
    "Incorrect_FileName": "the file name is not <campaign>_<YYYYMMDDHHMMSS>_HQ[_MULT].csv",
    "No_valid_TPOA": "a sender (column 3) breaks the sender rules",
}
POLL_SECONDS = 0.2
PROGRESS_MIN_BYTES = 1 << 20  # a bar for files of 1 MiB or more, when stderr is a terminal
EXIT_ARCHIVED, EXIT_INVALID, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3


class SendError(Exception):
    """A connection, login or transfer problem: one line for the user, exit 2."""


class Refused(Exception):
    """The server answered a command with an error (FTP 4xx/5xx, SFTP status)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "send",
        help="upload a CSV file like a customer would (.tmp, then rename) and wait for it",
        description=(
            "Upload FILE into SEND_SMS as <name>.tmp, rename it to <name>, and with --wait "
            "watch ARCHIVES and INVALIDS over the same connection until it lands. "
            "Exit 0 archived, 1 invalid, 3 timed out, 2 on usage, connection or login errors."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the CSV file to send")
    p.add_argument("--login", required=True, help="account login")
    p.add_argument("--password", required=True, help="account password")
    p.add_argument("--sftp", action="store_true", help="use SFTP instead of FTP")
    p.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=None, help="server port (default 2121 FTP, 61022 SFTP)"
    )
    p.add_argument(
        "--wait",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="wait up to SECONDS for the verdict (exit 0 archived, 1 invalid, 3 timed out)",
    )
    p.add_argument("--name", default=None, help="name to give the file in SEND_SMS")
    p.add_argument(
        "--remote-dir",
        default="/SEND_SMS",
        help="the drop folder (default /SEND_SMS; /<login>/SEND_SMS for the nested layout)",
    )
    p.add_argument(
        "--known-hosts",
        default=None,
        metavar="FILE",
        help="SFTP: verify the host key against this known_hosts file "
        "(default: accept any key and print its fingerprint)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="network timeout for connecting and each command (default 10)",
    )
    p.set_defaults(run=run)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value!r}")
    return port


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 <= seconds < 10**7:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {value!r}")
    return seconds


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
    for reason in ("", *REASONS):
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
            raise SendError(f"cannot connect to ftp://{host}:{port}: {_why(exc)}") from None
        try:
            self.ftp.login(login, password)
        except ftplib.error_perm as exc:
            self.close()
            raise SendError(f"login refused for {login!r}: {_reply(exc)}") from None
        except (OSError, EOFError, ftplib.Error) as exc:
            self.close()
            raise SendError(f"FTP login failed: {_why(exc)}") from None
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
            raise OSError(_why(exc)) from None

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
        except asyncssh.PermissionDenied:
            raise SendError(f"login refused for {login!r}: wrong login or password") from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise SendError(f"host key not trusted ({known_hosts}): {exc.reason}") from None
        except TimeoutError:
            raise SendError(f"cannot connect to sftp://{host}:{port}: timed out") from None
        except (OSError, asyncssh.Error) as exc:
            raise SendError(f"cannot connect to sftp://{host}:{port}: {_why(exc)}") from None
        key = self.conn.get_server_host_key()
        if key is not None:
            print(f"host key {key.get_fingerprint('sha256')}", file=sys.stderr)
        try:
            self.sftp = await self.conn.start_sftp_client()
        except (OSError, asyncssh.Error) as exc:
            raise SendError(f"the server refused the SFTP subsystem: {_why(exc)}") from None

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
            raise OSError(_why(exc)) from None

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


def _why(exc: BaseException) -> str:
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
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _reply(exc: ftplib.Error) -> str:
    return " ".join(str(exc).split())


# -- the command ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    prog = "allmysms-mock send"
    local: str = args.file
    if not os.path.isfile(local):
        problem = "is a directory" if os.path.isdir(local) else "no such file"
        print(f"{prog}: {local}: {problem}", file=sys.stderr)
        return EXIT_ERROR
    name: str = args.name if args.name is not None else os.path.basename(local)
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        print(f"{prog}: --name must be a plain file name, got {name!r}", file=sys.stderr)
        return EXIT_ERROR
    if name.endswith(".tmp"):
        print(
            f"{prog}: note: {name} ends in .tmp, which the platform never processes (contract 5.1)",
            file=sys.stderr,
        )
    remote_dir = "/" + args.remote_dir.strip("/")
    parent = posixpath.dirname(remote_dir)
    archives, invalids = posixpath.join(parent, "ARCHIVES"), posixpath.join(parent, "INVALIDS")
    tmp_path = posixpath.join(remote_dir, name + ".tmp")
    final_path = posixpath.join(remote_dir, name)
    port = args.port or (61022 if args.sftp else 2121)
    try:
        size = os.path.getsize(local)
    except OSError as exc:
        print(f"{prog}: {local}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR

    session: Session | None = None
    try:
        if args.sftp:
            session = SftpSession(
                args.host, port, args.login, args.password, args.timeout, args.known_hosts
            )
        else:
            session = FtpSession(args.host, port, args.login, args.password, args.timeout)
        before: dict[str, set[str]] = {}
        if args.wait is not None:
            # What is there already does not count: an earlier run may have left the same name.
            before = {
                "ARCHIVES": set(_listdir(session, archives)),
                "INVALIDS": set(_listdir(session, invalids)),
            }
        progress = Progress(size)
        try:
            _step(f"upload to {tmp_path}", session.upload, local, tmp_path, progress)
        finally:
            progress.close()
        # Manual 4.2: "Une fois l'upload terminé, remplacer l'extension .tmp par .csv afin que
        # le traitement démarre."
        _step(f"rename {tmp_path} to {final_path}", session.rename, tmp_path, final_path)
        print(f"sent {local} ({size:,} bytes) as {final_path}")
        if args.wait is None:
            return EXIT_ARCHIVED
        return _wait(session, name, archives, invalids, before, args.wait, remote_dir)
    except SendError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        if session is not None:
            session.close()


def _step(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a transfer step; a refusal or a lost connection becomes one SendError line."""
    try:
        return fn(*args)
    except ftplib.Error as exc:
        raise SendError(f"{what}: refused: {_reply(exc)}") from None
    except Refused as exc:
        raise SendError(f"{what}: refused: {exc}") from None
    except (OSError, EOFError) as exc:
        raise SendError(f"{what}: {_why(exc)}") from None


def _listdir(session: Session, path: str) -> list[str]:
    result: list[str] = _step(f"list {path}", session.listdir, path)
    return result


def _wait(
    session: Session,
    name: str,
    archives: str,
    invalids: str,
    before: dict[str, set[str]],
    seconds: float,
    remote_dir: str,
) -> int:
    deadline = time.monotonic() + seconds
    while True:
        listings = {
            "ARCHIVES": _listdir(session, archives),
            "INVALIDS": _listdir(session, invalids),
        }
        landing = find_landing(listings, name, before)
        if landing is not None:
            where = posixpath.join(posixpath.dirname(archives), landing.folder, landing.name)
            if landing.reason is None:
                print(f"archived: {where}")
                return EXIT_ARCHIVED
            why = REASONS.get(landing.reason, "")
            print(f"invalid: {where} ({landing.reason}{': ' + why if why else ''})")
            return EXIT_INVALID
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(POLL_SECONDS, remaining))  # a client polling a remote folder
    processing = posixpath.join(posixpath.dirname(archives), "PROCESSING")
    where = "not found"
    if name in _listdir(session, processing):
        where = f"still in {processing}"
    elif name in _listdir(session, remote_dir):
        where = f"still in {remote_dir}"
    print(
        f"allmysms-mock send: timed out after {seconds:g} s waiting for {name} ({where})",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT
