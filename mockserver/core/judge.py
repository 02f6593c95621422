"""The rule engine's one entry point: `judge(file_name, data, account, now) -> Verdict`.

Pure: no I/O, no clock (`now` is only stored), no randomness; it returns a value for any input.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from mockserver.core.bounded import RejectedLog
from mockserver.core.bulk import RETRY_LINES, counted_run
from mockserver.core.fastpath import (
    NO_WARNING,
    NON_GSM,
    NON_GSM_NOT_APPLIED,
    NOT_APPLIED,
    RECORD_RE,
)
from mockserver.core.filename import DEFAULT_QUALITIES, check_filename, final_name
from mockserver.core.hints import with_hints
from mockserver.core.length import DOUBLE_CHARS, MAX_SEPTETS, SPECIAL_RE
from mockserver.core.models import (
    Account,
    Campaign,
    Reason,
    RejectedRow,
    RowError,
    Sms,
    Status,
    Verdict,
)
from mockserver.core.phone import (
    FRENCH_MOBILE_RE,
    FRENCH_PREFIXES,
    INTERNATIONAL_RE,
    looks_like_header,
)
from mockserver.core.pricing import DEFAULT_PRICES, PriceTable
from mockserver.core.reader import (
    SPACES,
    SURROGATE_RE,
    bad_byte,
    bad_byte_of,
    bad_bytes_detail,
    decode,
    read_other,
)
from mockserver.core.rejections import (
    TOO_FEW_DETAIL,
    empty_file_detail,
    header_rejection,
    invalid,
    legacy_text,
    number_detail,
    sender_rejection,
)
from mockserver.core.sender import SENDER_RE, SENDER_RULE, STOP_ENDINGS, stop_mention_warning
from mockserver.core.text import printable_name, quote_detail

# Up to this many leading digits decide a price, prices are memoised by them (a file has few
# distinct prefixes); past it the table is asked directly.
MEMO_KEY_DIGITS = 6


def judge(
    file_name: str,
    data: bytes,
    account: Account,
    now: datetime,
    *,
    prices: PriceTable = DEFAULT_PRICES,
    qualities: Collection[str] = DEFAULT_QUALITIES,
) -> Verdict:
    """`judge_rules`'s verdict with the hints of contract 5.12, which never change it."""
    verdict = judge_rules(file_name, data, account, now, prices=prices, qualities=qualities)
    return with_hints(verdict, data)


def judge_rules(
    file_name: str,
    data: bytes,
    account: Account,
    now: datetime,
    *,
    prices: PriceTable = DEFAULT_PRICES,
    qualities: Collection[str] = DEFAULT_QUALITIES,
) -> Verdict:
    """Judge one dropped file as the platform would (manual 4.3, contract 5.4).

    File-level verdicts in contract order: Incorrect_FileName (content not even read),
    No_valid_TPOA, Empty_File, Not_enough_credits. An invalid verdict sends nothing and costs
    nothing (`sms=()`, `cost=0`) but keeps the rejected rows; an archived one costs the sum of
    its SMS's prices (`prices`, contract 3 `[pricing]`). Row rejections never invalidate the
    file by themselves (contract 5.5).
    """
    checked = check_filename(file_name, qualities)
    if not isinstance(checked, Campaign):
        return invalid(
            file_name,
            Reason.INCORRECT_FILENAME,
            None,
            (),
            0,
            f"Incorrect file name {quote_detail(file_name)}: {checked}.",
            now,
        )
    campaign = checked
    text, check_utf8 = decode(data)

    rejected = RejectedLog()  # issue 16: the first rows in full, the others counted
    bad_senders: list[tuple[int, str]] = []
    kept: dict[str, Sms] = {}  # without _MULT: normalised number -> the SMS that wins so far
    every: list[Sms] = []  # with _MULT
    mult = campaign.mult
    default_sender = account.default_sender
    rows = 0
    # A file names few senders: one (string, valid) pair each rather than one a row.
    seen_senders: dict[str, tuple[str, bool]] = {}
    # Price of an SMS by the leading digits that decide it (memoised: a file has few).
    price_of = prices.price
    quality = campaign.quality
    key_length = prices.key_length
    price_by_key: dict[str, int] = {}
    flat = prices.flat_price(quality)  # one price for every number: no lookup a row
    # Local names: this loop runs once a row, up to ~150,000 times for an 8 MB file. It is
    # reader.iter_records inlined (same RECORD_RE, same field rules, same read_other), so a
    # plain one-line row costs one regex match and no generator or tuple in between.
    match_record = RECORD_RE.match
    surrogate_search = SURROGATE_RE.search
    french_fullmatch = FRENCH_MOBILE_RE.fullmatch
    intl_fullmatch = INTERNATIONAL_RE.fullmatch
    sender_fullmatch = SENDER_RE.fullmatch
    special_findall = SPECIAL_RE.findall
    doubles = DOUBLE_CHARS
    new_sms = tuple.__new__
    append_rejected = rejected.add
    count_rejected = rejected.count
    keep = kept.setdefault
    spaces = SPACES
    n = len(text)
    pos = 0
    line = 0
    bulk_line = 0  # issue 16: the next line to look for a run of rows core.bulk counts
    while pos < n:
        line += 1
        if line >= bulk_line:
            bulk_line = line + RETRY_LINES
            if run := counted_run(text, pos, line, rejected):
                pos, lines, bulk_rows = run  # blank lines, or rows past the kept ones: counted
                rows, line = rows + bulk_rows, line + lines - 1
                bulk_line = line + 2
                continue
        if text[pos] == "\n":
            pos += 1  # an empty line (contract 5.5: blank lines skipped)
            continue
        m = match_record(text, pos)
        if m is not None:
            fq, fu, q1, u1, pq, nq, q2, u2, q3, u3 = m.groups()
            start, pos = pos, m.end()
            given = q3 if q3 is not None else (u3.strip(spaces) if u3 is not None else "")
            row_line = line
            if check_utf8 and surrogate_search(text, start, pos) is not None:
                # Contract 5.5: a row with bytes that are not UTF-8 is rejected.
                # Contract 5.4.2: its sender is reported, never fatal to the file.
                rows += 1
                first = q1 if q1 is not None else u1
                if rows == 1 and first is not None and looks_like_header(legacy_text(first)):
                    # Contract 5.4.2: a spreadsheet's header row, saved in Windows-1252.
                    append_rejected(header_rejection(row_line, printable_name(first.strip(spaces))))
                    continue
                if given and not given.isspace() and sender_fullmatch(given) is None:
                    append_rejected(sender_rejection(row_line, given))
                append_rejected(
                    RejectedRow(
                        row_line,
                        RowError.NOT_UTF8,
                        bad_bytes_detail(text, start, pos),
                        bad_byte(text, start, pos),
                    )
                )
                continue
            french = fq if fq is not None else fu
            raw = "" if french is not None else (q1 if q1 is not None else u1.strip(spaces))
            if pq is not None:
                message, plain, non_gsm = pq, True, False
            elif nq is not None:
                message, plain, non_gsm = nq, True, True
            else:
                message, plain, non_gsm = (q2 if q2 is not None else u2.strip(spaces)), False, False
        else:
            record, pos, line = read_other(text, pos, line, check_utf8)
            if record is None:
                continue  # a blank line
            row_line, fields, error, detail = record
            given = fields[2] if fields is not None and len(fields) > 2 else ""
            if error is not None or fields is None or len(fields) < 2:
                # Contract 5.4.2: a row rejected anyway reports its sender, never fatal.
                rows += 1
                if (
                    error is RowError.NOT_UTF8
                    and rows == 1
                    and fields
                    and looks_like_header(legacy_text(fields[0]))
                ):
                    # A spreadsheet's header row saved in Windows-1252 (as on the fast path).
                    value = printable_name(fields[0].strip(spaces))
                    append_rejected(header_rejection(row_line, value))
                    continue
                if given and not given.isspace() and sender_fullmatch(given) is None:
                    append_rejected(sender_rejection(row_line, given))
                value = bad_byte_of(detail) if error is RowError.NOT_UTF8 else ""
                if error is None:
                    error, detail = RowError.TOO_FEW_COLUMNS, TOO_FEW_DETAIL  # manual 4.2
                    value = fields[0] if fields else ""
                append_rejected(RejectedRow(row_line, error, detail, value))
                continue
            raw, message = fields[0], fields[1]
            french = None
            plain = non_gsm = False
        rows += 1

        # Contract 5.4.2: a sender that breaks the rules makes the file No_valid_TPOA only
        # on a row that would otherwise yield an SMS; a row rejected for another reason
        # reports it and nothing more. An empty or whitespace-only third column means
        # "no sender".
        sender: str | None = None
        bad_sender = False
        if given and not given.isspace():
            known = seen_senders.get(given)
            if known is None:
                known = seen_senders[given] = (given, sender_fullmatch(given) is not None)
            sender = known[0]
            bad_sender = not known[1]

        # Contract 5.6 (see phone.check_number, inlined here for speed).
        if french is not None:
            phone = "33" + french
        elif (pm := french_fullmatch(number := raw.replace(" ", ""))) is not None:
            phone = "33" + pm.group(1)
        else:
            number_error: RowError | None = None
            if not number:
                number_error = RowError.EMPTY_NUMBER
            elif number.startswith(FRENCH_PREFIXES):
                number_error = RowError.LANDLINE
            else:
                pm = intl_fullmatch(number)
                if pm is None:
                    number_error = RowError.BAD_NUMBER
                else:
                    phone = pm.group(1)
            if number_error is not None:
                if rows == 1 and number_error is RowError.BAD_NUMBER and looks_like_header(raw):
                    # Contract 5.4.2: a spreadsheet's header row on the first non-blank row
                    # is one rejected row (its "Expéditeur" title is no sender).
                    append_rejected(header_rejection(row_line, raw.strip(spaces)))
                    continue
                if bad_sender:
                    append_rejected(sender_rejection(row_line, given))
                append_rejected(
                    RejectedRow(row_line, number_error, number_detail(number_error, raw), raw)
                )
                continue

        # Contract 5.7 (see length.count_septets / has_non_gsm, inlined for speed). Most
        # messages hold only plain 1-septet GSM characters: one search says so.
        septets = len(message)
        if not plain:
            # Manual 4.2: "Le retour à la ligne est encodé par '\n'": the two characters
            # backslash + n are a line break, stored as a real one (contract 5.7). There is
            # no escape for a literal backslash followed by n.
            if "\\n" in message:
                message = message.replace("\\n", "\n")
                septets = len(message)
            # The few characters that are not plain GSM are either worth 2 septets
            # (extension characters, line break) or outside GSM 03.38 (counted 1, warning).
            for char in special_findall(message):
                if char in doubles:
                    septets += 1
                else:
                    non_gsm = True
        empty = not message or message.isspace()
        if bad_sender and (empty or septets > MAX_SEPTETS):
            append_rejected(sender_rejection(row_line, given))
        if empty:
            append_rejected(
                RejectedRow(row_line, RowError.EMPTY_MESSAGE, "the message (column 2) is empty")
            )
            continue
        if septets > MAX_SEPTETS:
            append_rejected(
                RejectedRow(
                    row_line,
                    RowError.MESSAGE_TOO_LONG,
                    f"the message takes {septets} characters, over the {MAX_SEPTETS} allowed "
                    "(extension characters ^{}\\[]~|€ and line breaks count 2)",
                    str(septets),
                )
            )
            continue
        if bad_sender:
            # Contract 5.4.2: this row would yield an SMS, so its bad sender invalidates
            # the file (the SMS is still built, to report duplicates as usual).
            bad_senders.append((row_line, given))
            append_rejected(sender_rejection(row_line, given))

        # Contract 5.9 (see sender.applied_sender): in France, the asked sender needs the
        # mention "STOP au 36180" at the end of the message, white space after it ignored;
        # without it the warning names the near miss.
        if sender is None:
            applied = default_sender
            warnings = NON_GSM if non_gsm else NO_WARNING
        elif (
            phone.startswith("33")
            and not message.endswith(STOP_ENDINGS)
            and not message.rstrip().endswith(STOP_ENDINGS)
        ):
            applied = default_sender
            near_miss = stop_mention_warning(message)
            warnings = (NON_GSM_NOT_APPLIED if non_gsm else NOT_APPLIED)[near_miss]
        else:
            applied = sender
            warnings = NON_GSM if non_gsm else NO_WARNING
        if flat is not None:
            price = flat
        elif key_length > MEMO_KEY_DIGITS:
            price = price_of(quality, phone)  # long prefixes: a memo would hold every number
        else:
            key = phone[:key_length]
            cached = price_by_key.get(key)
            price = price_by_key[key] = price_of(quality, phone) if cached is None else cached
        sms: Sms = new_sms(
            Sms, (row_line, phone, message, sender, applied, septets, warnings, price)
        )

        if mult:
            every.append(sms)
            continue
        # Manual 4.2: "Les numéros de téléphones doivent être uniques. Le système supprimera
        # automatiquement les doublons et enverra le dernier message associé au numéro
        # dupliqué." The last valid row wins; SMS keep the order of their winning lines
        # (pop + insert moves the number to the end of the dict).
        previous = keep(phone, sms)  # one dict probe for a new number (issue 15)
        if previous is sms:
            continue
        del kept[phone]  # pop + insert moves the number to the end
        kept[phone] = sms
        if previous.line >= rejected.cut:
            # Past the kept rows: counted, its detail never built (issue 16: a file of one
            # number repeated has a duplicate a row).
            count_rejected(previous.line, RowError.DUPLICATE)
        else:
            append_rejected(
                RejectedRow(
                    previous.line,
                    RowError.DUPLICATE,
                    f"number {phone} appears again at line {row_line}, whose message is sent "
                    "instead (add _MULT to the file name to send both)",
                    phone,
                )
            )

    # The decoded text is no longer needed: free it before building the result (the peak
    # memory of an 8 MB file is reached here). Values are kept printable (core.bounded).
    del text
    rejected_rows, counted = rejected.result()

    all_sms = tuple(every) if mult else tuple(kept.values())
    if bad_senders:
        # Contract 5.4.2: only a row that would otherwise yield an SMS invalidates the file
        # through its sender; a row a later one replaces (a duplicate, without _MULT) is
        # rejected anyway, so it does not.
        sending = {s.line for s in all_sms}
        bad_senders = [(line, given) for line, given in bad_senders if line in sending]
    if bad_senders:
        first_line, first_sender = bad_senders[0]
        more = f" ({len(bad_senders)} rows in all)" if len(bad_senders) > 1 else ""
        return invalid(
            file_name,
            Reason.NO_VALID_TPOA,
            campaign,
            rejected_rows,
            rows,
            f"Line {first_line} asks for sender {quote_detail(first_sender)}{more}, which breaks"
            f" the sender rules: {SENDER_RULE}.",
            now,
            counted,
        )
    if not all_sms:
        why = empty_file_detail(rows)
        return invalid(
            file_name, Reason.EMPTY_FILE, campaign, rejected_rows, rows, why, now, counted
        )
    count = len(all_sms)
    cost = sum(s.price for s in all_sms)
    if not account.subscription and account.credits < cost:
        # Manual 4.3: "Le compte n'est pas en abonnement et n'a pas suffisamment de crédits".
        return invalid(
            file_name,
            Reason.NOT_ENOUGH_CREDITS,
            campaign,
            rejected_rows,
            rows,
            f"The file would send {count} SMS costing {cost} credits but account "
            f"'{account.login}' has {account.credits} credits and no subscription.",
            now,
            counted,
        )
    return Verdict(
        original_name=file_name,
        status=Status.ARCHIVED,
        reason=None,
        final_name=final_name(file_name, None),
        campaign=campaign,
        sms=all_sms,
        rejected=rejected_rows,
        cost=cost,
        rows=rows,
        detail="",
        judged_at=now,
        rejected_more=counted,
    )
