"""Issue 16: the files whose processing failed for a reason outside the file (a full disk, a
locked database, an unwritable Maildir, a `MemoryError`) and wait out a back-off before the
next attempt; and the recaps owed the same way. The processor fills it
(`processing/retries.py`); `GET /api/processing` and `MockServer.retrying()` read it. One
entry per file, removed when the file is done, gone or reset: bounded by the files in
PROCESSING and the recaps owed.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryingFile:
    login: str
    name: str  # the user's name, printable (as `file.claimed` names it)
    step: str  # the step that failed: "read", "judge", "record", "move" or "mail"
    attempts: int  # failed attempts so far (1 after the first failure)
    cause: str  # the last failure, one line, never empty (`core.text.cause_of`)
    next_at: datetime  # real time (UTC) of the next attempt: back-off runs on real time

    def to_dict(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "name": self.name,
            "step": self.step,
            "attempts": self.attempts,
            "cause": self.cause,
            "next_at": self.next_at.isoformat(),
        }


class Retrying:
    """Thread-safe: the retrying files by key (the processor's: login and claim key), in
    order of their first failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[Hashable, RetryingFile] = {}

    def failed(
        self, key: Hashable, login: str, name: str, step: str, cause: str, next_at: datetime
    ) -> int:
        """One more failure of the file `key`; returns its attempts so far."""
        with self._lock:
            before = self._files.get(key)
            attempts = 1 if before is None else before.attempts + 1
            self._files[key] = RetryingFile(login, name, step, attempts, cause, next_at)
            return attempts

    def attempts(self, key: Hashable) -> int:
        """The failed attempts of `key` so far (0: not retrying)."""
        with self._lock:
            found = self._files.get(key)
            return 0 if found is None else found.attempts

    def clear(self, key: Hashable) -> RetryingFile | None:
        """`key` is done (or gone): forget it; returns what it was."""
        with self._lock:
            return self._files.pop(key, None)

    def clear_all(self) -> None:
        """A reset: every file is gone."""
        with self._lock:
            self._files.clear()

    def files(self) -> list[RetryingFile]:
        with self._lock:
            return list(self._files.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)
