"""`MockServer`'s lifecycle (contract 7): nothing left behind after stop, start-up errors raised
in the caller with nothing left running, two platforms side by side, wait_for_file, reset."""

from __future__ import annotations

import asyncio
import ftplib
import io
import os
import socket
import threading
import time
from typing import Any

import pytest

from mockserver.app import MockServer, StartupError
from tests.support.http import call
from tests.support.waiting import wait_until

NAME = "Promo_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour STOP au 36180";"MaBoutique"\n"+447911123456";"Hello"\n'


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def socket_count() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:  # the listing's own fd, already closed
            continue
    return count


def thread_ids() -> set[int | None]:
    return {t.ident for t in threading.enumerate()}


def ftp_upload(srv: MockServer, name: str, data: bytes, login: str = "demo") -> None:
    """Upload like a customer: `.tmp` first, then rename (manual 4.2)."""
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login(login, "demo" if login == "demo" else f"pw-{login}")
        ftp.storbinary(f"STOR SEND_SMS/{name}.tmp", io.BytesIO(data))
        ftp.rename(f"SEND_SMS/{name}.tmp", f"SEND_SMS/{name}")


async def sftp_listing(port: int) -> list[str]:
    import asyncssh

    async with (
        asyncssh.connect(
            "127.0.0.1",
            port,
            username="demo",
            password="demo",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            config=None,
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        return sorted(n for n in await sftp.listdir("/") if n not in (".", ".."))


@pytest.fixture
def baseline() -> dict[str, Any]:
    """Warm up once (lazy imports, loggers, the SQLite library) so that what is counted next
    belongs to the server under test."""
    with MockServer() as srv:
        call(srv, "GET", "/health")
    return {}


def settled(threads: set[int | None], fds: int, sockets: int) -> bool:
    return thread_ids() <= threads and fd_count() <= fds and socket_count() <= sockets


def test_stop_leaves_no_thread_socket_or_fd(baseline: dict[str, Any]) -> None:
    """Contract 7 `with MockServer() as srv:`: after the block every thread, socket and file
    descriptor it made is gone, and its temporary data dir is removed."""
    threads, fds, sockets = thread_ids(), fd_count(), socket_count()
    with MockServer() as srv:
        data_dir = srv.data_dir
        ftp_upload(srv, NAME, ROWS)
        srv.wait_for_file(NAME, 15)
        assert asyncio.run(sftp_listing(srv.sftp_port)) == [
            "ARCHIVES",
            "INVALIDS",
            "PROCESSING",
            "SEND_SMS",
        ]
        assert call(srv, "GET", f"/api/files?name={NAME}&wait=5").status == 200
        assert call(srv, "GET", "/api/messages").json["count"] == 2
        assert srv.mail()
    assert not srv.running
    assert not data_dir.exists()
    wait_until(
        lambda: settled(threads, fds, sockets),
        timeout=10,
        what=f"threads {threading.enumerate()} and {fd_count()} fds back to {fds}",
    )


def test_stop_with_clients_still_connected(baseline: dict[str, Any]) -> None:
    """A client that never says goodbye does not keep the platform (or its sockets) alive."""
    threads, fds, sockets = thread_ids(), fd_count(), socket_count()
    srv = MockServer().start()
    ftp = ftplib.FTP()
    raw = socket.create_connection(("127.0.0.1", srv.sftp_port), timeout=10)
    try:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login("demo", "demo")
        assert raw.recv(64).startswith(b"SSH-2.0-")
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 10
    finally:
        ftp.close()
        raw.close()
    wait_until(lambda: settled(threads, fds, sockets), timeout=10, what="everything released")


def test_stop_answers_a_pending_long_poll(baseline: dict[str, Any]) -> None:
    """A `GET /api/files?wait=` in progress gets an answer (503) at stop instead of holding
    the shutdown for its whole wait."""
    srv = MockServer().start()
    answer: dict[str, Any] = {}

    def ask() -> None:
        try:
            answer["status"] = call(srv, "GET", f"/api/files?name={NAME}&wait=120").status
        except (OSError, http_client_errors()) as exc:  # a closed connection is also fine
            answer["status"] = repr(exc)

    thread = threading.Thread(target=ask)
    listeners = srv.backend.bus.subscribers
    thread.start()
    try:
        wait_until(lambda: srv.backend.bus.subscribers > listeners, what="the long poll")
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 10
    finally:
        thread.join(30)
    assert answer["status"] == 503


def http_client_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


@pytest.mark.parametrize("kind", ["ftp", "sftp", "http"])
def test_port_taken_raises_in_the_caller_and_leaves_nothing(
    baseline: dict[str, Any], kind: str
) -> None:
    """Contract 3: "nothing starts half-way": a port in use is a StartupError naming the
    listener and port, raised by start(); every part already started is stopped again."""
    threads, fds = thread_ids(), fd_count()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        srv = MockServer(**{f"server.{kind}_port": port})
        with pytest.raises(StartupError, match=rf"{kind.upper()}.*{port}"):
            srv.start()
        assert not srv.running
        with pytest.raises(RuntimeError):
            _ = srv.store
        wait_until(
            lambda: thread_ids() <= threads and fd_count() <= fds + 1,  # + the blocker
            timeout=10,
            what="the half-started parts to stop",
        )
    # The same object can start once the port is free again.
    srv.start()
    try:
        assert srv.running
        assert call(srv, "GET", "/health").status == 200
    finally:
        srv.stop()


def test_two_servers_side_by_side() -> None:
    """Two platforms in one process: their own ports, data dirs and state."""
    with MockServer() as one, MockServer() as two:
        ports_one = {one.ftp_port, one.sftp_port, one.http_port}
        ports_two = {two.ftp_port, two.sftp_port, two.http_port}
        assert len(ports_one | ports_two) == 6
        assert one.data_dir != two.data_dir
        ftp_upload(one, NAME, ROWS)
        assert one.wait_for_file(NAME, 15)["status"] == "archived"
        assert two.files() == []
        assert call(two, "GET", "/api/messages").json["count"] == 0
        assert call(one, "GET", "/api/messages").json["count"] == 2


def test_start_twice_is_refused_and_stop_is_idempotent() -> None:
    """One start per stop; stop() on a stopped server does nothing."""
    srv = MockServer()
    srv.stop()
    with srv:
        with pytest.raises(RuntimeError, match="already started"):
            srv.start()
        assert srv.running
    srv.stop()
    assert not srv.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = srv.ftp_port


def test_wait_for_file_returns_the_verdict() -> None:
    """Contract 7 `srv.wait_for_file(name, timeout)`: the file's record, by original or final
    name; TimeoutError when nothing comes."""
    with MockServer() as srv:
        ftp_upload(srv, NAME, ROWS)
        record = srv.wait_for_file(NAME, 15)
        assert record["status"] == "archived"
        assert record["sms_count"] == 2
        assert srv.wait_for_file(f"TreatedByMSI_{NAME}", 1)["id"] == record["id"]
        assert srv.wait_for_file(NAME, 1, login="demo")["id"] == record["id"]
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            srv.wait_for_file("Never_20300101120000_HQ.csv", 0.2)
        assert time.monotonic() - started < 5


def test_wait_for_file_after_id_waits_for_a_reused_name() -> None:
    """Contract 7 `srv.last_file_id`, `srv.wait_for_file(name, timeout, after_id=None)`: drop
    a name used before, wait with the id read before the drop, get the new verdict, never the
    old one. The second file stays a second in PROCESSING: the old verdict is there all
    along, and a wait that ignored after_id would answer with it at once."""
    with MockServer(delay_seconds=1.0) as srv:
        assert srv.last_file_id == 0
        ftp_upload(srv, NAME, ROWS)
        old = srv.wait_for_file(NAME, 15)
        last_id = srv.last_file_id
        assert last_id == old["id"]
        ftp_upload(srv, NAME, b'"12";"pas un numero"\n')
        new = srv.wait_for_file(NAME, 15, after_id=last_id)
        assert new["id"] > last_id
        assert (new["status"], new["reason"]) == ("invalid", "Empty_File")
        assert old["status"] == "archived"
        assert srv.last_file_id == new["id"]
        assert call(srv, "GET", "/api/files").json["last_id"] == new["id"]
        assert [f["id"] for f in srv.files(name=NAME, after_id=last_id)] == [new["id"]]
        with pytest.raises(TimeoutError, match=f"after file id {new['id']}"):
            srv.wait_for_file(NAME, 0.2, after_id=new["id"])


def test_reset_gives_a_clean_platform() -> None:
    """Contract 6/7 reset: no files, SMS or mail; configured accounts and credits restored;
    run-time accounts removed; the folders are empty."""
    with MockServer() as srv:
        ftp_upload(srv, NAME, ROWS)
        srv.wait_for_file(NAME, 15)
        srv.add_account("extra", "pw-extra", 5)
        # Contract 3: the demo account has 15000 credits; an SMS costs 15.
        assert srv.account("demo")["credits"] == 15000 - 2 * 15  # type: ignore[index]
        srv.reset()
        assert srv.files() == []
        assert srv.messages() == []
        assert srv.mail() == []
        assert srv.account("demo")["credits"] == 15000  # type: ignore[index]
        assert srv.account("extra") is None
        for folder in ("SEND_SMS", "PROCESSING", "ARCHIVES", "INVALIDS"):
            assert list(srv.folder("demo", folder).iterdir()) == []
        # And it still works after the reset.
        ftp_upload(srv, NAME, ROWS)
        assert srv.wait_for_file(NAME, 15)["final_name"] == f"TreatedByMSI_{NAME}"


def test_adding_accounts_keeps_the_file_watcher_alive() -> None:
    """Accounts created at run time (POST /api/accounts) must not break the watcher that
    picks up files put straight on disk (docs/design.md, pitfall 1): a fresh account tree once
    made watchdog's inotify observer warn in its thread, fatal under `-W error`."""
    import warnings

    failures: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with MockServer() as srv:
                for i in range(30):
                    srv.add_account(f"extra{i}", "pw", 5)
                    srv.reset()
    finally:
        threading.excepthook = previous
    assert failures == []


def test_reset_forgets_login_lockouts() -> None:
    """A reset gives a clean platform (contract 6): an address locked out by wrong passwords
    in one test can log in again in the next (docs/security.md, login lockout)."""
    import ftplib

    settings = {
        "login_lockout_failures": 2,
        "login_failure_delay_seconds": 0.0,
        "max_connections": 5,
    }
    with MockServer(**settings) as srv:
        for _ in range(2):
            with ftplib.FTP() as ftp:
                ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
                with pytest.raises(ftplib.error_perm):
                    ftp.login("demo", "wrong")
        assert not _can_log_in(srv.ftp_port)
        srv.reset()
        assert _can_log_in(srv.ftp_port)


def _can_log_in(port: int) -> bool:
    import ftplib

    with ftplib.FTP() as ftp:
        try:
            ftp.connect("127.0.0.1", port, timeout=10)
            return ftp.login("demo", "demo").startswith("230")
        except ftplib.Error:
            return False


# -- billing (issue 12, contract 3 `[pricing]` and `processing.qualities`) ------------------------

FRENCH3 = b'"0612345678";"Un"\n"0712345678";"Deux"\n"+33 6 11 22 33 44";"Trois"\n'


def test_three_french_sms_cost_45_credits() -> None:
    """Contract 3 `[pricing.HQ]` (`"33" = 15`) and 5.4.4: AllMySMS bills in credits, a French
    SMS costing 15; the file's cost is charged to the account."""
    with MockServer() as srv:
        ftp_upload(srv, NAME, FRENCH3)
        done = srv.wait_for_file(NAME, 15)
        assert (done["status"], done["sms_count"], done["cost"]) == ("archived", 3, 45)
        assert [m["price"] for m in srv.messages()] == [15, 15, 15]
        assert srv.account("demo")["credits"] == 15000 - 45  # type: ignore[index]


def test_the_price_follows_the_calling_code() -> None:
    """Contract 3 `[pricing]`: by the destination's country calling code, `default` for the
    rest: with `[pricing.HQ] "44" = 20`, a UK SMS costs 20 and a French one the default."""
    with MockServer(pricing={"HQ": {"44": 20}}) as srv:
        ftp_upload(srv, NAME, ROWS)  # one French SMS, one UK SMS
        assert srv.wait_for_file(NAME, 15)["cost"] == 15 + 20
        prices = {m["phone"]: m["price"] for m in srv.messages()}
        assert prices == {"33612345678": 15, "447911123456": 20}
        assert srv.account("demo")["credits"] == 15000 - 35  # type: ignore[index]


LC_NAME = "Promo_20300716120000_LC.csv"


def test_an_lc_file_is_an_incorrect_file_name_by_default() -> None:
    """Issue 12 point 2, manual 2.1 ("HQ ..., seule qualité disponible"): with the default
    `processing.qualities = ["HQ"]`, a `_LC` file is Incorrect_FileName and costs nothing."""
    with MockServer() as srv:
        ftp_upload(srv, LC_NAME, FRENCH3)
        done = srv.wait_for_file(LC_NAME, 15)
        assert (done["status"], done["reason"], done["cost"]) == (
            "invalid",
            "Incorrect_FileName",
            0,
        )
        assert srv.account("demo")["credits"] == 15000  # type: ignore[index]


def test_an_lc_file_is_archived_at_the_lc_price_when_lc_is_offered() -> None:
    """Contract 3: `qualities = ["HQ", "LC"]` accepts `_LC` files, billed at `[pricing.LC]`."""
    with MockServer(qualities=["HQ", "LC"], pricing={"LC": {"default": 7}}) as srv:
        ftp_upload(srv, LC_NAME, FRENCH3)
        done = srv.wait_for_file(LC_NAME, 15)
        assert (done["status"], done["final_name"]) == ("archived", f"TreatedByMSI_{LC_NAME}")
        assert done["cost"] == 3 * 7
        assert [m["price"] for m in srv.messages()] == [7, 7, 7]
        assert srv.account("demo")["credits"] == 15000 - 21  # type: ignore[index]
        # HQ keeps its own prices.
        ftp_upload(srv, NAME, FRENCH3)
        assert srv.wait_for_file(NAME, 15)["cost"] == 45


def test_a_windows_1252_spreadsheet_with_a_header_row_is_processed_and_mailed() -> None:
    """Contract 5.4.2 ("a spreadsheet's header row ... is one rejected row, reported as a
    header row") on the file a spreadsheet really saves: Windows-1252, so the header's `é` is
    not UTF-8 (manual 4.2: "encodé en UTF-8"). The file is archived with its other rows,
    recorded and mailed: never stuck in PROCESSING."""
    data = "Téléphone;Message;Expéditeur\r\n0612345678;Bonjour\r\n".encode("cp1252")
    with MockServer() as srv:
        ftp_upload(srv, NAME, data)
        done = srv.wait_for_file(NAME, 15)
        assert (done["status"], done["sms_count"]) == ("archived", 1)
        (row,) = done["rejected"]
        assert row["line"] == 1
        assert row["value"].encode("utf-8")  # text, with the byte shown escaped
        assert os.listdir(srv.folder("demo", "PROCESSING")) == []
        (mail,) = srv.mail()
        assert "ligne 1 :" in mail["body"]
