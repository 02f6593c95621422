"""Contract 9.1, the event stream: `GET /api/events` read with a plain HTTP client while files
flow over FTP (ftplib) and SFTP (paramiko); the login filter; replay with `after` and
`Last-Event-ID`; the keep-alive comment; a stalled reader dropped and told; the platform never
slowed by a reader; the same events for the same session over FTP and SFTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver.app import MockServer
from mockserver.events import AccountChanged
from mockserver.servers.http import events_api
from mockserver.servers.http.api import SHUTDOWN_TIMEOUT
from tests.integration.test_session_logs import ACCOUNTS as LOG_ACCOUNTS
from tests.integration.test_session_logs import SCENARIOS, SMALL
from tests.integration.test_session_logs import SETTINGS as LOG_SETTINGS
from tests.support.harness import running_mock_server
from tests.support.serve import ftp_drop, sftp_drop
from tests.support.waiting import wait_until

ACCOUNTS = [
    {"login": "demo", "password": "demo", "credits": 1000},
    {"login": "acme", "password": "acme", "credits": 1000},
]
FAST = {"processing.delay_seconds": 0, "processing.pickup_delay_seconds": 0}
CSV = b'"0612345678";"Bonjour STOP au 36180"\n'


class Stream:
    """One `GET /api/events` read with http.client: `next()` is the next event as
    (event type, id or None, data), a comment as ("comment", None, {"text": ...})."""

    def __init__(self, port: int, query: str = "", headers: dict[str, str] | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.conn.request("GET", f"/api/events{query}", headers=headers or {})
        self.response = self.conn.getresponse()

    def next(self) -> tuple[str, int | None, dict[str, Any]]:
        fields: dict[str, str] = {}
        while True:
            raw = self.response.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                return "comment", None, {"text": line[1:].strip()}
            if not line:
                if fields:
                    event_id = int(fields["id"]) if "id" in fields else None
                    return fields["event"], event_id, json.loads(fields["data"])
                continue
            key, _, value = line.partition(": ")
            fields[key] = value

    def events(self, until: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """Events (not comments) until `until(events so far)`; each checked against its
        `id:` and `event:` lines."""
        got: list[dict[str, Any]] = []
        while not until(got):
            kind, event_id, data = self.next()
            if kind == "comment":
                continue
            assert (data["type"], data.get("id")) == (kind, event_id), data
            got.append(data)
        return got

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def stream(port: int, query: str = "", headers: dict[str, str] | None = None) -> Iterator[Stream]:
    opened = Stream(port, query, headers)
    try:
        assert opened.response.status == 200
        assert opened.response.getheader("Content-Type", "").startswith("text/event-stream")
        yield opened
    finally:
        opened.close()


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[MockServer]:
    with running_mock_server(tmp_path / "data", ACCOUNTS, FAST) as server:
        yield server


def finished(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda got: sum(e["type"] == "file.finished" for e in got) >= count


def test_files_over_ftp_and_sftp_stream_their_whole_story(srv: MockServer) -> None:
    """Contract 9.1: each file dropped over FTP and SFTP shows session.login, upload.closed,
    file.renamed, file.claimed, mail.written and file.finished (its verdict, once the recap is
    dealt with), in that order, with increasing ids and each event's fields."""
    names = {"ftp": "Promo_20301231120000_HQ.csv", "sftp": "Promo_20301231120500_HQ.csv"}
    with stream(srv.http_port) as sse:
        ftp_drop(srv.ftp_port, names["ftp"], CSV)
        sftp_drop(srv.sftp_port, names["sftp"], CSV)
        got = sse.events(finished(2))
    ids = [e["id"] for e in got]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for protocol, name in names.items():
        tmp = f"/SEND_SMS/{name}.tmp"
        mine = [
            e
            for e in got
            if e.get("protocol") == protocol
            or e.get("name") == name
            or (e["type"] == "mail.written" and e["file_id"] in _ids_of(got, name))
        ]
        kinds = [e["type"] for e in mine]
        assert kinds == [
            "session.login",
            "upload.closed",
            "file.renamed",
            "file.claimed",
            "mail.written",
            "file.finished",
        ], (protocol, mine)
        login, closed, renamed, claimed, _mail, done = mine
        assert all(e["login"] == "demo" and e["time"] for e in mine)
        assert login["address"].startswith("127.0.0.1:")
        assert (closed["name"], closed["bytes"]) == (tmp, len(CSV))
        assert (renamed["name"], renamed["new_name"]) == (tmp, f"/SEND_SMS/{name}")
        assert claimed["name"] == name
        assert (done["status"], done["reason"], done["sms_count"], done["cost"]) == (
            "archived",
            None,
            1,
            15,
        )
        assert done["final_name"] == f"TreatedByMSI_{name}"
        assert done["folder"] == "ARCHIVES"


def _ids_of(got: list[dict[str, Any]], name: str) -> set[int]:
    return {e["file_id"] for e in got if e["type"] == "file.finished" and e["name"] == name}


def test_login_filter_keeps_that_login_and_the_platform(srv: MockServer) -> None:
    """`?login=acme`: acme's events and those of the whole platform (a reset), never demo's."""
    with stream(srv.http_port, "?login=acme") as sse:
        ftp_drop(srv.ftp_port, "x.csv", CSV, rename=False)  # demo: upload.closed
        sftp_drop(srv.sftp_port, "y.csv", CSV, "acme", "acme", rename=False)
        srv.reset()
        got = sse.events(lambda got: any(e["type"] == "reset" for e in got))
    assert [(e["type"], e["login"]) for e in got] == [
        ("session.login", "acme"),
        ("upload.closed", "acme"),
        ("reset", None),
    ]


def test_replay_after_and_last_event_id(srv: MockServer) -> None:
    """`?after=N` and `Last-Event-ID: N` replay the retained events after N, then live ones,
    with no gap and no duplicate; the header wins over `after` (a browser's reconnect)."""
    for credits in (1, 2, 3, 4):
        srv.set_credits("demo", credits)
    ways: list[Callable[[int], tuple[str, dict[str, str]]]] = [
        lambda n: (f"?after={n}", {}),
        lambda n: ("", {"Last-Event-ID": str(n)}),
        lambda n: ("?after=0", {"Last-Event-ID": str(n)}),
    ]
    for way in ways:
        last = srv.last_event_id
        query, headers = way(last - 2)
        with stream(srv.http_port, query, headers) as sse:
            replayed = sse.events(lambda got: len(got) == 2)
            srv.set_credits("demo", 5)
            live = sse.events(lambda got: len(got) == 1)
        ids = [e["id"] for e in replayed + live]
        assert ids == [last - 1, last, last + 1], (query, headers, ids)


def test_events_older_than_the_ring_are_announced_as_lost(srv: MockServer) -> None:
    """More than 10,000 events ago: a `lost` notice (no id) first, then the oldest retained;
    an id of an earlier run (higher than any): `lost`, then every retained event."""
    for _ in range(10_050):
        srv.backend.publish(AccountChanged(login="demo", change="updated"))
    last = srv.last_event_id
    oldest = last - 9_999
    for after, headers in (("1", {}), (str(last + 1000), {"Last-Event-ID": str(last + 1000)})):
        query = "" if headers else f"?after={after}"
        with stream(srv.http_port, query, headers) as sse:
            kind, event_id, notice = sse.next()
            while kind == "comment":
                kind, event_id, notice = sse.next()
            assert (kind, event_id) == ("lost", None)
            assert notice == {"type": "lost", "after": int(after), "oldest": oldest}
            assert sse.events(lambda got: len(got) == 1)[0]["id"] == oldest


def test_keep_alive_comment(srv: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Contract 9.1: a comment line when nothing was sent for the interval (15 s; 0.2 here)."""
    monkeypatch.setattr(events_api, "KEEPALIVE_SECONDS", 0.2)
    with stream(srv.http_port) as sse:
        assert sse.next() == ("comment", None, {"text": "allmysms-mockserver events"})
        assert sse.next() == ("comment", None, {"text": "keep-alive"})
        assert sse.next() == ("comment", None, {"text": "keep-alive"})


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?after=x", "after must be an event id"),
        ("?after=-1", "after must be an event id"),
        ("?since=3", "unknown query parameter 'since'"),
        ("?login=", "login must be a non-empty value"),
    ],
)
def test_bad_parameters_are_400(srv: MockServer, query: str, message: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
    try:
        conn.request("GET", f"/api/events{query}")
        response = conn.getresponse()
        assert response.status == 400
        assert message in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_a_bad_after_is_400_even_when_the_header_wins(srv: MockServer) -> None:
    """docs/spec.md 9.1 (issue 17, found by Schemathesis): `Last-Event-ID` wins over `after=`,
    yet a bad `after=` beside it was ignored; each one given must be an event id."""
    for query, headers, message in (
        ("?after=x", {"Last-Event-ID": "0"}, "after must be an event id"),
        ("?after=1000000000000000000", {"Last-Event-ID": "0"}, "after must be an event id"),
        ("?after=0", {"Last-Event-ID": "x"}, "Last-Event-ID header must be an event id"),
    ):
        conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
        try:
            conn.request("GET", f"/api/events{query}", headers=headers)
            response = conn.getresponse()
            assert response.status == 400, (query, headers)
            assert message in json.loads(response.read())["error"]
        finally:
            conn.close()


def stalled_reader(port: int) -> socket.socket:
    """A client that asks for the stream, then never reads (a small receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # contract 11
    return sock


def flood_until(srv: MockServer, dropped: Callable[[], bool]) -> None:
    def more() -> bool:
        for _ in range(200):
            srv.backend.publish(AccountChanged(login="demo", change="updated"))
        return dropped()

    wait_until(more, timeout=30, what="the stalled reader to be dropped")


def test_a_stalled_reader_is_dropped_then_told(
    srv: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that stops reading is dropped from the bus once its queue is full (the
    publisher never waits); when it reads again it finds `event: overflow` with the last id
    it was sent, then the end of the stream."""
    monkeypatch.setattr(events_api, "QUEUE_EVENTS", 50)
    monkeypatch.setattr(events_api, "GRACE_SECONDS", 20.0)
    srv.set_credits("demo", 1)
    mark = srv.last_event_id  # the stream starts after it
    base = srv.backend.bus.subscribers
    sock = stalled_reader(srv.http_port)
    with contextlib.closing(sock):
        wait_until(lambda: srv.backend.bus.subscribers == base + 1, what="the stream to open")
        flood_until(srv, lambda: srv.backend.bus.subscribers == base)
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    text = data.decode()
    assert "\nevent: overflow\n" in text
    tail = text[text.rindex("event: overflow") :]
    notice = json.loads(tail.split("data: ", 1)[1].split("\n", 1)[0])
    # The id to resume from (Last-Event-ID): the last one sent, or the mark if none was.
    sent = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert notice == {"type": "overflow", "last_id": max(sent, default=mark)}
    assert mark > 0
    assert text.endswith("0\r\n\r\n")  # the chunked body ended cleanly


def test_a_reader_that_never_reads_again_is_disconnected(
    srv: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropped and still not reading: the connection is closed after the grace period, its
    slot freed (the open streams are bounded)."""
    monkeypatch.setattr(events_api, "QUEUE_EVENTS", 50)
    monkeypatch.setattr(events_api, "GRACE_SECONDS", 0.2)
    streams = srv._http.events if srv._http else None
    assert streams is not None
    sock = stalled_reader(srv.http_port)
    with contextlib.closing(sock):
        wait_until(lambda: streams.open == 1, what="the stream to open")
        flood_until(srv, lambda: streams.open == 0)


def test_streams_are_capped(srv: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle readers cannot grow memory without bound: one stream over the cap is a 503."""
    monkeypatch.setattr(events_api, "MAX_STREAMS", 2)
    with stream(srv.http_port), stream(srv.http_port):
        conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
        try:
            conn.request("GET", "/api/events")
            response = conn.getresponse()
            assert response.status == 503
            assert "too many event streams" in json.loads(response.read())["error"]
        finally:
            conn.close()


def test_a_reader_that_leaves_gives_its_slot_back_at_once(srv: MockServer) -> None:
    """The cap counts open streams, not streams whose reader left: 30 short readers one after
    the other (each closing its connection while the stream is idle) under a cap of 2 are
    all served (a new user's trial got 503s: a gone reader was noticed only at the next
    keep-alive, 15 s later)."""
    streams = srv._http.events if srv._http is not None else None
    assert streams is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(events_api, "MAX_STREAMS", 2)
        for _ in range(30):
            with stream(srv.http_port):
                pass
            wait_until(lambda: streams.open == 0, timeout=5, what="the slot to come back")


def test_a_stalled_reader_never_slows_a_burst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 files over FTP while a reader that never reads holds a stream: every verdict comes
    (within a generous bound: a blocked publisher would never finish), and the stream ends
    cleanly at stop."""
    monkeypatch.setattr(events_api, "QUEUE_EVENTS", 20)
    with running_mock_server(tmp_path / "data", ACCOUNTS, FAST) as server:
        sock = stalled_reader(server.http_port)
        with contextlib.closing(sock):
            names = [f"Burst_20301231{i:06d}_HQ.csv" for i in range(40)]
            for name in names:
                ftp_drop(server.ftp_port, name, CSV)
            for name in names:
                assert server.wait_for_file(name, timeout=60)["status"] == "archived"


def test_stop_ends_open_streams_at_once(tmp_path: Path) -> None:
    """A stream open at stop ends cleanly (the last chunk) and does not hold stop up."""
    with running_mock_server(tmp_path / "data", ACCOUNTS, FAST) as server:
        sse = Stream(server.http_port)
        assert sse.next()[0] == "comment"
        ended = threading.Event()

        def read_to_end() -> None:
            with contextlib.suppress(EOFError, OSError):
                while True:
                    sse.next()
            ended.set()

        threading.Thread(target=read_to_end, daemon=True).start()
        stopping = time.monotonic()
    # Well under aiohttp's wait for running handlers (SHUTDOWN_TIMEOUT): the stream ended first.
    assert time.monotonic() - stopping < SHUTDOWN_TIMEOUT - 1
    assert ended.wait(10)
    sse.close()


# -- the same events over FTP and SFTP -----------------------------------------------------------


def session_events(protocol: str, tmp_path: Path) -> list[tuple[Any, ...]]:
    """The events of test_session_logs' scenario (a failed login, a login, an upload, a
    rename, a delete, a refused mkdir, an upload over the limit, a logout, failed logins up
    to the lockout and one refused by it), the protocol and port aside."""
    with running_mock_server(tmp_path / protocol, LOG_ACCOUNTS, LOG_SETTINGS) as server:
        mark = server.last_event_id
        SCENARIOS[protocol](server)
        server.wait_for(lambda e: e.get("reason") == "locked_out", 15, after=mark)
        got = list(server.events(after=mark, timeout=0))
    assert all(e["protocol"] == protocol for e in got)
    return [
        (e["type"], e["login"], e.get("name"), e.get("new_name"), e.get("bytes"), e.get("reason"))
        for e in got
    ]


def test_ftp_and_sftp_publish_the_same_events(tmp_path: Path) -> None:
    """Contract 9.1: the same client session over FTP and SFTP publishes the same events, in
    the same order, with the same fields (protocol and address aside)."""
    ftp, sftp = (session_events(p, tmp_path) for p in ("ftp", "sftp"))
    assert ftp == sftp
    assert ftp == [
        ("session.login_failed", "demo", None, None, None, "credentials"),
        ("session.login", "demo", None, None, None, None),
        ("upload.closed", "demo", "/SEND_SMS/a.tmp", None, len(SMALL), None),
        ("file.renamed", "demo", "/SEND_SMS/a.tmp", "/SEND_SMS/b.tmp", None, None),
        ("file.deleted", "demo", "/SEND_SMS/b.tmp", None, None, None),
        ("upload.refused", "demo", "/SEND_SMS/big.tmp", None, None, "too_large"),
        *[("session.login_failed", "demo", None, None, None, "credentials")] * 2,
        ("session.login_failed", "demo", None, None, None, "locked_out"),
    ]


def test_a_charge_is_an_account_change_with_its_credits(tmp_path: Path) -> None:
    """Contract 9.1: `account.changed` (credits included): an archived file debits its
    account, and the event says so with the credits left; a subscription's file debits
    nothing and changes nothing (the control room used to re-read every account)."""
    accounts = [*ACCOUNTS, {"login": "sub", "password": "sub", "credits": 0, "subscription": True}]
    with running_mock_server(tmp_path / "data", accounts, FAST) as srv:
        mark = srv.last_event_id
        ftp_drop(srv.ftp_port, "Promo_20301231120000_HQ.csv", CSV)
        charged = srv.wait_for(lambda e: e["type"] == "account.changed", timeout=10, after=mark)
        assert (charged["login"], charged["change"], charged["credits"]) == ("demo", "charged", 985)
        assert srv.account("demo")["credits"] == 985
        mark = srv.last_event_id
        ftp_drop(srv.ftp_port, "Sub_20301231120000_HQ.csv", CSV, login="sub", password="sub")
        srv.wait_for_file("Sub_20301231120000_HQ.csv")
        seen = [e["type"] for e in srv.events(after=mark, timeout=0.2)]
        assert "file.finished" in seen
        assert "account.changed" not in seen


@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
def test_a_rename_is_always_published_before_its_claim(srv: MockServer, protocol: str) -> None:
    """docs/spec.md 6.3 (contract 9.1: the events of a file in the order things happened): over
    many quick drops, every file's `file.renamed` comes before its `file.claimed`, never after
    (it did, now and then, while the rename's event was published once the FTP/SFTP command
    had returned: by then the processor could have claimed, even finished, the file)."""
    rounds = 150
    srv.set_credits("demo", 15 * rounds)  # every file archived
    drop = ftp_drop if protocol == "ftp" else sftp_drop
    names = [f"Order{i}_20301231120000_HQ.csv" for i in range(rounds)]
    mark = srv.last_event_id
    for name in names:
        drop(srv.ftp_port if protocol == "ftp" else srv.sftp_port, name, CSV)
    for name in names:
        srv.wait_for_file(name, timeout=30)
    events = list(srv.events(after=mark, timeout=0.5))
    renamed = {
        e["new_name"].rsplit("/", 1)[-1]: e["id"] for e in events if e["type"] == "file.renamed"
    }
    claimed = {e["name"]: e["id"] for e in events if e["type"] == "file.claimed"}
    assert set(renamed) == set(names) == set(claimed)
    late = [name for name in names if not renamed[name] < claimed[name]]
    assert not late, f"{len(late)} of {rounds} renames published after their claim: {late[:5]}"
