"""Faults: a full disk during an upload and during processing, files that vanish or change
while queued, inotify overflow, a second server on the same data dir. In every case the client
gets an error, nothing is lost or half-recorded, and the platform recovers on its own.

The full-disk tests mount a small tmpfs (root only; skipped with the reason otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ftplib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from mockserver.app import MockServer, StartupError
from mockserver.processing import FileContext, Step
from tests.support.billing import DEMO_CREDITS, SMS_CREDITS
from tests.support.waiting import wait_until

BODY = b'"0612345678";"Bonjour STOP au 36180"\n'
BODY_COST = SMS_CREDITS  # BODY is one French SMS


def csv_name(tag: str) -> str:
    return f"{tag}_20300101120000_HQ.csv"


class Records(logging.Handler):
    """Every record at or above `level` of the `mockserver` loggers."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.ERROR) -> list[str]:
        return [r.getMessage() for r in list(self.records) if r.levelno >= level]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("mockserver")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# -- a small file system that can be filled ------------------------------------------------------


class SmallDisk:
    """A tmpfs of a few MB; `fill()` takes every free byte, `free()` gives them back."""

    def __init__(self, mountpoint: Path) -> None:
        self.path = mountpoint
        self.filler = mountpoint / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 65536, 4096, 512, 1):
                for _ in range(100_000):
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 4 MB tmpfs mounted for the test (needs root: CI runs as root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is simulated with a tmpfs mount, which needs root")
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield SmallDisk(mountpoint)
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False)
        if os.path.ismount(mountpoint):
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


@contextlib.contextmanager
def ftp_login(srv: MockServer) -> Iterator[ftplib.FTP]:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
    try:
        ftp.login("demo", "demo")
        yield ftp
    finally:
        ftp.close()


def stor_on_full_disk(ftp: ftplib.FTP, command: str, data: bytes) -> None:
    """STOR that reads the server's final reply even when it cut the data connection
    mid-stream (the client then sees a reset before the reply)."""
    try:
        ftp.storbinary(command, io.BytesIO(data))
    except (ConnectionResetError, BrokenPipeError):
        ftp.voidresp()


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_ftp_upload_on_a_full_disk_fails_and_recovers(
    small_disk: SmallDisk, records: Records
) -> None:
    """Disk full during an FTP upload: the client gets 452 (RFC 959 "insufficient storage
    space"), no partial file is left for the processor, the session stays usable, and the
    same upload works once space returns."""
    with MockServer(data_dir=small_disk.path / "data") as srv, ftp_login(srv) as ftp:
        send = srv.folder("demo", "SEND_SMS")
        small_disk.fill()
        with pytest.raises(ftplib.error_temp) as excinfo:
            stor_on_full_disk(ftp, f"STOR SEND_SMS/{csv_name('Full')}", os.urandom(300_000))
        assert str(excinfo.value) == "452 Insufficient storage space; transfer aborted."
        wait_until(lambda: names(send) == [], what="the partial upload removed")
        assert ftp.voidcmd("NOOP").startswith("200")
        assert srv.files() == []

        small_disk.free()
        ftp.storbinary(f"STOR SEND_SMS/{csv_name('Full')}", io.BytesIO(BODY))
        record = srv.wait_for_file(csv_name("Full"), 10)
        assert record["status"] == "archived"
        assert srv.account("demo")["credits"] == DEMO_CREDITS - BODY_COST  # type: ignore[index]
    assert records.messages() == []


def test_sftp_upload_on_a_full_disk_fails_and_recovers(
    small_disk: SmallDisk, records: Records
) -> None:
    """Disk full during an SFTP upload: the write fails with an SFTP error, the partial file is
    removed at close and never judged, and the same upload works once space returns."""
    with MockServer(data_dir=small_disk.path / "data") as srv:
        send = srv.folder("demo", "SEND_SMS")

        async def upload(data: bytes) -> str:
            async with (
                asyncssh.connect(
                    "127.0.0.1",
                    srv.sftp_port,
                    username="demo",
                    password="demo",
                    known_hosts=None,
                    client_keys=None,
                    agent_path=None,
                    config=None,
                ) as conn,
                conn.start_sftp_client() as client,
            ):
                try:
                    async with client.open(f"/SEND_SMS/{csv_name('Full')}", "wb") as f:
                        await f.write(data)
                except asyncssh.SFTPError as exc:
                    assert (await client.stat("/")).type == asyncssh.FILEXFER_TYPE_DIRECTORY
                    return f"{exc.code}: {exc.reason}"
                return "ok"

        small_disk.fill()
        result = asyncio.run(asyncio.wait_for(upload(os.urandom(300_000)), 30))
        assert result.startswith(f"{asyncssh.FX_FAILURE}: ")
        assert "space" in result.lower()
        wait_until(lambda: names(send) == [], what="the partial upload removed")
        assert srv.files() == []

        small_disk.free()
        assert asyncio.run(asyncio.wait_for(upload(BODY), 30)) == "ok"
        assert srv.wait_for_file(csv_name("Full"), 10)["status"] == "archived"
        assert srv.account("demo")["credits"] == DEMO_CREDITS - BODY_COST  # type: ignore[index]
    assert records.messages() == []


def test_full_disk_during_processing_records_nothing_then_recovers(
    small_disk: SmallDisk, records: Records
) -> None:
    """Disk full while a file is processed: the verdict cannot be stored, so nothing is
    recorded or charged and the file stays in PROCESSING (docs/spec.md 5.2.4: charged
    exactly once); once space returns the periodic rescan finishes it: one record, one
    charge, one recap."""
    # The delay keeps the claimed file waiting while the disk is filled (3 s: even a loaded
    # machine fills it first).
    settings = {"processing.delay_seconds": 3.0, "processing.rescan_seconds": 0.2}
    with MockServer(data_dir=small_disk.path / "data", **settings) as srv:
        processing = srv.folder("demo", "PROCESSING")
        with ftp_login(srv) as ftp:
            ftp.storbinary(f"STOR SEND_SMS/{csv_name('Late')}", io.BytesIO(BODY))
        wait_until(lambda: names(processing) == [csv_name("Late")], what="claimed")
        small_disk.fill()
        wait_until(
            lambda: any("disk is full" in m for m in records.messages()),
            timeout=15,
            what="the processor to meet the full disk",
        )
        assert srv.files() == []
        assert srv.messages() == []
        assert srv.account("demo")["credits"] == DEMO_CREDITS  # type: ignore[index]
        assert names(processing) == [csv_name("Late")]
        assert (processing / csv_name("Late")).read_bytes() == BODY

        small_disk.free()
        record = srv.wait_for_file(csv_name("Late"), 15)
        assert record["status"] == "archived"
        wait_until(lambda: srv.files()[0]["done"], what="recap delivered")
        assert len(srv.files()) == 1
        assert len(srv.messages()) == 1
        assert srv.account("demo")["credits"] == DEMO_CREDITS - BODY_COST  # type: ignore[index]
        assert len(srv.mail()) == 1
        assert names(processing) == []
        assert names(srv.folder("demo", "ARCHIVES")) == ["TreatedByMSI_" + csv_name("Late")]


@pytest.mark.parametrize(("full_after", "failing"), [(Step.JUDGE, "record"), (Step.RECORD, "move")])
def test_a_full_disk_at_a_step_is_retried_with_back_off_listed_and_finished_once(
    small_disk: SmallDisk, records: Records, full_after: Step, failing: str
) -> None:
    """Issue 16: the disk fills up right before RECORD (nothing can be recorded) or right
    before MOVE (placed, not marked moved): the file is retried after 1 s, 2 s, 4 s..., each
    failure one error line naming the step and a non-empty cause (no traceback), and listed
    by `GET /api/processing` under `retrying`; once space returns it is finished: one
    record, one charge, one recap, and no longer listed."""
    filled = threading.Event()

    def fill_once(step: Step, ctx: FileContext) -> None:
        if step is full_after and not filled.is_set():
            filled.set()
            small_disk.fill()

    with MockServer(data_dir=small_disk.path / "data") as srv:
        srv.processor.add_hook(fill_once)
        with ftp_login(srv) as ftp:
            ftp.storbinary(f"STOR SEND_SMS/{csv_name('Full')}", io.BytesIO(BODY))

        def retried_twice() -> dict[str, Any] | None:
            with urllib.request.urlopen(f"{srv.http_url}/api/processing", timeout=10) as reply:
                listed = json.loads(reply.read())["retrying"]
            return listed[0] if listed and listed[0]["attempts"] >= 2 else None

        retry = wait_until(retried_twice, timeout=15, what="a second failed attempt")
        assert retry["login"] == "demo"
        assert retry["name"] == csv_name("Full")
        assert retry["step"] == failing
        assert "full" in retry["cause"]
        assert datetime.fromisoformat(retry["next_at"]).tzinfo is not None
        assert [(r["name"], r["step"]) for r in srv.retrying()] == [(retry["name"], failing)]
        assert srv.files() == []  # no verdict shown before it is done

        small_disk.free()
        record = srv.wait_for_file(csv_name("Full"), 20)
        assert record["status"] == "archived"
        wait_until(lambda: srv.retrying() == [], what="no longer listed")
        assert len(srv.files()) == 1
        assert len(srv.messages()) == 1
        assert srv.account("demo")["credits"] == DEMO_CREDITS - BODY_COST  # type: ignore[index]
        assert len(srv.mail()) == 1
        assert names(srv.folder("demo", "PROCESSING")) == []
        assert names(srv.folder("demo", "ARCHIVES")) == ["TreatedByMSI_" + csv_name("Full")]
    # One line per failure, each naming the file, the step and a cause; the pause doubles.
    failures = records.messages()
    pattern = re.compile(
        rf"^login=demo file={re.escape(csv_name('Full'))} step={failing} failed: (\S.*)"
        r" \(attempt (\d+), retried in (\d+) s\)$"
    )
    matches = [pattern.match(line) for line in failures]
    assert len(failures) >= 2
    assert all(matches), failures
    assert [int(m[2]) for m in matches if m] == list(range(1, len(failures) + 1))
    assert [int(m[3]) for m in matches if m] == [min(60, 2**i) for i in range(len(failures))]
    assert not any(r.exc_info for r in records.records)  # a traceback at debug level only


# -- files that change under the processor -------------------------------------------------------


def test_files_vanishing_or_swapped_while_queued_are_skipped(
    tmp_path: Path, records: Records
) -> None:
    """A queued file deleted, replaced by a symbolic link or by a folder before it is judged:
    the processor logs it and carries on (nothing recorded, nothing charged, no link followed),
    and the next file is processed normally."""
    outside = tmp_path / "secret.csv"
    outside.write_bytes(BODY * 5)
    # The delay holds the three claimed files in PROCESSING while the test swaps them: long
    # enough that a loaded machine cannot start judging one before the swap is done.
    settings = {"processing.delay_seconds": 3.0}
    with MockServer(data_dir=tmp_path / "data", **settings) as srv:
        processing = srv.folder("demo", "PROCESSING")
        send = srv.folder("demo", "SEND_SMS")
        with ftp_login(srv) as ftp:
            for tag in ("Gone", "Link", "Dir"):
                ftp.storbinary(f"STOR SEND_SMS/{tag}.tmp", io.BytesIO(BODY))
                ftp.rename(f"SEND_SMS/{tag}.tmp", f"SEND_SMS/{csv_name(tag)}")
        wait_until(lambda: len(names(processing)) == 3, what="all three claimed")
        (processing / csv_name("Gone")).unlink()
        (processing / csv_name("Link")).unlink()
        (processing / csv_name("Link")).symlink_to(outside)
        (processing / csv_name("Dir")).unlink()
        (processing / csv_name("Dir")).mkdir()

        # While SEND_SMS is paused, a submitted file disappears before its pickup.
        with srv.processor.paused():
            (send / csv_name("Early")).write_bytes(BODY)
            srv.processor.submit("demo", send / csv_name("Early"))
            (send / csv_name("Early")).unlink()

        with ftp_login(srv) as ftp:
            ftp.storbinary(f"STOR SEND_SMS/{csv_name('Next')}", io.BytesIO(BODY))
        assert srv.wait_for_file(csv_name("Next"), 20)["status"] == "archived"
        assert srv.processor.wait_idle(20)
        assert [f["original_name"] for f in srv.files()] == [csv_name("Next")]
        assert srv.account("demo")["credits"] == DEMO_CREDITS - BODY_COST  # type: ignore[index]
        assert outside.read_bytes() == BODY * 5
    # A folder swapped in is skipped like the rest, without an error line (Spool.read checks
    # what it opened before reading it).
    assert records.messages() == []


def test_inotify_overflow_is_caught_by_the_rescan(tmp_path: Path) -> None:
    """docs/spec.md 5.2.1 (inotify can overflow and drop events): 3000 files renamed
    into their final name at once with `watch_mode = "native"`; whatever inotify drops, the
    periodic rescan finds: every file is processed exactly once and charged exactly."""
    count = 3000
    queue_knob = Path("/proc/sys/fs/inotify/max_queued_events")
    overflowed = Records(logging.WARNING)
    watchdog_log = logging.getLogger("watchdog.observers.inotify_c")
    watchdog_log.addHandler(overflowed)
    settings = {
        "processing.watch_mode": "native",
        "processing.rescan_seconds": 0.5,
        "processing.recap_email": False,
    }
    srv = MockServer(data_dir=tmp_path / "data", **settings)
    try:
        # A tiny kernel queue for this server's inotify instance (read when it is created),
        # so the overflow surely happens; restored at once for everything else.
        original = None
        with contextlib.suppress(OSError):
            original = queue_knob.read_text()
            queue_knob.write_text("64\n")
        try:
            srv.start()
        finally:
            if original is not None:
                queue_knob.write_text(original)
        srv.set_credits("demo", count * BODY_COST)
        send = srv.folder("demo", "SEND_SMS")
        for i in range(count):
            (send / f"F{i}.tmp").write_bytes(BODY)
        for i in range(count):
            os.rename(send / f"F{i}.tmp", send / csv_name(f"F{i}"))
        wait_until(lambda: len(srv.files()) >= count, timeout=90, interval=0.2, what="every file")
        assert srv.processor.wait_idle(30)
        files = srv.files()
        assert len(files) == count
        assert {f["original_name"] for f in files} == {csv_name(f"F{i}") for i in range(count)}
        assert all(f["status"] == "archived" for f in files)
        assert srv.account("demo")["credits"] == 0  # type: ignore[index]
        assert names(send) == []
        assert len(names(srv.folder("demo", "ARCHIVES"))) == count
        if original is not None:
            assert any("overflow" in m for m in overflowed.messages(logging.WARNING))
    finally:
        srv.stop()
        watchdog_log.removeHandler(overflowed)


# -- one platform per data dir -------------------------------------------------------------------


def test_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """One platform per data dir (the lock file): a second start is refused with one line
    naming the data dir, the first keeps serving, and once it stops the dir is free again."""
    data = tmp_path / "data"
    with MockServer(data_dir=data) as first:
        second = MockServer(data_dir=data)
        with pytest.raises(StartupError) as excinfo:
            second.start()
        message = str(excinfo.value)
        assert str(data) in message
        assert "already used" in message
        assert "\n" not in message
        with ftp_login(first) as ftp:
            assert ftp.voidcmd("NOOP").startswith("200")
    with MockServer(data_dir=data) as again:
        assert again.ftp_port > 0


def test_second_serve_command_is_refused_without_a_traceback(tmp_path: Path) -> None:
    """Brief: "Never show a traceback to a user": `allmysms-mock serve` on a data dir already
    served stops with one clear line naming the dir and a non-zero exit."""
    data = tmp_path / "data"
    command = [
        sys.executable, "-m", "mockserver", "serve", "--data-dir", str(data),
        "--ftp-port", "0", "--sftp-port", "0", "--http-port", "0",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLMYSMS_MOCK_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert first.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not line.startswith("READY"):
            line = first.stdout.readline()
            if not line:
                break
        assert line.startswith("READY"), "the first server did not start"
        second = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=30, check=False
        )
        assert second.returncode != 0
        assert str(data) in second.stderr
        assert "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.terminate()
        try:
            first.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            first.kill()
            first.communicate()
    assert first.returncode == 0
