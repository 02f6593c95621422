"""A bounded mixed FTP + SFTP burst against one MockServer: every file processed once, credits
exact, and the server's open descriptors back to where they were once the clients are gone.
The long version is `bench/soak.py`."""

from __future__ import annotations

import asyncio
import ftplib
import io
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncssh
import pytest

from mockserver.app import MockServer
from tests.support.waiting import wait_until

FTP_CLIENTS = 8
SFTP_CLIENTS = 8
FILES_PER_CLIENT = 25
CREDITS = 1_000_000


def open_fds() -> tuple[int, int]:
    """(descriptors, of which SQLite files). The store keeps one SQLite connection per thread
    that used it (bounded by the thread pools), so those are counted apart."""
    total = sqlite = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        total += 1
        sqlite += ".sqlite3" in target
    return total, sqlite


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def csv_for(client: str, index: int) -> tuple[str, bytes, int]:
    """A file name, its content and its SMS count (1 to 3 distinct numbers)."""
    count = 1 + (index % 3)
    rows = b"".join(
        f'"06{index:04d}{n:04d}";"Charge {client} {index} STOP au 36180"\n'.encode()
        for n in range(count)
    )
    return f"{client}x{index}_20300101120000_HQ.csv", rows, count


def ftp_client(port: int, login: str, password: str, client: str) -> int:
    sms = 0
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=30)
    try:
        ftp.login(login, password)
        for index in range(FILES_PER_CLIENT):
            name, body, count = csv_for(client, index)
            tmp = name[:-4] + ".tmp"
            ftp.storbinary(f"STOR SEND_SMS/{tmp}", io.BytesIO(body))
            ftp.rename(f"SEND_SMS/{tmp}", f"SEND_SMS/{name}")
            sms += count
        ftp.quit()
    finally:
        ftp.close()
    return sms


async def sftp_client(port: int, login: str, password: str, client: str) -> int:
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
        for index in range(FILES_PER_CLIENT):
            name, body, count = csv_for(client, index)
            tmp = f"/SEND_SMS/{name[:-4]}.tmp"
            async with sftp.open(tmp, "wb") as f:
                await f.write(body)
            await sftp.posix_rename(tmp, f"/SEND_SMS/{name}")
            sms += count
    return sms


def sftp_clients(port: int, accounts: list[tuple[str, str]]) -> int:
    async def main() -> int:
        tasks = [
            sftp_client(port, *accounts[i % len(accounts)], f"S{i}") for i in range(SFTP_CLIENTS)
        ]
        return sum(await asyncio.wait_for(asyncio.gather(*tasks), 60))

    return asyncio.run(main())


@pytest.mark.slow
def test_mixed_ftp_and_sftp_burst(tmp_path: Path) -> None:
    """16 clients (8 FTP, 8 SFTP) x 25 files each, over two accounts, at once: every file is
    processed exactly once (contract 5.2), credits drop by exactly the files' cost (contract
    5.4.4: the SMS's prices, 15 credits each here), and descriptors return to their level
    before the burst."""
    with MockServer(data_dir=tmp_path / "data") as srv:
        srv.set_credits("demo", CREDITS)
        srv.add_account("load", "pw-load", credits=CREDITS)
        accounts = [("demo", "demo"), ("load", "pw-load")]
        fds_before, rss_before = open_fds(), rss_kib()
        started = time.monotonic()
        with ThreadPoolExecutor(FTP_CLIENTS + 1) as pool:
            sftp = pool.submit(sftp_clients, srv.sftp_port, accounts)
            ftp = [
                pool.submit(ftp_client, srv.ftp_port, *accounts[i % 2], f"F{i}")
                for i in range(FTP_CLIENTS)
            ]
            sent_sms = sftp.result(90) + sum(f.result(90) for f in ftp)
        uploaded = time.monotonic() - started
        total = (FTP_CLIENTS + SFTP_CLIENTS) * FILES_PER_CLIENT
        wait_until(lambda: len(srv.files()) >= total, timeout=60, interval=0.1, what="verdicts")
        assert srv.processor.wait_idle(30)
        elapsed = time.monotonic() - started
        files = srv.files()
        assert len(files) == total
        assert len({(f["login"], f["original_name"]) for f in files}) == total
        assert all(f["status"] == "archived" for f in files)
        assert sum(f["sms_count"] for f in files) == sent_sms
        assert len(srv.messages()) == sent_sms
        credits = sum(srv.account(login)["credits"] for login, _ in accounts)  # type: ignore[index]
        assert sum(f["cost"] for f in files) == 15 * sent_sms  # a French SMS costs 15
        assert credits == 2 * CREDITS - 15 * sent_sms
        for login, _ in accounts:
            assert os.listdir(srv.folder(login, "SEND_SMS")) == []
            assert os.listdir(srv.folder(login, "PROCESSING")) == []

        # Every session is gone: no descriptor, connection slot or write handle left behind.
        def descriptors_back() -> bool:
            total, sqlite = open_fds()
            return total - sqlite <= fds_before[0] - fds_before[1] + 2

        wait_until(descriptors_back, timeout=15, what="descriptors back")
        # 3 files (db, wal, shm) a connection, one connection a thread at most.
        assert open_fds()[1] <= 3 * threading.active_count()
        wait_until(
            lambda: (
                srv._ftp is not None
                and srv._ftp.guard.ftp_connections.total == 0
                and srv._ftp.guard.sftp_connections.total == 0
            ),
            what="connection slots released",
        )
        assert srv.open_writes.snapshot() == set()
        print(
            f"\nload: {total} files ({sent_sms} SMS) by {FTP_CLIENTS}+{SFTP_CLIENTS} clients:"
            f" uploaded in {uploaded:.1f} s, all processed in {elapsed:.1f} s"
            f" ({total / elapsed:.0f} files/s); fds (all, sqlite) {fds_before} -> {open_fds()},"
            f" RSS {rss_before // 1024} -> {rss_kib() // 1024} MiB"
            f" ({threading.active_count()} threads)"
        )
