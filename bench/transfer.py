"""Transfer benchmark: the mock's FTP server against vsftpd on loopback, in the same run, driven
by the same ftplib clients. Scenarios: one 8 MB upload, 1000 uploads of 2 KB over one session,
50 concurrent clients x 20 files of 2 KB. Medians of >= 3 runs, ratio mock/vsftpd, every error
counted. Bounded (well under 2 minutes). From the repo root:

    python bench/transfer.py                  # mock and vsftpd (if /usr/sbin/vsftpd exists)
    python bench/transfer.py --runs 5 --json
    python bench/transfer.py --no-reference   # the mock only

vsftpd (`apt-get install vsftpd`) runs from a temporary config on a free port, anonymous login
with uploads into a temporary directory owned by its `ftp` user (so it must run as root). Both
servers run in their own process; passive ports come from separate ranges. The SFTP half is
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

BIG = 8_000_000  # the manual's "8 Mo", exactly at the limit
SMALL = 2_000
SEQUENTIAL_FILES = 1000
CLIENTS = 50
FILES_PER_CLIENT = 20
VSFTPD = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
LOGIN = "bench"
PASSWORD = "bench-password"
MOCK_PASSIVE = "61000-61199"
VSFTPD_PASSIVE = (61200, 61399)
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
        for path in self.local_dir.iterdir():
            path.unlink()


# -- servers ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.recv(100)  # the 220 banner: the server really serves
                return
        except OSError:
            time.sleep(0.05)  # a foreign process: polling its port is the only signal
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def serve_mock_ftp(data_dir: Path) -> None:
    """Child process: the mock's FtpServer alone, until stdin closes."""
    sys.path.insert(0, str(REPO))
    from mockserver.auth import StaticAuthenticator
    from mockserver.config import load_config
    from mockserver.servers.ftp import FtpServer
    from mockserver.tree import make_tree
    from mockserver.writes import OpenWrites

    config = load_config(
        None,
        env={},
        overrides={
            "server.ftp_port": 0,
            "server.data_dir": str(data_dir),
            "server.passive_ports": MOCK_PASSIVE,
            "accounts": [{"login": LOGIN, "password": PASSWORD, "email": "bench@example.com"}],
        },
    )
    make_tree(data_dir, config.server.layout, LOGIN)

    def on_upload(login: str, path: Path) -> None:
        return None  # the processor only enqueues; not part of the transfer cost

    server = FtpServer(config, StaticAuthenticator(config.accounts), OpenWrites(), on_upload)
    server.start()
    print(f"READY {server.port}", flush=True)
    sys.stdin.read()
    server.stop()


def start_mock_ftp(work: Path) -> tuple[subprocess.Popen[bytes], FtpTarget]:
    data = work / "mock"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-mock-ftp", str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "READY":
        _stop(proc)
        raise RuntimeError("the mock FTP server did not start")
    target = FtpTarget(
        "mock",
        int(line[1]),
        LOGIN,
        PASSWORD,
        "/SEND_SMS",
        data / "accounts" / LOGIN / "SEND_SMS",
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
    port = _free_port()
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
        _wait_port(port, proc)
    except RuntimeError:
        _stop(proc)
        raise
    return proc, FtpTarget("vsftpd", port, "anonymous", "bench@", "/SEND_SMS", upload)


# -- scenarios --------------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    files: int
    errors: int


def _store(ftp: ftplib.FTP, path: str, data: bytes) -> None:
    ftp.storbinary(f"STOR {path}", io.BytesIO(data), blocksize=65536)


def one_big(target: FtpTarget) -> Outcome:
    data = os.urandom(BIG)
    ftp = target.connect()
    try:
        start = time.perf_counter()
        _store(ftp, f"{target.remote_dir}/big.tmp", data)
        elapsed = time.perf_counter() - start
    finally:
        ftp.quit()
    ok = (target.local_dir / "big.tmp").stat().st_size == BIG
    return Outcome(elapsed, 1, 0 if ok else 1)


def many_small(target: FtpTarget) -> Outcome:
    data = os.urandom(SMALL)
    errors = 0
    ftp = target.connect()
    try:
        start = time.perf_counter()
        for i in range(SEQUENTIAL_FILES):
            try:
                _store(ftp, f"{target.remote_dir}/s{i:04d}.tmp", data)
            except (OSError, ftplib.Error, EOFError):
                errors += 1
        elapsed = time.perf_counter() - start
    finally:
        ftp.quit()
    return Outcome(elapsed, SEQUENTIAL_FILES, errors + _missing(target, SEQUENTIAL_FILES))


def concurrent(target: FtpTarget) -> Outcome:
    data = os.urandom(SMALL)

    def one_client(c: int) -> int:
        errors = 0
        try:
            ftp = target.connect()
        except (OSError, ftplib.Error, EOFError):
            return FILES_PER_CLIENT
        try:
            for i in range(FILES_PER_CLIENT):
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
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(one_client, range(CLIENTS)))
    elapsed = time.perf_counter() - start
    total = CLIENTS * FILES_PER_CLIENT
    return Outcome(elapsed, total, sum(results) + _missing(target, total))


def _missing(target: FtpTarget, expected: int) -> int:
    return max(0, expected - sum(1 for _ in target.local_dir.iterdir()))


SCENARIOS: dict[str, Callable[[FtpTarget], Outcome]] = {
    "one 8 MB upload": one_big,
    f"{SEQUENTIAL_FILES} x 2 KB, one session": many_small,
    f"{CLIENTS} clients x {FILES_PER_CLIENT} x 2 KB": concurrent,
}


def measure(
    targets: list[FtpTarget], runs: int, deadline: float, reference: str
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for label, scenario in SCENARIOS.items():
        row: dict[str, Any] = {}
        for target in targets:
            times: list[float] = []
            errors = 0
            files = 0
            for _ in range(runs):
                if times and time.monotonic() > deadline:
                    break  # keep the whole bench bounded; report how many runs were made
                target.clean()
                outcome = scenario(target)
                times.append(outcome.seconds)
                errors += outcome.errors
                files = outcome.files
            target.clean()
            median = statistics.median(times)
            row[target.name] = {
                "median_s": round(median, 4),
                "runs": len(times),
                "errors": errors,
                "files_per_s": round(files / median, 1),
                "mb_per_s": round(files * (BIG if files == 1 else SMALL) / median / 1e6, 2),
            }
        if "mock" in row and reference in row:
            ratio = row["mock"]["median_s"] / row[reference]["median_s"]
            row[f"ratio_mock_over_{reference}"] = round(ratio, 2)
        results[label] = row
    return results


def ftp_benchmark(runs: int, with_reference: bool, budget: float = 100.0) -> dict[str, Any]:
    """The FTP half: start the mock (and vsftpd), run every scenario, stop them."""
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="allmysms-bench-ftp-") as tmp:
        work = Path(tmp)
        try:
            proc, mock = start_mock_ftp(work)
            procs.append(proc)
            targets = [mock]
            if with_reference:
                try:
                    proc, reference = start_vsftpd(work)
                    procs.append(proc)
                    targets.append(reference)
                except (RuntimeError, OSError) as exc:
                    notes.append(f"vsftpd not measured: {exc}")
            results = measure(targets, max(1, runs), started + budget, "vsftpd")
        finally:
            for proc in procs:
                _stop(proc)
    errors = sum(
        v["errors"] for row in results.values() for v in row.values() if isinstance(v, dict)
    )
    return {
        "protocol": "ftp",
        "results": results,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
        "notes": notes,
    }


def print_report(report: dict[str, Any], reference: str) -> None:
    protocol = report["protocol"].upper()
    print(f"{protocol} transfer bench ({report['seconds']} s, {report['errors']} errors)")
    for label, row in report["results"].items():
        print(f"  {label}:")
        for name in ("mock", reference):
            if name in row:
                r = row[name]
                print(
                    f"    {name:6} median {r['median_s']:.3f} s over {r['runs']} runs, "
                    f"{r['files_per_s']} files/s, {r['mb_per_s']} MB/s, {r['errors']} errors"
                )
        key = f"ratio_mock_over_{reference}"
        if key in row:
            print(f"    mock/{reference} time ratio: {row[key]}")
    for note in report["notes"]:
        print(f"  note: {note}")


def sftp_benchmark(runs: int, with_reference: bool, budget: float = 100.0) -> dict[str, Any]:
    """The SFTP half (mock vs OpenSSH sshd), kept in `bench/transfer_sftp.py`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import transfer_sftp

    report: dict[str, Any] = transfer_sftp.sftp_benchmark(runs, with_reference, budget)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--no-reference", action="store_true", help="measure the mock only (no vsftpd/sshd)"
    )
    parser.add_argument(
        "--protocol",
        choices=("ftp", "sftp", "all"),
        default="ftp",
        help="ftp (default), sftp (bench/transfer_sftp.py) or all (about 2 x 50 s)",
    )
    parser.add_argument("--serve-mock-ftp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mock_ftp:
        serve_mock_ftp(args.serve_mock_ftp)
        return 0
    reports: list[tuple[dict[str, Any], str]] = []
    if args.protocol in ("ftp", "all"):
        reports.append((ftp_benchmark(args.runs, not args.no_reference), "vsftpd"))
    if args.protocol in ("sftp", "all"):
        reports.append((sftp_benchmark(args.runs, not args.no_reference), "sshd"))
    if args.json:
        payload = [r for r, _ in reports]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    else:
        for report, reference in reports:
            print_report(report, reference)
    return 1 if any(r["errors"] for r, _ in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
