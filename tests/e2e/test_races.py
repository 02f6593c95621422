"""FTP against SFTP on one name at the same moment (issue 16, finding 4): each round starts one
command of each protocol together (a thread barrier), then checks the outcome. Contract 4:
"A rename never overwrites an existing file"; docs/spec.md 4.3: a name has one writer at a
time, whichever protocol, and a file being uploaded is neither removed nor renamed over.

Every file here ends in `.tmp`, which the processor never touches (contract 5.1), so only the
two servers act on them. Each test runs ROUNDS rounds and counts the bad outcomes before
asserting, so a failure reports how often the race was lost.
"""

from __future__ import annotations

import ftplib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from mockserver.app import MockServer
from tests.support.harness import paramiko_sftp
from tests.support.serve import DEMO_LOGIN, DEMO_PASSWORD

pytestmark = pytest.mark.timeout(240)

ROUNDS = 300
BARRIER_TIMEOUT = 20.0
FTP_DATA = b"F" * 65536
SFTP_DATA = b"S" * 65536


@pytest.fixture
def ftp(srv: MockServer) -> Iterator[ftplib.FTP]:
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.ftp_port, timeout=30)
    client.login(DEMO_LOGIN, DEMO_PASSWORD)
    client.voidcmd("TYPE I")
    yield client
    client.close()


@pytest.fixture
def sftp(srv: MockServer) -> Iterator[paramiko.SFTPClient]:
    with paramiko_sftp(srv.sftp_port, DEMO_LOGIN, DEMO_PASSWORD) as client:
        yield client


@pytest.fixture
def send(srv: MockServer) -> Path:
    return srv.folder(DEMO_LOGIN, "SEND_SMS")


Side = Callable[[threading.Barrier, threading.Barrier], Any]


def together(ftp_side: Side, sftp_side: Side) -> tuple[Any, Any]:
    """Run both sides in two threads that pass the same two barriers (`start` starts both
    commands at the same moment, `held` lets a side keep its file open until the other side
    has tried); their results, or the first exception raised."""
    start = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    held = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    results: list[Any] = [None, None]
    errors: list[BaseException] = []

    def run(index: int, side: Side) -> None:
        try:
            results[index] = side(start, held)
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)
            start.abort()
            held.abort()

    threads = [
        threading.Thread(target=run, args=(0, ftp_side), name="race-ftp"),
        threading.Thread(target=run, args=(1, sftp_side), name="race-sftp"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT * 3)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "a race thread did not finish"
    return results[0], results[1]


def test_rnto_and_sftp_rename_to_one_target_never_both_win(
    ftp: ftplib.FTP, sftp: paramiko.SFTPClient, send: Path
) -> None:
    """Contract 4: "A rename never overwrites an existing file". FTP RNFR a/RNTO t and SFTP
    rename b -> t at the same moment: exactly one wins, and both files still exist (the
    loser's under its old name), ROUNDS times."""
    both, lost, none = 0, 0, 0
    for i in range(ROUNDS):
        a, b, t = f"ra-{i}.tmp", f"rb-{i}.tmp", f"rt-{i}.tmp"
        (send / a).write_bytes(f"ftp {i}".encode())
        (send / b).write_bytes(f"sftp {i}".encode())
        ftp.sendcmd(f"RNFR /SEND_SMS/{a}")

        def ftp_side(start: threading.Barrier, held: threading.Barrier, t: str = t) -> bool:
            start.wait()
            try:
                ftp.sendcmd(f"RNTO /SEND_SMS/{t}")
            except ftplib.Error:
                return False
            return True

        def sftp_side(
            start: threading.Barrier, held: threading.Barrier, b: str = b, t: str = t
        ) -> bool:
            start.wait()
            try:
                sftp.rename(f"/SEND_SMS/{b}", f"/SEND_SMS/{t}")
            except OSError:
                return False
            return True

        ftp_won, sftp_won = together(ftp_side, sftp_side)
        both += ftp_won and sftp_won
        none += not ftp_won and not sftp_won
        contents = {p.read_bytes() for p in (send / a, send / b, send / t) if p.exists()}
        lost += contents != {f"ftp {i}".encode(), f"sftp {i}".encode()}
        for name in (a, b, t):
            (send / name).unlink(missing_ok=True)
    assert (both, lost, none) == (0, 0, 0), (
        f"of {ROUNDS} rounds: both renames won in {both}, a file was lost in {lost},"
        f" neither won in {none}"
    )


def test_stor_and_sftp_open_of_one_name_have_one_writer(
    ftp: ftplib.FTP, sftp: paramiko.SFTPClient, send: Path
) -> None:
    """docs/spec.md 4.3: one writer of a name at a time, whichever protocol. FTP STOR and SFTP
    open(write) of one name at the same moment, both held open until each side has tried:
    exactly one is accepted, and the file holds that writer's bytes only, ROUNDS times."""
    both, none, mixed = 0, 0, 0
    for i in range(ROUNDS):
        name = f"/SEND_SMS/w-{i}.tmp"

        def ftp_side(start: threading.Barrier, held: threading.Barrier, name: str = name) -> bool:
            start.wait()
            try:
                conn = ftp.transfercmd(f"STOR {name}")
            except ftplib.Error:
                held.wait()
                return False
            held.wait()  # both opens tried before either writes
            with conn:
                conn.sendall(FTP_DATA)
            ftp.voidresp()
            return True

        def sftp_side(start: threading.Barrier, held: threading.Barrier, name: str = name) -> bool:
            start.wait()
            try:
                remote = sftp.open(name, "w")
            except OSError:
                held.wait()
                return False
            held.wait()
            with remote:
                remote.write(SFTP_DATA)
            return True

        ftp_won, sftp_won = together(ftp_side, sftp_side)
        both += ftp_won and sftp_won
        none += not ftp_won and not sftp_won
        body = (send / f"w-{i}.tmp").read_bytes() if (send / f"w-{i}.tmp").exists() else b""
        expected = FTP_DATA if ftp_won and not sftp_won else SFTP_DATA if sftp_won else None
        mixed += expected is not None and body != expected
        (send / f"w-{i}.tmp").unlink(missing_ok=True)
    assert (both, none, mixed) == (0, 0, 0), (
        f"of {ROUNDS} rounds: both writers accepted in {both}, neither in {none},"
        f" the file not the winner's bytes in {mixed}"
    )


@pytest.mark.parametrize("uploader", ["ftp", "sftp"])
def test_a_file_being_uploaded_is_never_removed_by_the_other_protocol(
    ftp: ftplib.FTP, sftp: paramiko.SFTPClient, send: Path, uploader: str
) -> None:
    """docs/spec.md 4.3: a file another session is uploading cannot be deleted (FTP DELE 450,
    SFTP FAILURE). One protocol starts uploading over an existing file while the other deletes
    it at the same moment: whichever comes first, the completed upload is there afterwards
    with all its bytes, ROUNDS times."""
    lost = 0
    for i in range(ROUNDS):
        name = f"/SEND_SMS/d-{i}.tmp"
        path = send / f"d-{i}.tmp"
        path.write_bytes(b"old")

        def ftp_upload(start: threading.Barrier, held: threading.Barrier, name: str = name) -> bool:
            start.wait()
            conn = ftp.transfercmd(f"STOR {name}")
            held.wait()  # the removal was tried while the upload is open
            with conn:
                conn.sendall(FTP_DATA)
            ftp.voidresp()
            return True

        def sftp_upload(
            start: threading.Barrier, held: threading.Barrier, name: str = name
        ) -> bool:
            start.wait()
            remote = sftp.open(name, "w")
            held.wait()
            with remote:
                remote.write(SFTP_DATA)
            return True

        def ftp_delete(start: threading.Barrier, held: threading.Barrier, name: str = name) -> bool:
            start.wait()
            try:
                ftp.delete(name)
            except ftplib.Error:
                return False
            finally:
                held.wait()
            return True

        def sftp_delete(
            start: threading.Barrier, held: threading.Barrier, name: str = name
        ) -> bool:
            start.wait()
            try:
                sftp.remove(name)
            except OSError:
                return False
            finally:
                held.wait()
            return True

        if uploader == "ftp":
            together(ftp_upload, sftp_delete)
            expected = FTP_DATA
        else:
            together(ftp_delete, sftp_upload)
            expected = SFTP_DATA
        lost += not path.exists() or path.read_bytes() != expected
        path.unlink(missing_ok=True)
    assert lost == 0, f"of {ROUNDS} rounds, the completed {uploader} upload was lost in {lost}"
