"""Manual mode (contract 9.4): the files claimed into PROCESSING that wait for an advance.

The processor holds a file here (with the callable that lets it go on) instead of queueing
its next steps; `advance` hands the file back to the processor. Nothing here holds a thread.
The registry lives with the Backend so that the HTTP API and `MockServer` reach it without
knowing the processor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class NotWaiting(LookupError):
    """`advance(name=...)` named no waiting file; the message is one sentence."""


@dataclass(frozen=True, slots=True)
class WaitingFile:
    login: str
    name: str  # as `file.claimed` names it (printable)
    claimed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"login": self.login, "name": self.name, "claimed_at": self.claimed_at.isoformat()}


class Waiting:
    """Thread-safe: files held in PROCESSING, in claim order, each with its `go` callable
    (cheap, never blocking: it queues the file's next steps)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[WaitingFile, Callable[[], None]]] = []

    def hold(self, file: WaitingFile, go: Callable[[], None]) -> None:
        with self._lock:
            self._held.append((file, go))

    def files(self) -> list[WaitingFile]:
        with self._lock:
            return [file for file, _ in self._held]

    def advance(self, name: str | None = None, login: str | None = None) -> list[WaitingFile]:
        """Let the waiting files named `name` (every one when None), of `login` when given,
        go on; returns them. `NotWaiting` when a name is given and no such file waits."""
        with self._lock:
            chosen: list[tuple[WaitingFile, Callable[[], None]]] = []
            kept: list[tuple[WaitingFile, Callable[[], None]]] = []
            for pair in self._held:
                file = pair[0]
                wanted = (name is None or file.name == name) and (
                    login is None or file.login == login
                )
                (chosen if wanted else kept).append(pair)
            self._held = kept
        if name is not None and not chosen:
            whose = "" if login is None else f" of {login!r}"
            raise NotWaiting(f"no file named {name!r}{whose} waits in PROCESSING")
        for _, go in chosen:
            go()
        return [file for file, _ in chosen]

    def release_all(self) -> None:
        """Let every file go on without answering for it (a reset: the files are gone from
        PROCESSING by then, so each one's steps end at once, freeing its name)."""
        with self._lock:
            held, self._held = self._held, []
        for _, go in held:
            go()
