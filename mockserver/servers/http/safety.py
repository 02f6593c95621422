"""Contract 11, the safety of the HTTP port: the API has no login and trusts whoever reaches
the port, so a web page in the user's browser must not be able to drive it.

One aiohttp middleware, run on every request before any handler, in this order:

1. `Host` (DNS rebinding): while `server.host` is a loopback address, a request whose `Host`
   is not a loopback name or address (`localhost`, `127.x.x.x`, `[::1]`, any port) is 403.
   Bound to `0.0.0.0` (Docker) or another address, the check is off: set `server.api_token`.
2. `Origin` (cross-site requests): a request whose `Origin` is another site is 403; no
   `Origin` (curl, scripts, a browser's own navigation) passes; `Origin: null` is 403.
3. `server.api_token`: every `/api/` call needs `Authorization: Bearer <token>` (401 with
   `WWW-Authenticate: Bearer`, compared in constant time); `GET /api/events` also takes it as
   `access_token=` (a browser's `EventSource` cannot send headers). `/health`, `/` and `/ui/`
   stay open: they carry no data. Without a token set, a token sent is ignored, the header as
   the `access_token=` of `GET /api/events` (a client set up for a guarded server still works).
4. Bodies: a JSON call (`POST`/`PUT`/`PATCH`/`DELETE` under `/api/`) takes `application/json`,
   or no `Content-Type` with an empty body; the CSV calls (`POST /api/files`, `POST
   /api/check`) take `text/csv` or `application/octet-stream`; 415 otherwise. A cross-site
   HTML form can only send `application/x-www-form-urlencoded`, `multipart/form-data` or
   `text/plain`: refused everywhere. Only a request that reaches a call is a 415: a known
   path with another method is the router's 405 (with `Allow`), an unknown one its 404.

Every answer also carries `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
and `X-Frame-Options: DENY` (`security_headers`, on every response even a stream's).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from mockserver.health import DATA_DIR, Health
from mockserver.servers.http.validation import error_reply

log = logging.getLogger("mockserver.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSV_CALLS = frozenset({"/api/files", "/api/check"})  # POST bodies that are CSV bytes
CSV_TYPES = frozenset({"text/csv", "application/octet-stream"})
JSON_TYPE = "application/json"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_QUERY = "access_token"  # RFC 6750 2.3; only on GET /api/events
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str) -> bool:
    """`server.host` names a loopback address: 127.0.0.0/8, ::1 or `localhost`."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_authority(authority: str) -> tuple[str, int | None] | None:
    """`host[:port]` or `[v6]:port` as (lower-case host, port or None); None if malformed."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = authority.partition(":")
        if ":" in port_text:
            return None
    if not host:
        return None
    if port_text == "":
        return host.lower(), None
    if not port_text.isdigit() or len(port_text) > 5:
        return None
    return host.lower(), int(port_text)


def loopback_name(authority: str) -> bool:
    """A `Host` header naming this machine only: `localhost`, `127.x.x.x` or `[::1]`, with any
    port. Another name could be rebound by DNS to 127.0.0.1 by a page of that name."""
    parsed = split_authority(authority)
    if parsed is None:
        return False
    host = parsed[0]
    if host == "localhost":
        return True
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.IPv6Address(host[1:-1]).is_loopback
        except ValueError:
            return False
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def same_origin(origin: str, host_header: str | None) -> bool:
    """The `Origin` names the page this very server served: its host and port are those the
    request was sent to (the `Host` header, which a browser sets and a page cannot change).
    The scheme is not compared: the port speaks one protocol (a proxy may add TLS in front)."""
    if host_header is None:
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or parts.path or parts.query or parts.fragment:
        return False
    mine, theirs = split_authority(host_header), split_authority(parts.netloc)
    if mine is None or theirs is None or "@" in parts.netloc:
        return False
    default = DEFAULT_PORTS[scheme]
    return (mine[0], mine[1] or default) == (theirs[0], theirs[1] or default)


def media_type(request: web.Request) -> str | None:
    """The `Content-Type` without its parameters, lower case; None when absent."""
    raw = request.headers.get("Content-Type")
    if raw is None:
        return None
    return raw.split(";", 1)[0].strip().lower()


def has_body(request: web.Request) -> bool:
    """The request announces a body: a non-zero length, or chunks."""
    if request.content_length:
        return True
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


class Safety:
    """The contract 11 middleware, over `server.host` and `server.api_token`."""

    def __init__(self, host: str, api_token: str) -> None:
        self.check_host = is_loopback_host(host)
        self._token = api_token.encode("ascii") if api_token else None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        if request.path == "/api/events":
            request = strip_token_query(request)
        return await handler(request)

    def refusal(self, request: web.Request) -> web.StreamResponse | None:
        """The 403, 401 or 415 answer `request` gets, or None when it may go on."""
        host = request.headers.get("Host")
        if self.check_host and host is not None and not loopback_name(host):
            log.info("HTTP refused %s %r: Host %r is not a loopback name", *_what(request, host))
            return error_reply(
                "forbidden: the Host header must name this machine (localhost, 127.0.0.1 or"
                " [::1]) while the server listens on a loopback address",
                403,
            )
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, host):
            log.info("HTTP refused %s %r: cross-site Origin %r", *_what(request, origin))
            return error_reply("forbidden: a request from another site (Origin)", 403)
        if not request.path.startswith("/api/"):
            return None
        if self._token is not None and not self.authorised(request):
            response = error_reply("unauthorised: Authorization: Bearer <api_token> needed", 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="allmysms-mock"'
            return response
        if request.method in SAFE_METHODS or request.match_info.http_exception is not None:
            return None  # no call: the router's 404 or 405 (with Allow) says why
        kind = media_type(request)
        if request.method == "POST" and request.path in CSV_CALLS:
            if kind not in CSV_TYPES:
                return error_reply(
                    "unsupported media type: send the CSV bytes as text/csv or"
                    " application/octet-stream",
                    415,
                )
        elif kind != JSON_TYPE and (kind is not None or has_body(request)):
            return error_reply(
                "unsupported media type: a JSON call takes Content-Type: application/json"
                " (or no body at all)",
                415,
            )
        return None

    def authorised(self, request: web.Request) -> bool:
        assert self._token is not None
        given: str | None = None
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            given = credentials.strip()
        elif request.path == "/api/events" and request.method == "GET":
            given = request.query.get(TOKEN_QUERY)
        if not given:
            return False
        try:
            candidate = given.encode("ascii")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(candidate, self._token)


def strip_token_query(request: web.Request) -> web.Request:
    """`GET /api/events?access_token=…` as the handler sees it: without the token (the handler
    refuses unknown parameters, and the token is never echoed or logged)."""
    if TOKEN_QUERY not in request.query:
        return request
    url = request.rel_url.without_query_params(TOKEN_QUERY)
    return request.clone(rel_url=url)


def _what(request: web.Request, value: str) -> tuple[str, str, str]:
    # A path or a header can hold anything: cut, and quoted by %r: never a forged log line.
    return request.method, request.path[:200], value[:100]


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: headers every answer carries, streams and errors included."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")


def storage_refusal(health: Health, path: str) -> web.Response | None:
    """Issue 16: the data dir removed or replaced while running: an `/api/` call answers 503
    with the cause (its database is gone: any answer would be wrong, or a 500), never a
    traceback; `/health` says `degraded` on its own."""
    lost = health.problem(DATA_DIR)
    if lost is None or not path.startswith("/api/"):
        return None
    return error_reply(f"platform storage unavailable: {lost}", 503)
