"""Which files are claimed and not yet placed, which claims a worker holds now, and which file
waits behind an earlier one of the same name still in PROCESSING.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from mockserver.spool import Claim, FileKey

Taken = Literal["ok", "duplicate", "later"]


class InFlight:
    """Thread-safe registry; names are `(login, name)`, claims `(login, FileKey)`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: set[tuple[str, str]] = set()  # claimed, not yet placed
        self._active: set[tuple[str, FileKey]] = set()  # claims a worker is processing now
        self._resuming: set[tuple[str, FileKey]] = set()  # records a resume job looks at now
        self._waiting: dict[tuple[str, str], Path] = {}  # same name already in PROCESSING

    def reserve(self, login: str, name: str, path: Path) -> bool:
        """Take the name before claiming `path`; False (and `path` waits its turn) when an
        earlier file of that name is in PROCESSING."""
        with self._lock:
            if (login, name) in self._names:
                self._waiting[(login, name)] = path
                return False
            self._names.add((login, name))
            return True

    def unreserve(self, login: str, name: str, path: Path, behind: Callable[[], bool]) -> None:
        """The claim failed: give the name back; `path` waits when `behind()` says a file of
        that name still sits in PROCESSING (checked under the lock)."""
        with self._lock:
            self._names.discard((login, name))
            if behind():
                self._waiting[(login, name)] = path

    def adopt(self, login: str, name: str, find: Callable[[], Claim | None]) -> Claim | None:
        """A file found in PROCESSING by a scan, unless a worker already holds its name.
        Checked and taken under one lock: a pickup reserves its name before claiming, so a
        successor claimed under the same name right after its predecessor finished is never
        scheduled twice."""
        with self._lock:
            if (login, name) in self._names:
                return None
            claim = find()
            if claim is not None:
                self._names.add((login, name))
            return claim

    def mark(self, login: str, name: str) -> None:
        with self._lock:
            self._names.add((login, name))

    def discard(self, login: str, name: str) -> None:
        with self._lock:
            self._names.discard((login, name))

    def begin(self, claim: Claim) -> Taken:
        """A worker takes `claim`: "ok"; "duplicate" when another worker has it (two
        triggers raced: one pipeline per file, or it could be placed or mailed twice);
        "later" when a resume job holds its record for a moment (try again soon)."""
        with self._lock:
            active = (claim.login, claim.key)
            if active in self._active:
                return "duplicate"
            if active in self._resuming:
                return "later"
            self._active.add(active)
            return "ok"

    def hold(self, login: str, key: FileKey) -> bool:
        """A resume job takes a recorded file by its claim key alone (a record a failed step
        left unfinished); False when a worker or another resume job has it."""
        with self._lock:
            held = (login, key)
            if held in self._active or held in self._resuming:
                return False
            self._resuming.add(held)
            return True

    def release(self, login: str, key: FileKey) -> None:
        with self._lock:
            self._resuming.discard((login, key))

    def end(self, claim: Claim) -> Path | None:
        """The worker is done with `claim`: its name is free; returns the file that waited
        behind it, if any."""
        with self._lock:
            self._active.discard((claim.login, claim.key))
            self._names.discard((claim.login, claim.name))
            return self._waiting.pop((claim.login, claim.name), None)
