"""`GET /api/openapi.json` (contract 6): an OpenAPI 3.1 document of every HTTP call, kept here
as plain Python data. docs/api.md is the prose; tests/unit/test_openapi.py checks that every
route the app registers is documented (and nothing else), that the document is valid
OpenAPI 3.1, and that live answers match the documented shapes, so the two cannot drift."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from mockserver.servers.http.openapi_schemas import SCHEMAS, STR, TEXT, Schema, ref
from mockserver.servers.http.page import OPENAPI_PATH
from mockserver.servers.http.validation import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_NAME,
    MAX_WAIT_SECONDS,
    json_reply,
    parse_query,
    to_json,
)

PATH = OPENAPI_PATH

ERRORS = {
    400: "a bad query (bad value, unknown or repeated parameter) or body",
    401: "server.api_token is set and the call lacks Authorization: Bearer <token>",
    403: "a request from another site (Origin), or a foreign Host on a loopback server",
    404: "unknown login, route or id",
    405: "a known route with another method (see Allow)",
    409: "a conflict (the name or login exists, too many rules)",
    413: "a body over its limit",
    415: "a body of the wrong Content-Type",
    500: "an unexpected failure (logged; never a traceback)",
    503: "the data dir is gone (platform storage unavailable), or the server is stopping",
    507: "the file could not be written (disk full)",
}
COMMON = (400, 401, 403, 500, 503)


def json_body(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def answer(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": json_body(schema)}


def operation(
    summary: str,
    ok: dict[int, Schema],
    *,
    params: tuple[Schema, ...] = (),
    body: Schema | None = None,
    errors: tuple[int, ...] = (),
    public: bool = False,
) -> Schema:
    """One call: its answers (`ok`: status -> response), parameters, body and error codes;
    `public`: open even with `server.api_token` set."""
    responses: dict[str, Schema] = {str(k): v for k, v in ok.items()}
    for code in sorted(set(errors) | ({400, 403, 500} if public else set(COMMON))):
        responses.setdefault(str(code), {"$ref": f"#/components/responses/E{code}"})
    op: Schema = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


def query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def in_path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


ID: Schema = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}  # up to 18 digits
LOGIN_Q = query("login", TEXT, "only this account's (404 if unknown)")
LIMIT_Q = query(
    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, ""
)
OFFSET_Q = query("offset", {"type": "integer", "minimum": 0, "maximum": 10**12, "default": 0}, "")
PLAIN_NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME,
    "pattern": "^[^/\\\\\\x00]+$",
}
NAME_Q = query("name", PLAIN_NAME, "the file name", required=True)
# Any bytes: a CSV is judged (an unreadable one is an invalid file), never refused for its
# content. No schema, as OpenAPI 3.1 describes a raw body: none could be broken.
CSV = {
    "required": True,
    "description": "the file's bytes, as an FTP upload would carry them",
    "content": {"text/csv": {}, "application/octet-stream": {}},
}


def json_request(name: str) -> Schema:
    return {"required": True, "content": json_body(ref(name))}


def paths() -> dict[str, Schema]:
    files_params = (
        LOGIN_Q,
        query("status", {"enum": ["archived", "invalid"]}, ""),
        query("name", TEXT, "the original or the final name"),
        query("after_id", ID, "only files with a higher id (a last_id read before)"),
        query(
            "wait",
            {"type": "number", "minimum": 0},
            f"seconds (capped at {MAX_WAIT_SECONDS:g}), with name=: answer once it has a verdict",
        ),
        LIMIT_Q,
        OFFSET_Q,
    )
    messages_params = (
        LOGIN_Q,
        query("campaign", TEXT, "the campaign part of the file name"),
        query("phone", TEXT, "any accepted spelling; normalised (400 if the platform rejects it)"),
        query("file", TEXT, "the original or final file name"),
        query("status", {"enum": ["scheduled", "sent"]}, ""),
        LIMIT_Q,
        OFFSET_Q,
    )
    no_verdict = answer("an unknown login, or wait= ran out (with last_id)", ref("NoVerdict"))
    return {
        "/health": {
            "get": operation(
                "Readiness and the three ports",
                {
                    200: answer("all is up", ref("Health")),
                    503: answer("starting, stopping or degraded", ref("Health")),
                },
                public=True,
            )
        },
        "/api/accounts": {
            "get": operation("Every account", {200: answer("the accounts", ref("Accounts"))}),
            "post": operation(
                "Create an account and its folders",
                {201: answer("the account", ref("Account"))},
                body=json_request("NewAccount"),
                errors=(409, 413, 415),
            ),
        },
        "/api/accounts/{login}": {
            "parameters": [in_path("login", STR)],
            "get": operation(
                "One account", {200: answer("the account", ref("Account"))}, errors=(404,)
            ),
            "patch": operation(
                "Change credits, subscription, password or e-mail",
                {200: answer("the account", ref("Account"))},
                body=json_request("AccountChange"),
                errors=(404, 413, 415),
            ),
        },
        "/api/files": {
            "get": operation(
                "Processed files and last_id; wait= long-polls for a verdict",
                {200: answer("the files", ref("Files")), 404: no_verdict},
                params=files_params,
            ),
            "post": operation(
                "Drop the body into SEND_SMS of login, processed like an FTP upload",
                {201: answer("the file is in SEND_SMS (not yet judged)", ref("Dropped"))},
                params=(
                    query("login", TEXT, "the account", required=True),
                    query("name", PLAIN_NAME, "a plain file name, not .tmp", required=True),
                ),
                body=CSV,
                errors=(404, 409, 413, 415, 507),
            ),
        },
        "/api/messages": {
            "get": operation(
                "Recorded SMS",
                {200: answer("the SMS", ref("Messages"))},
                params=messages_params,
                errors=(404,),
            )
        },
        "/api/mail": {
            "get": operation(
                "Recap e-mails",
                {200: answer("the e-mails", ref("MailList"))},
                params=(LOGIN_Q, query("to", TEXT, "a part of the address")),
                errors=(404,),
            )
        },
        "/api/events": {
            "get": operation(
                "Server-sent events (contract 9.1)",
                {
                    200: {
                        "description": "the stream: id:, event:, data: <one JSON object>",
                        "content": {"text/event-stream": {"schema": ref("ServerSentEvent")}},
                    }
                },
                params=(
                    query("login", TEXT, "that login's events and the platform's"),
                    query("after", ID, "replay the retained events after this id"),
                    query(
                        "access_token",
                        STR,
                        "the api_token, for an EventSource (ignored when none is set)",
                    ),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    },
                ),
            )
        },
        "/api/reset": {
            "post": operation(
                "A clean platform",
                {200: answer("the accounts after the reset", ref("Reset"))},
                errors=(415,),
            )
        },
        "/api/check": {
            "post": operation(
                "Judge a CSV body; record nothing",
                {200: answer("the verdict (an invalid file is a 200)", ref("Check"))},
                params=(NAME_Q, query("login", TEXT, "judge with this account (404 if unknown)")),
                body=CSV,
                errors=(404, 413, 415),
            )
        },
        "/api/clock": {
            "get": operation("The platform's clock", {200: answer("now", ref("Clock"))}),
            "put": operation(
                "Freeze, advance or free the clock",
                {200: answer("the clock after the change", ref("Clock"))},
                body=json_request("ClockChange"),
                errors=(413, 415),
            ),
        },
        "/api/processing": {
            "get": operation(
                "Manual mode's waiting files and the retrying ones",
                {200: answer("the files", ref("Processing"))},
            )
        },
        "/api/processing/advance": {
            "post": operation(
                "Let waiting files go on ({} : all)",
                {200: answer("the files advanced", ref("Advanced"))},
                body=json_request("Advance"),
                errors=(404, 413, 415),
            )
        },
        "/api/faults": {
            "get": operation("The fault rules", {200: answer("the rules", ref("Faults"))}),
            "post": operation(
                "Add a fault rule",
                {201: answer("the rule and its id", ref("Fault"))},
                body=json_request("FaultRule"),
                errors=(409, 413, 415),
            ),
            "delete": operation(
                "Remove every rule", {200: answer("how many", ref("Removed"))}, errors=(415,)
            ),
        },
        "/api/faults/{id}": {
            "parameters": [in_path("id", {"type": "integer", "minimum": 0})],
            "delete": operation(
                "Remove one rule",
                {200: answer("the rule removed", ref("Fault"))},
                errors=(404, 415),
            ),
        },
        PATH: {"get": operation("This document", {200: answer("OpenAPI 3.1", {"type": "object"})})},
        "/": {
            "get": operation(
                "The control room page",
                {200: {"description": "the page", "content": {"text/html": {"schema": STR}}}},
                public=True,
            )
        },
        "/ui/{file}": {
            "parameters": [in_path("file", {"type": "string", "pattern": "^[A-Za-z0-9]"})],
            "get": operation(
                "A file of the control room page (css, js, svg...)",
                {200: {"description": "the file", "content": {"*/*": {"schema": STR}}}},
                errors=(404,),
                public=True,
            ),
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    """The whole document (built once; never changed afterwards)."""
    from mockserver import __version__

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "allmysms-mockserver HTTP control API",
            "version": __version__,
            "description": "The control API of the AllMySMS FTP/SFTP emulator (docs/api.md).",
        },
        "servers": [{"url": "http://127.0.0.1:8021"}],
        "security": [{}, {"bearer": []}],
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"E{code}": answer(text, ref("Error")) for code, text in ERRORS.items()},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "server.api_token, when set: every /api/ call needs it",
                }
            },
        },
    }


async def serve(request: web.Request) -> web.Response:
    """`GET /api/openapi.json`."""
    parse_query(request, ())
    return json_reply(to_json(document()))
