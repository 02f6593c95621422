"""The HTTP calls that steer the platform's time and pace (contract 6, 9.3, 9.4):
`GET`/`PUT /api/clock` and `GET /api/processing`, `POST /api/processing/advance`."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from mockserver.backend import Backend
from mockserver.clock import clock_request
from mockserver.manual import NotWaiting
from mockserver.servers.http.validation import (
    BadRequest,
    check_keys,
    json_object,
    parse_query,
    reply,
)
from mockserver.tree import valid_login

T = TypeVar("T")


class Steering:
    """The clock and manual-mode calls over one `Backend`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/clock", self.get_clock)
        router.add_put("/api/clock", self.put_clock)
        router.add_get("/api/processing", self.get_processing)
        router.add_post("/api/processing/advance", self.advance)

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        # A change publishes events whose subscribers may touch the store: off the loop.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args))

    def _clock_view(self) -> dict[str, Any]:
        clock = self.backend.clock
        return {"now": clock.now().isoformat(), "frozen": clock.frozen}

    async def get_clock(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        return reply(self._clock_view())

    async def put_clock(self, request: web.Request) -> web.Response:
        """`{"now": ISO}` freezes there (no offset: Europe/Paris), `{"advance_seconds": N}`
        moves forward (N > 0), `{"real": true}` returns to real time."""
        parse_query(request, ())
        body = await json_object(request)
        try:
            change = clock_request(body)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        clock = self.backend.clock
        try:
            if change.action == "set":
                assert change.now is not None
                await self._blocking(clock.set, change.now)
            elif change.action == "advance":
                await self._blocking(clock.advance, change.seconds)
            else:
                await self._blocking(clock.real)
        except ValueError as exc:  # an advance past the year 9999
            raise BadRequest(str(exc)) from None
        return reply(self._clock_view())

    async def get_processing(self, request: web.Request) -> web.Response:
        parse_query(request, ())
        waiting = self.backend.waiting_files()
        retrying = self.backend.retrying.files()
        return reply(
            {
                "mode": self.backend.config.processing.mode,
                "waiting": [w.to_dict() for w in waiting],
                "retrying": [r.to_dict() for r in retrying],
            }
        )

    async def advance(self, request: web.Request) -> web.Response:
        """`{}`: every waiting file goes on; `{"name": …}` (and `"login"`): that one; 404
        when no file of that name waits (a typo must not pass for "nothing to do")."""
        parse_query(request, ())
        body = await json_object(request)
        check_keys(body, ("name", "login"))
        # A key given is a value: `{"name": null}` is a 400, never "advance every file".
        name = body.get("name")
        login = body.get("login")
        if "name" in body and (not isinstance(name, str) or not name or len(name) > 1000):
            raise BadRequest("name must be a file name (as GET /api/processing lists it)")
        if "login" in body and (not isinstance(login, str) or not valid_login(login)):
            raise BadRequest("login must be a login (as GET /api/processing lists it)")
        try:
            advanced = await self._blocking(self.backend.advance, name, login)
        except NotWaiting as exc:
            raise BadRequest(str(exc), 404) from None
        return reply({"advanced": [w.to_dict() for w in advanced]})
