"""The control room's files (contract 10): `GET /` answers `mockserver/web/index.html`, `GET
/ui/{file}` the other files of that folder. Read through `importlib.resources`, so an installed
wheel serves them as a checkout does; a plain file name of a known type only (no folder, no
`..`), 404 otherwise. The page is held by a strict Content-Security-Policy: its own scripts,
styles and images only (no inline script or style), its calls to this server only."""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from importlib.abc import Traversable

from aiohttp import web

from mockserver.servers.http.validation import BadRequest

OPENAPI_PATH = "/api/openapi.json"

# Every file a page may need, by suffix; anything else is not served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# A plain name: starts with a letter or digit (no `.`, so no `..` and no hidden file).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_PAGE_FILE = 4 * 1024 * 1024  # the page's own files are small; never a big read

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
}


def web_folder() -> Traversable:
    """`mockserver/web/`, wherever the package is installed."""
    return resources.files("mockserver").joinpath("web")


def page_file(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of `web/<name>`, or None if it is not a servable file."""
    if not _NAME.match(name) or ".." in name:
        return None
    suffix = "." + name.rpartition(".")[2].lower() if "." in name else ""
    content_type = CONTENT_TYPES.get(suffix)
    if content_type is None:
        return None
    entry = web_folder().joinpath(name)
    try:
        if not entry.is_file():
            return None
        data = entry.read_bytes()
    except OSError:
        return None
    if len(data) > MAX_PAGE_FILE:
        return None
    return data, content_type


class Page:
    """`GET /` and `GET /ui/{file}` (HEAD too); `GET /api/openapi.json`, the API's own
    description (`openapi`)."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.index)
        router.add_get("/ui/{file}", self.ui_file)
        router.add_get(OPENAPI_PATH, self.openapi)

    async def openapi(self, request: web.Request) -> web.Response:
        # Imported at the first call: the document's schemas are not needed to start (issue
        # 15, start-up time).
        from mockserver.servers.http import openapi

        return await openapi.serve(request)

    async def index(self, request: web.Request) -> web.Response:
        # The query is the page's own (e.g. `?token=`), never read here.
        return await self._serve("index.html")

    async def ui_file(self, request: web.Request) -> web.Response:
        return await self._serve(request.match_info["file"])

    async def _serve(self, name: str) -> web.Response:
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, page_file, name)
        if found is None:
            raise BadRequest(f"no such page file: {name[:100]!r}", 404)
        data, content_type = found
        response = web.Response(body=data, headers=PAGE_HEADERS)
        response.headers["Content-Type"] = content_type
        return response
