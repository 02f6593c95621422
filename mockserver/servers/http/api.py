"""The HTTP control API (contract 6): JSON over aiohttp on the SFTP server's asyncio loop, over
the `Backend` (never the app); never a traceback, never a stalled loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from mockserver import views
from mockserver.backend import Backend, BadFilter
from mockserver.health import open_files_limit
from mockserver.servers.dropbox import OnUpload
from mockserver.servers.http.connections import (
    KEEPALIVE_SECONDS,
    CappedSite,
    Gate,
    LongPolls,
    TooManyWaiters,
    connection_cap,
)
from mockserver.servers.http.drop import DropApi
from mockserver.servers.http.events_api import EventStreams
from mockserver.servers.http.faults import FaultsApi
from mockserver.servers.http.page import Page
from mockserver.servers.http.safety import Safety, security_headers, storage_refusal
from mockserver.servers.http.steering import Steering
from mockserver.servers.http.validation import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadRequest,
    after_id_param,
    check_keys,
    credits_field,
    email_field,
    error_reply,
    file_name_param,
    int_param,
    json_object,
    json_reply,
    login_field,
    parse_query,
    password_field,
    read_body,
    reply,
    subscription_field,
    text_param,
    to_json,
    wait_param,
)
from mockserver.store import AccountExists, UnknownAccount
from mockserver.tree import valid_login

log = logging.getLogger("mockserver.http")

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Ports = Callable[[], "dict[str, int] | None"]
Found = tuple[list[dict[str, Any]], int]  # files in their JSON shape, and the last file id

SHUTDOWN_TIMEOUT = 5.0  # seconds aiohttp waits for handlers still running at stop


# -- the server ---------------------------------------------------------------------------------


class HttpApi:
    """The control API over one `Backend`; `start()`/`stop()` run on the app's asyncio loop.
    `ports()` says where FTP and SFTP listen once the platform is ready (None before);
    `on_upload` is the processor's upload hook, called for a file dropped by `POST /api/files`."""

    def __init__(self, backend: Backend, ports: Ports, on_upload: OnUpload | None = None) -> None:
        self.backend = backend
        self._ports = ports
        self._on_upload = on_upload
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing: asyncio.Event | None = None
        self.long_polls = LongPolls(backend.bus)  # GET /api/files?wait= (issue 16: cheap)
        self.events = EventStreams(backend.bus)  # GET /api/events (contract 9.1)
        self.gate: Gate | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the HTTP API is not started")
        return self._port

    def _web_app(self) -> web.Application:
        # The check body may be a whole drop file; every other body is read with its own cap.
        limit = self.backend.config.limits.max_file_bytes
        server = self.backend.config.server
        safety = Safety(server.host, server.api_token)  # contract 11, before any handler
        web_app = web.Application(
            middlewares=[safety.middleware, self._errors], client_max_size=limit + 1
        )
        web_app.on_response_prepare.append(security_headers)
        r = web_app.router
        r.add_get("/health", self.health, allow_head=True)
        r.add_get("/api/accounts", self.list_accounts)
        r.add_post("/api/accounts", self.create_account)
        r.add_get("/api/accounts/{login}", self.get_account)
        r.add_patch("/api/accounts/{login}", self.patch_account)
        r.add_get("/api/files", self.list_files)
        r.add_get("/api/messages", self.list_messages)
        r.add_get("/api/mail", self.list_mail)
        r.add_get("/api/events", self.events.handle)
        r.add_post("/api/reset", self.reset)
        r.add_post("/api/check", self.check)
        Steering(self.backend).add_routes(r)  # contract 9.3, 9.4
        FaultsApi(self.backend).add_routes(r)  # contract 9.2
        DropApi(self.backend, self._on_upload).add_routes(r)  # contract 10: POST /api/files
        Page().add_routes(r)  # contract 10: GET /, GET /ui/{file}; GET /api/openapi.json
        return web_app

    async def start(self) -> None:
        """Listen on `server.host:server.http_port` (0: a free port). Raises OSError when the
        port cannot be bound, after releasing everything it made."""
        if self._runner is not None:
            raise RuntimeError("the HTTP API is already started")
        self._closing = asyncio.Event()
        server = self.backend.config.server
        runner = web.AppRunner(
            self._web_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            keepalive_timeout=KEEPALIVE_SECONDS,
        )
        await runner.setup()
        limits = self.backend.config.limits
        cap = connection_cap(limits.max_http_connections, open_files_limit())
        self.gate = Gate(cap, limits.login_timeout_seconds, self.backend.health)
        try:
            site = CappedSite(runner, self.gate, host=server.host or None, port=server.http_port)
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
        self.long_polls.close()
        self.events.close()
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
        """Every answer is JSON (4xx `{"error": ...}`; unexpected: a logged 500), never a
        traceback to the client; 503 for `/api/` once the data dir is gone."""
        if (refused := storage_refusal(self.backend.health, request.path)) is not None:
            return refused
        try:
            return await handler(request)
        except BadRequest as exc:
            return error_reply(str(exc), exc.status)
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
            response = error_reply(message, exc.status)
            if exc.status == 405 and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.path_qs)
            return error_reply("internal error", 500)

    def _known_login(self, login: str | None) -> None:
        """404 for a login filter naming no account (contract 6: "unknown login → 404")."""
        if login is not None and self.backend.account(login) is None:
            raise BadRequest(f"unknown login {login!r}", 404)

    # -- endpoints -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        ports = self._ports()
        if ports is None or self._runner is None or self._port is None:
            return reply({"status": "starting"}, 503)
        problems = self.backend.health.problems()  # issue 16, docs/spec.md
        if problems:
            body = {"status": "degraded", "problems": problems, **ports, "http_port": self._port}
            return reply(body, 503)
        return reply({"status": "ok", **ports, "http_port": self._port})

    async def list_accounts(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        accounts = await self._blocking(self.backend.accounts)
        return reply({"accounts": [views.account_view(a) for a in accounts]})

    async def get_account(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        login = request.match_info["login"]
        account = await self._blocking(self.backend.account, login)
        if account is None:
            raise BadRequest(f"unknown login {login!r}", 404)
        return reply(views.account_view(account))

    async def create_account(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        body = await json_object(request)
        check_keys(body, ("login", "password", "credits", "subscription", "email"))
        if "login" not in body or "password" not in body:
            raise BadRequest("login and password are required")
        login = login_field(body["login"])
        password = password_field(body["password"])
        credits = credits_field(body.get("credits", 100))
        subscription = subscription_field(body.get("subscription", False))
        email = email_field(body.get("email", f"{login}@example.com"))
        try:
            created = await self._blocking(
                self.backend.add_account,
                login,
                password,
                credits,
                subscription=subscription,
                email=email,
            )
        except AccountExists:
            raise BadRequest(f"account {login!r} already exists", 409) from None
        log.info("account %s created over the HTTP API", login)
        return reply(views.account_view(created), 201)

    async def patch_account(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        login = request.match_info["login"]
        body = await json_object(request)
        check_keys(body, ("credits", "subscription", "password", "email"))
        if not body:
            raise BadRequest("give at least one of credits, subscription, password, email")
        credits = credits_field(body["credits"]) if "credits" in body else None
        subscription = subscription_field(body["subscription"]) if "subscription" in body else None
        password = password_field(body["password"]) if "password" in body else None
        email = email_field(body["email"]) if "email" in body else None
        if not valid_login(login):
            raise BadRequest(f"unknown login {login!r}", 404)
        try:
            changed = await self._blocking(
                self.backend.update_account,
                login,
                credits=credits,
                subscription=subscription,
                email=email,
                password=password,
            )
        except UnknownAccount:
            raise BadRequest(f"unknown login {login!r}", 404) from None
        return reply(views.account_view(changed))

    async def list_files(self, request: web.Request) -> web.Response:
        q = parse_query(request, ("login", "status", "name", "after_id", "wait", "limit", "offset"))
        login = text_param(q, "login")
        status = q.get("status")
        if status is not None and status not in ("archived", "invalid"):
            raise BadRequest(f"status must be archived or invalid, got {status!r}")
        name = text_param(q, "name")
        after_id = after_id_param(q)
        limit = int_param(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = int_param(q, "offset", 0, 0, 10**12)
        wait = wait_param(q["wait"]) if "wait" in q else None
        if wait is not None and name is None:
            raise BadRequest("wait needs name=: the file to wait for")
        await self._blocking(self._known_login, login)

        def find() -> Found:
            files = self.backend.files(
                login=login,
                status=status,
                name=name,
                after_id=after_id,
                limit=limit,
                offset=offset,
            )
            # Read after the files: every id listed is <= last_id. Platform-wide, whatever
            # the filters (docs/spec.md 6.1): the reading a later `after_id` compares with.
            return [views.file_view(f) for f in files], self.backend.last_file_id()

        if wait is None:
            files, last_id = await self._blocking(find)
            return reply({"files": files, "last_id": last_id})
        assert name is not None  # checked above: wait needs name=
        try:
            found = await self._wait(find, name, wait)
        except TooManyWaiters as exc:
            return error_reply(str(exc), 503)
        if found is None:
            return error_reply("the server is stopping", 503)
        files, last_id = found
        if not files:
            after = "" if after_id is None else f" after file id {after_id}"
            message = f"no verdict for {name!r}{after} within {wait:g} s"
            return reply({"error": message, "last_id": last_id}, 404)
        return reply({"files": files, "last_id": last_id})

    async def _wait(self, find: Callable[[], Found], name: str, timeout: float) -> Found | None:
        """`find()` until it finds a file or `timeout` passes (then its last, empty answer);
        None when stopping.

        Woken by the event bus (`file.finished` of that name, `reset`: `LongPolls`), never by
        polling. The event is cleared *before* each look at the store, so a file finished
        between the look and the wait still wakes us (no lost wake-up).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self.long_polls.waiter(name) as event:
            while True:
                if self._closing is None or self._closing.is_set():
                    return None
                event.clear()
                found = await self._blocking(find)
                remaining = deadline - loop.time()
                if found[0] or remaining <= 0:
                    return found
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)

    async def list_messages(self, request: web.Request) -> web.Response:
        q = parse_query(
            request, ("login", "campaign", "phone", "file", "status", "limit", "offset")
        )
        login = text_param(q, "login")
        campaign = text_param(q, "campaign")
        file = text_param(q, "file")
        phone = text_param(q, "phone")
        if phone is not None:
            # First, as always: the Backend's rule and sentence (`messages` applies it again).
            try:
                self.backend.phone_filter(phone)
            except BadFilter as exc:
                raise BadRequest(str(exc)) from None
        status = q.get("status")
        if status is not None and status not in ("scheduled", "sent"):
            raise BadRequest(f"status must be scheduled or sent, got {status!r}")
        limit = int_param(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = int_param(q, "offset", 0, 0, 10**12)
        await self._blocking(self._known_login, login)

        def find() -> list[dict[str, Any]]:
            now = self.backend.now()  # one reading: the filter and the labels agree
            found = self.backend.messages(
                login=login,
                campaign=campaign,
                phone=phone,
                file=file,
                status=status,
                limit=limit,
                offset=offset,
                now=now,
            )
            return [views.sms_view(m, now) for m in found]

        messages = await self._blocking(find)
        return reply(
            {"messages": messages, "count": len(messages), "limit": limit, "offset": offset}
        )

    async def list_mail(self, request: web.Request) -> web.Response:
        q = parse_query(request, ("login", "to"))
        login = text_param(q, "login")
        to = text_param(q, "to")
        await self._blocking(self._known_login, login)
        mail = await self._blocking(self.backend.mail, login, to)
        return reply({"mail": mail})

    async def reset(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        # Touches the disk and waits for the processor to finish the file in hand: off-loop.
        await self._blocking(self.backend.reset)
        log.info("platform reset over the HTTP API")
        accounts = await self._blocking(self.backend.accounts)
        return reply({"status": "reset", "accounts": [views.account_view(a) for a in accounts]})

    async def check(self, request: web.Request) -> web.Response:
        from mockserver.core.filename import is_temporary
        from mockserver.core.judge import judge
        from mockserver.core.models import Account

        q = parse_query(request, ("name", "login"))
        name = file_name_param(q.get("name"))
        login = text_param(q, "login")
        config = self.backend.config
        data = await read_body(request, config.limits.max_file_bytes)
        default_sender = config.processing.default_sender
        if login is not None:
            found = await self._blocking(self.backend.account, login)
            if found is None:
                raise BadRequest(f"unknown login {login!r}", 404)
            account = Account(
                login=login,
                credits=found.credits,
                subscription=found.subscription,
                default_sender=default_sender,
            )
        else:
            # Like `allmysms-mock check` without --credits: enough credits for any file.
            account = Account(credits=sys.maxsize, default_sender=default_sender)

        if is_temporary(name):
            # Contract 5.1: "`check` reports such a name as `ignored`, not invalid".
            return reply({"bytes": len(data), **views.ignored_check(name)})

        def verdict() -> str:
            result = judge(
                name,
                data,
                account,
                self.backend.now(),
                prices=config.pricing,
                qualities=config.processing.qualities,
            )
            return to_json({"bytes": len(data), **result.to_dict()})

        return json_reply(await self._blocking(verdict))
