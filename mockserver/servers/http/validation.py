"""Validation of the HTTP API's input (contract 6): queries, bodies and fields, each refused
with a 4xx and one sentence; and the JSON answers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from mockserver.core.jsonnum import whole_number
from mockserver.tree import valid_login

MAX_WAIT_SECONDS = 300.0  # `GET /api/files?wait=` is capped: a forgotten client cannot hang on
MAX_JSON_BYTES = 64 * 1024  # account bodies are a few hundred bytes
DEFAULT_LIMIT = 1000  # rows per list answer unless `limit=` says otherwise
MAX_LIMIT = 100_000
MAX_CREDITS = 2**53  # as in the config file (config.py): beyond it JSON numbers lose digits
MAX_EMAIL = 254
MAX_PASSWORD = 1024
MAX_TEXT = 1000  # a query's text value (text_param)
MAX_NAME = 255  # a file name on every common file system
# Same shape as the config's e-mail rule: one address, nothing a mail header could split on.
EMAIL_RE = re.compile(r"[^@\s<>\"']+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


class BadRequest(Exception):
    """A 4xx answer with `{"error": message}`; raised anywhere inside a handler."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def to_json(data: Any) -> str:
    """The one serialisation of every JSON answer: compact, non-ASCII kept as is, and ending
    with a newline (contract 6: "Every JSON answer ends with a newline": `curl` output ends
    its line, a line-based reader gets one line)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def json_reply(text: str, status: int = 200) -> web.Response:
    """An answer whose body `to_json` already made (off the loop, for a large one)."""
    return web.Response(text=text, status=status, content_type="application/json")


def reply(data: Any, status: int = 200) -> web.Response:
    return json_reply(to_json(data), status)


def error_reply(message: str, status: int) -> web.Response:
    return reply({"error": message}, status)


# -- query and body validation ------------------------------------------------------------------


def parse_query(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query as a plain dict: unknown or repeated parameters are a 400 (a typo such as
    `campain=` must not silently return everything)."""
    out: dict[str, str] = {}
    for key in request.query:
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise BadRequest(f"unknown query parameter {key!r} (allowed: {known})")
        values = request.query.getall(key)
        if len(values) > 1:
            raise BadRequest(f"query parameter {key!r} given more than once")
        out[key] = values[0]
    return out


def int_param(query: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise BadRequest(f"{key} must be a whole number from {low} to {high}, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{key} must be a whole number from {low} to {high}, got {raw!r}")
    return value


def after_id_param(query: Mapping[str, str]) -> int | None:
    """`after_id=N`: a file id, as `last_id` gave it (contract 6)."""
    raw = query.get("after_id")
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", raw):
        raise BadRequest(
            "after_id must be a file id: a whole number >= 0 (the last_id of an earlier"
            f" answer), got {raw!r}"
        )
    return int(raw)


def wait_param(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"wait must be a number of seconds >= 0, got {raw!r}")
    return min(value, MAX_WAIT_SECONDS)


def is_utf8(value: str) -> bool:
    """JSON and percent-encoding can carry lone surrogates, which no database or header takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_param(query: Mapping[str, str], key: str) -> str | None:
    value = query.get(key)
    if value is None:
        return None
    if value == "" or len(value) > MAX_TEXT or "\x00" in value or not is_utf8(value):
        raise BadRequest(f"{key} must be a non-empty value")
    return value


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it passes `limit` bytes (chunked bodies too)."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(f"body too large: the limit is {limit} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body too large: the limit is {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: web.Request) -> dict[str, Any]:
    data = await read_body(request, MAX_JSON_BYTES)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: `[[[[…`
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def check_keys(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise BadRequest(f"unknown field {key!r} (allowed: {', '.join(allowed)})")


def credits_field(value: Any) -> int:
    # `true` must not become 1 credit; 5.0 is 5 (JSON Schema's "integer", docs/api.md).
    credits = whole_number(value)
    if credits is None or not 0 <= credits <= MAX_CREDITS:
        raise BadRequest(f"credits must be a whole number from 0 to {MAX_CREDITS}")
    return credits


def subscription_field(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest("subscription must be true or false")
    return value


def password_field(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_PASSWORD
        or "\x00" in value
        or not is_utf8(value)
    ):
        raise BadRequest(f"password must be a non-empty string of at most {MAX_PASSWORD} chars")
    return value


def email_field(value: Any) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_EMAIL
        or not EMAIL_RE.fullmatch(value)
        or not is_utf8(value)
    ):
        raise BadRequest("email must be an e-mail address such as name@example.com")
    return value


def login_field(value: Any) -> str:
    if not isinstance(value, str) or not valid_login(value):
        raise BadRequest(
            "login must be 1-64 characters: letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return value


def file_name_param(value: str | None) -> str:
    if value is None or value == "":
        raise BadRequest("name is required: the file name the CSV would be dropped under")
    if len(value) > MAX_NAME or "/" in value or "\\" in value or "\x00" in value:
        raise BadRequest("name must be a plain file name (no folder, at most 255 characters)")
    return value
