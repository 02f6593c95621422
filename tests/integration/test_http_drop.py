"""Contract 10 over HTTP: `POST /api/files` drops a CSV file into SEND_SMS ("it is processed
exactly like an FTP upload"), and `GET /` and `GET /ui/{file}` serve the control room's files,
read with a plain HTTP client (http.client) against a real `MockServer`."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mockserver.app import MockServer
from mockserver.servers.http import page
from tests.support.harness import running_mock_server
from tests.support.http import Reply, call
from tests.support.serve import ftp_drop
from tests.support.waiting import wait_until

MAX_BYTES = 2000
ACCOUNTS = [{"login": "demo", "password": "demo", "credits": 100_000}]
NAME = "Promo_20301231120000_HQ.csv"
# Two valid rows with a sender, a message too long (line 3) and a bad number (line 4): a
# verdict with every part to compare.
CSV = (
    b'"0612345678";"Bonjour STOP au 36180";"MaBoutique"\n'
    b'"+33 7 11 22 33 44";"Salut"\n'
    b'"0698765432";"' + b"x" * 200 + b'"\n'
    b'"12";"Bonjour"\n'
)
# Per-drop values: the id, the times and the file's identity on disk.
VARYING = {"id", "received_at", "processed_at", "processing_ms"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    data_dir = tmp_path_factory.mktemp("http-drop")
    with running_mock_server(data_dir, ACCOUNTS, {"limits.max_file_bytes": MAX_BYTES}) as srv:
        yield srv


@pytest.fixture
def srv(server: MockServer) -> MockServer:
    server.reset()
    return server


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    """A platform that leaves a complete file in SEND_SMS for an hour (pickup delay)."""
    data_dir = tmp_path_factory.mktemp("http-drop-held")
    settings = {"limits.max_file_bytes": MAX_BYTES, "processing.pickup_delay_seconds": 3600}
    with running_mock_server(data_dir, ACCOUNTS, settings) as srv:
        yield srv


def drop(
    srv: MockServer,
    data: bytes,
    name: str = NAME,
    login: str = "demo",
    content_type: str | None = "text/csv",
    **kwargs: Any,
) -> Reply:
    path = f"/api/files?login={quote(login)}&name={quote(name)}"
    if content_type is None:  # `call` would name one
        return raw(srv, "POST", path, data)
    return call(srv, "POST", path, data, {"Content-Type": content_type}, **kwargs)


def raw(srv: MockServer, method: str, path: str, body: bytes | None = None) -> Reply:
    """A request sent exactly as written: no header added, no `..` resolved in the path."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def send_sms(srv: MockServer, login: str = "demo") -> list[str]:
    return sorted(p.name for p in srv.folder(login, "SEND_SMS").iterdir())


def sms_of(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in ("id", "file_id")}


def verdict_of(srv: MockServer, name: str = NAME) -> dict[str, Any]:
    reply = call(srv, "GET", f"/api/files?name={quote(name)}&wait=20")
    assert reply.status == 200, reply.body
    (found,) = reply.json["files"]
    return {k: v for k, v in found.items() if k not in VARYING}


def test_drop_is_judged_and_recorded_like_an_ftp_upload(srv: MockServer) -> None:
    """Contract 10: a file dropped from the page "is processed exactly like an FTP upload":
    201 with login, name and bytes; then the same verdict, record, SMS and archived bytes as
    the same bytes uploaded over FTP under the same name."""
    reply = drop(srv, CSV)
    assert reply.status == 201, reply.body
    assert reply.json == {"login": "demo", "name": NAME, "bytes": len(CSV)}
    assert reply.body.endswith(b"\n")
    over_http = verdict_of(srv)
    http_sms = [sms_of(m) for m in srv.messages()]
    archived = srv.folder("demo", "ARCHIVES") / over_http["final_name"]
    http_bytes = archived.read_bytes()

    srv.reset()
    ftp_drop(srv.ftp_port, NAME, CSV)
    over_ftp = verdict_of(srv)
    ftp_sms = [sms_of(m) for m in srv.messages()]

    assert over_http == over_ftp
    assert (over_http["status"], over_http["sms_count"]) == ("archived", 2)
    assert [r["line"] for r in over_http["rejected"]] == [3, 4]
    assert http_sms == ftp_sms
    assert (
        http_bytes == CSV == (srv.folder("demo", "ARCHIVES") / over_ftp["final_name"]).read_bytes()
    )


def test_drop_publishes_upload_closed_then_file_renamed_with_protocol_http(
    srv: MockServer,
) -> None:
    """Contract 9.1 for the HTTP drop: `upload.closed` (the temporary `.tmp` name, the bytes)
    then `file.renamed` (to the name asked), both with protocol "http", then the verdict."""
    mark = srv.last_event_id
    assert drop(srv, CSV).status == 201
    closed = srv.wait_for(lambda e: e["type"] == "upload.closed", after=mark)
    renamed = srv.wait_for(lambda e: e["type"] == "file.renamed", after=mark)
    finished = srv.wait_for(lambda e: e["type"] == "file.finished", after=mark)
    assert (closed["protocol"], closed["login"], closed["bytes"]) == ("http", "demo", len(CSV))
    assert closed["name"].startswith("/SEND_SMS/")
    assert closed["name"].endswith(".tmp")
    assert (renamed["protocol"], renamed["name"]) == ("http", closed["name"])
    assert renamed["new_name"] == f"/SEND_SMS/{NAME}"
    # Published under the lock the pickup checks first (docs/spec.md 6.3): before the claim.
    claimed = srv.wait_for(lambda e: e["type"] == "file.claimed", after=mark)
    assert closed["id"] < renamed["id"] < claimed["id"] < finished["id"]
    assert finished["status"] == "archived"


def test_an_existing_name_is_409_and_never_overwritten(held: MockServer) -> None:
    """Contract 4, "A rename never overwrites an existing file": a drop under a name SEND_SMS
    holds is 409; the file there keeps its bytes and no temporary file is left."""
    held.reset()
    assert drop(held, CSV).status == 201
    reply = drop(held, b'"0612345678";"Autre"\n')
    assert reply.status == 409, reply.body
    assert "already exists" in reply.json["error"]
    assert send_sms(held) == [NAME]
    assert (held.folder("demo", "SEND_SMS") / NAME).read_bytes() == CSV


def test_a_file_over_the_size_limit_is_413_and_leaves_nothing(srv: MockServer) -> None:
    """`limits.max_file_bytes` holds for the HTTP drop as for FTP and SFTP: 413, with or
    without a Content-Length, the partial file removed and `upload.refused` too_large; a file
    of exactly the limit is taken."""
    mark = srv.last_event_id
    big = b"x" * (MAX_BYTES + 1)
    assert drop(srv, big).status == 413
    chunks = iter([b"y" * 1500, b"y" * 1500])
    reply = drop(srv, chunks, name="Chunked_20301231120000_HQ.csv", chunked=True)
    assert reply.status == 413, reply.body
    assert reply.json["error"] == f"file too large: the limit is {MAX_BYTES} bytes"
    refused = srv.wait_for(
        lambda e: e["type"] == "upload.refused" and e["protocol"] == "http", after=mark
    )
    assert refused["reason"] == "too_large"
    assert send_sms(srv) == []
    at_limit = CSV + b"\n" * (MAX_BYTES - len(CSV))
    assert drop(srv, at_limit, name="Full_20301231120000_HQ.csv").json["bytes"] == MAX_BYTES


def test_a_body_cut_short_leaves_nothing(srv: MockServer) -> None:
    """A client gone before its announced body is complete: the partial file is removed,
    never judged, and `upload.refused` says `cut` (as for an FTP transfer cut)."""
    mark = srv.last_event_id
    head = (
        f"POST /api/files?login=demo&name={NAME} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: text/csv\r\nContent-Length: 1500\r\n\r\n"  # under MAX_BYTES
    )
    with socket.create_connection(("127.0.0.1", srv.http_port), timeout=10) as sock:
        sock.sendall(head.encode() + CSV)
    refused = srv.wait_for(lambda e: e["type"] == "upload.refused", after=mark)
    assert (refused["protocol"], refused["reason"]) == ("http", "cut")
    assert refused["name"].endswith(".tmp")
    wait_until(lambda: send_sms(srv) == [], what="the partial file removed")
    assert srv.open_writes.snapshot() == set()


@pytest.mark.parametrize(
    "name",
    ["", "a/b.csv", "../x.csv", "..", "x\\y.csv", "Promo.tmp", "bad\x01name.csv", "a\nb.csv"],
)
def test_a_name_that_is_not_a_plain_file_name_is_400(srv: MockServer, name: str) -> None:
    """The name is a plain file name of SEND_SMS: no folder, no `..`, printable, and not a
    `.tmp` (contract 5.1: never processed): 400 and nothing written."""
    reply = drop(srv, CSV, name=name)
    assert reply.status == 400, reply.body
    assert reply.json["error"]
    assert send_sms(srv) == []


def test_missing_or_unknown_parameters_and_logins(srv: MockServer) -> None:
    """Contract 6: "unknown login → 404"; a missing login or an unknown parameter is 400."""
    unknown = drop(srv, CSV, login="nobody")
    assert unknown.status == 404
    assert unknown.json == {"error": "unknown login 'nobody'"}
    no_login = call(srv, "POST", f"/api/files?name={NAME}", CSV, {"Content-Type": "text/csv"})
    assert no_login.status == 400
    typo = call(srv, "POST", f"/api/files?login=demo&nom={NAME}", CSV)
    assert typo.status == 400
    assert send_sms(srv) == []


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; b=x",
        "application/json",
    ],
)
def test_a_body_that_is_not_csv_bytes_is_415(srv: MockServer, content_type: str | None) -> None:
    """Contract 11: the drop takes `text/csv` or `application/octet-stream` only; a form
    (what a cross-site page can send without asking) or JSON is 415 and nothing is written."""
    reply = drop(srv, CSV, content_type=content_type)
    assert reply.status == 415, reply.body
    assert "text/csv" in reply.json["error"]
    assert send_sms(srv) == []


def test_octet_stream_and_a_charset_are_taken(srv: MockServer) -> None:
    assert drop(srv, CSV, content_type="application/octet-stream").status == 201
    other = "Autre_20301231120000_HQ.csv"
    assert drop(srv, CSV, name=other, content_type="text/csv; charset=utf-8").status == 201
    assert verdict_of(srv)["status"] == "archived"
    assert verdict_of(srv, other)["status"] == "archived"


# -- the page's files ----------------------------------------------------------------------------


def get(srv: MockServer, path: str) -> Reply:
    return raw(srv, "GET", path)


def test_the_page_is_served_with_a_strict_policy(server: MockServer) -> None:
    """Contract 10, `GET /`: `mockserver/web/index.html` as read through importlib.resources
    (so from a wheel too), as UTF-8 HTML, with a Content-Security-Policy that allows this
    server only (no inline script or style, no other host), and no sniffing, framing or
    referrer."""
    reply = get(server, "/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    index = resources.files("mockserver").joinpath("web", "index.html")
    assert reply.body == index.read_bytes()
    csp = [p.strip() for p in reply.headers["content-security-policy"].split(";")]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in reply.headers["content-security-policy"]
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] == "no-referrer"
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["cache-control"] == "no-cache"
    assert get(server, "/?token=abc").body == reply.body  # the page's own query


@pytest.fixture
def web_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page's folder replaced by one with a file of every type, and a secret beside it."""
    folder = tmp_path / "web"
    folder.mkdir()
    files = {
        "index.html": b"<!doctype html>",
        "style.css": b"body{}",
        "app.js": b"export{}",
        "logo.svg": b"<svg/>",
        "logo.png": b"\x89PNG\r\n",
        "notes.txt": b"not a page file",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "sub").mkdir()
    (folder / "sub" / "x.css").write_bytes(b"a{}")
    (folder / ".hidden.css").write_bytes(b"b{}")
    (tmp_path / "secret.css").write_bytes(b"c{}")
    monkeypatch.setattr(page, "web_folder", lambda: folder)
    return folder


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("logo.png", "image/png"),
        ("index.html", "text/html; charset=utf-8"),
    ],
)
def test_ui_files_have_their_content_type(
    server: MockServer, web_dir: Path, name: str, content_type: str
) -> None:
    reply = get(server, f"/ui/{name}")
    assert reply.status == 200
    assert reply.headers["content-type"] == content_type
    assert reply.body == (web_dir / name).read_bytes()
    assert "default-src 'self'" in reply.headers["content-security-policy"]
    assert reply.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../secret.css",
        "/ui/..%2Fsecret.css",
        "/ui/%2e%2e%2fsecret.css",
        "/ui/..%5Csecret.css",
        "/ui/sub/x.css",
        "/ui/sub",
        "/ui/.hidden.css",
        "/ui/notes.txt",
        "/ui/missing.css",
        "/ui/",
        "/ui/style.css%00.png",
        "/ui/%2Fetc%2Fpasswd",
        "/ui//etc/passwd",
    ],
)
def test_traversal_and_other_files_are_404(server: MockServer, web_dir: Path, path: str) -> None:
    """Only plain file names of the page's folder, of a known type: no `..`, no folder, no
    hidden file, nothing outside; 404 JSON otherwise."""
    reply = get(server, path)
    assert reply.status == 404, (path, reply.body)
    assert reply.headers["content-type"].startswith("application/json")
    assert b"c{}" not in reply.body
    assert b"a{}" not in reply.body
