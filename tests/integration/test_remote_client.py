"""`mockserver.remote.MockClient` (issue 17): a mock steered over its HTTP API with the methods
and answers of the in-process `MockServer`. Checked here against a `MockServer` in this
process, so it runs everywhere; `tests/containers/` uses it against the container."""

from __future__ import annotations

import ftplib
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mockserver.app import MockServer
from mockserver.remote import ApiError, BadRequest, MockClient, NotFound

NAME = "Promo_20301231120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour STOP au 36180"\n"0712345678";"Salut STOP au 36180"\n'


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture
def srv(server: MockServer) -> MockServer:
    server.reset()
    return server


@pytest.fixture
def mock(srv: MockServer) -> MockClient:
    return MockClient(srv.http_url)


def _upload(srv: MockServer, name: str = NAME, data: bytes = ROWS) -> None:
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login("demo", "demo")
        ftp.storbinary("STOR /SEND_SMS/x.tmp", io.BytesIO(data))
        ftp.rename("/SEND_SMS/x.tmp", f"/SEND_SMS/{name}")


def test_answers_equal_the_in_process_servers(srv: MockServer, mock: MockClient) -> None:
    """Files, messages (with the API's phone rule), mail and accounts: the same dicts."""
    mark = mock.last_file_id
    _upload(srv)
    done = mock.wait_for_file(NAME, timeout=10, after_id=mark)
    assert done["status"] == "archived"
    assert done == srv.wait_for_file(NAME, after_id=mark)
    assert mock.files() == srv.files()
    assert mock.files(status="invalid") == []
    now = srv.clock.now()
    assert mock.messages() == srv.messages(now=now)
    assert len(mock.messages(phone="+33 6 12 34 56 78")) == 1
    assert mock.mail() == srv.mail()
    assert mock.account("demo") == srv.account("demo")
    assert mock.accounts() == [srv.account("demo")]
    assert mock.last_file_id == srv.last_file_id == done["id"]
    assert mock.health()["ftp_port"] == srv.ftp_port


def test_lists_are_read_whole_past_one_page(
    srv: MockServer, mock: MockClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `limit`, every item (the API pages by 1000 by default); with it, one page."""
    monkeypatch.setattr("mockserver.remote.PAGE", 1)
    _upload(srv)
    mock.wait_for_file(NAME)
    assert [m["line"] for m in mock.messages()] == [1, 2]
    assert len(mock.messages(limit=1)) == 1


def test_wait_for_file_is_woken_up_and_times_out(srv: MockServer, mock: MockClient) -> None:
    """The call returns as the verdict lands (no polling), and a TimeoutError when none does;
    an unknown login is a NotFound, not a time-out."""
    mark = mock.last_file_id
    threading.Timer(0.3, _upload, (srv,)).start()
    started = time.monotonic()
    assert mock.wait_for_file(NAME, timeout=20, after_id=mark)["status"] == "archived"
    assert time.monotonic() - started < 10
    with pytest.raises(TimeoutError, match="after file id"):
        mock.wait_for_file(NAME, timeout=0.3, after_id=mock.last_file_id)
    with pytest.raises(TimeoutError):
        mock.wait_for_file("Nope_20301231120000_HQ.csv", timeout=0)
    with pytest.raises(NotFound, match="nobody"):
        mock.wait_for_file(NAME, timeout=1, login="nobody")


def test_accounts_reset_and_errors(srv: MockServer, mock: MockClient) -> None:
    added = mock.add_account("acme", "s3cret", 30, email="it@acme.example")
    assert added == srv.account("acme")
    assert mock.set_credits("acme", 0)["credits"] == 0
    assert mock.account("nobody") is None
    with pytest.raises(ApiError) as conflict:
        mock.add_account("acme", "again")
    assert conflict.value.status == 409
    assert "already exists" in conflict.value.message
    with pytest.raises(BadRequest) as bad:  # a ValueError, as MockServer.messages raises
        mock.messages(phone="0123")
    assert isinstance(bad.value, ValueError)
    mock.reset()
    assert srv.account("acme") is None
    assert mock.files() == []


def test_faults_as_srv_faults(srv: MockServer, mock: MockClient) -> None:
    rule = mock.faults.add(on="judge", action="verdict", reason="Not_enough_credits")
    assert mock.faults.list() == srv.faults.list() == [rule]
    _upload(srv)
    assert mock.wait_for_file(NAME)["reason"] == "Not_enough_credits"
    assert mock.faults.list()[0]["fired"] == 1
    assert mock.faults.remove(rule["id"]) is True
    assert mock.faults.remove(rule["id"]) is False
    mock.faults.add(on="claim", action="stall", seconds=1)
    assert mock.faults.clear() == 1
    with pytest.raises(BadRequest, match="action"):
        mock.faults.add(on="judge", action="explode")


def test_clock_as_srv_clock(srv: MockServer, mock: MockClient) -> None:
    """Set (Paris wall time without an offset), advance, back to real time; an SMS reads
    `sent` once the clock passes its send date."""
    assert mock.clock.frozen is False
    at = mock.clock.set("2030-12-31T11:00:00")
    assert at == datetime(2030, 12, 31, 10, 0, tzinfo=UTC) == srv.clock.now()
    assert mock.clock.frozen is True
    _upload(srv)
    mock.wait_for_file(NAME)
    assert {m["status"] for m in mock.messages()} == {"scheduled"}
    assert mock.clock.advance(7200) == datetime(2030, 12, 31, 12, 0, tzinfo=UTC)
    assert {m["status"] for m in mock.messages()} == {"sent"}
    assert mock.clock.set(datetime(2031, 1, 1, tzinfo=UTC)) == mock.clock.now()
    assert mock.clock.real().year == datetime.now(UTC).year
    assert mock.clock.frozen is False


def test_check_drop_and_manual_mode(srv: MockServer, mock: MockClient) -> None:
    verdict = mock.check(ROWS, NAME, login="demo")
    assert (verdict["status"], verdict["sms_count"]) == ("archived", 2)
    assert mock.files() == []
    assert mock.waiting() == []
    assert mock.retrying() == []
    assert mock.advance() == []
    with pytest.raises(NotFound):  # a LookupError, as MockServer.advance raises
        mock.advance("Nope.csv")
    assert mock.drop(NAME, ROWS) == {"login": "demo", "name": NAME, "bytes": len(ROWS)}
    assert mock.wait_for_file(NAME)["sms_count"] == 2


def test_token_and_bad_addresses() -> None:
    """With `server.api_token` the client sends it; without it the API answers 401."""
    with MockServer(api_token="s3cret-token") as srv:
        assert MockClient(srv.http_url, token="s3cret-token").files() == []
        with pytest.raises(ApiError) as refused:
            MockClient(srv.http_url).files()
        assert refused.value.status == 401
    for url in ("https://127.0.0.1:8021", "127.0.0.1:8021", "http://"):
        with pytest.raises(ValueError, match="http://host:port"):
            MockClient(url)
