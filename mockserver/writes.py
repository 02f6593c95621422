"""Which files are open for writing by an FTP or SFTP session right now.

Shared by both servers and the processor: a file still being written is never renamed to its
final name by another connection, and never judged (docs/spec.md 5.2.1).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path


class OpenWrites:
    """A thread-safe multiset of absolute paths currently open for writing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    @staticmethod
    def _key(path: str | os.PathLike[str]) -> str:
        return os.path.abspath(os.fspath(path))

    def opened(self, path: str | os.PathLike[str]) -> None:
        with self._lock:
            self._open[self._key(path)] += 1

    def closed(self, path: str | os.PathLike[str]) -> None:
        key = self._key(path)
        with self._lock:
            if self._open[key] <= 1:
                self._open.pop(key, None)
            else:
                self._open[key] -= 1

    def moved(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """A file open for writing was renamed (allowed only when no other session writes it)."""
        skey, dkey = self._key(src), self._key(dst)
        with self._lock:
            count = self._open.pop(skey, 0)
            if count:
                self._open[dkey] += count

    def is_open(self, path: str | os.PathLike[str]) -> bool:
        with self._lock:
            return self._key(path) in self._open

    def snapshot(self) -> set[Path]:
        with self._lock:
            return {Path(k) for k in self._open}
