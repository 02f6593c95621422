"""The rule engine's one entry point: `judge(file_name, data, account, now) -> Verdict`.

Pure: no I/O, no clock (`now` is only stored), no randomness; it returns a value for any input.
"""

from __future__ import annotations

import re
from datetime import datetime

from mockserver.core.filename import check_filename, final_name
from mockserver.core.length import DOUBLE_RE, MAX_SEPTETS, NON_GSM_RE
from mockserver.core.models import (
    Account,
    Campaign,
    Reason,
    RejectedRow,
    RowError,
    Sms,
    Status,
    Verdict,
    Warning_,
)
from mockserver.core.phone import FRENCH_MOBILE_RE, FRENCH_PREFIXES, INTERNATIONAL_RE
from mockserver.core.reader import decode, iter_records
from mockserver.core.sender import SENDER_RE, SENDER_RULE, STOP_ENDINGS

# Warnings are shared tuples: 150,000 SMS must not each carry a fresh one.
_NO_WARNING: tuple[str, ...] = ()
_NON_GSM: tuple[str, ...] = (Warning_.NON_GSM_CHARACTERS,)
_NOT_APPLIED: tuple[str, ...] = (Warning_.SENDER_NOT_APPLIED,)
_BOTH: tuple[str, ...] = (Warning_.NON_GSM_CHARACTERS, Warning_.SENDER_NOT_APPLIED)

_SHOWN_CHARS = 40
# Characters shown escaped in details so a detail stays one printable line.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f\udc80-\udcff]")


def show(value: str) -> str:
    """A user-supplied value quoted for a detail sentence: shortened, one line, printable."""
    if len(value) > _SHOWN_CHARS:
        value = value[:_SHOWN_CHARS] + "…"
    value = _CONTROL_RE.sub(_escape, value)
    return f"'{value}'"


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c == 0x0A:
        return "\\n"
    if c == 0x09:
        return "\\t"
    if c >= 0xDC80:
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}"


def _number_detail(error: RowError, raw: str) -> str:
    if error is RowError.EMPTY_NUMBER:
        return "the phone number (column 1) is empty"
    if error is RowError.LANDLINE:
        return (
            f"{show(raw)} is a landline or malformed French number "
            "(France accepts 06/07 + 8 digits, 336/337 + 8 digits or +336/+337 + 8 digits)"
        )
    return (
        f"{show(raw)} is not a phone number (digits only, an optional leading +, "
        "8 to 15 digits, spaces ignored)"
    )


def judge(file_name: str, data: bytes, account: Account, now: datetime) -> Verdict:
    """Judge one dropped file as the platform would (manual 4.3, contract 5.4).

    File-level verdicts in contract order: Incorrect_FileName (content not even read),
    No_valid_TPOA, Empty_File, Not_enough_credits. An invalid verdict sends nothing and costs
    nothing (`sms=()`, `cost=0`) but keeps the rejected rows; an archived one costs one credit
    an SMS. Row rejections never invalidate the file by themselves (contract 5.5).
    """
    checked = check_filename(file_name)
    if not isinstance(checked, Campaign):
        return _invalid(
            file_name,
            Reason.INCORRECT_FILENAME,
            None,
            (),
            0,
            f"Incorrect file name {show(file_name)}: {checked}.",
            now,
        )
    campaign = checked
    text, check_utf8 = decode(data)

    rejected: list[RejectedRow] = []
    bad_senders: list[tuple[int, str]] = []
    kept: dict[str, Sms] = {}  # without _MULT: normalised number -> the SMS that wins so far
    every: list[Sms] = []  # with _MULT
    mult = campaign.mult
    default_sender = account.default_sender
    rows = 0
    # Local names: this loop runs once a row, up to ~150,000 times for an 8 MB file.
    french_fullmatch = FRENCH_MOBILE_RE.fullmatch
    intl_fullmatch = INTERNATIONAL_RE.fullmatch
    sender_fullmatch = SENDER_RE.fullmatch
    doubles = DOUBLE_RE.findall
    non_gsm_search = NON_GSM_RE.search
    new_sms = tuple.__new__
    append_rejected = rejected.append

    for line, fields, error, detail in iter_records(text, check_utf8):
        rows += 1
        # Contract 5.4.2: any row giving a sender that breaks the rules makes the file
        # No_valid_TPOA, even a row rejected for another reason (its sender is still asked).
        sender: str | None = None
        if fields is not None and len(fields) > 2:
            given = fields[2]
            # An empty or whitespace-only third column means "no sender".
            if given and not given.isspace():
                if sender_fullmatch(given) is None:
                    bad_senders.append((line, given))
                    append_rejected(
                        RejectedRow(
                            line,
                            RowError.INVALID_SENDER,
                            f"sender {show(given)} is not allowed: {SENDER_RULE}",
                        )
                    )
                sender = given
        if error is not None or fields is None:
            append_rejected(RejectedRow(line, error or RowError.MALFORMED_ROW, detail))
            continue
        if len(fields) < 2:
            # Manual 4.2: "Le fichier déposé sur le serveur doit contenir 2 colonnes minimum".
            append_rejected(
                RejectedRow(
                    line,
                    RowError.TOO_FEW_COLUMNS,
                    "the row has 1 column; it needs a phone number and a message separated by ;",
                )
            )
            continue

        # Contract 5.6 (see phone.check_number, inlined here for speed).
        raw = fields[0]
        number = raw.replace(" ", "")
        m = french_fullmatch(number)
        if m is not None:
            phone = "33" + m.group(1)
        else:
            number_error: RowError | None = None
            if not number:
                number_error = RowError.EMPTY_NUMBER
            elif number.startswith(FRENCH_PREFIXES):
                number_error = RowError.LANDLINE
            else:
                m = intl_fullmatch(number)
                if m is None:
                    number_error = RowError.BAD_NUMBER
                else:
                    phone = m.group(1)
            if number_error is not None:
                append_rejected(RejectedRow(line, number_error, _number_detail(number_error, raw)))
                continue

        # Manual 4.2: "Le retour à la ligne est encodé par '\n'": the two characters
        # backslash + n are a line break, stored as a real one (contract 5.7). There is no
        # escape for a literal backslash followed by n.
        message = fields[1]
        if "\\n" in message:
            message = message.replace("\\n", "\n")
        if not message or message.isspace():
            append_rejected(
                RejectedRow(line, RowError.EMPTY_MESSAGE, "the message (column 2) is empty")
            )
            continue
        # Contract 5.7: GSM 03.38 septets (see length.count_septets, inlined for speed).
        septets = len(message) + len(doubles(message))
        if septets > MAX_SEPTETS:
            append_rejected(
                RejectedRow(
                    line,
                    RowError.MESSAGE_TOO_LONG,
                    f"the message takes {septets} characters, over the {MAX_SEPTETS} allowed "
                    "(extension characters ^{}\\[]~|€ and line breaks count 2)",
                )
            )
            continue

        non_gsm = non_gsm_search(message) is not None
        # Contract 5.9 (see sender.applied_sender): in France, the asked sender needs the
        # mention "STOP au 36180" at the end of the message.
        if sender is None:
            applied = default_sender
            warnings = _NON_GSM if non_gsm else _NO_WARNING
        elif phone.startswith("33") and not message.endswith(STOP_ENDINGS):
            applied = default_sender
            warnings = _BOTH if non_gsm else _NOT_APPLIED
        else:
            applied = sender
            warnings = _NON_GSM if non_gsm else _NO_WARNING
        sms: Sms = new_sms(Sms, (line, phone, message, sender, applied, septets, warnings))

        if mult:
            every.append(sms)
            continue
        # Manual 4.2: "Les numéros de téléphones doivent être uniques. Le système supprimera
        # automatiquement les doublons et enverra le dernier message associé au numéro
        # dupliqué." The last valid row wins; SMS keep the order of their winning lines
        # (pop + insert moves the number to the end of the dict).
        previous = kept.pop(phone, None)
        if previous is not None:
            append_rejected(
                RejectedRow(
                    previous.line,
                    RowError.DUPLICATE,
                    f"number {phone} appears again at line {line}, whose message is sent "
                    "instead (add _MULT to the file name to send both)",
                )
            )
        kept[phone] = sms

    # The decoded text is no longer needed: free it before building the result (the peak
    # memory of an 8 MB file is reached here).
    del text
    rejected.sort(key=_line_of)
    rejected_rows = tuple(rejected)

    if bad_senders:
        first_line, first_sender = bad_senders[0]
        more = f" ({len(bad_senders)} rows in all)" if len(bad_senders) > 1 else ""
        return _invalid(
            file_name,
            Reason.NO_VALID_TPOA,
            campaign,
            rejected_rows,
            rows,
            f"Line {first_line} asks for sender {show(first_sender)}{more}, which breaks the "
            f"sender rules: {SENDER_RULE}.",
            now,
        )
    all_sms = tuple(every) if mult else tuple(kept.values())
    if not all_sms:
        if rows == 0:
            why = "The file holds no row (it is empty or only blank lines)."
        else:
            why = f"None of the {rows} rows yields a valid SMS; see the rejected rows."
        return _invalid(file_name, Reason.EMPTY_FILE, campaign, rejected_rows, rows, why, now)
    count = len(all_sms)
    if not account.subscription and account.credits < count:
        # Manual 4.3: "Le compte n'est pas en abonnement et n'a pas suffisamment de crédits".
        return _invalid(
            file_name,
            Reason.NOT_ENOUGH_CREDITS,
            campaign,
            rejected_rows,
            rows,
            f"The file would send {count} SMS but account '{account.login}' has "
            f"{account.credits} credits and no subscription.",
            now,
        )
    return Verdict(
        original_name=file_name,
        status=Status.ARCHIVED,
        reason=None,
        final_name=final_name(file_name, None),
        campaign=campaign,
        sms=all_sms,
        rejected=rejected_rows,
        cost=count,
        rows=rows,
        detail="",
        judged_at=now,
    )


def _line_of(row: RejectedRow) -> int:
    return row.line


def _invalid(
    file_name: str,
    reason: Reason,
    campaign: Campaign | None,
    rejected: tuple[RejectedRow, ...],
    rows: int,
    detail: str,
    now: datetime,
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
    )
