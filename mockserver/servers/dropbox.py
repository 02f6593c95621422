"""The upload rules FTP and SFTP share: the safe open of a file of a login's tree, the size limit
checked on every write, the open-writes registration, rename without overwrite, the removal of a
partial upload, and the upload-complete hook. Each server only words the refusals its own way.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from mockserver.events import Event
from mockserver.writes import OpenWrites

OnUpload = Callable[[str, Path], None]
# Contract 9.1: how a server publishes its session and upload events (`Backend.publish`).
Publish = Callable[[Event], object]
StrPath = str | os.PathLike[str]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_UNIQUE_TRIES = 50


class NotARegularFile(Exception):
    """The path names a folder, a FIFO, a device...: never opened as a file."""


class HasOtherLinks(Exception):
    """A file with other hard links: one planted on disk could point outside the tree."""


class FileTooLarge(OSError):
    """A write would take the file past `limits.max_file_bytes`."""


class TargetExists(FileExistsError):
    """A rename whose target name is taken: a rename never overwrites (docs/spec.md 4.3)."""


def open_file(
    path: StrPath, flags: int, *, writing: bool, truncate: bool
) -> tuple[int, os.stat_result]:
    """Open `path` with `flags` (O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_APPEND; never
    O_TRUNC): a blocking descriptor of a regular file and its stat at open, or NotARegularFile,
    HasOtherLinks (`writing` only) or OSError. `truncate` empties the file once it is known
    to be an ordinary one: O_TRUNC would have cut a file before the checks."""
    # O_NOFOLLOW: a link swapped in after the path checks is still not followed;
    # O_NONBLOCK: a FIFO planted on disk cannot freeze a server's loop (refused just below).
    fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, 0o644)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile("not a regular file")
        if writing and st.st_nlink > 1:
            raise HasOtherLinks("the file has other links")
        os.set_blocking(fd, True)
        if truncate:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def create_unique(folder: StrPath, prefix: str = "", suffix: str = "") -> tuple[str, int]:
    """A new file of `folder` with a random name, created exclusively (never through a link):
    its path and a write-only descriptor."""
    for _ in range(_UNIQUE_TRIES):
        name = os.path.join(folder, f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC)
        except FileExistsError:
            continue
        return name, fd
    raise OSError(errno.EEXIST, "No usable unique file name found")


def write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    """Write every byte (at `offset`, or at the file position), finishing short writes: a full
    disk fails here, never in a later flush."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        if offset is not None:
            offset += written
        view = view[written:]


class Upload:
    """One file open for writing by one session: registered in `OpenWrites` until `release`
    (so it is neither renamed by another session nor judged meanwhile), and held under the size
    limit on every write."""

    def __init__(
        self,
        path: StrPath,
        registry: OpenWrites,
        limit: int,
        ident: tuple[int, int] | None = None,
    ) -> None:
        self.path = path
        self.limit = limit
        # (st_dev, st_ino) at open: `discard` removes only this very file.
        self.ident = ident
        self.too_large = False  # a write was refused for the size limit
        self.failed = False  # a write failed (disk full, I/O error): the file has a hole
        self._registry = registry
        registry.opened(path)
        self._registered = True

    def admit(self, offset: int, length: int) -> None:
        """Raise FileTooLarge if a write of `length` bytes at `offset` ends past the limit
        (offset + length: a write at a huge offset cannot make a sparse file either); once
        refused, every later write is."""
        if self.too_large or offset + length > self.limit:
            self.too_large = True
            raise FileTooLarge(errno.EFBIG, f"file larger than {self.limit} bytes")

    def discard(self) -> None:
        """Remove the file if its name still leads to the file opened (call before `release`:
        while it is registered, the processor cannot have claimed it)."""
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self.ident:
                os.unlink(self.path)
        except OSError:
            pass

    def release(self) -> None:
        """The write handle is closed (idempotent)."""
        if self._registered:
            self._registered = False
            self._registry.closed(self.path)


def remove_partial(path: StrPath, registry: OpenWrites) -> None:
    """Remove an upload that never completed (aborted, cut, oversized), unless a session has it
    open for writing again; OSError other than a missing file is raised."""
    if registry.is_open(path):
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def rename_no_replace(src: StrPath, dst: StrPath) -> None:
    """Contract 4: "A rename never overwrites an existing file": TargetExists if `dst` is taken
    (a link included)."""
    if os.path.lexists(dst):
        raise TargetExists(errno.EEXIST, "the target exists")
    os.rename(src, dst)


def no_events(event: Event) -> None:
    """The `Publish` of a server run without a Backend (a test's bare FTP or SFTP server)."""


def notify_upload(hook: OnUpload, login: str, path: Path, log: logging.Logger) -> None:
    """Hand a complete file to the processor's hook; a broken hook never takes a session down."""
    try:
        hook(login, path)
    except Exception:
        log.exception("login=%s upload hook failed for %s", login, path.name)
