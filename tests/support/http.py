"""The HTTP control API from a test: one request on a fresh connection, the answer kept whole."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockserver.app import MockServer


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(
    srv: MockServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
) -> Reply:
    """One request on a fresh connection (closed before returning: no ResourceWarning).

    A body goes with the type its call takes (contract 11: 415 otherwise) unless `headers`
    names one: `text/csv` to the CSV calls (`POST /api/check`, `POST /api/files`),
    `application/json` to every other."""
    if body is not None and not isinstance(body, bytes | str) and not chunked:
        body = json.dumps(body).encode()
    headers = dict(headers or {})
    if body is not None and not any(k.lower() == "content-type" for k in headers):
        csv = path.split("?", 1)[0] in ("/api/check", "/api/files")
        headers["Content-Type"] = "text/csv" if csv else "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()
