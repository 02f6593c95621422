"""The Backend owns the state (docs/design.md, "The Backend"): one account table for the
servers, the API and `MockServer`; phone numbers normalised once; waits woken by events."""

from __future__ import annotations

import ftplib
import threading

import pytest

from mockserver.app import MockServer
from mockserver.events import AccountChanged, Event, PlatformReset
from tests.support.serve import ftp_drop
from tests.support.waiting import wait_until

NAME = "Promo_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour"\n"+447700900123";"Hello"\n'


def can_log_in(srv: MockServer, login: str, password: str) -> bool:
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        try:
            ftp.login(login, password)
        except ftplib.error_perm:
            return False
        return True


@pytest.fixture
def srv():
    with MockServer(login_failure_delay_seconds=0.0, login_lockout_failures=0) as server:
        yield server


@pytest.mark.parametrize("spelling", ["0612345678", "+33612345678", "33 6 12 34 56 78"])
def test_messages_by_phone_in_any_spelling_from_python_and_http(
    srv: MockServer, spelling: str
) -> None:
    """Contract 6 `GET /api/messages?phone=`: any accepted spelling finds the SMS; the same
    through `MockServer.messages` (it used to answer [] for 0612345678)."""
    import json
    import urllib.parse
    import urllib.request

    ftp_drop(srv.ftp_port, NAME, ROWS)
    srv.wait_for_file(NAME)
    from_python = srv.messages(phone=spelling)
    assert [m["phone"] for m in from_python] == ["33612345678"]
    url = f"{srv.http_url}/api/messages?phone={urllib.parse.quote(spelling)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        from_http = json.load(resp)["messages"]
    assert from_http == from_python
    assert srv.messages(phone="447700900123")[0]["message"] == "Hello"


def test_a_phone_no_spelling_of_which_is_accepted_is_an_error(srv: MockServer) -> None:
    with pytest.raises(ValueError, match="not a number the platform accepts"):
        srv.messages(phone="12")


def test_one_account_table_for_logins_the_api_and_reset(srv: MockServer) -> None:
    """Accounts created, changed and reset through the Backend are what FTP checks at the
    next login, with no second copy to keep in step."""
    seen: list[Event] = []
    srv.backend.bus.subscribe(seen.append)
    srv.add_account("carol", "pw-carol", 5)
    assert can_log_in(srv, "carol", "pw-carol")
    srv.backend.update_account("carol", password="new-pw")
    assert not can_log_in(srv, "carol", "pw-carol")
    assert can_log_in(srv, "carol", "new-pw")
    srv.backend.update_account("demo", password="changed")
    assert not can_log_in(srv, "demo", "demo")
    srv.reset()
    assert not can_log_in(srv, "carol", "new-pw")
    assert can_log_in(srv, "demo", "demo")  # the configured password is back
    assert srv.account("carol") is None
    changes = [(e.login, e.change) for e in seen if isinstance(e, AccountChanged)]
    assert changes == [
        ("carol", "created"),
        ("carol", "updated"),
        ("demo", "updated"),
        ("carol", "removed"),
    ]
    # The reset is announced after the accounts it removed (session events come and go).
    ordered = [e for e in seen if isinstance(e, AccountChanged | PlatformReset)]
    assert isinstance(ordered[-1], PlatformReset)


def test_wait_for_file_is_woken_by_the_finished_event(
    srv: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wait_for_file` waits on `file.finished` (docs/design.md, "Events"), not by polling: it
    subscribes, looks at the store once before the verdict and once after the event, and
    unsubscribes."""
    store = srv.backend.store
    looks: list[str] = []
    real_files = store.files

    def counted_files(*args: object, **kwargs: object) -> object:
        looks.append(str(kwargs.get("name")))
        return real_files(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "files", counted_files)
    before = srv.backend.bus.subscribers
    result: list[dict] = []
    waiter = threading.Thread(target=lambda: result.append(srv.wait_for_file(NAME, 30)))
    waiter.start()
    wait_until(lambda: srv.backend.bus.subscribers == before + 1, what="the waiter subscribed")
    wait_until(lambda: looks, what="the waiter's first look")
    ftp_drop(srv.ftp_port, NAME, ROWS)
    waiter.join(30)
    assert result, "the waiter got nothing"
    assert result[0]["original_name"] == NAME
    assert result[0]["status"] == "archived"
    assert looks == [NAME, NAME]
    assert srv.backend.bus.subscribers == before


def test_wait_for_file_times_out_without_a_verdict(srv: MockServer) -> None:
    with pytest.raises(TimeoutError, match="no verdict"):
        srv.wait_for_file("Never_20300716120000_HQ.csv", 0.2)


def test_mockserver_filters_kept_from_before_the_backend(srv: MockServer) -> None:
    """`files(campaign=, include_pending=)` and `messages(file_id=, status=, now=)` answer as
    they did when `MockServer` read the store directly."""
    from datetime import UTC, datetime

    ftp_drop(srv.ftp_port, NAME, ROWS)
    (done,) = [srv.wait_for_file(NAME)]
    assert [f["id"] for f in srv.files(campaign="Promo")] == [done["id"]]
    assert srv.files(campaign="Other") == []
    assert [f["id"] for f in srv.files(include_pending=True)] == [done["id"]]
    assert len(srv.messages(file_id=done["id"])) == 2
    assert srv.messages(file_id=done["id"] + 1) == []
    assert {m["status"] for m in srv.messages()} == {"scheduled"}  # 2030
    later = datetime(2031, 1, 1, tzinfo=UTC)
    assert {m["status"] for m in srv.messages(now=later)} == {"sent"}
    assert len(srv.messages(status="sent", now=later)) == 2
    assert srv.messages(status="sent") == []
    with pytest.raises(ValueError, match="unknown SMS status 'bogus'"):
        srv.messages(status="bogus")
