"""Soak: `allmysms-mock serve` in a child process under rounds of mixed FTP + SFTP bursts for a
given time. Every round must be fully processed with exact credits; at the end the server's open
descriptors, threads and RSS must be back near their level after the first (warm-up) round.
Run from the repo root:

    python bench/soak.py --minutes 10          # the soak
    python bench/soak.py --minutes 0.5         # quick mode
    python bench/soak.py --minutes 2 --clients 16 --files 25 --json

Exit 0 when every check passed, 1 otherwise (each failed check is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import ftplib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncssh

REPO = Path(__file__).resolve().parents[1]
ACCOUNTS = (("soak1", "pw-soak1"), ("soak2", "pw-soak2"))
CREDITS = 10**12
ROUND_TIMEOUT = 120.0
START_TIMEOUT = 30.0
# Allowed drift between the warm-up round and the end.
FD_SLACK = 4
# Thread pools start their threads lazily up to a bound (FTP password checks: 4, the asyncio
# default executor: min(32, CPUs + 4)): some growth after the warm-up is expected, unbounded
# growth is not.
THREAD_SLACK = 8
RSS_SLACK_KIB = 32 * 1024
RSS_SLACK_RATIO = 0.25


@dataclass
class Sample:
    elapsed: float
    fds: int  # every open descriptor of the server
    sqlite_fds: int  # of which SQLite files (one connection a thread that used the store)
    threads: int
    rss_mib: float


def sample(pid: int, started: float) -> Sample:
    fds = sqlite = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        fds += 1
        sqlite += ".sqlite3" in target
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kib = int(fields["VmRSS"].split()[0])
    threads = int(fields["Threads"].strip())
    return Sample(round(time.monotonic() - started, 1), fds, sqlite, threads, rss_kib / 1024)


def csv_for(tag: str, index: int) -> tuple[str, bytes, int]:
    count = 1 + index % 3
    rows = b"".join(
        f'"07{index % 10000:04d}{n:04d}";"Soak {tag} {index} STOP au 36180"\n'.encode()
        for n in range(count)
    )
    return f"{tag}x{index}_20300101120000_HQ.csv", rows, count


def ftp_client(port: int, login: str, password: str, tag: str, files: int) -> int:
    sms = 0
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=30)
    try:
        ftp.login(login, password)
        for index in range(files):
            name, body, count = csv_for(tag, index)
            ftp.storbinary(f"STOR SEND_SMS/{name[:-4]}.tmp", io.BytesIO(body))
            ftp.rename(f"SEND_SMS/{name[:-4]}.tmp", f"SEND_SMS/{name}")
            sms += count
        ftp.quit()
    finally:
        ftp.close()
    return sms


async def sftp_client(port: int, login: str, password: str, tag: str, files: int) -> int:
    sms = 0
    async with (
        asyncssh.connect(
            "127.0.0.1",
            port,
            username=login,
            password=password,
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            config=None,
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        for index in range(files):
            name, body, count = csv_for(tag, index)
            tmp = f"/SEND_SMS/{name[:-4]}.tmp"
            async with sftp.open(tmp, "wb") as f:
                await f.write(body)
            await sftp.posix_rename(tmp, f"/SEND_SMS/{name}")
            sms += count
    return sms


def sftp_clients(port: int, jobs: list[tuple[str, str, str]], files: int) -> int:
    async def main() -> int:
        tasks = [sftp_client(port, login, pw, tag, files) for login, pw, tag in jobs]
        return sum(await asyncio.wait_for(asyncio.gather(*tasks), ROUND_TIMEOUT))

    return asyncio.run(main()) if jobs else 0


class Soak:
    def __init__(self, minutes: float, clients: int, files: int) -> None:
        self.minutes = minutes
        self.clients = clients
        self.files = files
        self.tmp = tempfile.TemporaryDirectory(prefix="allmysms-soak-")
        self.data = Path(self.tmp.name) / "data"
        self.proc: subprocess.Popen[str] | None = None
        self.ports: dict[str, int] = {}
        self.failures: list[str] = []
        self.samples: list[Sample] = []
        self.rounds: list[dict[str, Any]] = []
        self.expected_credits = {login: CREDITS for login, _ in ACCOUNTS}
        self.uploaded = 0

    # -- the server ------------------------------------------------------------------------

    def start(self) -> None:
        config = Path(self.tmp.name) / "soak.toml"
        accounts = "".join(
            f'[[accounts]]\nlogin = "{login}"\npassword = "{pw}"\ncredits = {CREDITS}\n'
            f'email = "{login}@example.com"\n\n'
            for login, pw in ACCOUNTS
        )
        config.write_text(f'[server]\nhost = "127.0.0.1"\n\n{accounts}')
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLMYSMS_MOCK_")}
        env["PYTHONPATH"] = str(REPO)
        command = [
            sys.executable, "-m", "mockserver", "serve", "--config", str(config),
            "--data-dir", str(self.data), "--ftp-port", "0", "--sftp-port", "0",
            "--http-port", "0",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self.proc.stdout is not None
        ready: list[str] = []

        def read() -> None:
            assert self.proc is not None
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("READY"):
                    ready.append(line)
                    break

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not ready:
            raise RuntimeError("the server did not print READY in time")
        for part in ready[0].split()[1:]:
            key, _, value = part.partition("=")
            self.ports[key] = int(value)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            code = -9
        if code != 0:
            self.failures.append(f"serve exited with {code} on SIGTERM (expected 0)")
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def api(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.ports['http']}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:  # nosec B310: loopback
            return json.load(response)

    def recorded(self, login: str) -> int:
        """Files with a verdict, page by page (`GET /api/files` answers `limit` at most)."""
        count = 0
        for page in range(100_000):
            files = self.api(f"/api/files?login={login}&limit=1000&offset={page * 1000}")["files"]
            count += len(files)
            if len(files) < 1000:
                break
        return count

    def credits(self) -> dict[str, int]:
        return {login: self.api(f"/api/accounts/{login}")["credits"] for login, _ in ACCOUNTS}

    # -- rounds ----------------------------------------------------------------------------

    def run_round(self, number: int) -> None:
        started = time.monotonic()
        ftp_jobs, sftp_jobs = [], []
        for client in range(self.clients):
            login, pw = ACCOUNTS[client % len(ACCOUNTS)]
            tag = f"R{number}{'F' if client % 2 == 0 else 'S'}{client}"
            (ftp_jobs if client % 2 == 0 else sftp_jobs).append((login, pw, tag))
        sent: dict[str, int] = {login: 0 for login, _ in ACCOUNTS}
        with ThreadPoolExecutor(len(ftp_jobs) + 1) as pool:
            futures = {
                pool.submit(ftp_client, self.ports["ftp"], login, pw, tag, self.files): login
                for login, pw, tag in ftp_jobs
            }
            by_login: dict[str, list[tuple[str, str, str]]] = {}
            for job in sftp_jobs:
                by_login.setdefault(job[0], []).append(job)
            sftp_futures = {
                pool.submit(sftp_clients, self.ports["sftp"], jobs, self.files): login
                for login, jobs in by_login.items()
            }
            for future, login in {**futures, **sftp_futures}.items():
                sent[login] += future.result(ROUND_TIMEOUT)
        files = self.clients * self.files
        self.uploaded += files
        for login, sms in sent.items():
            self.expected_credits[login] -= sms
        # Contract 5.4.4 "1 credit an SMS": the round is done when the credits are exact.
        deadline = time.monotonic() + ROUND_TIMEOUT
        credits = self.credits()
        while credits != self.expected_credits and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the HTTP API for a condition, bounded by the deadline
            credits = self.credits()
        if credits != self.expected_credits:
            self.failures.append(
                f"round {number}: credits {credits} != expected {self.expected_credits}"
            )
        elapsed = time.monotonic() - started
        self.rounds.append(
            {"round": number, "files": files, "sms": sum(sent.values()),
             "seconds": round(elapsed, 2), "files_per_s": round(files / elapsed, 1)}
        )  # fmt: skip

    def settle(self, started: float) -> Sample:
        """The server once every client is gone: wait (bounded) for descriptors to settle."""
        assert self.proc is not None
        last = sample(self.proc.pid, started)
        for _ in range(50):
            time.sleep(0.1)  # sampling a settling process, bounded
            now = sample(self.proc.pid, started)
            if now.fds == last.fds and now.threads == last.threads:
                return now
            last = now
        return last

    def run(self) -> int:
        started = time.monotonic()
        self.start()
        assert self.proc is not None
        try:
            self.samples.append(self.settle(started))  # idle, before any client
            self.run_round(1)
            baseline = self.settle(started)
            self.samples.append(baseline)
            number = 1
            budget = self.minutes * 60
            while time.monotonic() - started < budget and number < 100_000:
                number += 1
                self.run_round(number)
                if number % 5 == 0:
                    self.samples.append(sample(self.proc.pid, started))
            final = self.settle(started)
            self.samples.append(final)
            self.check_end(baseline, final)
        finally:
            self.stop()
            self.tmp.cleanup()
        return 0 if not self.failures else 1

    def check_end(self, baseline: Sample, final: Sample) -> None:
        total = sum(self.recorded(login) for login, _ in ACCOUNTS)
        if total != self.uploaded:
            self.failures.append(f"{total} files recorded, {self.uploaded} uploaded")
        if final.fds - final.sqlite_fds > baseline.fds - baseline.sqlite_fds + FD_SLACK:
            self.failures.append(f"descriptors grew: {baseline} -> {final}")
        if final.sqlite_fds > 3 * final.threads:
            self.failures.append(f"more SQLite files than 3 a thread: {final}")
        if final.threads > baseline.threads + THREAD_SLACK:
            self.failures.append(f"threads grew: {baseline.threads} -> {final.threads}")
        allowed = max(RSS_SLACK_KIB / 1024, baseline.rss_mib * RSS_SLACK_RATIO)
        if final.rss_mib > baseline.rss_mib + allowed:
            self.failures.append(
                f"RSS grew: {baseline.rss_mib:.1f} -> {final.rss_mib:.1f} MiB"
                f" (allowed +{allowed:.0f} MiB)"
            )

    def report(self) -> dict[str, Any]:
        seconds = sum(r["seconds"] for r in self.rounds)
        return {
            "minutes": self.minutes,
            "clients": self.clients,
            "files_per_client": self.files,
            "rounds": len(self.rounds),
            "files": self.uploaded,
            "sms": sum(r["sms"] for r in self.rounds),
            "files_per_s": round(self.uploaded / seconds, 1) if seconds else 0,
            "slowest_round_s": max((r["seconds"] for r in self.rounds), default=0),
            "samples": [asdict(s) for s in self.samples],
            "failures": self.failures,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="clients a round, half SFTP")
    parser.add_argument("--files", type=int, default=25, help="files a client a round")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if args.minutes < 0 or args.clients < 1 or args.files < 1:
        parser.error("--minutes >= 0, --clients >= 1, --files >= 1")
    soak = Soak(args.minutes, args.clients, args.files)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM too stops the child server (run() cleans up in `finally`).
    signal.signal(signal.SIGTERM, interrupted)
    try:
        code = soak.run()
    except KeyboardInterrupt:
        print("soak interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, no traceback (brief)
        print(f"soak failed: {exc}", file=sys.stderr)
        return 1
    report = soak.report()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"soak {args.minutes:g} min: {report['rounds']} rounds, {report['files']} files,"
            f" {report['sms']} SMS, {report['files_per_s']} files/s"
            f" (slowest round {report['slowest_round_s']} s)"
        )
        for s in soak.samples:
            print(
                f"  t={s.elapsed:>6.1f}s fds={s.fds} (sqlite {s.sqlite_fds})"
                f" threads={s.threads} rss={s.rss_mib:.1f} MiB"
            )
        for failure in soak.failures:
            print(f"FAIL: {failure}")
        print("OK" if code == 0 else "FAILED")
    return code


if __name__ == "__main__":
    sys.exit(main())
