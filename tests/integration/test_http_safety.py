"""Contract 11, the safety of the HTTP port, against a real `MockServer` with plain HTTP clients
(http.client, curl): what a web page in the user's browser could send (a cross-site form, a
DNS-rebound name) is refused before any handler runs; `server.api_token` guards every `/api/`
call; scripts and the page served by the server itself keep working."""

from __future__ import annotations

import http.client
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.app import MockServer
from mockserver.config import ConfigError, load_config
from tests.support.harness import running_mock_server
from tests.support.http import Reply
from tests.support.tools import require_tool

ACCOUNTS = [{"login": "demo", "password": "demo", "credits": 100}]
TOKEN = "t0ken-for-tests_only.42"


def send(
    srv: MockServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request with exactly these headers (http.client adds `Host: 127.0.0.1:<port>`
    unless one is given, and nothing else)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
    try:
        given = {k.lower() for k in headers or {}}
        conn.putrequest(method, path, skip_host="host" in given, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    with running_mock_server(tmp_path_factory.mktemp("safety"), ACCOUNTS) as srv:
        yield srv


@pytest.fixture
def srv(server: MockServer) -> MockServer:
    server.reset()
    return server


def own_origin(srv: MockServer) -> str:
    return f"http://127.0.0.1:{srv.http_port}"


def add_temp(srv: MockServer) -> None:
    body = b'{"login": "temp", "password": "x"}'
    reply = send(srv, "POST", "/api/accounts", body, {"Content-Type": "application/json"})
    assert reply.status == 201, reply.body


def exists(srv: MockServer, login: str) -> bool:
    return send(srv, "GET", f"/api/accounts/{login}").status == 200


# -- Origin ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:1", "http://localhost.evil:80"]
)
def test_a_cross_site_form_post_to_reset_is_403_and_resets_nothing(
    srv: MockServer, origin: str
) -> None:
    """Contract 11: "a request whose Origin is another site gets 403": the plain HTML form a
    page on another site (or a sandboxed one: `Origin: null`) can post without asking."""
    add_temp(srv)
    form = {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}
    reply = send(srv, "POST", "/api/reset", b"confirm=yes", form)
    assert reply.status == 403, reply.body
    assert reply.json == {"error": "forbidden: a request from another site (Origin)"}
    assert reply.body.endswith(b"\n")
    assert exists(srv, "temp")


def test_a_cross_site_form_post_with_curl_is_refused(srv: MockServer) -> None:
    """The same form post as curl sends it (`-d` is urlencoded): 403, the account stays."""
    curl = require_tool("curl")
    add_temp(srv)
    url = f"{srv.http_url}/api/reset"
    done = subprocess.run(
        [
            curl,
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            "Origin: https://evil.example",
            "-d",
            "a=1",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout.splitlines()[-1] == "403", done.stdout
    assert exists(srv, "temp")


def test_the_page_of_this_server_and_scripts_without_origin_pass(srv: MockServer) -> None:
    """Same origin (the page this server served, on any loopback spelling of its address) and
    no Origin at all (curl, scripts, a browser's own navigation) pass."""
    json_type = {"Content-Type": "application/json"}
    body = b'{"login": "mine", "password": "x"}'
    same = {"Origin": own_origin(srv), **json_type}
    assert send(srv, "POST", "/api/accounts", body, same).status == 201
    port = srv.http_port
    local = {"Host": f"localhost:{port}", "Origin": f"http://LOCALHOST:{port}"}
    assert send(srv, "GET", "/api/accounts/mine", None, local).status == 200
    assert send(srv, "POST", "/api/reset").status == 200  # curl -X POST: no Origin, no body
    assert not exists(srv, "mine")


# -- content types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
def test_a_json_body_not_sent_as_json_is_415_and_creates_nothing(
    srv: MockServer, content_type: str | None
) -> None:
    """Contract 11: "a body sent to a JSON call must be application/json (415 otherwise)":
    `text/plain` is what a cross-site `fetch` or form can send without a preflight."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    reply = send(srv, "POST", "/api/accounts", b'{"login": "ghost", "password": "x"}', headers)
    assert reply.status == 415, reply.body
    assert "application/json" in reply.json["error"]
    assert not exists(srv, "ghost")


def test_json_calls_take_json_or_no_body(srv: MockServer) -> None:
    """`application/json` (a charset too) passes; an empty POST without a Content-Type passes
    (`curl -X POST .../api/reset`); an empty POST with a form type does not."""
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert send(srv, "PATCH", "/api/accounts/demo", b'{"credits": 7}', charset).status == 200
    assert send(srv, "POST", "/api/reset", b"").status == 200
    empty_form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert send(srv, "POST", "/api/reset", b"", empty_form).status == 415
    text = {"Content-Type": "text/plain"}
    assert send(srv, "PUT", "/api/clock", b'{"advance_seconds": 60}', text).status == 415
    assert send(srv, "POST", "/api/faults", b'{"on": "claim"}', text).status == 415
    assert send(srv, "DELETE", "/api/faults", b"x", text).status == 415
    assert send(srv, "DELETE", "/api/faults").status == 200
    assert send(srv, "GET", "/api/clock").json["frozen"] is False


def test_a_method_a_path_lacks_is_405_whatever_its_body(srv: MockServer) -> None:
    """Contract 11's 415 is for a body sent to a call (issue 17, found by Schemathesis): a
    known path with another method is the router's 405 with `Allow`, an unknown path its 404,
    whatever the `Content-Type` (`TRACE /api/check` with a CSV body was a 415)."""
    csv = {"Content-Type": "text/csv"}
    for method, path, headers in (
        ("TRACE", "/api/check", csv),
        ("PUT", "/api/files", {"Content-Type": "text/plain"}),
        ("PATCH", "/api/clock", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("DELETE", "/api/accounts/demo", csv),
    ):
        reply = send(srv, method, path, b"x", headers)
        assert reply.status == 405, (method, path, reply.body)
        assert reply.headers.get("allow"), (method, path)
    assert send(srv, "POST", "/api/nothing", b"x", {"Content-Type": "text/plain"}).status == 404
    assert exists(srv, "demo")


# -- Host (DNS rebinding) ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/accounts", "/api/mail", "/health", "/"])
def test_a_foreign_host_name_is_403_while_bound_to_loopback(srv: MockServer, path: str) -> None:
    """Contract 11 (DNS rebinding): a page of `rebind.example` whose name the attacker then
    points at 127.0.0.1 talks to the server "same-origin" under its own name: refused by the
    `Host` it sends, with or without an Origin that matches it."""
    port = srv.http_port
    rebound = {"Host": f"rebind.example:{port}"}
    reply = send(srv, "GET", path, None, rebound)
    assert reply.status == 403, reply.body
    assert "Host" in reply.json["error"]
    same_name = {**rebound, "Origin": f"http://rebind.example:{port}"}
    assert send(srv, "GET", path, None, same_name).status == 403


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "127.1.2.3", "LocalHost"]
)
def test_loopback_host_names_pass(srv: MockServer, host: str) -> None:
    headers = {"Host": host.format(port=srv.http_port)}
    assert send(srv, "GET", "/api/accounts", None, headers).status == 200
    assert send(srv, "GET", "/api/mail", None, headers).status == 200


def test_the_host_check_is_off_when_bound_to_every_address(tmp_path: Path) -> None:
    """Bound to `0.0.0.0` (Docker) the server is reached under names it cannot know: the Host
    check is off (docs/security.md: set `server.api_token` there); the Origin check stays."""
    settings = {"server.host": "0.0.0.0"}
    with running_mock_server(tmp_path, ACCOUNTS, settings) as open_srv:
        named = {"Host": f"mock.internal:{open_srv.http_port}"}
        assert send(open_srv, "GET", "/api/accounts", None, named).status == 200
        foreign = {**named, "Origin": "http://evil.example"}
        assert send(open_srv, "GET", "/api/accounts", None, foreign).status == 403


# -- api_token ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    data_dir = tmp_path_factory.mktemp("token")
    with running_mock_server(data_dir, ACCOUNTS, {"server.api_token": TOKEN}) as srv:
        yield srv


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
def test_api_token_without_it_every_api_call_is_401(
    guarded: MockServer, authorization: str | None
) -> None:
    """Contract 11: "Setting server.api_token requires Authorization: Bearer <token> on every
    /api/ call": 401 JSON with `WWW-Authenticate: Bearer` otherwise, and nothing done."""
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (("GET", "/api/accounts"), ("POST", "/api/reset"), ("GET", "/api/x")):
        reply = send(guarded, method, path, None, headers)
        assert reply.status == 401, (method, path, reply.body)
        assert reply.headers["www-authenticate"].startswith("Bearer")
        assert reply.json["error"].startswith("unauthorised")


def test_api_token_with_it_calls_work_and_health_and_page_stay_open(guarded: MockServer) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert send(guarded, "GET", "/api/accounts", None, bearer).status == 200
    assert (
        send(guarded, "GET", "/api/accounts", None, {"Authorization": f"bearer {TOKEN}"}).status
        == 200
    )
    assert send(guarded, "GET", "/health").json["status"] == "ok"  # Docker's health check
    page = send(guarded, "GET", "/")
    assert (page.status, page.headers["content-type"]) == (200, "text/html; charset=utf-8")


def test_api_token_in_the_query_opens_the_event_stream_only(guarded: MockServer) -> None:
    """A browser's `EventSource` cannot send headers: `GET /api/events?access_token=<token>`
    opens the stream; on any other call the query token counts for nothing."""
    conn = http.client.HTTPConnection("127.0.0.1", guarded.http_port, timeout=30)
    try:
        conn.request("GET", f"/api/events?access_token={TOKEN}&after=0")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type", "").startswith("text/event-stream")
    finally:
        conn.close()
    wrong = send(guarded, "GET", "/api/events?access_token=nope")
    assert wrong.status == 401
    elsewhere = send(guarded, "GET", f"/api/accounts?access_token={TOKEN}")
    assert elsewhere.status == 401


def test_without_a_token_a_token_sent_is_ignored(srv: MockServer) -> None:
    """docs/spec.md 11 (issue 17, found by Schemathesis): with no `server.api_token` a token
    counts for nothing, the header as the query: `GET /api/events?access_token=` (listed in
    the OpenAPI document) was a 400 "unknown query parameter"; it opens the stream."""
    bearer = {"Authorization": "Bearer whatever"}
    assert send(srv, "GET", "/api/accounts", None, bearer).status == 200
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
    try:
        conn.request("GET", "/api/events?access_token=whatever&after=0")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type", "").startswith("text/event-stream")
    finally:
        conn.close()
    # Anywhere else it is still an unknown parameter (a typo is not "everything").
    assert send(srv, "GET", "/api/accounts?access_token=whatever").status == 400


def test_the_token_is_never_logged_or_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The token stays out of logs, reprs and configuration errors."""
    caplog.set_level(logging.DEBUG)
    with running_mock_server(tmp_path, ACCOUNTS, {"server.api_token": TOKEN}) as srv:
        send(srv, "GET", f"/api/events?access_token={TOKEN}x")
        send(srv, "GET", "/api/accounts", None, {"Authorization": f"Bearer {TOKEN}"})
        send(srv, "GET", "/api/accounts", None, {"Origin": "http://e.example"})
        assert TOKEN not in repr(srv.config)
    assert TOKEN not in caplog.text
    env = {"ALLMYSMS_MOCK_SERVER_API_TOKEN": TOKEN}
    assert load_config(None, env=env).server.api_token == TOKEN
    with pytest.raises(ConfigError) as bad:
        load_config(None, env={}, overrides={"server.api_token": f"{TOKEN} with spaces"})
    assert "server.api_token" in str(bad.value)
    assert TOKEN not in str(bad.value)
