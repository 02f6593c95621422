"""The JSON shapes of contract 6, rendered from typed rows: the one place the HTTP API and
`MockServer` get their dicts from, so both always answer alike."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from mockserver.events import Event, event_login
from mockserver.store import AccountRow, FileRecord, SmsRecord


def account_view(account: AccountRow) -> dict[str, Any]:
    """Never a password or its hash (contract 6: "login, credits, subscription, email")."""
    return {
        "login": account.login,
        "credits": account.credits,
        "subscription": account.subscription,
        "email": account.email,
        "configured": account.configured,
    }


def file_view(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "login": record.login,
        "original_name": record.original_name,
        "final_name": record.name,
        "folder": record.folder,
        "status": record.status.value,
        "reason": record.reason,
        "detail": record.detail,
        "campaign": record.campaign,
        "send_at": record.send_at,
        "mult": record.mult,
        "rows": record.rows,
        "sms_count": record.sms_count,
        "cost": record.cost,
        "rejected": [
            {"line": r.line, "error": r.error, "detail": r.detail, "value": r.value}
            for r in record.rejected
        ],
        # Issue 16: `rejected` lists the first rows only; every row is counted here.
        "rejected_total": record.rejected_total,
        "rejected_counts": record.rejected_counts,
        "received_at": record.received_at,
        "processed_at": record.processed_at,
        "processing_ms": record.processing_ms,
        "mail": record.mail,
        "done": record.done,
        # Contract 5.12: hints, never rule changes; `duplicate_of` names the earlier file.
        "hints": [h.to_dict() for h in record.hints],
        "duplicate_of": _duplicate_view(record),
    }


def _duplicate_view(record: FileRecord) -> dict[str, Any] | None:
    hint = record.duplicate_of
    if hint is None:
        return None
    return {"id": hint.file_id, "final_name": hint.file_name}


def sms_status(sms: SmsRecord, now: datetime) -> str:
    """Contract 5.10: `scheduled` while the send date is in the future, `sent` after."""
    if sms.send_ts is not None and sms.send_ts > now.timestamp():
        return "scheduled"
    return "sent"


def sms_view(sms: SmsRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": sms.id,
        "file_id": sms.file_id,
        "login": sms.login,
        "campaign": sms.campaign,
        "phone": sms.phone,
        "message": sms.message,
        "sender_asked": sms.sender_asked,
        "sender_applied": sms.sender_applied,
        "scheduled_at": sms.send_at,
        "status": sms_status(sms, now),
        "line": sms.line,
        "septets": sms.septets,
        "warnings": list(sms.warnings),
        "file": sms.file,
        "final_name": sms.final_name,
        "price": sms.price,
    }


# Contract 5.1: "`check` reports such a name as `ignored`, not invalid".
IGNORED = "ignored"
TMP_NOTE = (
    "a .tmp file is never touched in SEND_SMS: rename it to .csv once uploaded (contract 5.1)"
)


def ignored_check(name: str) -> dict[str, Any]:
    """What `check` and `POST /api/check` answer for a `.tmp` name, with the keys of a
    verdict so that a script looping over them needs no special case."""
    return {
        "original_name": name,
        "status": IGNORED,
        "reason": None,
        "final_name": None,
        "detail": TMP_NOTE,
        "campaign": None,
        "send_at": None,
        "mult": False,
        "rows": 0,
        "sms_count": 0,
        "cost": 0,
        "sms": [],
        "rejected": [],
        "rejected_total": 0,
        "rejected_counts": {},
        "hints": [],
    }


def event_view(event: Event) -> dict[str, Any]:
    """Contract 9.1: one event as its `data:` line carries it: `id`, `type`, `time`
    (ISO-8601), `login` (null for the whole platform), then the fields of its type."""
    shown: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "time": event.at.isoformat(),
        "login": event_login(event),
    }
    for f in dataclasses.fields(event):
        if f.name in ("id", "at", "login"):
            continue
        value = getattr(event, f.name)
        shown[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return shown
