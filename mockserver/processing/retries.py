"""Issue 16: a step that fails for a reason outside the file (an `OSError` from the disk or
the Maildir, a locked or full database, a `MemoryError`, any unexpected exception: the file's
content always gets a verdict, the judge never raises) is retried for that file with a pause
that doubles, 1 s, 2 s, 4 s ... up to a minute, never given up while the file is there: a
mock recovers when the disk is freed. Each failure is one log line with the step and the cause,
the traceback only at debug level; the file is listed in `mockserver.retrying.Retrying`
(`GET /api/processing`) until it is done.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta

from mockserver.core.text import cause_of, printable_name
from mockserver.retrying import Retrying

log = logging.getLogger("mockserver.processor")

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0

# What makes a recap worth retrying: the disk, the Maildir, the database, memory. Anything
# else (a header `email` refuses) fails the same way every time: the recap is `failed`.
INFRASTRUCTURE: tuple[type[BaseException], ...] = (OSError, MemoryError, sqlite3.Error)


def pause_after(attempts: int) -> float:
    """The pause after the `attempts`-th failure in a row (1 -> 1 s, 2 -> 2 s ... 60 s)."""
    return min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * float(2 ** min(max(attempts - 1, 0), 16)))


class Backoff:
    """Counts the failures of each file (by key), logs each one, says how long to wait;
    thread-safe (the registry is)."""

    def __init__(self, registry: Retrying) -> None:
        self.registry = registry

    def failed(
        self,
        key: Hashable,
        login: str,
        name: str,
        step: str,
        exc: BaseException,
        *,
        stopping: bool = False,
    ) -> float:
        """One more failure of `key` at `step`: logged on one line, listed; returns the
        seconds to wait before the next attempt (`stopping`: there is none before the next
        start, and the line says so)."""
        cause = cause_of(exc)
        shown = printable_name(name)
        attempts = self.registry.attempts(key) + 1
        pause = pause_after(attempts)
        next_at = datetime.now(UTC) + timedelta(seconds=pause)
        self.registry.failed(key, login, shown, step, cause, next_at)
        when = "left for the next start" if stopping else f"retried in {pause:g} s"
        log.error(
            "login=%s file=%s step=%s failed: %s (attempt %d, %s)",
            login,
            shown,
            step,
            cause,
            attempts,
            when,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return pause

    def succeeded(self, key: Hashable) -> None:
        """`key` is done, or gone: no longer retried (a line when it was)."""
        was = self.registry.clear(key)
        if was is not None:
            log.info(
                "login=%s file=%s no longer retried after %d failed attempt%s (step=%s)",
                was.login,
                was.name,
                was.attempts,
                "" if was.attempts == 1 else "s",
                was.step,
            )

    def forget(self) -> None:
        """A reset: every file is gone."""
        self.registry.clear_all()
