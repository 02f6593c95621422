"""A login's tree as one SFTP session sees it (`ConfinedTree`): every path normalised, confined
and judged by `servers.policy`; stat, listing and links refused; every failure an SFTP status.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import asyncssh
from asyncssh import (
    SFTPAttrs,
    SFTPError,
    SFTPFailure,
    SFTPName,
    SFTPOpUnsupported,
    SFTPPermissionDenied,
)

from mockserver.servers import policy
from mockserver.servers.sftp_compat import LenientSftpServer
from mockserver.tree import Layout

if TYPE_CHECKING:
    from mockserver.servers.sftp import SftpServer
    from mockserver.servers.ssh import SshConnection

log = logging.getLogger("mockserver.sftp")

P = ParamSpec("P")
R = TypeVar("R")

# Folder handles a session may hold open (opendir without closedir, issue 16); the next
# opendir is refused until one is closed. Like the open files' cap (sftp_session.MAX_HANDLES).
MAX_DIR_HANDLES = 64


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Every failure becomes an SFTP status, never an "Uncaught exception" carrying real paths
    (contract 4: "never a crash, and the connection stays usable")."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if args and isinstance(args[0], ConfinedTree):
            args[0].touch()
        try:
            return method(*args, **kwargs)
        except SFTPError:
            raise
        except OSError as exc:
            # asyncssh maps the errno to a status; drop the file name (it is a real path).
            raise OSError(exc.errno, exc.strerror or "I/O error") from None
        except Exception:
            log.exception("SFTP %s failed", method.__name__)
            raise SFTPFailure("internal error") from None

    return wrapper


class _Listing:
    """One open folder handle: the folder's names, read at the first readdir (a refusal is
    then that readdir's status, as before)."""

    def __init__(self, tree: ConfinedTree, path: bytes) -> None:
        self._tree = tree
        self._path = path
        self._names: Iterator[SFTPName] | None = None

    def __aiter__(self) -> _Listing:
        return self

    async def __anext__(self) -> SFTPName:
        if self._names is None:
            await self._tree.before_listing(self._path)
            self._names = iter(self._tree._list(self._path))
        try:
            return next(self._names)
        except StopIteration:
            raise StopAsyncIteration from None


class ConfinedTree(LenientSftpServer):
    """The paths, names and attributes of one SFTP session, confined to the login's tree
    (contract 4); `sftp_session.ConfinedSftp` adds files and changes.

    The client sees `/` = the login root. Every path goes through `policy.normalise` and
    `policy.confine` (no `..` escape, no backslash or NUL, never through a symbolic link), and
    every permission comes from `servers.policy`, the same rules the FTP server applies.
    Bytes after a request's fields are ignored, as OpenSSH does (`servers.sftp_compat`).
    """

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        owner: SftpServer,
        login: str,
        root: Path,
        layout: Layout,
        connection: SshConnection | None = None,
    ) -> None:
        super().__init__(chan)  # no chroot: asyncssh's chroot only rewrites paths
        self._owner = owner
        self._connection = connection
        self._login = login
        self._root = root
        self._layout = layout
        self._limit = owner.config.limits.max_file_bytes
        # The open folder handles, gone from here once asyncssh drops them (closed).
        self._listings: weakref.WeakSet[_Listing] = weakref.WeakSet()

    def touch(self) -> None:
        """Every request counts as activity for the idle timeout."""
        if self._connection is not None:
            self._connection.touch()

    # -- paths ----------------------------------------------------------------------------

    def _virtual(self, path: bytes) -> str:
        virtual = policy.normalise(os.fsdecode(path))
        if virtual is None:
            raise SFTPPermissionDenied("invalid path")
        return virtual

    def _real(self, virtual: str) -> Path:
        real = policy.confine(self._root, virtual)
        if real is None:
            raise SFTPPermissionDenied("access denied: outside your folder tree or a link")
        return real

    def _require(self, decision: policy.Decision, what: str, virtual: str) -> None:
        if not decision:
            log.info("login=%s SFTP refused %s %s: %s", self._login, what, virtual, decision.reason)
            if what == "upload":
                self._owner.announce.upload_refused(self._login, virtual, "permission")
            raise SFTPPermissionDenied(decision.reason)

    def _entry_stat(self, real: Path) -> os.stat_result:
        """lstat of something the client may see: a folder or a regular file, nothing else."""
        st = os.lstat(real)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise SFTPPermissionDenied("access denied: not a regular file or folder")
        return st

    # -- names and attributes -------------------------------------------------------------

    @guarded
    def realpath(self, path: bytes) -> bytes:
        # A virtual path only, never the real one; `..` of `/` is `/`.
        return os.fsencode(self._virtual(path))

    @guarded
    def stat(self, path: bytes) -> os.stat_result:
        virtual = self._virtual(path)
        self._require(policy.may_list(virtual, self._layout, self._login), "stat", virtual)
        return self._entry_stat(self._real(virtual))

    @guarded
    def lstat(self, path: bytes) -> os.stat_result:
        # No link is ever followed (confine refuses one anywhere in the path): stat == lstat.
        return self.stat(path)

    def format_user(self, uid: int | None) -> str:
        return self._login

    def format_group(self, gid: int | None) -> str:
        return self._login

    async def before_listing(self, path: bytes) -> None:
        """Called at a folder's first readdir (`sftp_faults` applies its faults there)."""

    def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:
        """asyncssh keeps what this returns as the folder's handle until the client closes it
        (or the session ends); at most MAX_DIR_HANDLES at once. Each holds no descriptor (the
        folder is read whole at the first readdir) but its names."""
        if len(self._listings) >= MAX_DIR_HANDLES:
            raise SFTPFailure("too many open folders in this session")
        listing = _Listing(self, path)
        self._listings.add(listing)
        return listing

    @guarded
    def _list(self, path: bytes) -> list[SFTPName]:
        virtual = self._virtual(path)
        self._require(policy.may_list(virtual, self._layout, self._login), "list", virtual)
        real = self._real(virtual)
        st = self._entry_stat(real)
        if not stat.S_ISDIR(st.st_mode):
            raise SFTPFailure("not a folder")
        parent_virtual = policy.normalise(virtual + "/..") or "/"
        parent = self._real(parent_virtual)
        names = [
            SFTPName(b".", attrs=SFTPAttrs.from_local(st)),
            SFTPName(b"..", attrs=SFTPAttrs.from_local(os.lstat(parent))),
        ]
        with os.scandir(real) as listing:
            found = list(listing)
        for entry in sorted(found, key=lambda e: e.name):
            entry_st = entry.stat(follow_symlinks=False)
            if not (stat.S_ISREG(entry_st.st_mode) or stat.S_ISDIR(entry_st.st_mode)):
                # A link (or device, FIFO...) planted on disk: never shown, never followed.
                log.warning(
                    "login=%s: hiding %s/%s (not a regular file or folder)",
                    self._login,
                    virtual.rstrip("/"),
                    entry.name,
                )
                continue
            names.append(SFTPName(os.fsencode(entry.name), attrs=SFTPAttrs.from_local(entry_st)))
        return names

    @guarded
    def readlink(self, path: bytes) -> bytes:
        raise SFTPPermissionDenied(
            policy.may_link(self._virtual(path), self._layout, self._login).reason
        )

    @guarded
    def statvfs(self, path: bytes) -> os.statvfs_result:
        raise SFTPOpUnsupported("statvfs is not supported")

    @guarded
    def fstatvfs(self, file_obj: object) -> os.statvfs_result:
        raise SFTPOpUnsupported("statvfs is not supported")
