"""`GET /api/openapi.json`: a valid OpenAPI 3.1 document (openapi-spec-validator), of exactly
the routes the app registers (so it cannot rot), whose schemas the live answers match."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import jsonschema  # openapi-spec-validator's dependency; both in the dev extra
import openapi_spec_validator
import pytest

from mockserver import __version__
from mockserver.app import MockServer
from mockserver.servers.http.openapi import document
from tests.support.harness import running_mock_server
from tests.support.http import call

GOOD = "Promo_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour STOP au 36180";"MaBoutique"\n"0123456789";"fixe"\n'
ACCOUNTS = [{"login": "demo", "password": "demo", "credits": 1000, "email": "demo@example.com"}]
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    with running_mock_server(tmp_path_factory.mktemp("openapi"), ACCOUNTS) as server:
        yield server


def served(srv: MockServer) -> dict[str, Any]:
    reply = call(srv, "GET", "/api/openapi.json")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.body.endswith(b"}\n")
    doc: dict[str, Any] = reply.json
    return doc


def test_the_document_is_valid_openapi_3_1(srv: MockServer) -> None:
    doc = served(srv)
    assert doc == document()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["version"] == __version__
    openapi_spec_validator.validate(doc)


def test_every_registered_route_is_documented_and_nothing_else(srv: MockServer) -> None:
    registered: set[tuple[str, str]] = set()
    for route in srv._http._web_app().router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD beside every GET
            continue
        assert route.resource is not None
        registered.add((route.resource.canonical, route.method.lower()))
    documented = {
        (path, method)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }
    assert registered == documented


def test_every_path_parameter_is_declared() -> None:
    for path, item in document()["paths"].items():
        names = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}, path


SCHEMA_DIALECT = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
COMPONENTS = {"components": document()["components"]}


def schema_of(
    path: str, method: str, status: int, media: str = "application/json"
) -> dict[str, Any]:
    """The documented JSON schema of that answer, resolvable on its own."""
    doc = document()
    response = doc["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"][media]["schema"]
    return {**SCHEMA_DIALECT, **schema, **COMPONENTS}


def check(srv: MockServer, method: str, url: str, status: int, body: Any = None) -> Any:
    reply = call(srv, method.upper(), url, body)
    assert reply.status == status, reply.body
    template = url.split("?", 1)[0]
    if template.startswith("/api/accounts/"):
        template = "/api/accounts/{login}"
    elif template.startswith("/api/faults/"):
        template = "/api/faults/{id}"
    schema = schema_of(template, method, status)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(reply.json)
    return reply.json


def test_live_answers_match_the_documented_schemas(srv: MockServer) -> None:
    srv.reset()
    check(srv, "get", "/health", 200)
    check(srv, "post", "/api/accounts", 201, {"login": "acme", "password": "pw"})
    check(srv, "patch", "/api/accounts/acme", 200, {"credits": 5})
    check(srv, "get", "/api/accounts/acme", 200)
    check(srv, "post", "/api/faults", 201, {"on": "mail", "action": "fail", "times": 0})
    rule = check(srv, "post", "/api/faults", 201, {"on": "upload", "action": "error"})
    dropped = f"/api/files?login=demo&name={GOOD}"
    check(srv, "post", dropped, 201, ROWS)
    check(srv, "get", f"/api/files?name={GOOD}&wait=30", 200)
    check(srv, "post", f"/api/check?name={GOOD}&login=demo", 200, ROWS)
    check(srv, "post", "/api/check?name=x.tmp", 200, ROWS)
    for url in ("/api/accounts", "/api/files", "/api/messages", "/api/mail", "/api/faults"):
        check(srv, "get", url, 200)
    check(srv, "get", "/api/messages?phone=0612345678&status=scheduled", 200)
    check(srv, "get", "/api/clock", 200)
    check(srv, "put", "/api/clock", 200, {"advance_seconds": 60})
    check(srv, "put", "/api/clock", 200, {"real": True})
    check(srv, "get", "/api/processing", 200)
    check(srv, "post", "/api/processing/advance", 200, {})
    check(srv, "delete", f"/api/faults/{rule['id']}", 200)
    check(srv, "delete", "/api/faults", 200)
    check(srv, "post", "/api/reset", 200)


def test_errors_match_the_documented_error_shape(srv: MockServer) -> None:
    check(srv, "get", "/api/accounts/nobody", 404)
    check(srv, "get", "/api/files?status=sent", 400)
    check(srv, "get", "/api/files?name=Nope.csv&wait=0.1", 404)
    # Issue 17 (Schemathesis): the unknown login's 404 has no last_id; the document said so.
    assert "last_id" not in check(srv, "get", "/api/files?login=nobody", 404)
    check(srv, "post", "/api/accounts", 409, {"login": "demo", "password": "x"})
    check(srv, "post", "/api/processing/advance", 404, {"name": "Nope.csv"})
    check(srv, "delete", "/api/faults/99", 404)


def test_a_streamed_event_matches_the_documented_event(srv: MockServer) -> None:
    """Issue 17 (Schemathesis): the stream's `schema` is one event (OpenAPI 3.2's `itemSchema`,
    as tools read it in 3.1), its `data` one JSON object of the `Event` schema; the document
    said "a string" of the whole stream."""
    srv.reset()  # a `reset` event to replay
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
    try:
        conn.request("GET", "/api/events?after=0")
        resp = conn.getresponse()
        assert resp.status == 200
        fields: dict[str, str] = {}
        while "data" not in fields:
            line = resp.readline().decode().rstrip("\n")
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
    finally:
        conn.close()
    schema = schema_of("/api/events", "get", 200, "text/event-stream")
    jsonschema.Draft202012Validator(schema).validate(fields)
    event = {**schema, "$ref": "#/components/schemas/Event"}
    jsonschema.Draft202012Validator(event).validate(json.loads(fields["data"]))


# Request bodies the document calls valid (True) or not, and what the server answers: each
# pair was a disagreement Schemathesis found (issue 17): the document now says what the server
# takes, so a client generated from it sends nothing the server refuses.
AGREEMENT = [
    ("post", "/api/accounts", {"login": "ok", "password": "x", "email": ""}, False),
    ("post", "/api/accounts", {"login": "a..b", "password": "x"}, False),
    ("post", "/api/accounts", {"login": "ok", "password": "x\u0000"}, False),
    ("post", "/api/accounts", {"login": "dot.ted", "password": "x", "credits": 282.0}, True),
    ("patch", "/api/accounts/demo", {"email": "x@y"}, True),
    ("patch", "/api/accounts/demo", {"email": "not an address"}, False),
    ("put", "/api/clock", {"now": ""}, False),
    ("put", "/api/clock", {"advance_seconds": 1e12}, False),
    ("put", "/api/clock", {"now": "2030-07-16T12:00:00+02:00"}, True),
    ("post", "/api/processing/advance", {"login": ""}, False),
    ("post", "/api/processing/advance", {"name": None}, False),
    ("post", "/api/processing/advance", {"login": "demo"}, True),
    ("post", "/api/faults", {"on": "mail", "action": "fail", "seed": None}, False),
    ("post", "/api/faults", {"on": "mail", "action": "fail", "seconds": 1}, False),
    ("post", "/api/faults", {"on": "mail", "action": "fail", "probability": 1, "times": 2}, False),
    ("post", "/api/faults", {"on": "upload", "action": "error", "code": 200}, False),
    ("post", "/api/faults", {"on": "judge", "action": "verdict"}, False),
    ("post", "/api/faults", {"on": "claim", "action": "crash", "protocol": "ftp"}, False),
    ("post", "/api/faults", {"on": "mail", "action": "fail", "login": ""}, False),
    ("post", "/api/faults", {"on": "mail", "action": "fail", "colour": "red"}, False),
    ("post", "/api/faults", {"on": "login", "action": {}}, False),
    ("post", "/api/faults", {"on": "upload", "action": "truncate", "bytes": 9, "times": 2.0}, True),
    ("post", "/api/faults", {"on": "judge", "action": "verdict", "reason": "Empty_File"}, True),
    ("post", "/api/faults", {"on": "mail", "action": "fail", "probability": 0.5, "seed": 3}, True),
]


@pytest.mark.parametrize(("method", "url", "body", "valid"), AGREEMENT)
def test_the_request_schemas_say_what_the_server_takes(
    srv: MockServer, method: str, url: str, body: Any, valid: bool
) -> None:
    srv.reset()
    template = "/api/accounts/{login}" if url.startswith("/api/accounts/") else url
    content = document()["paths"][template][method]["requestBody"]["content"]
    schema = {**SCHEMA_DIALECT, **content["application/json"]["schema"], **COMPONENTS}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER  # `date-time`, as clients check
    errors = list(jsonschema.Draft202012Validator(schema, format_checker=checker).iter_errors(body))
    assert (not errors) is valid, errors
    reply = call(srv, method.upper(), url, body)
    assert (reply.status < 400) is valid, reply.body
    srv.reset()


def test_the_documented_bodies_are_required_and_csv_bodies_are_raw() -> None:
    """Issue 17 (Schemathesis): `POST /api/processing/advance` takes `{}` at least (the
    document said the body was optional; the server answers 400 without one); a CSV body is
    raw bytes, any bytes (no schema: a number sent as text is the same bytes)."""
    paths = document()["paths"]
    assert paths["/api/processing/advance"]["post"]["requestBody"]["required"] is True
    for path in ("/api/files", "/api/check"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert content == {"text/csv": {}, "application/octet-stream": {}}


def test_the_documented_pages_are_served(srv: MockServer) -> None:
    page = call(srv, "GET", "/")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    paths = document()["paths"]
    assert "text/html" in paths["/"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in paths["/api/events"]["get"]["responses"]["200"]["content"]
