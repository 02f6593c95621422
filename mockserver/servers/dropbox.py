"""The file rules FTP and SFTP share: the safe open of a file of a login's tree (by descriptor:
O_NOFOLLOW, a regular file with no other hard link), the size limit checked on every write, the
open-writes claim made before a file is opened for writing, rename without overwrite
(`renameat2(RENAME_NOREPLACE)`), removal, size and times changed through a checked descriptor,
and the upload-complete hook. Each server only words the refusals its own way.
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
from mockserver.spool import move_noreplace
from mockserver.writes import Busy, OpenWrites

__all__ = ["Busy"]  # re-exported: the servers catch `dropbox.Busy`

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
    """A file with other hard links: one planted on disk could point outside the tree (or into
    another login's), so it is neither read, written, truncated, touched nor renamed."""


class FileTooLarge(OSError):
    """A write would take the file past `limits.max_file_bytes`."""


class TargetExists(FileExistsError):
    """A rename whose target name is taken: a rename never overwrites (docs/spec.md 4.3)."""


def open_file(
    path: StrPath, flags: int, *, writing: bool, truncate: bool
) -> tuple[int, os.stat_result]:
    """Open `path` with `flags` (O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_APPEND; never
    O_TRUNC): a blocking descriptor of a regular file and its stat at open, or NotARegularFile,
    HasOtherLinks (reading too: a planted hard link may lead to another login's file) or
    OSError. `truncate` empties the file once it is known to be an ordinary one: O_TRUNC
    would have cut a file before the checks. `writing` is kept for the callers' clarity."""
    # O_NOFOLLOW: a link swapped in after the path checks is still not followed;
    # O_NONBLOCK: a FIFO planted on disk cannot freeze a server's loop (refused just below).
    flags |= _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK
    created = False
    if truncate and flags & os.O_CREAT and not flags & os.O_EXCL:
        # Created here, the file is empty: no truncation. Besides a system call, that spares
        # ext4's "replace by truncate" heuristic (auto_da_alloc), which makes the close of a
        # file truncated to 0 allocate and start writing its blocks at once: twice the cost of
        # the close of a small upload (issue 15). O_EXCL never follows a link either, and what
        # it creates is a regular file, never a FIFO: no O_NONBLOCK needed.
        try:
            fd = os.open(path, (flags | os.O_EXCL) & ~os.O_NONBLOCK, 0o644)
            created = True
        except FileExistsError:
            fd = os.open(path, flags, 0o644)  # an existing name: checked, then truncated
    else:
        fd = os.open(path, flags, 0o644)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile("not a regular file")
        if st.st_nlink > 1:
            raise HasOtherLinks("the file has other links")
        if not created:
            os.set_blocking(fd, True)
            if truncate:
                os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_upload(
    path: StrPath, flags: int, registry: OpenWrites, limit: int, *, truncate: bool
) -> tuple[int, os.stat_result, Upload]:
    """Claim `path` in `registry` (Busy if a session of either protocol has it open for
    writing), then `open_file` it for writing: its descriptor, stat and registered Upload.
    The claim comes first, so two writers of one name can never both be accepted."""
    if not registry.claim(path):
        raise Busy("the file is being uploaded by another session")
    try:
        fd, st = open_file(path, flags, writing=True, truncate=truncate)
    except BaseException:
        registry.closed(path)
        raise
    return fd, st, Upload(path, registry, limit, (st.st_dev, st.st_ino), claimed=True)


def create_unique(
    folder: StrPath, prefix: str = "", suffix: str = "", registry: OpenWrites | None = None
) -> tuple[str, int]:
    """A new file of `folder` with a random name, created exclusively (never through a link):
    its path and a write-only descriptor. With `registry`, the name is claimed before it is
    created (the caller makes its Upload with `claimed=True`)."""
    for _ in range(_UNIQUE_TRIES):
        name = os.path.join(folder, f"{prefix}{secrets.token_hex(4)}{suffix}")
        if registry is not None and not registry.claim(name):
            continue
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC)
        except BaseException as exc:
            if registry is not None:
                registry.closed(name)
            if isinstance(exc, FileExistsError):
                continue
            raise
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
    (so it is neither written, removed nor renamed by another session nor judged meanwhile),
    and held under the size limit on every write. `claimed`: the path was claimed already
    (`open_upload`, `create_unique`); else it is registered here."""

    def __init__(
        self,
        path: StrPath,
        registry: OpenWrites,
        limit: int,
        ident: tuple[int, int] | None = None,
        *,
        claimed: bool = False,
    ) -> None:
        self.path = path
        self.limit = limit
        # (st_dev, st_ino) at open: `discard` removes only this very file.
        self.ident = ident
        self.too_large = False  # a write was refused for the size limit
        self.failed = False  # a write failed (disk full, I/O error): the file has a hole
        self._registry = registry
        if not claimed:
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

    def remove() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

    with contextlib.suppress(Busy):
        registry.unless_open(remove, path)


def _plain_file(path: StrPath) -> None:
    """NotARegularFile or HasOtherLinks unless `path` names (without following a link) a
    regular file with no other hard link."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile("not a regular file")
    if st.st_nlink > 1:
        raise HasOtherLinks("the file has other links")


def remove_file(path: StrPath, registry: OpenWrites, *, own: bool = False) -> None:
    """Delete a regular file (a link planted on disk is removed, never followed): Busy while a
    session has it open for writing, checked and removed in one step under the registry's
    lock. `own`: the caller's session holds that registration itself (it may remove it)."""

    def remove() -> None:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise NotARegularFile("not a regular file")
        os.unlink(path)

    if own:
        remove()
    else:
        registry.unless_open(remove, path)


def rename_no_replace(
    src: StrPath,
    dst: StrPath,
    registry: OpenWrites | None = None,
    *,
    then: Callable[[], None] | None = None,
) -> None:
    """Contract 4: "A rename never overwrites an existing file": TargetExists if `dst` is taken
    (a link included), atomically (`renameat2(RENAME_NOREPLACE)`, else `link` + `unlink`).
    With `registry`: Busy if either name is open for writing (or claimed for an upload about
    to create it), checked under its lock; and the source must be a regular file with no
    other hard link. `then` (the `file.renamed` event) runs right after the move, under the
    registry's lock: the processor's pickup checks that registry first, so no `file.claimed`
    of the new name can be published before it (contract 9.1: events in causal order)."""

    def rename() -> None:
        if registry is not None:
            _plain_file(src)
        if not move_noreplace(Path(src), Path(dst)):
            raise TargetExists(errno.EEXIST, "the target exists")
        if then is not None:
            then()

    if registry is None:
        rename()
    else:
        registry.unless_open(rename, src, dst)


def set_size(path: StrPath, size: int, registry: OpenWrites) -> None:
    """Truncate or extend a file by path through a descriptor `open_file` checked (no link
    followed, a regular file, no other hard link), while it is claimed: Busy if a session of
    either protocol is writing it."""
    if not registry.claim(path, durable=False):
        raise Busy("the file is being uploaded by another session")
    try:
        fd, _ = open_file(path, os.O_WRONLY, writing=True, truncate=False)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
    finally:
        registry.closed(path)


def set_times(path: StrPath, atime_ns: int | None, mtime_ns: int | None) -> None:
    """Set a file's times by path through a descriptor `open_file` checked (as `set_size`);
    a time left None keeps its value."""
    fd, st = open_file(path, os.O_RDONLY, writing=False, truncate=False)
    try:
        atime = st.st_atime_ns if atime_ns is None else atime_ns
        mtime = st.st_mtime_ns if mtime_ns is None else mtime_ns
        os.utime(fd, ns=(atime, mtime))
    finally:
        os.close(fd)


def no_events(event: Event) -> None:
    """The `Publish` of a server run without a Backend (a test's bare FTP or SFTP server)."""


def notify_upload(hook: OnUpload, login: str, path: Path, log: logging.Logger) -> None:
    """Hand a complete file to the processor's hook; a broken hook never takes a session down."""
    try:
        hook(login, path)
    except Exception:
        log.exception("login=%s upload hook failed for %s", login, path.name)
