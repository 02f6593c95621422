"""SFTP transfer benchmark: the mock's SFTP server against OpenSSH `sshd` (internal-sftp) on
loopback, in the same run, driven by the same asyncssh clients. Scenarios: one 8 MB upload,
1000 uploads of 2 KB over one session, 50 concurrent clients x 20 files. Medians of >= 3 runs,
ratio mock/sshd, every error counted. Bounded (well under 2 minutes). From the repo root:

    python bench/transfer_sftp.py                  # mock and sshd (if /usr/sbin/sshd exists)
    python bench/transfer_sftp.py --runs 5 --json
    python bench/transfer_sftp.py --no-reference   # the mock only

sshd runs from a temporary sshd_config on a free port with its own host key, key login for the
current user, `ForceCommand internal-sftp -d <tmp root>`; as root it needs /run/sshd (made if
missing, as the openssh-server service does). Both servers run in their own process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

REPO = Path(__file__).resolve().parents[1]

BIG = 8_000_000  # the manual's "8 Mo", exactly at the limit
SMALL = 2_000
SEQUENTIAL_FILES = 1000
CLIENTS = 50
FILES_PER_CLIENT = 20
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
LOGIN = "bench"
PASSWORD = "bench-password"


@dataclass
class Target:
    """One SFTP server under test: how to log in and where its SEND_SMS is, remotely and on
    disk (emptied between runs)."""

    name: str
    port: int
    username: str
    remote_dir: str
    local_dir: Path
    password: str | None = None
    client_key: asyncssh.SSHKey | None = None

    def connect(self) -> Awaitable[asyncssh.SSHClientConnection]:
        return asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=self.username,
            password=self.password,
            client_keys=[self.client_key] if self.client_key else None,
            known_hosts=None,
            agent_path=None,
            config=None,
        )

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
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # a foreign process: polling its port is the only signal
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """The mock stops cleanly when its stdin closes; anything else gets SIGTERM, then SIGKILL."""
    if proc.stdin is not None:
        proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def serve_mock(data_dir: Path) -> None:
    """Child process: the mock's SftpServer alone, until stdin closes."""
    sys.path.insert(0, str(REPO))
    from mockserver.auth import StaticAuthenticator
    from mockserver.config import load_config
    from mockserver.servers.sftp import SftpServer
    from mockserver.tree import make_tree
    from mockserver.writes import OpenWrites

    config = load_config(
        None,
        env={},
        overrides={
            "server.sftp_port": 0,
            "server.data_dir": str(data_dir),
            "accounts": [{"login": LOGIN, "password": PASSWORD, "email": "bench@example.com"}],
        },
    )
    make_tree(data_dir, config.server.layout, LOGIN)
    uploads = 0

    def on_upload(login: str, path: Path) -> None:
        nonlocal uploads
        uploads += 1

    async def main() -> None:
        server = SftpServer(config, StaticAuthenticator(config.accounts), OpenWrites(), on_upload)
        await server.start()
        print(f"READY {server.port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(main())


def start_mock(work: Path) -> tuple[subprocess.Popen[bytes], Target]:
    data = work / "mock"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-mock", str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "READY":
        _stop(proc)
        raise RuntimeError("the mock SFTP server did not start")
    port = int(line[1])
    target = Target(
        "mock",
        port,
        LOGIN,
        "/SEND_SMS",
        data / "accounts" / LOGIN / "SEND_SMS",
        password=PASSWORD,
    )
    return proc, target


def start_sshd(work: Path) -> tuple[subprocess.Popen[bytes], Target]:
    if not os.path.exists(SSHD):
        raise RuntimeError(f"{SSHD} not found (apt-get install openssh-server)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
    root = work / "sshd-root"
    send = root / "SEND_SMS"
    send.mkdir(parents=True)
    host_key = work / "sshd_host_ed25519_key"
    fd = os.open(host_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = work / "authorized_keys"
    authorized.write_bytes(client_key.export_public_key())
    port = _free_port()
    config = work / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                "PidFile none",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "MaxStartups 200",
                "MaxSessions 10",
                "LogLevel ERROR",
                "Subsystem sftp internal-sftp",
                f"ForceCommand internal-sftp -d {root}",
                "",
            ]
        )
    )
    log = work / "sshd.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stderr=err
        )
    try:
        _wait_port(port, proc)
    except RuntimeError as exc:
        _stop(proc)
        detail = " ".join(log.read_text(errors="replace").split())[-300:]
        raise RuntimeError(f"{exc}: {detail}") from None
    target = Target(
        "sshd", port, getpass.getuser(), f"{root}/SEND_SMS", send, client_key=client_key
    )
    return proc, target


# -- scenarios --------------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    files: int
    errors: int


async def _write(client: asyncssh.SFTPClient, path: str, data: bytes) -> None:
    async with client.open(path, "wb") as remote:
        await remote.write(data)


async def one_big(target: Target) -> Outcome:
    data = os.urandom(BIG)
    async with await target.connect() as conn, conn.start_sftp_client() as client:
        start = time.perf_counter()
        await _write(client, f"{target.remote_dir}/big.tmp", data)
        elapsed = time.perf_counter() - start
    ok = (target.local_dir / "big.tmp").stat().st_size == BIG
    return Outcome(elapsed, 1, 0 if ok else 1)


async def many_small(target: Target) -> Outcome:
    data = os.urandom(SMALL)
    errors = 0
    async with await target.connect() as conn, conn.start_sftp_client() as client:
        start = time.perf_counter()
        for i in range(SEQUENTIAL_FILES):
            try:
                await _write(client, f"{target.remote_dir}/s{i:04d}.tmp", data)
            except (OSError, asyncssh.Error):
                errors += 1
        elapsed = time.perf_counter() - start
    return Outcome(elapsed, SEQUENTIAL_FILES, errors + _missing(target, SEQUENTIAL_FILES))


async def concurrent(target: Target) -> Outcome:
    data = os.urandom(SMALL)

    async def one_client(c: int) -> int:
        errors = 0
        try:
            async with await target.connect() as conn, conn.start_sftp_client() as client:
                for i in range(FILES_PER_CLIENT):
                    try:
                        await _write(client, f"{target.remote_dir}/c{c:02d}_{i:02d}.tmp", data)
                    except (OSError, asyncssh.Error):
                        errors += 1
        except (OSError, asyncssh.Error):
            return FILES_PER_CLIENT
        return errors

    start = time.perf_counter()
    results = await asyncio.gather(*(one_client(c) for c in range(CLIENTS)))
    elapsed = time.perf_counter() - start
    total = CLIENTS * FILES_PER_CLIENT
    return Outcome(elapsed, total, sum(results) + _missing(target, total))


def _missing(target: Target, expected: int) -> int:
    return max(0, expected - sum(1 for _ in target.local_dir.iterdir()))


SCENARIOS: dict[str, Callable[[Target], Awaitable[Outcome]]] = {
    "one 8 MB upload": one_big,
    f"{SEQUENTIAL_FILES} x 2 KB, one session": many_small,
    f"{CLIENTS} clients x {FILES_PER_CLIENT} x 2 KB": concurrent,
}


def measure(targets: list[Target], runs: int, deadline: float) -> dict[str, dict[str, Any]]:
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
                outcome = asyncio.run(asyncio.wait_for(scenario(target), 60))
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
        if "mock" in row and "sshd" in row:
            row["ratio_mock_over_sshd"] = round(
                row["mock"]["median_s"] / row["sshd"]["median_s"], 2
            )
        results[label] = row
    return results


def sftp_benchmark(runs: int, with_reference: bool, budget: float = 100.0) -> dict[str, Any]:
    """The SFTP half: start the mock (and sshd), run every scenario, stop them. Same report
    shape as `bench/transfer.py`'s `ftp_benchmark`, so one command can run both."""
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="allmysms-bench-sftp-") as tmp:
        work = Path(tmp)
        try:
            proc, mock = start_mock(work)
            procs.append(proc)
            targets = [mock]
            if with_reference:
                try:
                    proc, sshd = start_sshd(work)
                    procs.append(proc)
                    targets.append(sshd)
                except (RuntimeError, OSError) as exc:
                    notes.append(f"sshd not measured: {exc}")
            results = measure(targets, max(1, runs), started + budget)
        finally:
            for proc in procs:
                _stop(proc)
                if proc.stdout is not None:
                    proc.stdout.close()
    errors = sum(
        v["errors"] for row in results.values() for v in row.values() if isinstance(v, dict)
    )
    return {
        "protocol": "sftp",
        "results": results,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
        "notes": notes,
    }


def print_report(report: dict[str, Any], reference: str = "sshd") -> None:
    print(f"SFTP transfer bench ({report['seconds']} s, {report['errors']} errors)")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--no-reference", action="store_true", help="measure the mock only (no sshd)"
    )
    parser.add_argument("--serve-mock", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mock:
        serve_mock(args.serve_mock)
        return 0
    report = sftp_benchmark(args.runs, not args.no_reference)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
