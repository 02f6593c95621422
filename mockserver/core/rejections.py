"""The sentences of the engine's rejected rows and the shape of an invalid verdict: what
`judge` reports, kept apart from its hot loop."""

from __future__ import annotations

from datetime import datetime

from mockserver.core.filename import final_name
from mockserver.core.models import Campaign, Reason, RejectedRow, RowError, Status, Verdict
from mockserver.core.phone import INTERNATIONAL_DIGITS
from mockserver.core.sender import SENDER_RULE
from mockserver.core.text import quote_detail


def number_detail(error: RowError, raw: str) -> str:
    if error is RowError.EMPTY_NUMBER:
        return "the phone number (column 1) is empty"
    if error is RowError.LANDLINE:
        return (
            f"{quote_detail(raw)} is a landline or malformed French number "
            "(France accepts 06/07 + 8 digits, 336/337 + 8 digits or +336/+337 + 8 digits)"
        )
    return (
        f"{quote_detail(raw)} is not a phone number (digits only, an optional leading +, "
        f"a country code not starting with 0, {INTERNATIONAL_DIGITS} in all, spaces ignored)"
    )


def header_detail(raw: str) -> str:
    return (
        f"the first row looks like a header row (column 1 is {quote_detail(raw)}, not a phone "
        "number): the platform reads every row as an SMS, so remove the column titles"
    )


def header_rejection(line: int, value: str) -> RejectedRow:
    """Contract 5.4.2: the first row is a spreadsheet's header row (`value`: its column 1)."""
    return RejectedRow(line, RowError.HEADER_ROW, header_detail(value), value)


# Manual 4.2: "Le fichier déposé ... doit contenir 2 colonnes minimum".
TOO_FEW_DETAIL = "the row has 1 column; it needs a phone number and a message separated by ;"


def sender_rejection(line: int, given: str) -> RejectedRow:
    """Contract 5.9: a sender column that breaks the TPOA rules, reported on its row."""
    return RejectedRow(
        line,
        RowError.INVALID_SENDER,
        f"sender {quote_detail(given)} is not allowed: {SENDER_RULE}",
        given,
    )


def invalid(
    file_name: str,
    reason: Reason,
    campaign: Campaign | None,
    rejected: tuple[RejectedRow, ...],
    rows: int,
    detail: str,
    now: datetime,
    more: tuple[tuple[str, int], ...] = (),
) -> Verdict:
    return Verdict(
        original_name=file_name,
        status=Status.INVALID,
        reason=reason,
        final_name=final_name(file_name, reason),
        campaign=campaign,
        sms=(),
        rejected=rejected,
        cost=0,
        rows=rows,
        detail=detail,
        judged_at=now,
        rejected_more=more,
    )


def legacy_text(decoded: str) -> str:
    """Text whose bytes were not UTF-8 (kept as lone surrogates) read as Windows-1252, the
    encoding a French spreadsheet saves in: only to recognise a header row, never stored."""
    return decoded.encode("utf-8", "surrogateescape").decode("cp1252", "replace")


def empty_file_detail(rows: int) -> str:
    """Why a file is `Empty_File` (manual 4.3: no row yields a valid SMS), counted right."""
    if rows == 0:
        return "The file holds no row (it is empty or only blank lines)."
    if rows == 1:
        return "Its only row yields no valid SMS; see the rejected rows."
    return f"None of the {rows} rows yields a valid SMS; see the rejected rows."
