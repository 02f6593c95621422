"""`/api/faults` (contract 9.2): list, add and remove the fault rules of the `Backend`.

Rules are read by `core.faults.parse_rule`, as the config file's `[[faults]]` are; a bad one is
a 400 whose sentence names the field. Every call is quick and in memory (no store, no disk):
it runs on the loop.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from mockserver.backend import Backend
from mockserver.core.faults import FaultError
from mockserver.faults import TooManyRules
from mockserver.servers.http.validation import BadRequest, json_object, parse_query, reply

log = logging.getLogger("mockserver.http")


class FaultsApi:
    """The four calls of contract 9.2 over `backend.faults`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/faults", self.list_faults)
        router.add_post("/api/faults", self.add_fault)
        router.add_delete("/api/faults", self.clear_faults)
        router.add_delete("/api/faults/{id}", self.remove_fault)

    async def list_faults(self, request: web.Request) -> web.Response:
        """Every rule in force, oldest first, with its `fired` count and `source`."""
        parse_query(request, ())
        return reply({"faults": self.backend.faults.rules()})

    async def add_fault(self, request: web.Request) -> web.Response:
        """201 with the rule and its `id`; 400 naming the field; 409 past the cap."""
        parse_query(request, ())
        body = await json_object(request)
        faults = self.backend.faults
        try:
            rule = faults.add(body)
        except FaultError as exc:
            raise BadRequest(str(exc)) from None
        except TooManyRules as exc:
            raise BadRequest(f"{exc}: remove some first (DELETE /api/faults)", 409) from None
        log.info("fault rule %d added over the HTTP API: %s %s", rule.id, rule.on, rule.action)
        return reply(faults.get(rule.id) or rule.view(0), 201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Remove every rule, the config file's too (a reset brings those back)."""
        parse_query(request, ())
        removed = self.backend.faults.clear()
        log.info("%d fault rule(s) removed over the HTTP API", removed)
        return reply({"removed": removed})

    async def remove_fault(self, request: web.Request) -> web.Response:
        """The rule removed, as it was last listed; 404 for an unknown id."""
        parse_query(request, ())
        raw = request.match_info["id"]
        faults = self.backend.faults
        shown = faults.get(int(raw)) if re.fullmatch(r"[0-9]{1,18}", raw) else None
        if shown is None or not faults.remove(int(raw)):
            raise BadRequest(f"no fault rule with id {raw!r}", 404)
        log.info("fault rule %s removed over the HTTP API", raw)
        return reply(shown)
