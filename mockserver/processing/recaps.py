"""The recap of a file (docs/spec.md 5.11): written once, and retried when the Maildir, the
disk or the database fails (issue 16).

A recap that fails for such a reason leaves its file done (listed, `file.finished` published:
a recap never keeps a file from `files()` nor blocks a start-up) with `mail = "pending"`: the
recap is owed. `OwedRecaps` retries it with the back-off of `processing/retries.py` until it
is in the Maildir (`mail` becomes `sent`, `mail.written` is published), from the failure on and
again at each start-up for the owed recaps the store holds. Never two recaps: each attempt
first looks for the recap's fixed Message-ID in the Maildir (`Mailbox.has`). Any other failure
(a header `email` refuses) would fail the same way every time: that recap is `failed`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mockserver.core.recap import MAX_ROWS as RECAP_MAX_ROWS
from mockserver.core.recap import SmsWarning
from mockserver.core.text import cause_of, printable_name
from mockserver.events import EventBus, MailWritten
from mockserver.mailbox import Mailbox, RecapContext, message_id
from mockserver.processing.intake import guarded
from mockserver.processing.retries import INFRASTRUCTURE, Backoff
from mockserver.processing.scheduler import Scheduler
from mockserver.store import FileRecord, Store

if TYPE_CHECKING:
    from datetime import datetime

    from mockserver.config import Config

log = logging.getLogger("mockserver.processor")


class RecapWriter:
    """Writes one file's recap; thread-safe."""

    def __init__(
        self, config: Config, store: Store, mailbox: Mailbox, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.store = store
        self.mailbox = mailbox
        self._clock = clock

    def deliver(
        self, record: FileRecord, *, look_first: bool, fail: bool = False
    ) -> tuple[str | None, str | None]:
        """`(mail state, Message-ID when the recap is in the Maildir)`; `(None, None)` when
        the record vanished meanwhile (a reset). `look_first`: a recap already in the Maildir
        (written before a crash or a failed mark) counts as sent. `fail` (a 9.2 `fail`
        fault): the recap goes to the Maildir, its SMTP forward fails: "forward_failed".
        Raises what `INFRASTRUCTURE` names (the recap is owed: retry it); any other failure
        is logged and gives "failed"."""
        if not self.config.processing.recap_email:
            return "skipped", None
        fresh = self.store.file_record(record.id)
        if fresh is None:
            return None, None
        acc = self.store.account(record.login)
        to = acc.email if acc else ""
        if not to:
            return "skipped", None
        msg_id = message_id(fresh)
        if look_first and self.mailbox.has(msg_id):
            return "sent", msg_id
        try:
            pairs, total = self.store.sms_warnings(fresh.id, RECAP_MAX_ROWS)
            context = RecapContext(
                now=self._clock(),
                warnings=tuple(SmsWarning(line, warning) for line, warning in pairs),
                warnings_total=total,
            )
            msg_id = self.mailbox.send_recap(fresh, to, context, forward=not fail)
        except INFRASTRUCTURE:
            raise
        except Exception as exc:
            # The same failure every time: the file is done, its recap `failed`.
            log.warning(
                "login=%s file=%s recap not delivered: %s",
                record.login,
                printable_name(record.name),
                cause_of(exc),
            )
            return "failed", None
        if fail:
            log.warning(
                "login=%s file=%s recap kept in the Maildir, SMTP forward failed (fault)",
                record.login,
                printable_name(record.name),
            )
            return "forward_failed", msg_id
        return "sent", msg_id


class OwedRecaps:
    """Retries the owed recaps, one keyed job per record; thread-safe."""

    def __init__(
        self,
        store: Store,
        writer: RecapWriter,
        bus: EventBus,
        scheduler: Scheduler,
        backoff: Backoff,
    ) -> None:
        self.store = store
        self._writer = writer
        self._bus = bus
        self._scheduler = scheduler
        self._backoff = backoff

    def owed(self, record: FileRecord, exc: BaseException) -> None:
        """The recap of `record` (done, `mail = "pending"`) just failed with `exc`."""
        key = (record.login, record.claim_key)
        pause = self._backoff.failed(key, record.login, record.original_name, "mail", exc)
        self.queue(record, time.monotonic() + pause)

    def recover(self) -> None:
        """At start-up: one attempt at each recap the store says is owed."""
        for record in self.store.recaps_owed():
            self.attempt(record)

    def queue(self, record: FileRecord, due: float) -> None:
        job = guarded(record.login, Path(record.name), functools.partial(self.attempt, record))
        # Keyed: one job per record waits; left behind at a stop (the store still owes it).
        key = ("recap", record.id, record.claim_key)
        self._scheduler.schedule(due, job, key=key, background=True)

    def attempt(self, record: FileRecord) -> None:
        key = (record.login, record.claim_key)
        try:
            fresh = self.store.file_record(record.id)
            if fresh is None or fresh.claim_key != record.claim_key or fresh.mail != "pending":
                self._backoff.succeeded(key)  # reset, or dealt with meanwhile
                return
            outcome, msg_id = self._writer.deliver(fresh, look_first=True)
            if outcome is None:
                self._backoff.succeeded(key)
                return
            self.store.mark_mailed(fresh.id, outcome)
        except Exception as exc:
            pause = self._backoff.failed(key, record.login, record.original_name, "mail", exc)
            self.queue(record, time.monotonic() + pause)
            return
        self._backoff.succeeded(key)
        if msg_id is not None:
            self._bus.publish(MailWritten(login=fresh.login, file_id=fresh.id, message_id=msg_id))
