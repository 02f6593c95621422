"""Transfer benchmark: the mock's FTP server against bare pyftpdlib (the library it is built on)
and vsftpd on loopback, in the same run, driven by the same ftplib clients. Scenarios: one 8 MB
upload, 1000 uploads of 2 KB over one session, 50 concurrent clients x 20 files of 2 KB.
Medians of >= 3 runs (9 for the 8 MB upload), interleaved; the server's CPU time; ratios
mock/pyftpdlib (the target: <= 1.15 in each scenario, issue 15) and mock/vsftpd; every error
counted. Bounded (about 2 minutes). From the repo root:

    python bench/transfer.py                  # mock, pyftpdlib, vsftpd (if installed)
    python bench/transfer.py --runs 5 --json
    python bench/transfer.py --no-reference   # mock and pyftpdlib only

Bare pyftpdlib is `FTPServer` with pyftpdlib's own `FTPHandler`, `DummyAuthorizer` and
`AbstractedFS`: one user, full permissions on a temporary root, the same passive setup as the
mock (a port range) and its logging at WARNING like the mock's. vsftpd (`apt-get install
vsftpd`) runs from a temporary config on a free port, anonymous login with uploads into a
temporary directory owned by its `ftp` user (so it must run as root). Each server runs in its
own process; passive ports come from separate ranges. The SFTP half is
`bench/transfer_sftp.py` (same scenarios, same report shape); one function per protocol here
(`ftp_benchmark`, `sftp_benchmark`) so both live behind one command:

    python bench/transfer.py --protocol sftp  # the mock's SFTP against OpenSSH sshd
    python bench/transfer.py --protocol all   # both halves, one after the other
"""

from __future__ import annotations

import argparse
import ftplib
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The sibling module, also when this file is imported rather than run (`python bench/...` puts
# bench/ first on sys.path already).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import transfer_common as common

VSFTPD = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
MOCK_PASSIVE = "61000-61199"
VSFTPD_PASSIVE = (61200, 61399)
BARE_PASSIVE = (61400, 61599)
TIMEOUT = 30.0


@dataclass
class FtpTarget:
    """One FTP server under test: how to log in and where uploads land, remotely and on disk
    (emptied between runs)."""

    name: str
    port: int
    username: str
    password: str
    remote_dir: str
    local_dir: Path

    def connect(self) -> ftplib.FTP:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", self.port, timeout=TIMEOUT)
        ftp.login(self.username, self.password)
        ftp.voidcmd("TYPE I")
        return ftp

    def clean(self) -> None:
        common.empty(self.local_dir)


# -- servers ----------------------------------------------------------------------------------


def serve_mock_ftp(data_dir: Path) -> None:
    """Child process: the mock's FtpServer alone, until stdin closes."""
    config = common.mock_config(
        data_dir, {"server.ftp_port": 0, "server.passive_ports": MOCK_PASSIVE}
    )
    from mockserver.auth import StaticAuthenticator
    from mockserver.servers.ftp import FtpServer
    from mockserver.writes import OpenWrites

    def on_upload(login: str, path: Path) -> None:
        return None  # the processor only enqueues; not part of the transfer cost

    writes = OpenWrites()
    writes.journal(data_dir / "uploads")  # as `serve` does: a marker per open upload
    server = FtpServer(config, StaticAuthenticator(config.accounts), writes, on_upload)
    server.start()
    print(f"READY {server.port}", flush=True)
    sys.stdin.read()
    server.stop()


def start_mock_ftp(work: Path) -> tuple[subprocess.Popen[bytes], FtpTarget]:
    proc, port, send = common.spawn_mock(__file__, "--serve-mock-ftp", work, "FTP")
    return proc, FtpTarget("mock", port, common.LOGIN, common.PASSWORD, "/SEND_SMS", send)


def serve_bare_ftp(root: Path) -> None:
    """Child process: bare pyftpdlib (its own handler, authorizer and filesystem) on `root`,
    until stdin closes."""
    import logging
    import threading

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    lib = logging.getLogger("pyftpdlib")
    lib.addHandler(logging.StreamHandler())
    lib.setLevel(logging.WARNING)  # as the mock's route_pyftpdlib_log
    authorizer = DummyAuthorizer()
    authorizer.add_user(common.LOGIN, common.PASSWORD, str(root), perm="elradfmwMT")
    attrs = {"authorizer": authorizer, "passive_ports": list(range(*BARE_PASSIVE))}
    handler = type("BareHandler", (FTPHandler,), attrs)
    server = FTPServer(("127.0.0.1", 0), handler)
    print(f"READY {server.address[1]}", flush=True)
    # The loop in a daemon thread, as the mock's; this process ends when stdin closes.
    loop = threading.Thread(target=server.serve_forever, kwargs={"handle_exit": False})
    loop.daemon = True
    loop.start()
    sys.stdin.read()


def start_bare_ftp(work: Path) -> tuple[subprocess.Popen[bytes], FtpTarget]:
    root = work / "pyftpdlib-root"
    (root / "SEND_SMS").mkdir(parents=True)
    proc, port = common.spawn(__file__, "--serve-bare-ftp", root, "bare pyftpdlib")
    target = FtpTarget(
        "pyftpdlib", port, common.LOGIN, common.PASSWORD, "/SEND_SMS", root / "SEND_SMS"
    )
    return proc, target


def start_vsftpd(work: Path) -> tuple[subprocess.Popen[bytes], FtpTarget]:
    if not os.path.exists(VSFTPD):
        raise RuntimeError(f"{VSFTPD} not found (apt-get install vsftpd)")
    if os.geteuid() != 0:
        raise RuntimeError("vsftpd needs root here (it switches to its ftp user)")
    try:
        ftp_user = pwd.getpwnam("ftp")
    except KeyError:
        raise RuntimeError("no 'ftp' user (installed with the vsftpd package)") from None
    os.makedirs("/var/run/vsftpd/empty", mode=0o755, exist_ok=True)  # secure_chroot_dir
    # vsftpd refuses an anonymous root writable by the ftp user: uploads go one level down.
    root = work / "vsftpd-root"
    upload = root / "SEND_SMS"
    upload.mkdir(parents=True)
    os.chmod(work, 0o755)
    os.chmod(root, 0o755)
    os.chown(upload, ftp_user.pw_uid, ftp_user.pw_gid)
    port = common.free_port()
    config = work / "vsftpd.conf"
    config.write_text(
        "\n".join(
            [
                "listen=YES",
                "listen_ipv6=NO",
                "listen_address=127.0.0.1",
                f"listen_port={port}",
                "background=NO",
                "anonymous_enable=YES",
                "no_anon_password=YES",
                "local_enable=NO",
                "write_enable=YES",
                "anon_upload_enable=YES",
                "anon_mkdir_write_enable=NO",
                "anon_other_write_enable=YES",
                "anon_umask=022",
                f"anon_root={root}",
                "pasv_enable=YES",
                f"pasv_min_port={VSFTPD_PASSIVE[0]}",
                f"pasv_max_port={VSFTPD_PASSIVE[1]}",
                "connect_from_port_20=NO",
                "seccomp_sandbox=NO",  # containers often forbid what the sandbox needs
                "isolate=NO",
                "isolate_network=NO",
                "xferlog_enable=NO",
                "dirmessage_enable=NO",
                "max_clients=500",
                "max_per_ip=500",
                "secure_chroot_dir=/var/run/vsftpd/empty",
                "",
            ]
        )
    )
    os.chmod(config, 0o600)
    proc = subprocess.Popen([VSFTPD, str(config)], stdin=subprocess.DEVNULL)
    try:
        common.wait_port(port, proc, banner=True)  # the 220 banner: the server really serves
    except RuntimeError:
        common.stop(proc)
        raise
    return proc, FtpTarget("vsftpd", port, "anonymous", "bench@", "/SEND_SMS", upload)


# -- scenarios --------------------------------------------------------------------------------


def _store(ftp: ftplib.FTP, path: str, data: bytes) -> None:
    ftp.storbinary(f"STOR {path}", io.BytesIO(data), blocksize=65536)


def one_big(target: FtpTarget) -> common.Outcome:
    data = os.urandom(common.BIG)
    ftp = target.connect()
    try:
        start = time.perf_counter()
        _store(ftp, f"{target.remote_dir}/big.tmp", data)
        elapsed = time.perf_counter() - start
    finally:
        ftp.quit()
    ok = (target.local_dir / "big.tmp").stat().st_size == common.BIG
    return common.Outcome(elapsed, 1, 0 if ok else 1)


def many_small(target: FtpTarget) -> common.Outcome:
    data = os.urandom(common.SMALL)
    errors = 0
    ftp = target.connect()
    try:
        start = time.perf_counter()
        for i in range(common.SEQUENTIAL_FILES):
            try:
                _store(ftp, f"{target.remote_dir}/s{i:04d}.tmp", data)
            except (OSError, ftplib.Error, EOFError):
                errors += 1
        elapsed = time.perf_counter() - start
    finally:
        ftp.quit()
    return common.Outcome(
        elapsed, common.SEQUENTIAL_FILES, errors + common.missing(target, common.SEQUENTIAL_FILES)
    )


def concurrent(target: FtpTarget) -> common.Outcome:
    data = os.urandom(common.SMALL)

    def one_client(c: int) -> int:
        errors = 0
        try:
            ftp = target.connect()
        except (OSError, ftplib.Error, EOFError):
            return common.FILES_PER_CLIENT
        try:
            for i in range(common.FILES_PER_CLIENT):
                try:
                    _store(ftp, f"{target.remote_dir}/c{c:02d}_{i:02d}.tmp", data)
                except (OSError, ftplib.Error, EOFError):
                    errors += 1
        finally:
            try:
                ftp.quit()
            except (OSError, ftplib.Error, EOFError):
                ftp.close()
        return errors

    start = time.perf_counter()
    with ThreadPoolExecutor(common.CLIENTS) as pool:
        results = list(pool.map(one_client, range(common.CLIENTS)))
    elapsed = time.perf_counter() - start
    total = common.CLIENTS * common.FILES_PER_CLIENT
    return common.Outcome(elapsed, total, sum(results) + common.missing(target, total))


SCENARIOS = common.scenarios(one_big, many_small, concurrent)


def ftp_benchmark(
    runs: int, with_reference: bool, with_bare: bool = True, budget: float = 150.0
) -> dict[str, Any]:
    """The FTP half: start the mock (and bare pyftpdlib, vsftpd), run every scenario, stop
    them."""
    contenders = [
        common.Contender("pyftpdlib", start_bare_ftp, bare=True),
        common.Contender("vsftpd", start_vsftpd, bare=False),
    ]
    chosen = [c for c in contenders if (with_bare if c.bare else with_reference)]
    return common.benchmark("ftp", start_mock_ftp, chosen, SCENARIOS, runs, budget)


def sftp_benchmark(
    runs: int, with_reference: bool, with_bare: bool = True, budget: float = 150.0
) -> dict[str, Any]:
    """The SFTP half (mock vs bare asyncssh and OpenSSH sshd), in `bench/transfer_sftp.py`."""
    import transfer_sftp

    report: dict[str, Any] = transfer_sftp.sftp_benchmark(runs, with_reference, with_bare, budget)
    return report


def main() -> int:
    cli = common.parser(__doc__, "pyftpdlib/asyncssh", "vsftpd/sshd")
    cli.add_argument(
        "--protocol",
        choices=("ftp", "sftp", "all"),
        default="ftp",
        help="ftp (default), sftp (bench/transfer_sftp.py) or all (about 2 x 2 min)",
    )
    cli.add_argument("--serve-mock-ftp", type=Path, help=argparse.SUPPRESS)
    cli.add_argument("--serve-bare-ftp", type=Path, help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.serve_mock_ftp:
        serve_mock_ftp(args.serve_mock_ftp)
        return 0
    if args.serve_bare_ftp:
        serve_bare_ftp(args.serve_bare_ftp)
        return 0
    reports: list[dict[str, Any]] = []
    if args.protocol in ("ftp", "all"):
        reports.append(ftp_benchmark(args.runs, not args.no_reference, not args.no_bare))
    if args.protocol in ("sftp", "all"):
        reports.append(sftp_benchmark(args.runs, not args.no_reference, not args.no_bare))
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        for report in reports:
            common.print_report(report)
    return 1 if any(r["errors"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
