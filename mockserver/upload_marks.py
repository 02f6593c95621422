"""The markers of the uploads in progress (`<data_dir>/uploads/`, docs/spec.md 4.3): what says,
after a crash, which files were still being written.

`Marks` keeps them as fixed-size records of one file per run (`<token>.upload`), zero-filled
when it is made or grown, written in place with `pwrite`: an upload's marker costs two small
writes into the page cache and its removal one, with no file created or removed per upload
(before issue 15, one marker file per upload: a create, a write, a close and an unlink, each
upload waiting twice on the file system's journal for the inode and its directory entry). The
kernel keeps what was written when the process dies (`kill -9`, out of memory), as it kept
the marker files; a power cut is not covered either way (no fsync).

A record whose first byte is not NUL holds the absolute path of an open upload, its bytes then
a NUL. A marker is written tail first (every byte but the first, then the NUL), its first byte
last; it is cleared by writing its first byte NUL. So a process killed in the middle leaves a
record that is either free or whole, never a path made of two.

`read_marks` gives what a folder's markers name, for `OpenWrites.recover`: every `*.upload`
file, either a file of records (it holds NUL bytes) or one marker as a mock from before issue
15 wrote it (one file per upload, the path as its whole content, which no NUL can be part of).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import weakref
from collections.abc import Iterator
from pathlib import Path

RECORD = 4096  # PATH_MAX: a longer path could not be opened either
FIRST_RECORDS = 64  # records of a new file (256 KiB); doubled each time all are taken
SUFFIX = ".upload"

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        offset += written
        view = view[written:]


class Marks:
    """The markers of one run, in `folder`. Not thread-safe: `OpenWrites` calls it under its
    lock. The file is made at the first `put` (so a folder just recovered stays empty until an
    upload starts), with a name no other run uses; `close` closes it (a finaliser does too)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._path: Path | None = None
        self._records = 0
        self._free: list[int] = []  # free record numbers, the lowest last
        self._slots: dict[str, int] = {}
        self._finalizer: weakref.finalize[[int], Marks] | None = None

    @property
    def path(self) -> Path | None:
        """The file of this run's markers, once made."""
        return self._path

    def put(self, key: str) -> None:
        """Mark `key` (an absolute path) as open for writing. OSError (ENOSPC: no room to make
        or grow the file) leaves it unmarked."""
        data = os.fsencode(key)
        if b"\0" in data:
            raise ValueError("embedded null byte")
        if len(data) >= RECORD:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        if key in self._slots:
            return
        if not self._free:
            self._grow()
        fd = self._fd
        assert fd is not None
        slot = self._free.pop()
        offset = slot * RECORD
        try:
            _pwrite_all(fd, data[1:] + b"\0", offset + 1)  # the tail first...
            _pwrite_all(fd, data[:1], offset)  # ...the first byte makes the record whole
        except BaseException:
            self._free.append(slot)  # its first byte is still NUL: the record is free
            raise
        self._slots[key] = slot

    def clear(self, key: str) -> None:
        """`key` is no longer open for writing (nothing if it was not marked)."""
        slot = self._slots.get(key)
        if slot is None:
            return
        assert self._fd is not None
        _pwrite_all(self._fd, b"\0", slot * RECORD)
        del self._slots[key]
        self._free.append(slot)

    def _grow(self) -> None:
        if self._fd is None:
            self._open()
        fd = self._fd
        assert fd is not None
        old = self._records
        new = max(FIRST_RECORDS, 2 * old)
        try:
            # Zero-filled now: later markers overwrite allocated bytes, never grow the file.
            _pwrite_all(fd, bytes((new - old) * RECORD), old * RECORD)
        except BaseException:
            # The records past `old` are zeros or absent: free either way.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, old * RECORD)
            raise
        self._records = new
        self._free[:0] = range(new - 1, old - 1, -1)

    def _open(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        while True:
            path = self.folder / f"{secrets.token_hex(8)}{SUFFIX}"
            try:
                fd = os.open(path, flags, 0o600)
            except FileExistsError:
                continue
            break
        self._fd, self._path = fd, path
        self._finalizer = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        """Close the file (its markers stay: an upload still open when the process ends was
        never complete). Idempotent; a later `put` makes a new file."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()
        self._fd = self._path = None
        self._records = 0
        self._free = []
        self._slots = {}


def read_marks(folder: Path) -> Iterator[tuple[Path, list[str] | None]]:
    """Each marker file of `folder` (`*.upload`, sorted by name) with the keys it holds, None
    if it cannot be read (it is then kept). The caller removes each file once every key is
    handled."""
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            data = path.read_bytes()
        except OSError:
            yield path, None
            continue
        if b"\0" not in data:  # one marker file per upload, as before issue 15
            yield path, [os.fsdecode(data)] if data else []
            continue
        keys = []
        for offset in range(0, len(data), RECORD):
            record = data[offset : offset + RECORD]
            end = record.find(b"\0")
            if end > 0:  # a NUL first byte is a free record; none at all is no record
                keys.append(os.fsdecode(record[:end]))
        yield path, keys
