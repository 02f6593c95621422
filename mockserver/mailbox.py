"""Recap e-mails (manual 4.4, contract 5.11): a French text/plain message per processed file,
delivered into the Maildir `<data_dir>/mailbox` and, when configured, forwarded over SMTP.
"""

from __future__ import annotations

import contextlib
import email.headerregistry
import email.policy
import email.utils
import hashlib
import itertools
import logging
import mailbox
import os
import smtplib
import socket
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

from mockserver.core.recap import RecapFacts, SmsWarning, reason_of, recap_body, recap_subject
from mockserver.core.text import header_text
from mockserver.store import FileRecord

log = logging.getLogger("mockserver.mailbox")

SENDER = "AllMySMS (mock) <noreply@allmysms.com>"
# The host part of Maildir file names, escaped as the Maildir convention asks.
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072")


class MailSettings(Protocol):
    """`config.MailConfig`: where to forward recaps; an empty host means "do not"."""

    @property
    def smtp_host(self) -> str: ...
    @property
    def smtp_port(self) -> int: ...


class _HeaderClasses(email.headerregistry.HeaderRegistry):
    """`HeaderRegistry` that builds each header's class once: the standard one makes a new
    class with `type()` on every header set, 13 a recap (docs/design.md, "Performance:
    profile of the pipeline and start-up"). The classes, hence the message, are the same."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[email.headerregistry.BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[email.headerregistry.BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# Headers whose value repeats from one recap to the next (the sender, an account's address
# and login, the verdict, the MIME headers of the body): parsed and folded once.
_REPEATING = frozenset(
    (
        "from",
        "to",
        "x-allmysms-login",
        "x-allmysms-status",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
    )
)
_MEMO_LIMIT = 1024  # entries in each memo below; past it they start again empty (bounded)


class _RecapPolicy(email.policy.EmailPolicy):
    """`email.policy.SMTP` that remembers the parsed and the folded form of the headers in
    `_REPEATING`: a header object is immutable (a `str`), so the one parsed for a value is
    the one a new parse would give, and its folded bytes the ones a new fold would give.
    Every other header goes through the standard parse and fold each time."""

    _parsed: dict[tuple[str, str], Any] = {}  # noqa: RUF012 - shared on purpose, bounded
    _folded: dict[tuple[str, str, str, int | None], bytes] = {}  # noqa: RUF012

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        lower = name.lower()
        if lower not in _REPEATING or not isinstance(value, str) or hasattr(value, "name"):
            return super().header_store_parse(name, value)
        memo = self._parsed
        header = memo.get((lower, value))
        if header is None:
            name, header = super().header_store_parse(name, value)
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[(lower, value)] = header
        return name, header

    def fold_binary(self, name: str, value: Any) -> bytes:
        lower = name.lower()
        if lower not in _REPEATING:
            return super().fold_binary(name, value)
        key = (lower, str(value), self.linesep, self.max_line_length)
        memo = self._folded
        folded = memo.get(key)
        if folded is None:
            folded = super().fold_binary(name, value)
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[key] = folded
        return folded


# The recap's policy: `email.policy.SMTP`'s settings (CRLF, utf8 off), header classes built
# once, repeating headers parsed and folded once. A benign race: two threads may each make
# an entry once, both equal.
POLICY = _RecapPolicy(linesep="\r\n", header_factory=_HeaderClasses())


def message_id(record: FileRecord) -> str:
    """A Message-ID fixed by the processed file, so a recap re-sent after a crash can be
    recognised in the Maildir (at most one recap a file)."""
    seed = f"{record.login}/{record.id}/{record.original_name}/{record.processed_at}"
    digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"<recap.{record.id}.{digest}@allmysms-mock.invalid>"


@dataclass(frozen=True, slots=True)
class RecapContext:
    """What the recap says beyond the file's record: when it is written (the platform's
    clock) and the SMS warnings (at most `core.recap.MAX_ROWS` of them, with their total)."""

    now: datetime
    warnings: tuple[SmsWarning, ...] = ()
    warnings_total: int = 0


def recap_facts(record: FileRecord, context: RecapContext) -> RecapFacts:
    """What the recap of a recorded file says, with every name in its one-line form."""
    return RecapFacts(
        original_name=header_text(record.original_name),
        final_name=header_text(record.name),
        status=record.status,
        reason=reason_of(record.reason),
        sms_count=record.sms_count,
        cost=record.cost,
        send_at=datetime.fromisoformat(record.send_at) if record.send_at else None,
        rejected=tuple(r._replace(value=header_text(r.value)) for r in record.rejected),
        now=context.now,
        # What the ledger took when the file was recorded, not the account's state now: a
        # cost not debited is the month-end invoice's (a subscription).
        subscription=record.cost > 0 and record.debited == 0,
        warnings=context.warnings,
        warnings_total=context.warnings_total,
        hints=tuple(replace(h, file_name=header_text(h.file_name)) for h in record.hints),
        rejected_more=record.rejected_more,
    )


def compose(record: FileRecord, to: str, context: RecapContext | None = None) -> EmailMessage:
    """The recap of one processed file for the address `to` (text from `core.recap`)."""
    context = context or RecapContext(now=datetime.now(UTC))
    facts = recap_facts(record, context)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = SENDER
    msg["To"] = header_text(to)
    msg["Subject"] = recap_subject(facts)
    msg["Date"] = email.utils.format_datetime(context.now)
    msg["Message-ID"] = message_id(record)
    msg["X-AllMySMS-Login"] = header_text(record.login)
    msg["X-AllMySMS-File"] = facts.original_name
    msg["X-AllMySMS-Status"] = record.status.value
    msg["X-AllMySMS-Processed-At"] = header_text(record.processed_at)
    msg.set_content(recap_body(facts), charset="utf-8")
    return msg


MAILDIR_FOLDERS = ("tmp", "new", "cur")


class Mailbox:
    """The Maildir of recap e-mails (thread-safe).

    Issue 16 (finding 7): the Maildir is repaired whenever it is used: an existing folder
    without `tmp`, `new` or `cur` (made by hand, emptied by a clean-up) gets them back, so a
    recap is delivered and `GET /api/mail` and `POST /api/reset` answer instead of failing
    for good. A path that cannot be a folder raises `OSError` naming it."""

    def __init__(self, path: str | Path, mail: MailSettings | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repair()
        self._maildir = mailbox.Maildir(self.path, create=True)
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._smtp_host = mail.smtp_host if mail is not None else ""
        self._smtp_port = mail.smtp_port if mail is not None else 25

    def repair(self) -> None:
        """Make the Maildir's folders that are missing (idempotent, a few system calls)."""
        for sub in MAILDIR_FOLDERS:
            try:
                (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise OSError(
                    exc.errno, f"the recap Maildir {self.path} is unusable: {exc.strerror}"
                ) from None

    def send_recap(
        self,
        record: FileRecord,
        to: str,
        context: RecapContext | None = None,
        *,
        forward: bool = True,
    ) -> str:
        """Compose, store in the Maildir, forward over SMTP when configured (and `forward`:
        False when a contract 9.2 `fail` fault makes the forward fail); returns the
        Message-ID. An SMTP failure is logged as a warning, never raised."""
        msg = compose(record, to, context)
        self.deliver(msg, forward=forward)
        return str(msg["Message-ID"])

    def deliver(self, msg: EmailMessage, *, forward: bool = True) -> str:
        """Store `msg` in the Maildir (tmp/ then an atomic rename into new/, the Maildir
        protocol) and forward it when SMTP is configured; returns its Maildir key.

        `mailbox.Maildir.add` would fsync every message: a few milliseconds a file that buy
        nothing here (the store is not fsynced either; a mock survives a process crash, not
        a power cut), so the write is done directly; the result is an ordinary Maildir.
        """
        data = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))
        self.repair()
        now = time.time()
        key = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(self._counter)}.{_HOST}"
        tmp = self.path / "tmp" / key
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            with open(fd, "wb", closefd=True) as f:
                f.write(data)
            os.rename(tmp, self.path / "new" / key)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self._smtp_host and forward:
            self._forward(msg)
        return key

    def _forward(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self._smtp_host, self._smtp_port, timeout=5) as smtp:
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning(
                "recap not forwarded to SMTP %s:%s: %s", self._smtp_host, self._smtp_port, exc
            )

    def has(self, msg_id: str) -> bool:
        """Whether a message with this Message-ID is already in the Maildir."""
        self.repair()
        with self._lock:
            for key in self._maildir.iterkeys():
                with contextlib.suppress(KeyError, OSError):
                    if self._header(key, "Message-ID") == msg_id:
                        return True
        return False

    def _header(self, key: str, header: str) -> str | None:
        with self._maildir.get_file(key) as f:
            raw = f.read()
        head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
        parsed = email.message_from_bytes(head + b"\n\n", policy=email.policy.default)
        value = parsed.get(header)
        return None if value is None else str(value)

    def messages(self) -> list[dict[str, Any]]:
        """Every recap, in processing order: to, from, subject, date, body, message_id."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        self.repair()
        with self._lock:
            for key in list(self._maildir.iterkeys()):
                try:
                    with self._maildir.get_file(key) as f:
                        raw = f.read()
                except (KeyError, OSError):
                    continue
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(msg, EmailMessage)
                part = msg.get_body(("plain",))
                body = part.get_content() if isinstance(part, EmailMessage) else ""
                item = {
                    "to": str(msg.get("To", "")),
                    "from": str(msg.get("From", "")),
                    # A long subject is folded right after "Subject:": its parsed value then
                    # starts with the fold's space, which a client comparing subjects must
                    # not see (contract 6: `GET /api/mail` subject).
                    "subject": str(msg.get("Subject", "")).strip(),
                    "date": str(msg.get("Date", "")),
                    "message_id": str(msg.get("Message-ID", "")),
                    "login": str(msg.get("X-AllMySMS-Login", "")),
                    "file": str(msg.get("X-AllMySMS-File", "")),
                    "body": body,
                }
                out.append((str(msg.get("X-AllMySMS-Processed-At", "")), key, item))
        out.sort(key=lambda t: (t[0], t[1]))
        return [item for _, _, item in out]

    def clear(self) -> None:
        """Remove every message (`POST /api/reset`)."""
        self.repair()
        with self._lock:
            for key in list(self._maildir.iterkeys()):
                with contextlib.suppress(KeyError, FileNotFoundError):
                    self._maildir.discard(key)

    def __len__(self) -> int:
        self.repair()
        with self._lock:
            return len(self._maildir)

    def close(self) -> None:
        """Nothing stays open between calls; kept for symmetry with the store."""
