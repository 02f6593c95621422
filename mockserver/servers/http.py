"""The HTTP control API (contract 6): JSON over aiohttp on the asyncio loop the SFTP server
uses. Reads and changes the platform's state for tests; never a traceback, never a stalled loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aiohttp import web

from mockserver.auth import StaticAuthenticator
from mockserver.config import AccountConfig, Config
from mockserver.mailbox import Mailbox
from mockserver.store import AccountExists, Store, UnknownAccount
from mockserver.tree import valid_login

log = logging.getLogger("mockserver.http")

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_WAIT_SECONDS = 300.0  # `GET /api/files?wait=` is capped: a forgotten client cannot hang on
MAX_JSON_BYTES = 64 * 1024  # account bodies are a few hundred bytes
DEFAULT_LIMIT = 1000  # rows per list answer unless `limit=` says otherwise
MAX_LIMIT = 100_000
MAX_CREDITS = 2**53  # as in the config file (config.py): beyond it JSON numbers lose digits
MAX_EMAIL = 254
MAX_PASSWORD = 1024
MAX_NAME = 255  # a file name on every common file system
# Same shape as the config's e-mail rule: one address, nothing a mail header could split on.
EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
SHUTDOWN_TIMEOUT = 5.0  # seconds aiohttp waits for handlers still running at stop


class ApiHost(Protocol):
    """What the API needs from the app (`mockserver.app.MockServer`)."""

    @property
    def config(self) -> Config: ...
    @property
    def auth(self) -> StaticAuthenticator: ...
    @property
    def running(self) -> bool: ...
    @property
    def store(self) -> Store: ...
    @property
    def mailbox(self) -> Mailbox: ...
    @property
    def ftp_port(self) -> int: ...
    @property
    def sftp_port(self) -> int: ...

    def reset(self) -> None: ...

    def add_account(
        self,
        login: str,
        password: str,
        credits: int = 100,
        *,
        subscription: bool = False,
        email: str | None = None,
    ) -> dict[str, Any]: ...


class BadRequest(Exception):
    """A 4xx answer with `{"error": message}`; raised anywhere inside a handler."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _json(data: Any, status: int = 200) -> web.Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return web.Response(text=body, status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


def _public_account(account: Mapping[str, Any]) -> dict[str, Any]:
    """Never a password or its hash (contract 6: "login, credits, subscription, email")."""
    return {
        "login": account["login"],
        "credits": account["credits"],
        "subscription": account["subscription"],
        "email": account["email"],
        "configured": account.get("configured", False),
    }


# -- query and body validation ------------------------------------------------------------------


def _query(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
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


def _int_param(query: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise BadRequest(f"{key} must be a whole number from {low} to {high}, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{key} must be a whole number from {low} to {high}, got {raw!r}")
    return value


def _wait_param(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"wait must be a number of seconds >= 0, got {raw!r}")
    return min(value, MAX_WAIT_SECONDS)


def _utf8(value: str) -> bool:
    """JSON and percent-encoding can carry lone surrogates, which no database or header takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_param(query: Mapping[str, str], key: str) -> str | None:
    value = query.get(key)
    if value is None:
        return None
    if value == "" or len(value) > 1000 or "\x00" in value or not _utf8(value):
        raise BadRequest(f"{key} must be a non-empty value")
    return value


async def _read_body(request: web.Request, limit: int) -> bytes:
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


async def _json_object(request: web.Request) -> dict[str, Any]:
    data = await _read_body(request, MAX_JSON_BYTES)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: `[[[[…`
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def _check_keys(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise BadRequest(f"unknown field {key!r} (allowed: {', '.join(allowed)})")


def _credits(value: Any) -> int:
    # bool is an int in Python: `true` must not become 1 credit.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CREDITS:
        raise BadRequest(f"credits must be a whole number from 0 to {MAX_CREDITS}")
    return value


def _subscription(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest("subscription must be true or false")
    return value


def _password(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_PASSWORD
        or "\x00" in value
        or not _utf8(value)
    ):
        raise BadRequest(f"password must be a non-empty string of at most {MAX_PASSWORD} chars")
    return value


def _email(value: Any) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_EMAIL
        or not EMAIL_RE.match(value)
        or not _utf8(value)
    ):
        raise BadRequest("email must be an e-mail address such as name@example.com")
    return value


def _login(value: Any) -> str:
    if not isinstance(value, str) or not valid_login(value):
        raise BadRequest(
            "login must be 1-64 characters: letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return value


def _file_name(value: str | None) -> str:
    if value is None or value == "":
        raise BadRequest("name is required: the file name the CSV would be dropped under")
    if len(value) > MAX_NAME or "/" in value or "\\" in value or "\x00" in value:
        raise BadRequest("name must be a plain file name (no folder, at most 255 characters)")
    return value


# -- the server ---------------------------------------------------------------------------------


class HttpApi:
    """The control API of one `MockServer`; `start()`/`stop()` run on the app's asyncio loop."""

    def __init__(self, app: ApiHost) -> None:
        self.app = app
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing: asyncio.Event | None = None
        self._waiters: set[asyncio.Event] = set()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the HTTP API is not started")
        return self._port

    def _web_app(self) -> web.Application:
        # The check body may be a whole drop file; every other body is read with its own cap.
        web_app = web.Application(
            middlewares=[self._errors], client_max_size=self.app.config.limits.max_file_bytes + 1
        )
        r = web_app.router
        r.add_get("/health", self.health, allow_head=True)
        r.add_get("/api/accounts", self.list_accounts)
        r.add_post("/api/accounts", self.create_account)
        r.add_get("/api/accounts/{login}", self.get_account)
        r.add_patch("/api/accounts/{login}", self.patch_account)
        r.add_get("/api/files", self.list_files)
        r.add_get("/api/messages", self.list_messages)
        r.add_get("/api/mail", self.list_mail)
        r.add_post("/api/reset", self.reset)
        r.add_post("/api/check", self.check)
        return web_app

    async def start(self) -> None:
        """Listen on `server.host:server.http_port` (0: a free port). Raises OSError when the
        port cannot be bound, after releasing everything it made."""
        if self._runner is not None:
            raise RuntimeError("the HTTP API is already started")
        self._closing = asyncio.Event()
        server = self.app.config.server
        runner = web.AppRunner(
            self._web_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host=server.host or None, port=server.http_port)
            await site.start()
            addresses = runner.addresses
            if not addresses:
                raise OSError(f"the HTTP API did not bind {server.host}:{server.http_port}")
            self._port = int(addresses[0][1])
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("HTTP API listening on %s:%d", server.host, self._port)

    async def stop(self) -> None:
        """Stop listening; pending long polls answer 503 at once; wait for running handlers."""
        runner, self._runner = self._runner, None
        if self._closing is not None:
            self._closing.set()
        for event in list(self._waiters):
            event.set()
        if runner is not None:
            await runner.cleanup()
        self._port = None

    # -- plumbing ------------------------------------------------------------------------------

    async def _blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store/disk call off the loop: the loop is shared with every SFTP session."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every answer is JSON: 4xx with `{"error": ...}`, and an unexpected exception is a
        logged 500 `{"error": "internal error"}`, never a traceback to the client."""
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.status == 404:
                message = f"no such endpoint: {request.path}"
            elif exc.status == 405:
                allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
                message = f"method {request.method} not allowed on {request.path}"
                message += f" (allowed: {allowed})" if allowed else ""
            elif exc.status == 413:
                message = "body too large"
            else:
                message = exc.reason
            response = _error(message, exc.status)
            if exc.status == 405 and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.path_qs)
            return _error("internal error", 500)

    def _known_login(self, login: str | None) -> None:
        """404 for a login filter naming no account (contract 6: "unknown login → 404")."""
        if login is not None and (not valid_login(login) or self.app.store.account(login) is None):
            raise BadRequest(f"unknown login {login!r}", 404)

    # -- endpoints -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        _query(request, ())
        try:
            ready = self.app.running
            ports = {
                "ftp_port": self.app.ftp_port,
                "sftp_port": self.app.sftp_port,
                "http_port": self.port,
            }
        except RuntimeError:
            ready = False
        if not ready or self._runner is None:
            return _json({"status": "starting"}, 503)
        return _json({"status": "ok", **ports})

    async def list_accounts(self, request: web.Request) -> web.Response:
        _query(request, ())
        accounts = await self._blocking(self.app.store.accounts)
        return _json({"accounts": [_public_account(a) for a in accounts]})

    async def get_account(self, request: web.Request) -> web.Response:
        _query(request, ())
        login = request.match_info["login"]
        account = (
            await self._blocking(self.app.store.account, login) if valid_login(login) else None
        )
        if account is None:
            raise BadRequest(f"unknown login {login!r}", 404)
        return _json(_public_account(account))

    async def create_account(self, request: web.Request) -> web.Response:
        _query(request, ())
        body = await _json_object(request)
        _check_keys(body, ("login", "password", "credits", "subscription", "email"))
        if "login" not in body or "password" not in body:
            raise BadRequest("login and password are required")
        login = _login(body["login"])
        password = _password(body["password"])
        credits = _credits(body.get("credits", 100))
        subscription = _subscription(body.get("subscription", False))
        email = _email(body.get("email", f"{login}@example.com"))

        def create() -> dict[str, Any]:
            if self.app.store.account(login) is not None or self.app.auth.exists(login):
                raise AccountExists(login)
            return self.app.add_account(
                login, password, credits, subscription=subscription, email=email
            )

        try:
            created = await self._blocking(create)
        except AccountExists:
            raise BadRequest(f"account {login!r} already exists", 409) from None
        log.info("account %s created over the HTTP API", login)
        return _json(_public_account(created), 201)

    async def patch_account(self, request: web.Request) -> web.Response:
        _query(request, ())
        login = request.match_info["login"]
        body = await _json_object(request)
        _check_keys(body, ("credits", "subscription", "password", "email"))
        if not body:
            raise BadRequest("give at least one of credits, subscription, password, email")
        credits = _credits(body["credits"]) if "credits" in body else None
        subscription = _subscription(body["subscription"]) if "subscription" in body else None
        password = _password(body["password"]) if "password" in body else None
        email = _email(body["email"]) if "email" in body else None
        if not valid_login(login):
            raise BadRequest(f"unknown login {login!r}", 404)

        def update() -> dict[str, Any]:
            store, auth = self.app.store, self.app.auth
            changed = store.update_account(
                login, credits=credits, subscription=subscription, email=email, password=password
            )
            if password is not None:
                # Logins are checked by the authenticator: it must learn the new password now.
                try:
                    auth.set_password(login, password)
                except KeyError:
                    auth.add(
                        AccountConfig(
                            login=login,
                            password=password,
                            credits=changed["credits"],
                            subscription=changed["subscription"],
                            email=changed["email"],
                        )
                    )
            return changed

        try:
            changed = await self._blocking(update)
        except UnknownAccount:
            raise BadRequest(f"unknown login {login!r}", 404) from None
        return _json(_public_account(changed))

    async def list_files(self, request: web.Request) -> web.Response:
        q = _query(request, ("login", "status", "name", "wait", "limit", "offset"))
        login = _text_param(q, "login")
        status = q.get("status")
        if status is not None and status not in ("archived", "invalid"):
            raise BadRequest(f"status must be archived or invalid, got {status!r}")
        name = _text_param(q, "name")
        limit = _int_param(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int_param(q, "offset", 0, 0, 10**12)
        wait = _wait_param(q["wait"]) if "wait" in q else None
        if wait is not None and name is None:
            raise BadRequest("wait needs name=: the file to wait for")
        await self._blocking(self._known_login, login)

        def find() -> list[dict[str, Any]]:
            return self.app.store.files(
                login=login, status=status, name=name, limit=limit, offset=offset
            )

        if wait is None:
            return _json({"files": await self._blocking(find)})
        found = await self._wait(find, wait)
        if found is None:
            return _error("the server is stopping", 503)
        if not found:
            return _error(f"no verdict for {name!r} within {wait:g} s", 404)
        return _json({"files": found})

    async def _wait(
        self, find: Callable[[], list[dict[str, Any]]], timeout: float
    ) -> list[dict[str, Any]] | None:
        """`find()` until it finds something or `timeout` passes; None when stopping.

        Woken by the store's listener (processor thread -> `call_soon_threadsafe`), never by
        polling. The event is cleared *before* each look at the store, so a file finished
        between the look and the wait still wakes us (no lost wake-up).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        event = asyncio.Event()

        def wake(_file: dict[str, Any]) -> None:
            # Runs on the processor's thread; after stop the loop may be closed: harmless.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

        store = self.app.store
        store.add_listener(wake)
        self._waiters.add(event)
        try:
            while True:
                if self._closing is None or self._closing.is_set():
                    return None
                event.clear()
                found = await self._blocking(find)
                if found:
                    return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            self._waiters.discard(event)
            store.remove_listener(wake)

    async def list_messages(self, request: web.Request) -> web.Response:
        from mockserver.core.phone import normalise_number

        q = _query(request, ("login", "campaign", "phone", "file", "status", "limit", "offset"))
        login = _text_param(q, "login")
        campaign = _text_param(q, "campaign")
        file = _text_param(q, "file")
        raw_phone = _text_param(q, "phone")
        phone = None
        if raw_phone is not None:
            # Any accepted spelling finds the SMS: 0612345678, +33612345678, 33 6 12 34 56 78.
            phone = normalise_number(raw_phone)
            if phone is None:
                raise BadRequest(f"phone {raw_phone!r} is not a number the platform accepts")
        status = q.get("status")
        if status is not None and status not in ("scheduled", "sent"):
            raise BadRequest(f"status must be scheduled or sent, got {status!r}")
        limit = _int_param(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int_param(q, "offset", 0, 0, 10**12)
        await self._blocking(self._known_login, login)
        messages = await self._blocking(
            self.app.store.messages,
            login=login,
            campaign=campaign,
            phone=phone,
            file=file,
            status=status,
            limit=limit,
            offset=offset,
        )
        return _json(
            {"messages": messages, "count": len(messages), "limit": limit, "offset": offset}
        )

    async def list_mail(self, request: web.Request) -> web.Response:
        q = _query(request, ("login", "to"))
        login = _text_param(q, "login")
        to = _text_param(q, "to")
        await self._blocking(self._known_login, login)
        mail = await self._blocking(self.app.mailbox.messages)
        if login is not None:
            mail = [m for m in mail if m.get("login") == login]
        if to is not None:
            mail = [m for m in mail if to in str(m.get("to", ""))]
        return _json({"mail": mail})

    async def reset(self, request: web.Request) -> web.Response:
        _query(request, ())
        # Touches the disk and waits for the processor to finish the file in hand: off-loop.
        await self._blocking(self.app.reset)
        log.info("platform reset over the HTTP API")
        accounts = await self._blocking(self.app.store.accounts)
        return _json({"status": "reset", "accounts": [_public_account(a) for a in accounts]})

    async def check(self, request: web.Request) -> web.Response:
        from mockserver.core.judge import judge
        from mockserver.core.models import Account

        q = _query(request, ("name", "login"))
        name = _file_name(q.get("name"))
        login = _text_param(q, "login")
        limit = self.app.config.limits.max_file_bytes
        data = await _read_body(request, limit)
        default_sender = self.app.config.processing.default_sender
        if login is not None:
            found = (
                await self._blocking(self.app.store.account, login) if valid_login(login) else None
            )
            if found is None:
                raise BadRequest(f"unknown login {login!r}", 404)
            account = Account(
                login=login,
                credits=int(found["credits"]),
                subscription=bool(found["subscription"]),
                default_sender=default_sender,
            )
        else:
            # Like `allmysms-mock check` without --credits: enough credits for any file.
            account = Account(credits=sys.maxsize, default_sender=default_sender)

        def verdict() -> str:
            result = judge(name, data, account, datetime.now(UTC))
            return json.dumps(
                {"bytes": len(data), **result.to_dict()}, ensure_ascii=False, separators=(",", ":")
            )

        body = await self._blocking(verdict)
        return web.Response(text=body, content_type="application/json")
