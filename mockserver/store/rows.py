"""Typed rows out of the store: what the ledger recorded, with no wire shape attached (the JSON
shapes are `mockserver.views`'s job)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mockserver.core.models import (
    Hint,
    HintCode,
    RejectedRow,
    Status,
    rejected_counts,
    rejected_total,
)

# "forward_failed": in the Maildir, its SMTP forward failed (a contract 9.2 `fail` fault).
MAIL_STATES = ("pending", "sent", "skipped", "failed", "forward_failed")


class AccountLike(Protocol):
    """What the store reads from a configured or created account (`config.AccountConfig`)."""

    @property
    def login(self) -> str: ...
    @property
    def password(self) -> str | None: ...
    @property
    def password_hash(self) -> str | None: ...
    @property
    def credits(self) -> int: ...
    @property
    def subscription(self) -> bool: ...
    @property
    def email(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as stored: its balance and settings (never its password)."""

    login: str
    credits: int
    subscription: bool
    email: str
    configured: bool


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A processed file as recorded."""

    id: int
    login: str
    claim_key: str
    original_name: str
    final_name: str  # the verdict's name, before any -2/-3 suffix
    stored_name: str | None  # the name it really got in ARCHIVES/INVALIDS; None until moved
    status: Status
    reason: str | None
    detail: str
    campaign: str | None
    send_at: str | None
    mult: bool
    rows: int
    sms_count: int
    cost: int
    rejected: tuple[RejectedRow, ...]
    received_at: str
    processed_at: str
    processing_ms: float
    mail: str
    done: bool
    debited: int | None = None  # credits taken from the account; None: recorded before v2
    hints: tuple[Hint, ...] = ()  # contract 5.12; none on files recorded before v3
    # Issue 16: `rejected` keeps the first rows in full, the others are counted here by error.
    rejected_more: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        """The file's name in ARCHIVES or INVALIDS."""
        return self.stored_name or self.final_name

    @property
    def rejected_total(self) -> int:
        return rejected_total(self.rejected, self.rejected_more)

    @property
    def rejected_counts(self) -> dict[str, int]:
        return rejected_counts(self.rejected, self.rejected_more)

    @property
    def folder(self) -> str:
        return "ARCHIVES" if self.status is Status.ARCHIVED else "INVALIDS"

    @property
    def duplicate_of(self) -> Hint | None:
        """Contract 5.12: the earlier file whose bytes this one's equal (its hint), if any."""
        for hint in self.hints:
            if hint.code == HintCode.DUPLICATE_OF.value:
                return hint
        return None


@dataclass(frozen=True, slots=True)
class SmsRecord:
    """One recorded SMS with the file facts it inherits (campaign, send date, names).
    Whether it is `scheduled` or `sent` depends on the time it is read at: see `views`."""

    id: int
    file_id: int
    login: str
    campaign: str | None
    phone: str
    message: str
    sender_asked: str | None
    sender_applied: str
    send_at: str | None
    send_ts: float | None
    line: int
    septets: int
    warnings: tuple[str, ...]
    file: str
    final_name: str
    price: int  # the credits it cost (contract 3 `[pricing]`)


FILE_COLUMNS = (
    "id, login, claim_key, original_name, final_name, stored_name, status, reason, detail, "
    "campaign, send_at, mult, rows, sms_count, cost, rejected, received_at, processed_at, "
    "processing_ms, mail, done, debited, hints, rejected_more"
)
ACCOUNT_COLUMNS = "login, credits, subscription, email, configured"
SMS_COLUMNS = (
    "s.id, f.id, f.login, f.campaign, s.phone, s.message, s.sender_asked, s.sender_applied,"
    " f.send_at, f.send_ts, s.line, s.septets, s.warnings, f.original_name,"
    " COALESCE(f.stored_name, f.final_name), s.price"
)


def file_record(row: Sequence[Any]) -> FileRecord:
    # [line, error, detail, value]; rows recorded before version 2 have no value.
    rejected = tuple(
        RejectedRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]) if len(r) > 3 else "")
        for r in json.loads(row[15])
    )
    return FileRecord(
        id=row[0],
        login=row[1],
        claim_key=row[2],
        original_name=row[3],
        final_name=row[4],
        stored_name=row[5],
        status=Status(row[6]),
        reason=row[7],
        detail=row[8],
        campaign=row[9],
        send_at=row[10],
        mult=bool(row[11]),
        rows=row[12],
        sms_count=row[13],
        cost=row[14],
        rejected=rejected,
        received_at=row[16],
        processed_at=row[17],
        processing_ms=row[18],
        mail=row[19],
        done=bool(row[20]),
        debited=row[21],
        hints=hints_of(row[22]),
        rejected_more=more_of(row[23]),
    )


def more_json(more: Sequence[tuple[str, int]]) -> str:
    """The stored form of the rejected rows only counted (issue 16): [[error, count], ...]."""
    return json.dumps([[error, n] for error, n in more], ensure_ascii=False)


def more_of(text: str | None) -> tuple[tuple[str, int], ...]:
    """The counts `more_json` stored."""
    return tuple((str(e), int(n)) for e, n in json.loads(text or "[]"))


def hints_json(hints: Sequence[Hint]) -> str:
    """The stored form of a file's hints (contract 5.12): a JSON list of objects."""
    return json.dumps([h.to_dict() for h in hints], ensure_ascii=False)


def hints_of(text: str | None) -> tuple[Hint, ...]:
    """The hints `hints_json` stored."""
    return tuple(
        Hint(
            str(h["code"]),
            str(h["message"]),
            int(h.get("count", 0)),
            tuple(int(n) for n in h.get("lines", ())),
            h.get("file_id"),
            str(h.get("final_name", "")),
        )
        for h in json.loads(text or "[]")
    )


def account_row(row: Sequence[Any]) -> AccountRow:
    return AccountRow(
        login=row[0],
        credits=row[1],
        subscription=bool(row[2]),
        email=row[3],
        configured=bool(row[4]),
    )


def sms_record(r: Sequence[Any]) -> SmsRecord:
    return SmsRecord(
        id=r[0],
        file_id=r[1],
        login=r[2],
        campaign=r[3],
        phone=r[4],
        message=r[5],
        sender_asked=r[6],
        sender_applied=r[7],
        send_at=r[8],
        send_ts=r[9],
        line=r[10],
        septets=r[11],
        warnings=tuple(r[12].split(",")) if r[12] else (),
        file=r[13],
        final_name=r[14],
        price=r[15],
    )
