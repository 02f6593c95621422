"""`POST /api/files?login=L&name=N` (contract 10: "drop a CSV file into SEND_SMS (it is processed
exactly like an FTP upload)"): the body's bytes become `SEND_SMS/N` of login L by the upload
rules FTP and SFTP share (`servers.dropbox`): written under a temporary `.tmp` name, registered
in `OpenWrites` and held under `limits.max_file_bytes` while written, renamed to N without ever
overwriting, then handed to the processor by the upload hook. It publishes `upload.closed` and
`file.renamed` with protocol `http`, as a careful FTP client's upload-then-rename does.

The answer (201) comes once the file is in SEND_SMS, not once judged: the verdict is awaited
with `GET /api/files?name=N&after_id=…&wait=…` (a call never holds a drop open for as long
as `processing.delay_seconds` or manual mode keep the file waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import ClientPayloadError, web

from mockserver.backend import Backend
from mockserver.core.filename import is_temporary
from mockserver.servers import dropbox, policy
from mockserver.servers.announce import Announce
from mockserver.servers.dropbox import OnUpload
from mockserver.servers.http.validation import BadRequest, parse_query, reply, text_param
from mockserver.spool import move_noreplace
from mockserver.tree import Folder, folder_prefix, login_root

log = logging.getLogger("mockserver.http")

T = TypeVar("T")
CHUNK = 64 * 1024
TEMP_PREFIX = "http-drop-"
PROTOCOL = "http"


def plain_name(value: str | None) -> str:
    """`name=`: a plain file name FTP would accept in SEND_SMS, and not a `.tmp` one (never
    processed, contract 5.1); 400 otherwise."""
    if value is None or value == "":
        raise BadRequest("name is required: the file name to drop into SEND_SMS")
    if "/" in value or "\\" in value or value in (".", "..") or ".." in value:
        raise BadRequest("name must be a plain file name (no folder, no '..')")
    if not value.isprintable():
        raise BadRequest("name must be printable characters only")
    if is_temporary(value):
        raise BadRequest("name must not end in .tmp: a .tmp file is never processed")
    return value


class DropApi:
    """`POST /api/files` over one `Backend`; `on_upload` is the processor's upload hook (the
    `submit` the FTP and SFTP servers call); None: the watcher and the rescan find the file."""

    def __init__(self, backend: Backend, on_upload: OnUpload | None) -> None:
        self.backend = backend
        self.on_upload = on_upload
        self.announce = Announce(backend.publish, PROTOCOL)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/files", self.drop)

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args))

    def _virtual(self, login: str, name: str) -> str:
        """The path the login's FTP view shows (`/SEND_SMS/N`, nested: `/L/SEND_SMS/N`)."""
        parts = (*folder_prefix(self.backend.config.server.layout, login), Folder.SEND_SMS, name)
        return "/" + "/".join(parts)

    async def drop(self, request: web.Request) -> web.Response:
        q = parse_query(request, ("login", "name"))
        login = text_param(q, "login")
        if login is None:
            raise BadRequest("login is required: the account whose SEND_SMS gets the file")
        name = plain_name(q.get("name"))
        config = self.backend.config
        virtual = self._virtual(login, name)
        decision = policy.may_write(virtual, config.server.layout, login)
        if not decision:
            raise BadRequest(f"name refused: {decision.reason}")
        if await self._blocking(self.backend.account, login) is None:
            raise BadRequest(f"unknown login {login!r}", 404)
        limit = config.limits.max_file_bytes
        if request.content_length is not None and request.content_length > limit:
            self.announce.upload_refused(login, virtual, "too_large")
            raise BadRequest(f"file too large: the limit is {limit} bytes", 413)
        folder = self.backend.folder(login, Folder.SEND_SMS)
        target = folder / name
        if await self._blocking(os.path.lexists, target):
            raise BadRequest(f"{name!r} already exists in SEND_SMS: a drop never overwrites", 409)
        size = await self._write(request, login, folder, target, limit)
        log.info("login=%s HTTP drop %s (%d bytes)", login, virtual, size)
        if self.on_upload is not None:
            dropbox.notify_upload(self.on_upload, login, target, log)
        return reply({"login": login, "name": name, "bytes": size}, 201)

    async def _write(
        self, request: web.Request, login: str, folder: Path, target: Path, limit: int
    ) -> int:
        """The body into a new `.tmp` file of `folder`, then renamed to `target`: its size."""
        tmp_path, fd = await self._blocking(dropbox.create_unique, folder, TEMP_PREFIX, ".tmp")
        tmp = Path(tmp_path)
        root = login_root(self.backend.data_dir, login)
        tmp_virtual = policy.to_virtual(root, tmp) or f"/{tmp.name}"
        st = os.fstat(fd)
        upload = dropbox.Upload(tmp, self.backend.open_writes, limit, (st.st_dev, st.st_ino))
        try:
            try:
                size = await self._copy(request, fd, upload)
            finally:
                os.close(fd)
        except BaseException as exc:
            upload.discard()
            upload.release()
            status = exc.status if isinstance(exc, BadRequest) else 0
            why = {413: "too_large", 507: "failed"}.get(status, "cut")
            self.announce.upload_refused(login, tmp_virtual, why)
            raise
        upload.release()
        self.announce.upload_closed(login, tmp_virtual, size)
        new_name = policy.to_virtual(root, target) or "?"

        def move() -> bool:
            # Under the open-writes lock, which the processor's pickup checks first: the
            # event is published before any `file.claimed` of the new name (contract 9.1).
            if not move_noreplace(tmp, target):
                return False
            self.announce.renamed(login, tmp_virtual, new_name)
            return True

        try:
            moved = await self._blocking(self.backend.open_writes.unless_open, move)
        except FileNotFoundError:  # removed meanwhile over FTP or SFTP
            raise BadRequest("the file was removed before it was renamed into place", 409) from None
        if not moved:
            with contextlib.suppress(OSError):
                await self._blocking(os.unlink, tmp)
            self.announce.deleted(login, tmp_virtual)
            raise BadRequest(f"{target.name!r} already exists in SEND_SMS: never overwritten", 409)
        return size

    async def _copy(self, request: web.Request, fd: int, upload: dropbox.Upload) -> int:
        """Copy the body to `fd` a chunk at a time (never more than one chunk in memory)."""
        size = 0
        while True:
            try:
                chunk = await request.content.read(CHUNK)
            except (ConnectionError, ClientPayloadError):
                raise BadRequest("the body ended before it was complete") from None
            if not chunk:
                return size
            try:
                upload.admit(size, len(chunk))
            except dropbox.FileTooLarge:
                too_large = f"file too large: the limit is {upload.limit} bytes"
                raise BadRequest(too_large, 413) from None
            try:
                await self._blocking(dropbox.write_all, fd, chunk)
            except OSError as exc:
                log.warning("HTTP drop: cannot write %s: %s", upload.path, exc.strerror)
                raise BadRequest(f"the file could not be written: {exc.strerror}", 507) from None
            size += len(chunk)
