"""Which files are open for writing by an FTP or SFTP session right now, and which uploads a
crash cut (the journal of `<data_dir>/uploads/`).

Shared by both servers and the processor: a file still being written is never renamed to its
final name by another connection, never written by a second session, never removed by another,
and never judged (docs/spec.md 5.2.1). `claim` registers a path *before* the file is opened or
created, under the registry's lock, and `unless_open` runs a removal, a rename or the
processor's CLAIM move under that same lock: check and act are one step for both protocols.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mockserver.core.text import printable_name
from mockserver.upload_marks import Marks, read_marks

log = logging.getLogger("mockserver.writes")

T = TypeVar("T")


class Busy(Exception):
    """The path is registered as open for writing by a session."""


class OpenWrites:
    """A thread-safe multiset of absolute paths currently open for writing.

    With a journal folder (`journal`, `<data_dir>/uploads/`), each upload also leaves a marker
    there from its claim to its close (a record of `upload_marks.Marks`): a process killed with
    `kill -9` mid-upload leaves the marker, and the next start removes the remains (`recover`)
    before the processor looks.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self._journal: Path | None = None
        self._marks: Marks | None = None

    @staticmethod
    def _key(path: str | os.PathLike[str]) -> str:
        return os.path.abspath(os.fspath(path))

    # -- the durable journal --------------------------------------------------------------

    def journal(self, folder: Path) -> None:
        """Keep a marker per open upload in `folder` from now on (made if missing)."""
        folder.mkdir(parents=True, exist_ok=True)
        self._journal = folder
        self._marks = Marks(folder)

    def close(self) -> None:
        """Close the journal's file (its markers stay: an upload still open now was never
        complete). Idempotent; markers go on in a new file if uploads do."""
        with self._lock:
            if self._marks is not None:
                self._marks.close()

    def _mark(self, key: str) -> None:
        """Under the lock. Written before the upload's first byte; no fsync: it only has to
        survive the death of this process (the kernel keeps it), not a power cut."""
        if self._marks is None:
            return
        try:
            self._marks.put(key)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # A full disk: the upload goes on unmarked and meets the same full disk on its
            # first write, where each protocol answers it (FTP 452, SFTP FAILURE).
            log.warning("no upload marker for %s: %s", printable_name(key), exc.strerror)

    def _unmark(self, key: str) -> None:
        if self._marks is not None:
            self._marks.clear(key)

    def recover(self, within: Path) -> list[Path]:
        """At start, before anything serves or processes: remove what uploads cut by a crash
        left (a marker still in the journal: its upload never closed) under `within`; the
        paths removed. A partial file is never complete, so never judged (docs/spec.md 4.3).
        A marker file is removed once each file it names is handled."""
        removed: list[Path] = []
        if self._journal is None or self._marks is None:
            return removed
        root = os.path.abspath(within)
        own = self._marks.path  # this run's markers, if uploads began: never recovered
        for marker, keys in read_marks(self._journal):
            if keys is None or marker == own:
                continue
            handled = True
            for key in keys:
                if not cut_upload(key, root):
                    continue
                try:
                    os.unlink(key)
                except OSError as exc:
                    log.warning("cannot remove the remains of a cut upload %s: %s", key, exc)
                    handled = False  # its marker stays: tried again at the next start
                    continue
                removed.append(Path(key))
                log.warning(
                    "removed %s: its upload was cut short by a crash, so it was never complete",
                    printable_name(os.path.basename(key)),
                )
            if handled:
                with contextlib.suppress(FileNotFoundError):
                    marker.unlink()
        return removed

    # -- registration ---------------------------------------------------------------------

    def claim(self, path: str | os.PathLike[str], *, durable: bool = True) -> bool:
        """Register `path` as open for writing unless it already is (then False): call before
        the file is opened or created, `closed` when done. `durable`: journal it too."""
        key = self._key(path)
        with self._lock:
            if key in self._open:
                return False
            if durable:
                self._mark(key)  # two small writes in place (`Marks`): under the lock
            self._open[key] = 1
        return True

    def opened(self, path: str | os.PathLike[str]) -> None:
        """Register `path` whether or not it already is (kept for callers that checked)."""
        key = self._key(path)
        with self._lock:
            if key not in self._open:
                self._mark(key)
            self._open[key] += 1

    def closed(self, path: str | os.PathLike[str]) -> None:
        key = self._key(path)
        with self._lock:
            if self._open[key] <= 1:
                self._open.pop(key, None)
                self._unmark(key)
            else:
                self._open[key] -= 1

    def unless_open(self, action: Callable[[], T], *paths: str | os.PathLike[str]) -> T:
        """Run `action` (one removal, rename or move) under the lock, unless one of `paths` is
        registered: then raise Busy. No upload can be claimed between the check and the act."""
        keys = [self._key(p) for p in paths]
        with self._lock:
            if any(k in self._open for k in keys):
                raise Busy("the file is being uploaded by a session")
            return action()

    def moved(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """A file open for writing was renamed (allowed only when no other session writes it)."""
        skey, dkey = self._key(src), self._key(dst)
        with self._lock:
            count = self._open.pop(skey, 0)
            if count:
                self._unmark(skey)
                if dkey not in self._open:
                    self._mark(dkey)
                self._open[dkey] += count

    def is_open(self, path: str | os.PathLike[str]) -> bool:
        with self._lock:
            return self._key(path) in self._open

    def snapshot(self) -> set[Path]:
        with self._lock:
            return {Path(k) for k in self._open}


def cut_upload(key: str, root: str) -> bool:
    """Whether a journal marker's `key` names a file this mock may remove as a cut upload:
    an absolute path with no `..` and no doubled separator, in a `SEND_SMS` folder (where every
    upload is written) of the accounts tree `root`, reached with no link below `root`, and a
    regular file with no other hard link. A marker written by hand in the data dir must never
    make the mock delete a file elsewhere (issue 16)."""
    if not os.path.isabs(key) or os.path.normpath(key) != key or "\0" in key:
        return False
    folder = os.path.dirname(key)
    if os.path.basename(folder) != "SEND_SMS" or not folder.startswith(root + os.sep):
        return False
    # No link below the accounts tree (a link above it, in the data dir's own path, is fine).
    inside = os.path.relpath(folder, root)
    if os.path.realpath(folder) != os.path.join(os.path.realpath(root), inside):
        return False
    try:
        st = os.lstat(key)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1
