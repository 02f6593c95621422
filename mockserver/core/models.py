"""The values the rule engine works with: accounts in, verdicts out.

Everything here is immutable and free of I/O, so a verdict can be computed, compared,
serialised and recorded without caring where the bytes came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

PREFIX = "TreatedByMSI_"
DEFAULT_SENDER = "36180"


class Status(StrEnum):
    """Where a processed file ends: `ARCHIVES` or `INVALIDS`."""

    ARCHIVED = "archived"
    INVALID = "invalid"


class Reason(StrEnum):
    """File-level verdicts of the manual (section 4.3), checked in this order (contract 5.4)."""

    INCORRECT_FILENAME = "Incorrect_FileName"
    NO_VALID_TPOA = "No_valid_TPOA"
    EMPTY_FILE = "Empty_File"
    NOT_ENOUGH_CREDITS = "Not_enough_credits"


class RowError(StrEnum):
    """Why one row yields no SMS (contract 5.5, 5.6, 5.7, 5.9); never fatal to the file."""

    TOO_FEW_COLUMNS = "too_few_columns"
    EMPTY_NUMBER = "empty_number"
    BAD_NUMBER = "bad_number"
    LANDLINE = "landline_or_malformed_french_number"
    EMPTY_MESSAGE = "empty_message"
    MESSAGE_TOO_LONG = "message_too_long"
    NOT_UTF8 = "not_utf8"
    UNTERMINATED_QUOTE = "unterminated_quote"
    MALFORMED_ROW = "malformed_row"
    INVALID_SENDER = "invalid_sender"
    DUPLICATE = "duplicate_number"
    # Contract 5.4.2: a spreadsheet's header row (`Téléphone;Message;Expéditeur`) is one
    # rejected row, never a reason to refuse the file.
    HEADER_ROW = "header_row"


class Warning_(StrEnum):
    """Warnings attached to an SMS that is still sent."""

    NON_GSM_CHARACTERS = "non_gsm_characters"
    # Contract 5.9: a French SMS whose sender was not applied goes out with the default one;
    # the warning names the near miss when there is one.
    SENDER_NOT_APPLIED = "sender_not_applied_no_stop_mention"
    STOP_MENTION_CASE = "sender_not_applied_stop_mention_case"
    STOP_MENTION_NOT_SEPARATED = "sender_not_applied_stop_mention_not_separated"
    STOP_MENTION_PUNCTUATION = "sender_not_applied_stop_mention_punctuation"


class HintCode(StrEnum):
    """Contract 5.12: the likely cause of a common mistake, named beside the verdict; a hint
    never changes a verdict, a row or an SMS."""

    SEPARATOR_COMMA = "separator_comma"
    SEPARATOR_TAB = "separator_tab"
    HEADER_ROW = "header_row"
    LEADING_ZERO_DROPPED = "leading_zero_dropped"
    DUPLICATE_OF = "duplicate_of"


@dataclass(frozen=True, slots=True)
class Hint:
    """One hint a file: how many rows it concerns and a few of their lines (never one hint
    a row); `duplicate_of` names the earlier file instead."""

    code: str  # a HintCode value
    message: str  # one English sentence (check, the API); the recap has its French one
    count: int = 0  # rows concerned (0 for duplicate_of)
    lines: tuple[int, ...] = ()  # at most core.hints.MAX_LINES of them
    file_id: int | None = None  # duplicate_of: the earlier file's id
    file_name: str = ""  # duplicate_of: the earlier file's final name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "count": self.count,
            "lines": list(self.lines),
        }
        if self.file_id is not None:
            out["file_id"] = self.file_id
            out["final_name"] = self.file_name
        return out


@dataclass(frozen=True, slots=True)
class Account:
    """What the rules need to know about the depositing account."""

    login: str = "demo"
    credits: int = 100
    subscription: bool = False
    default_sender: str = DEFAULT_SENDER


class Campaign(NamedTuple):
    """A parsed drop-file name: `<campaign>_<YYYYMMDDHHMMSS>_<HQ|LC>[_MULT].csv`."""

    name: str
    send_at: datetime  # aware, Europe/Paris
    mult: bool
    quality: str = "HQ"  # contract 3 `processing.qualities`: HQ, or LC when allowed


class Sms(NamedTuple):
    """One SMS the platform would send (a NamedTuple: 150k of them must be cheap to build)."""

    line: int  # physical line (1-based) where the row starts
    phone: str  # normalised: "33" + 9 digits for France, digits only otherwise
    message: str  # real line breaks
    sender_asked: str | None
    sender_applied: str
    septets: int
    warnings: tuple[str, ...]
    price: int  # credits this SMS costs (contract 3 `[pricing]`)


class RejectedRow(NamedTuple):
    """A row that yields no SMS, with where and why (reported in `check` and the recap)."""

    line: int
    error: str  # a RowError value
    detail: str  # a sentence a user can act on
    # The offending value, shown as is (quoted) by the French recap: the raw number
    # (bad_number, landline), the sender (invalid_sender), column 1 (header_row,
    # too_few_columns), the septet count (message_too_long), the first bad byte as `0xE9`
    # (not_utf8), the normalised number (duplicate_number); "" when there is none.
    value: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The platform's judgement of one dropped file."""

    original_name: str
    status: Status
    reason: Reason | None
    final_name: str  # TreatedByMSI_... (before any -2/-3 collision suffix)
    campaign: Campaign | None
    sms: tuple[Sms, ...] = ()
    rejected: tuple[RejectedRow, ...] = ()
    cost: int = 0  # credits charged: the sum of the SMS's prices when archived, 0 when invalid
    rows: int = 0  # non-blank records read
    detail: str = ""  # one sentence explaining an invalid verdict
    judged_at: datetime | None = None
    hints: tuple[Hint, ...] = ()  # contract 5.12: never a cause of the rest
    # Issue 16: `rejected` holds the first core.bounded.KEPT_ROWS rejected rows (by line);
    # the others are only counted here, by error (sorted, no zero).
    rejected_more: tuple[tuple[str, int], ...] = ()

    @property
    def archived(self) -> bool:
        return self.status is Status.ARCHIVED

    @property
    def rejected_total(self) -> int:
        """Every rejected row, kept in `rejected` or only counted."""
        return rejected_total(self.rejected, self.rejected_more)

    @property
    def rejected_counts(self) -> dict[str, int]:
        """Every rejected row counted by error, kept or not."""
        return rejected_counts(self.rejected, self.rejected_more)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, used by `check --json`, the HTTP API and the store."""
        camp = self.campaign
        return {
            "original_name": self.original_name,
            "status": self.status.value,
            "reason": self.reason.value if self.reason else None,
            "final_name": self.final_name,
            "detail": self.detail,
            "campaign": camp.name if camp else None,
            "send_at": camp.send_at.isoformat() if camp else None,
            "mult": camp.mult if camp else False,
            "rows": self.rows,
            "sms_count": len(self.sms),
            "cost": self.cost,
            "sms": [
                {
                    "line": s.line,
                    "phone": s.phone,
                    "message": s.message,
                    "sender_asked": s.sender_asked,
                    "sender_applied": s.sender_applied,
                    "septets": s.septets,
                    "warnings": list(s.warnings),
                    "price": s.price,
                }
                for s in self.sms
            ],
            "rejected": [
                {"line": r.line, "error": r.error, "detail": r.detail, "value": r.value}
                for r in self.rejected
            ],
            "rejected_total": self.rejected_total,
            "rejected_counts": self.rejected_counts,
            "hints": [h.to_dict() for h in self.hints],
        }


def rejected_total(kept: tuple[RejectedRow, ...], more: tuple[tuple[str, int], ...]) -> int:
    """Issue 16: the rejected rows kept in full plus those only counted."""
    return len(kept) + sum(n for _, n in more)


def rejected_counts(
    kept: tuple[RejectedRow, ...], more: tuple[tuple[str, int], ...]
) -> dict[str, int]:
    """Issue 16: every rejected row by error (kept in full or only counted), sorted by error."""
    counts: dict[str, int] = {}
    for row in kept:
        counts[row.error] = counts.get(row.error, 0) + 1
    for error, n in more:
        counts[error] = counts.get(error, 0) + n
    return dict(sorted(counts.items()))
