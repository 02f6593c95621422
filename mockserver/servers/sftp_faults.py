"""Contract 9.2 faults on the SFTP server's protocol operations: which requests are which
operation, and what the client then sees.

| operation | request | `name` |
|---|---|---|
| `login` | password authentication with the right password | - |
| `list` | `READDIR` (the first of a listing) | the folder listed |
| `upload` | `OPEN` for writing | the file opened |
| `rename` | `RENAME`, `posix-rename@openssh.com` | the file renamed, by its old name |
| `delete` | `REMOVE` | the file removed |
| `download` | `OPEN` for reading | the file opened |

A rule fires when the request's path is well formed, before the platform's own checks (an
injected error replaces even a refusal), and acts:

- `error`: the status is `SSH_FX_FAILURE` with `message` (a default one says the failure is
  injected); nothing is done and the session stays usable. At login, the password is refused
  (not counted as a failed login) after an SSH authentication banner carrying the message;
  the client may try again on the same connection.
- `disconnect`: the SSH connection is closed at once (no disconnect message: a cut).
- `delay`: the request is answered `seconds` later (`asyncio.sleep`: that session's requests
  wait, every other session goes on).
- `truncate` (upload): the first `bytes` bytes of the file are written, then the SSH connection
  is closed; the partial file is removed and never judged. An upload no longer than `bytes`
  completes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import asyncssh
from asyncssh import SFTPAttrs, SFTPFailure

from mockserver.core.faults import FaultRule
from mockserver.faults import Faults
from mockserver.servers import faulting, policy
from mockserver.servers.sftp_session import ConfinedSftp
from mockserver.servers.sftp_tree import guarded
from mockserver.tree import Layout

if TYPE_CHECKING:
    from mockserver.servers.sftp import SftpServer
    from mockserver.servers.ssh import SshConnection

log = logging.getLogger("mockserver.sftp")

_WRITE_FLAGS = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT
_WRITE_FLAGS |= asyncssh.FXF_TRUNC | asyncssh.FXF_EXCL

R = TypeVar("R")
MaybeAwait: TypeAlias = R | Awaitable[R]


async def login_allowed(conn: asyncssh.SSHServerConnection, faults: Faults, login: str) -> bool:
    """A right password for `login`: whether the login goes on after the `login` rule, if one
    fires (a `delay` waits here; an `error` sends its message as an authentication banner)."""
    rule = faulting.fire(faults, "login", "sftp", login)
    if rule is None or rule.action == "truncate":
        return True
    faulting.log_action(log, "SFTP", login, "login", rule)
    if rule.action == "delay":
        await asyncio.sleep(rule.seconds)
        return True
    if rule.action == "error":
        conn.send_auth_banner(faulting.error_text(rule, "login") + "\n")
    else:
        conn.abort()
    return False


class FaultedSftp(ConfinedSftp):
    """`ConfinedSftp` with the faults of contract 9.2 fired on its operations."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        owner: SftpServer,
        login: str,
        root: Path,
        layout: Layout,
        connection: SshConnection | None = None,
    ) -> None:
        super().__init__(chan, owner, login, root, layout, connection)
        self._faults = owner.faults
        self._cuts: dict[object, FaultRule] = {}  # handle: its `truncate` rule

    @guarded
    def _fault(self, on: str, path: bytes) -> FaultRule | None:
        """Fire the rule of operation `on` on `path`; act on `error` and `disconnect` (by
        raising); return a `delay` or `truncate` for the caller to act on."""
        if not len(self._faults):
            return None
        virtual = policy.normalise(os.fsdecode(path))
        if virtual is None:
            return None  # a bad path: the operation itself refuses it
        rule = faulting.fire(self._faults, on, "sftp", self._login, virtual)
        if rule is None:
            return None
        if rule.action != "truncate":
            faulting.log_action(log, "SFTP", self._login, on, rule)
        if rule.action == "error":
            raise SFTPFailure(faulting.error_text(rule, on))
        if rule.action == "disconnect":
            self._cut()
            raise SFTPFailure("connection closed by an injected fault")  # never delivered
        return rule

    def _cut(self) -> None:
        self.channel.get_connection().abort()

    @staticmethod
    def _after(rule: FaultRule | None, call: Callable[[], R]) -> MaybeAwait[R]:
        """`call()` now, or after a `delay` rule's seconds (asyncssh awaits the answer)."""
        if rule is None or rule.action != "delay":
            return call()

        async def later() -> R:
            await asyncio.sleep(rule.seconds)
            return call()

        return later()

    # asyncssh's SFTPServer types these answers `MaybeAwait`; ConfinedSftp's are immediate.

    def open(  # type: ignore[override]
        self, path: bytes, pflags: int, attrs: SFTPAttrs
    ) -> MaybeAwait[object]:
        rule = self._fault("upload" if pflags & _WRITE_FLAGS else "download", path)
        if rule is not None and rule.action == "truncate":
            handle = super().open(path, pflags, attrs)
            self._cuts[handle] = rule
            return handle
        return self._after(rule, functools.partial(super().open, path, pflags, attrs))

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        rule = self._cuts.get(file_obj) if self._cuts else None
        if rule is None or offset + len(data) <= rule.bytes:
            return super().write(file_obj, offset, data)
        if offset < rule.bytes:
            super().write(file_obj, offset, data[: rule.bytes - offset])
        faulting.log_action(log, "SFTP", self._login, "upload", rule)
        self._cut()
        raise SFTPFailure("connection cut by an injected fault")  # never delivered

    def close(self, file_obj: object) -> None:
        self._cuts.pop(file_obj, None)
        super().close(file_obj)

    def remove(self, path: bytes) -> MaybeAwait[None]:  # type: ignore[override]
        return self._after(self._fault("delete", path), functools.partial(super().remove, path))

    def rename(self, oldpath: bytes, newpath: bytes) -> MaybeAwait[None]:  # type: ignore[override]
        rule = self._fault("rename", oldpath)
        return self._after(rule, functools.partial(super().rename, oldpath, newpath))

    def posix_rename(  # type: ignore[override]
        self, oldpath: bytes, newpath: bytes
    ) -> MaybeAwait[None]:
        rule = self._fault("rename", oldpath)
        return self._after(rule, functools.partial(super().posix_rename, oldpath, newpath))

    async def before_listing(self, path: bytes) -> None:
        rule = self._fault("list", path)
        if rule is not None:
            await asyncio.sleep(rule.seconds)  # a delay (error and disconnect have raised)
