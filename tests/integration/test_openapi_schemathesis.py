"""Issue 17, point 1: a property-based run drives every operation of `GET /api/openapi.json`
(contract 6: "an OpenAPI 3.1 document of every call") against a live server, and finds no 5xx
and no answer that breaks the document.

Schemathesis loads the document from the running server (not from `openapi.document()`),
then, for each operation, sends the cases Hypothesis generates from it: valid ones, invalid ones
(a wrong type, a value out of range, a missing field) and the coverage phase's boundary values
and undeclared methods. Every answer is checked:

- `not_a_server_error`: no 5xx (docs/api.md: an unexpected failure is a logged 500);
- `status_code_conformance`, `content_type_conformance`, `response_schema_conformance`,
  `response_headers_conformance`: the status is documented for the call, and the body (a JSON
  answer, or each event of the stream) matches its schema;
- `negative_data_rejection`: a request the document calls invalid is refused (4xx);
- `positive_data_acceptance`: a request the document calls valid is not a 400, except on the
  three calls whose rule no schema can state (`POSITIVE_LEFT_OUT`);
- `unsupported_method`: a method the path does not list is a 405.

Bounded and reproducible: `MAX_EXAMPLES` cases an operation on top of the coverage phase's,
derandomized from `SEED` (the same cases every run, in CI too), no Hypothesis database, every
request with a timeout, and the whole run under `RUN_TIMEOUT` (pytest-timeout).

The requests are a legitimate local client's (contract 11): `Host` is `127.0.0.1:<port>`, no
`Origin` (a script or curl), each body with the type its call takes (`application/json`, or
`text/csv` / `application/octet-stream` for the CSV calls), no token (none is configured).

State: a case that changes the platform (any method but GET) is followed by `POST /api/reset`,
so each case starts from the configured platform (accounts, no files, no fault rule, the real
clock): a fault rule or a frozen clock left by one case cannot change what the next one sees.

Long waits are pinned: `GET /api/files?wait=` to 0.05 s; `GET /api/events` streams forever, so
every case sends `Last-Event-ID: 0` (a `reset` event is always retained to replay; `after=` is
still generated, and checked even when the header wins) and the stream is read up to its first
event (`max-stream-events`), each case within `request-timeout`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from mockserver.app import MockServer
from mockserver.servers.http.openapi import document
from tests.support.harness import running_mock_server

ACCOUNTS = [{"login": "demo", "password": "demo", "credits": 15000, "email": "demo@example.com"}]
SEED = 17
MAX_EXAMPLES = 25
RUN_TIMEOUT = 240  # seconds, the whole run: about 30 s on an idle 2-core machine
METHODS = ("get", "put", "post", "delete", "patch")

# Calls whose valid values no JSON Schema can state, left out of `positive_data_acceptance`
# only (every other check runs on them), with the rule the server applies:
POSITIVE_LEFT_OUT = {
    # `wait=` needs `name=` (docs/spec.md 6.1): a dependency between parameters.
    ("GET", "/api/files"): "wait needs name",
    # the FTP upload policy: printable, not `.tmp`, at most 219 UTF-8 bytes (contract 5.3).
    ("POST", "/api/files"): "the name rules of an upload",
    # `phone=` is normalised by the platform's number rules (contract 5.6).
    ("GET", "/api/messages"): "the platform's number rules",
}


def config() -> dict[str, Any]:
    """Schemathesis' configuration (the keys of its `schemathesis.toml`)."""
    on = {"enabled": True}
    return {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "mode": "all",
        },
        "request-timeout": 10,
        "max-stream-events": 1,
        "checks": {
            "enabled": False,
            "not_a_server_error": on,
            "status_code_conformance": on,
            "content_type_conformance": on,
            "response_schema_conformance": on,
            "response_headers_conformance": on,
            "negative_data_rejection": on,
            "positive_data_acceptance": on,
            "unsupported_method": on,
        },
        "operations": [
            {"include-path": "/api/files", "include-method": "GET", "parameters": {"wait": 0.05}},
            {
                "include-path": "/api/events",
                "include-method": "GET",
                "request-timeout": 5,
                "parameters": {"header.Last-Event-ID": "0"},
            },
            *(
                {
                    "include-path": path,
                    "include-method": method,
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                }
                for method, path in POSITIVE_LEFT_OUT
            ),
        ],
    }


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    with running_mock_server(tmp_path_factory.mktemp("schemathesis"), ACCOUNTS) as server:
        server.reset()  # a `reset` event (platform-wide) for every event stream to replay
        yield server


@pytest.fixture(scope="module")
def live_schema(srv: MockServer) -> schemathesis.BaseSchema:
    """The document as the running server serves it, aimed at that server."""
    loaded = schemathesis.openapi.from_url(
        f"{srv.http_url}/api/openapi.json",
        config=schemathesis.Config.from_dict(config()),
        timeout=10,
    )
    loaded.config.update(base_url=srv.http_url)
    return loaded


schema = schemathesis.pytest.from_fixture("live_schema")


@pytest.mark.timeout(RUN_TIMEOUT)
@schema.parametrize()
def test_every_operation_holds_to_the_document(case: schemathesis.Case, srv: MockServer) -> None:
    if case.path == "/api/events" and "Last-Event-ID" not in (case.headers or {}):
        # The coverage phase leaves optional headers out: a stream with nothing to replay
        # would wait for a live event until the request's timeout.
        case.headers = {**(case.headers or {}), "Last-Event-ID": "0"}
    try:
        case.call_and_validate()
    finally:
        if case.method.upper() != "GET":
            srv.reset()


def test_the_run_covers_every_documented_operation(live_schema: schemathesis.BaseSchema) -> None:
    """Nothing is left out of the run: its operations are every call of the document, and
    the calls left out of one check exist."""
    driven = set()
    for result in live_schema.get_all_operations():
        operation = result.ok()
        driven.add((operation.method.upper(), operation.path))
    documented = {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }
    assert driven == documented
    assert set(POSITIVE_LEFT_OUT) <= documented
