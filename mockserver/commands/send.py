"""`allmysms-mock send FILE`: the command line of the reference client (`mockserver.client`,
contract 2): upload as `<name>.tmp`, rename, and with `--wait` report where the file landed.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import sys

from mockserver.client import (
    REASONS,
    Progress,
    SendError,
    Session,
    connect,
    listdir,
    step,
    wait_for_landing,
)
from mockserver.core.models import Reason

EXIT_ARCHIVED, EXIT_INVALID, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3


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
        session = connect(
            args.host,
            port,
            args.login,
            args.password,
            args.timeout,
            sftp=args.sftp,
            known_hosts=args.known_hosts,
        )
        before: dict[str, set[str]] = {}
        if args.wait is not None:
            # What is there already does not count: an earlier run may have left the same name.
            before = {
                "ARCHIVES": set(listdir(session, archives)),
                "INVALIDS": set(listdir(session, invalids)),
            }
        progress = Progress(size)
        try:
            step(f"upload to {tmp_path}", session.upload, local, tmp_path, progress)
        finally:
            progress.close()
        # Manual 4.2: "Une fois l'upload terminé, remplacer l'extension .tmp par .csv afin que
        # le traitement démarre."
        step(f"rename {tmp_path} to {final_path}", session.rename, tmp_path, final_path)
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


def _wait(
    session: Session,
    name: str,
    archives: str,
    invalids: str,
    before: dict[str, set[str]],
    seconds: float,
    remote_dir: str,
) -> int:
    landing = wait_for_landing(session, name, archives, invalids, before, seconds)
    if landing is not None:
        where = posixpath.join(posixpath.dirname(archives), landing.folder, landing.name)
        if landing.reason is None:
            print(f"archived: {where}")
            return EXIT_ARCHIVED
        why = REASONS.get(Reason(landing.reason), "")
        print(f"invalid: {where} ({landing.reason}{': ' + why if why else ''})")
        return EXIT_INVALID
    processing = posixpath.join(posixpath.dirname(archives), "PROCESSING")
    where = "not found"
    if name in listdir(session, processing):
        where = f"still in {processing}"
    elif name in listdir(session, remote_dir):
        where = f"still in {remote_dir}"
    print(
        f"allmysms-mock send: timed out after {seconds:g} s waiting for {name} ({where})",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT
