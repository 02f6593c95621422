"""Contract 9.2 faults on protocol operations, driven through real clients (ftplib, paramiko,
asyncssh) against a whole `MockServer`: what the client sees for each action on each protocol,
and what the platform recorded (the rule's `fired` count, `fault.fired` events, files judged).
"""

from __future__ import annotations

import asyncio
import ftplib
import functools
import io
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest

from mockserver.app import MockServer
from mockserver.events import Event, FaultFired, UploadRefused
from tests.support.harness import ACCOUNTS, connect, paramiko_sftp, running_mock_server
from tests.support.waiting import wait_until

NAME = "Promo_20300716120000_HQ.csv"
OTHER = "Other_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour"\n"33711223344";"Salut"\n'
BIG = ROWS * 2000  # about 60 KB: the cut falls well inside it
DELAY = 1.5


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[MockServer]:
    with running_mock_server(tmp_path / "data", ACCOUNTS) as server:
        yield server


@pytest.fixture
def fired(srv: MockServer) -> Iterator[list[FaultFired]]:
    """Every `fault.fired` event, in order."""
    seen: list[FaultFired] = []

    def keep(event: Event) -> None:
        if isinstance(event, FaultFired):
            seen.append(event)

    stop = srv.backend.bus.subscribe(keep)
    yield seen
    stop()


def add(srv: MockServer, **rule: Any) -> int:
    return srv.backend.faults.add(rule).id


def fired_count(srv: MockServer, rule_id: int) -> int:
    found = srv.backend.faults.get(rule_id)
    assert found is not None
    return int(found["fired"])


def ftp(srv: MockServer, login: bool = True) -> ftplib.FTP:
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.ftp_port, timeout=20)
    if login:
        client.login("alice", "pw-alice")
    return client


def put(client: ftplib.FTP, name: str, data: bytes = ROWS) -> str:
    return client.storbinary(f"STOR /SEND_SMS/{name}", io.BytesIO(data))


def place(srv: MockServer, folder: str, name: str, data: bytes = ROWS) -> Path:
    path = srv.folder("alice", folder) / name
    path.write_bytes(data)
    return path


def judged_alone(srv: MockServer, name: str) -> None:
    """Upload `name` and wait for its verdict: a file the processor had left over would be
    judged too; only `name` is on record."""
    with ftp(srv) as client:
        put(client, name)
    srv.wait_for_file(name, timeout=20)
    assert [f["original_name"] for f in srv.files()] == [name]


# -- FTP -------------------------------------------------------------------------------------


def test_ftp_error_gives_the_code_and_message_and_the_session_goes_on(
    srv: MockServer, fired: list[FaultFired]
) -> None:
    rule = add(srv, on="upload", action="error", code=452, message="Quota hit (test)")
    with ftp(srv) as client:
        with pytest.raises(ftplib.error_temp, match=r"^452 Quota hit \(test\)$"):
            put(client, NAME)
        assert not (srv.folder("alice", "SEND_SMS") / NAME).exists()
        put(client, NAME)  # the same connection: the rule fired once (times 1)
    srv.wait_for_file(NAME, timeout=20)
    assert fired_count(srv, rule) == 1
    assert [(e.on, e.action, e.protocol, e.login, e.name) for e in fired] == [
        ("upload", "error", "ftp", "alice", f"/SEND_SMS/{NAME}")
    ]


def test_ftp_error_at_each_operation_defaults_to_451_saying_it_is_injected(
    srv: MockServer,
) -> None:
    place(srv, "SEND_SMS", "a.tmp")
    place(srv, "ARCHIVES", "old.csv")
    ops = {
        "list": lambda c: c.nlst("/SEND_SMS"),
        "upload": lambda c: put(c, "b.tmp"),
        "rename": lambda c: c.rename("/SEND_SMS/a.tmp", "/SEND_SMS/c.tmp"),
        "delete": lambda c: c.delete("/ARCHIVES/old.csv"),
        "download": lambda c: c.retrbinary("RETR /ARCHIVES/old.csv", lambda _: None),
    }
    with ftp(srv) as client:
        for on, call in ops.items():
            add(srv, on=on, action="error", protocol="ftp")
            with pytest.raises(ftplib.error_temp) as err:
                call(client)
            assert str(err.value).startswith("451 Injected fault"), on
            assert f"the {on} failed" in str(err.value)
        assert sorted(client.nlst("/SEND_SMS")) == ["a.tmp"]  # nothing was done
    assert (srv.folder("alice", "ARCHIVES") / "old.csv").exists()
    assert all(r["fired"] == 1 for r in srv.backend.faults.rules())


def test_ftp_login_error_refuses_that_login_only(srv: MockServer) -> None:
    rule = add(srv, on="login", action="error", login="alice", message="Maintenance (test)")
    with ftp(srv, login=False) as client:
        with pytest.raises(ftplib.error_temp, match=r"^451 Maintenance \(test\)$"):
            client.login("alice", "pw-alice")
        assert client.login("alice", "pw-alice").startswith("230")  # same connection
    with ftp(srv, login=False) as other:
        other.login("alice2", "pw-alice2")  # another login: no rule
    assert fired_count(srv, rule) == 1


def test_ftp_login_with_a_wrong_password_fires_nothing(srv: MockServer) -> None:
    rule = add(srv, on="login", action="error")
    with ftp(srv, login=False) as client, pytest.raises(ftplib.error_perm, match=r"^530"):
        client.login("alice", "wrong")
    assert fired_count(srv, rule) == 0


@pytest.mark.parametrize("on", ["login", "rename"])
def test_ftp_disconnect_closes_the_control_connection(srv: MockServer, on: str) -> None:
    place(srv, "SEND_SMS", "a.tmp")
    add(srv, on=on, action="disconnect", protocol="ftp")
    client = ftp(srv, login=on != "login")
    try:
        if on == "login":
            cut = functools.partial(client.login, "alice", "pw-alice")
        else:
            cut = functools.partial(client.rename, "/SEND_SMS/a.tmp", "/SEND_SMS/b.tmp")
        with pytest.raises((EOFError, ConnectionError)):
            cut()
    finally:
        client.close()
    assert (srv.folder("alice", "SEND_SMS") / "a.tmp").exists()
    with ftp(srv) as again:  # the server goes on
        assert again.nlst("/SEND_SMS") == ["a.tmp"]


def _timed(call: Any) -> tuple[threading.Thread, dict[str, float]]:
    took: dict[str, float] = {}

    def run() -> None:
        start = time.monotonic()
        call()
        took["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, took


def test_ftp_delay_waits_then_goes_on_without_holding_other_sessions(srv: MockServer) -> None:
    rule = add(srv, on="list", action="delay", seconds=DELAY, login="alice")
    place(srv, "SEND_SMS", "a.tmp")
    slow = ftp(srv)
    listed: list[str] = []
    thread, took = _timed(lambda: listed.extend(slow.nlst("/SEND_SMS")))
    try:
        wait_until(lambda: fired_count(srv, rule) == 1, what="the delay to fire")
        with ftp(srv, login=False) as other:  # meanwhile another session works
            other.login("alice2", "pw-alice2")
            assert other.nlst("/SEND_SMS") == []
        assert thread.is_alive(), "the delayed listing answered before the other session"
        thread.join(20)
    finally:
        slow.close()
    assert listed == ["a.tmp"]
    assert took["seconds"] >= DELAY * 0.9


def test_ftp_a_delayed_upload_is_confined_again_when_it_runs(
    srv: MockServer, tmp_path: Path
) -> None:
    """Issue 15: a command's path is confined once (pyftpdlib's own checks of it are skipped);
    a `delay` holds the command, and SEND_SMS replaced meanwhile by a link on disk must still
    refuse it when it runs, writing nothing through the link."""
    rule = add(srv, on="upload", action="delay", seconds=DELAY, login="alice")
    outside = tmp_path / "outside"
    outside.mkdir()
    client = ftp(srv)
    client.voidcmd("TYPE I")
    errors: list[str] = []

    def store() -> None:
        try:
            client.storbinary(f"STOR /SEND_SMS/{NAME}", io.BytesIO(ROWS))
        except ftplib.error_perm as exc:
            errors.append(str(exc))

    thread, _ = _timed(store)
    try:
        wait_until(lambda: fired_count(srv, rule) == 1, what="the delay to fire")
        send = srv.folder("alice", "SEND_SMS")
        send.rename(tmp_path / "SEND_SMS.real")
        send.symlink_to(outside, target_is_directory=True)
        thread.join(20)
    finally:
        client.close()
    assert errors == ["550 Path not available."]
    assert list(outside.iterdir()) == []


def test_ftp_login_delay(srv: MockServer) -> None:
    add(srv, on="login", action="delay", seconds=DELAY)
    with ftp(srv, login=False) as client:
        start = time.monotonic()
        assert client.login("alice", "pw-alice").startswith("230")
        assert time.monotonic() - start >= DELAY * 0.9
        assert client.pwd() == "/"


def test_ftp_truncate_cuts_the_upload_removes_it_and_nothing_is_judged(
    srv: MockServer, fired: list[FaultFired]
) -> None:
    rule = add(srv, on="upload", action="truncate", bytes=1000, name=NAME)
    with ftp(srv) as client:
        with pytest.raises((ftplib.error_temp, ConnectionError)) as err:
            put(client, NAME, BIG)
        if not isinstance(err.value, ftplib.error_temp):
            # The cut data connection reset the client while it was still sending: the 426
            # is waiting on the control connection (it was read by QUIT and failed the test).
            with pytest.raises(ftplib.error_temp) as err:
                client.getresp()
        assert str(err.value).startswith("426 Injected fault")
        assert client.pwd() == "/"  # the control connection stays
    partial = srv.folder("alice", "SEND_SMS") / NAME
    wait_until(lambda: not partial.exists(), what="the partial upload to be removed")
    judged_alone(srv, OTHER)
    assert srv.files(name=NAME) == []
    assert fired_count(srv, rule) == 1
    assert [e.action for e in fired] == ["truncate"]
    assert refusals(srv) == [("ftp", "cut")]


def refusals(srv: MockServer) -> list[tuple[str, str]]:
    """The `upload.refused` events so far: their `reason` is one of docs/api.md's codes on
    both protocols (FTP once gave the whole sentence)."""
    events, _ = srv.backend.bus.retained(0)
    return [(e.protocol, e.reason) for e in events if isinstance(e, UploadRefused)]


def test_ftp_truncate_longer_than_the_file_lets_it_complete(srv: MockServer) -> None:
    add(srv, on="upload", action="truncate", bytes=len(ROWS))
    with ftp(srv) as client:
        put(client, NAME)
    assert srv.wait_for_file(NAME, timeout=20)["status"] == "archived"  # judged as it came


def test_ftp_times_is_exact(srv: MockServer) -> None:
    place(srv, "ARCHIVES", "old.csv")
    rule = add(srv, on="download", action="error", times=2)
    outcomes = []
    with ftp(srv) as client:
        for _ in range(5):
            try:
                client.retrbinary("RETR /ARCHIVES/old.csv", lambda _: None)
                outcomes.append("ok")
            except ftplib.error_temp:
                outcomes.append("fault")
    assert outcomes == ["fault", "fault", "ok", "ok", "ok"]
    assert fired_count(srv, rule) == 2


def test_ftp_seeded_probability_is_exact(srv: MockServer) -> None:
    rule = add(srv, on="list", action="error", probability=0.5, seed=7)
    draws = random.Random(7)
    expected = [draws.random() < 0.5 for _ in range(20)]
    got = []
    with ftp(srv) as client:
        for _ in range(20):
            try:
                client.nlst("/SEND_SMS")
                got.append(False)
            except ftplib.error_temp:
                got.append(True)
    assert got == expected
    assert fired_count(srv, rule) == sum(expected)


def test_ftp_name_glob_matches_the_base_name(srv: MockServer) -> None:
    rule = add(srv, on="upload", action="error", name="*.csv")
    with ftp(srv) as client:
        put(client, "x.tmp")  # not matched
        with pytest.raises(ftplib.error_temp):
            put(client, NAME)
    assert fired_count(srv, rule) == 1


# -- SFTP ------------------------------------------------------------------------------------


def test_sftp_error_gives_the_message_and_the_session_goes_on(
    srv: MockServer, fired: list[FaultFired]
) -> None:
    rule = add(srv, on="upload", action="error", message="Quota hit (test)", protocol="sftp")
    with paramiko_sftp(srv.sftp_port) as sftp:
        with pytest.raises(OSError, match=r"Quota hit \(test\)"):
            sftp.putfo(io.BytesIO(ROWS), f"/SEND_SMS/{NAME}", confirm=False)
        assert sftp.listdir("/SEND_SMS") == []
        sftp.putfo(io.BytesIO(ROWS), f"/SEND_SMS/{NAME}", confirm=False)
    srv.wait_for_file(NAME, timeout=20)
    assert fired_count(srv, rule) == 1
    assert [(e.on, e.protocol, e.name) for e in fired] == [("upload", "sftp", f"/SEND_SMS/{NAME}")]


def test_sftp_error_at_each_operation_says_it_is_injected(srv: MockServer) -> None:
    place(srv, "SEND_SMS", "a.tmp")
    place(srv, "ARCHIVES", "old.csv")
    with paramiko_sftp(srv.sftp_port) as sftp:
        ops = {
            "list": lambda: sftp.listdir("/SEND_SMS"),
            "upload": lambda: sftp.putfo(io.BytesIO(ROWS), "/SEND_SMS/b.tmp"),
            "rename": lambda: sftp.rename("/SEND_SMS/a.tmp", "/SEND_SMS/c.tmp"),
            "delete": lambda: sftp.remove("/ARCHIVES/old.csv"),
            "download": lambda: sftp.getfo("/ARCHIVES/old.csv", io.BytesIO()),
        }
        for on, call in ops.items():
            add(srv, on=on, action="error", protocol="sftp")
            with pytest.raises(OSError, match=f"Injected fault .*: the {on} failed"):
                call()
        assert sftp.listdir("/SEND_SMS") == ["a.tmp"]
    assert (srv.folder("alice", "ARCHIVES") / "old.csv").exists()
    assert all(r["fired"] == 1 for r in srv.backend.faults.rules())


class _PasswordTwice(asyncssh.SSHClient):
    """Offers the right password up to twice on one connection, keeping the banners."""

    def __init__(self) -> None:
        self.banners: list[str] = []
        self.offered = 0

    def auth_banner_received(self, msg: str, lang: str) -> None:
        self.banners.append(msg)

    def password_auth_requested(self) -> str | None:
        self.offered += 1
        return "pw-alice" if self.offered <= 2 else None


def test_sftp_login_error_refuses_with_a_banner_and_the_connection_stays(
    srv: MockServer,
) -> None:
    rule = add(srv, on="login", action="error", message="Maintenance (test)", protocol="sftp")

    async def scenario() -> _PasswordTwice:
        conn, client = await asyncssh.create_connection(
            _PasswordTwice,
            "127.0.0.1",
            srv.sftp_port,
            username="alice",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            config=None,
            preferred_auth="password",
        )
        async with conn:
            sftp = await conn.start_sftp_client()  # logged in, on the same connection
            assert await sftp.listdir("/SEND_SMS") == [".", ".."]
        return client

    client = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert client.offered == 2
    assert [b.strip() for b in client.banners] == ["Maintenance (test)"]
    assert fired_count(srv, rule) == 1
    assert srv.guard.lockout.remaining("127.0.0.1") == 0  # not counted as a failed login


@pytest.mark.parametrize("on", ["login", "delete"])
def test_sftp_disconnect_closes_the_connection(srv: MockServer, on: str) -> None:
    place(srv, "ARCHIVES", "old.csv")
    add(srv, on=on, action="disconnect", protocol="sftp")
    with (
        pytest.raises((EOFError, OSError, paramiko.SSHException)),
        paramiko_sftp(srv.sftp_port) as sftp,
    ):
        sftp.remove("/ARCHIVES/old.csv")
    assert (srv.folder("alice", "ARCHIVES") / "old.csv").exists()
    with paramiko_sftp(srv.sftp_port) as again:
        assert again.listdir("/ARCHIVES") == ["old.csv"]


def test_sftp_delay_waits_then_goes_on_without_holding_other_sessions(srv: MockServer) -> None:
    place(srv, "ARCHIVES", "old.csv")
    rule = add(srv, on="download", action="delay", seconds=DELAY, protocol="sftp")

    async def scenario() -> float:
        async with connect(srv.sftp_port) as slow, connect(srv.sftp_port, "alice2") as other:
            slow_sftp = await slow.start_sftp_client()
            start = time.monotonic()
            task = asyncio.ensure_future(slow_sftp.open("/ARCHIVES/old.csv", "rb"))
            while fired_count(srv, rule) == 0:  # the loop runs the request meanwhile
                await asyncio.sleep(0.01)
            other_sftp = await other.start_sftp_client()
            assert await other_sftp.listdir("/SEND_SMS") == [".", ".."]
            assert not task.done(), "the delayed open answered before the other session"
            handle = await task
            took = time.monotonic() - start
            assert await handle.read() == ROWS
            await handle.close()
            return took

    took = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert took >= DELAY * 0.9


def test_sftp_truncate_cuts_the_connection_removes_the_file_and_nothing_is_judged(
    srv: MockServer, fired: list[FaultFired]
) -> None:
    rule = add(srv, on="upload", action="truncate", bytes=1000, protocol="sftp")
    with (
        pytest.raises((EOFError, OSError, paramiko.SSHException)),
        paramiko_sftp(srv.sftp_port) as sftp,
    ):
        sftp.putfo(io.BytesIO(BIG), f"/SEND_SMS/{NAME}", confirm=False)
    partial = srv.folder("alice", "SEND_SMS") / NAME
    wait_until(lambda: not partial.exists(), what="the partial upload to be removed")
    wait_until(lambda: not srv.open_writes.snapshot(), what="the upload to be closed")
    judged_alone(srv, OTHER)
    assert srv.files(name=NAME) == []
    assert fired_count(srv, rule) == 1
    assert [e.action for e in fired] == ["truncate"]
    assert refusals(srv) == [("sftp", "cut")]


def test_sftp_times_and_seeded_probability_are_exact(srv: MockServer) -> None:
    times = add(srv, on="list", action="error", times=2, protocol="sftp")
    draws = random.Random(11)
    expected = [draws.random() < 0.3 for _ in range(15)]
    got = []
    with paramiko_sftp(srv.sftp_port) as sftp:
        listed = []
        for _ in range(4):
            try:
                sftp.listdir("/")
                listed.append("ok")
            except OSError:
                listed.append("fault")
        assert listed == ["fault", "fault", "ok", "ok"]
        chance = add(srv, on="delete", action="error", probability=0.3, seed=11)
        for i in range(15):
            place(srv, "ARCHIVES", f"{i}.csv")
            try:
                sftp.remove(f"/ARCHIVES/{i}.csv")
                got.append(False)
            except OSError:
                got.append(True)
    assert got == expected
    assert fired_count(srv, times) == 2
    assert fired_count(srv, chance) == sum(expected)
