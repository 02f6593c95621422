"""SFTP transfer benchmark: the mock's SFTP server against bare asyncssh (the library it is built
on) and OpenSSH `sshd` (internal-sftp) on loopback, in the same run, driven by the same asyncssh
clients. Scenarios: one 8 MB upload, 1000 uploads of 2 KB over one session, 50 concurrent
clients x 20 files. Medians of >= 3 runs (9 for the 8 MB upload), interleaved; the server's
CPU time; ratios mock/asyncssh (the target: <= 1.15 in each scenario, issue 15) and mock/sshd;
every error counted. Bounded (about 2 minutes). From the repo root:

    python bench/transfer_sftp.py                  # mock, asyncssh, sshd (if installed)
    python bench/transfer_sftp.py --runs 5 --json
    python bench/transfer_sftp.py --no-reference   # mock and asyncssh only

Bare asyncssh is `asyncssh.listen` with asyncssh's own `SFTPServer` (its `chroot` on a
temporary root), an ed25519 host key and password logins like the mock's, and asyncssh's
default algorithms (neither sets any). sshd runs from a temporary sshd_config on a free port
with its own host key, key login for the current user, `ForceCommand internal-sftp -d <tmp
root>`; as root it needs /run/sshd (made if missing, as the openssh-server service does). Each
server runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

# The sibling module, also when this file is imported rather than run (`python bench/...` puts
# bench/ first on sys.path already).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import transfer_common as common

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


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
        common.empty(self.local_dir)


# -- servers ----------------------------------------------------------------------------------


def serve_mock(data_dir: Path) -> None:
    """Child process: the mock's SftpServer alone, until stdin closes."""
    config = common.mock_config(data_dir, {"server.sftp_port": 0})
    from mockserver.auth import StaticAuthenticator
    from mockserver.servers.sftp import SftpServer
    from mockserver.writes import OpenWrites

    uploads = 0

    def on_upload(login: str, path: Path) -> None:
        nonlocal uploads
        uploads += 1

    async def main() -> None:
        writes = OpenWrites()
        writes.journal(data_dir / "uploads")  # as `serve` does: a marker per open upload
        server = SftpServer(config, StaticAuthenticator(config.accounts), writes, on_upload)
        await server.start()
        print(f"READY {server.port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(main())


def start_mock(work: Path) -> tuple[subprocess.Popen[bytes], Target]:
    proc, port, send = common.spawn_mock(__file__, "--serve-mock", work, "SFTP")
    return proc, Target("mock", port, common.LOGIN, "/SEND_SMS", send, password=common.PASSWORD)


class _BareLogin(asyncssh.SSHServer):
    """Password logins for LOGIN only, compared in constant time (the mock's are too)."""

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        import hmac

        return username == common.LOGIN and hmac.compare_digest(password, common.PASSWORD)


def serve_bare(root: Path) -> None:
    """Child process: bare asyncssh (its own SFTPServer, chrooted to `root`) until stdin
    closes."""

    async def main() -> None:
        acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=_BareLogin,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=os.fsencode(root)),
        )
        print(f"READY {acceptor.get_port()}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        acceptor.close()
        await acceptor.wait_closed()

    asyncio.run(main())


def start_bare(work: Path) -> tuple[subprocess.Popen[bytes], Target]:
    root = work / "asyncssh-root"
    (root / "SEND_SMS").mkdir(parents=True)
    proc, port = common.spawn(__file__, "--serve-bare", root, "bare asyncssh")
    target = Target(
        "asyncssh", port, common.LOGIN, "/SEND_SMS", root / "SEND_SMS", password=common.PASSWORD
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
    port = common.free_port()
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
        common.wait_port(port, proc)
    except RuntimeError as exc:
        common.stop(proc)
        detail = " ".join(log.read_text(errors="replace").split())[-300:]
        raise RuntimeError(f"{exc}: {detail}") from None
    target = Target(
        "sshd", port, getpass.getuser(), f"{root}/SEND_SMS", send, client_key=client_key
    )
    return proc, target


# -- scenarios --------------------------------------------------------------------------------


async def _write(client: asyncssh.SFTPClient, path: str, data: bytes) -> None:
    async with client.open(path, "wb") as remote:
        await remote.write(data)


async def one_big(target: Target) -> common.Outcome:
    data = os.urandom(common.BIG)
    async with await target.connect() as conn, conn.start_sftp_client() as client:
        start = time.perf_counter()
        await _write(client, f"{target.remote_dir}/big.tmp", data)
        elapsed = time.perf_counter() - start
    ok = (target.local_dir / "big.tmp").stat().st_size == common.BIG
    return common.Outcome(elapsed, 1, 0 if ok else 1)


async def many_small(target: Target) -> common.Outcome:
    data = os.urandom(common.SMALL)
    errors = 0
    async with await target.connect() as conn, conn.start_sftp_client() as client:
        start = time.perf_counter()
        for i in range(common.SEQUENTIAL_FILES):
            try:
                await _write(client, f"{target.remote_dir}/s{i:04d}.tmp", data)
            except (OSError, asyncssh.Error):
                errors += 1
        elapsed = time.perf_counter() - start
    return common.Outcome(
        elapsed, common.SEQUENTIAL_FILES, errors + common.missing(target, common.SEQUENTIAL_FILES)
    )


async def concurrent(target: Target) -> common.Outcome:
    data = os.urandom(common.SMALL)

    async def one_client(c: int) -> int:
        errors = 0
        try:
            async with await target.connect() as conn, conn.start_sftp_client() as client:
                for i in range(common.FILES_PER_CLIENT):
                    try:
                        await _write(client, f"{target.remote_dir}/c{c:02d}_{i:02d}.tmp", data)
                    except (OSError, asyncssh.Error):
                        errors += 1
        except (OSError, asyncssh.Error):
            return common.FILES_PER_CLIENT
        return errors

    start = time.perf_counter()
    results = await asyncio.gather(*(one_client(c) for c in range(common.CLIENTS)))
    elapsed = time.perf_counter() - start
    total = common.CLIENTS * common.FILES_PER_CLIENT
    return common.Outcome(elapsed, total, sum(results) + common.missing(target, total))


def _timed(
    scenario: Callable[[Target], Awaitable[common.Outcome]],
) -> Callable[[Target], common.Outcome]:
    """An async scenario run to completion in its own event loop, bounded to 60 s."""

    def run(target: Target) -> common.Outcome:
        return asyncio.run(asyncio.wait_for(scenario(target), 60))

    return run


SCENARIOS = common.scenarios(_timed(one_big), _timed(many_small), _timed(concurrent))


def sftp_benchmark(
    runs: int, with_reference: bool, with_bare: bool = True, budget: float = 150.0
) -> dict[str, Any]:
    """The SFTP half: start the mock (and bare asyncssh, sshd), run every scenario, stop them.
    Same report shape as `bench/transfer.py`'s `ftp_benchmark`, so one command can run both."""
    contenders = [
        common.Contender("asyncssh", start_bare, bare=True),
        common.Contender("sshd", start_sshd, bare=False),
    ]
    chosen = [c for c in contenders if (with_bare if c.bare else with_reference)]
    return common.benchmark("sftp", start_mock, chosen, SCENARIOS, runs, budget)


def main() -> int:
    cli = common.parser(__doc__, "asyncssh", "sshd")
    cli.add_argument("--serve-mock", type=Path, help=argparse.SUPPRESS)
    cli.add_argument("--serve-bare", type=Path, help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.serve_mock:
        serve_mock(args.serve_mock)
        return 0
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    report = sftp_benchmark(args.runs, not args.no_reference, not args.no_bare)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        common.print_report(report)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
