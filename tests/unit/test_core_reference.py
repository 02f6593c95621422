"""`judge` agrees with a plain reference model built from the rule modules (contract 5).

`judge` inlines the reader and takes regex shortcuts for speed; this model applies the same
rules one module at a time (reader, phone, length, sender) and must give the same verdict.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.filename import parse_filename
from mockserver.core.judge import judge
from mockserver.core.length import count_septets, has_non_gsm
from mockserver.core.models import Account, Reason, RowError, Warning_
from mockserver.core.phone import check_number, looks_like_header
from mockserver.core.pricing import DEFAULT_PRICES
from mockserver.core.reader import decode, iter_records
from mockserver.core.rejections import legacy_text
from mockserver.core.sender import (
    has_stop_mention,
    is_french,
    is_valid_sender,
    sender_given,
    stop_mention_warning,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)

Outcome = tuple[Reason | None, list[tuple[object, ...]], list[tuple[int, str]]]


def reference(name: str, data: bytes, account: Account) -> Outcome:
    """Contract 5.4-5.9, written the obvious way. Contract 5.4.2: a bad sender invalidates
    the file only on a row that would otherwise yield an SMS; a first row whose column 1
    looks like a word is one header row."""
    campaign = parse_filename(name)
    if campaign is None:
        return Reason.INCORRECT_FILENAME, [], []
    text, bad = decode(data)
    rejected: list[tuple[int, str]] = []
    sms: list[tuple[object, ...]] = []
    bad_sender_lines: set[int] = set()
    for index, (line, fields, error, _) in enumerate(iter_records(text, bad)):
        sender = None
        sender_error: list[tuple[int, str]] = []
        if fields is not None and len(fields) > 2 and sender_given(fields[2]):
            sender = fields[2]
            if not is_valid_sender(sender):
                sender_error = [(line, RowError.INVALID_SENDER)]
        if error is not None:
            if (
                error is RowError.NOT_UTF8
                and index == 0
                and fields
                and looks_like_header(legacy_text(fields[0]))
            ):
                rejected.append((line, RowError.HEADER_ROW))  # a Windows-1252 header row
            else:
                rejected += [*sender_error, (line, error)]
            continue
        assert fields is not None
        if len(fields) < 2:
            rejected += [*sender_error, (line, RowError.TOO_FEW_COLUMNS)]
            continue
        phone, number_error = check_number(fields[0])
        if number_error is not None:
            if index == 0 and number_error is RowError.BAD_NUMBER and looks_like_header(fields[0]):
                rejected.append((line, RowError.HEADER_ROW))
            else:
                rejected += [*sender_error, (line, number_error)]
            continue
        assert phone is not None
        message = fields[1].replace("\\n", "\n")
        if not message.strip():
            rejected += [*sender_error, (line, RowError.EMPTY_MESSAGE)]
            continue
        septets = count_septets(message)
        if septets > 160:
            rejected += [*sender_error, (line, RowError.MESSAGE_TOO_LONG)]
            continue
        if sender_error:
            bad_sender_lines.add(line)
            rejected += sender_error
        warnings = [Warning_.NON_GSM_CHARACTERS] if has_non_gsm(message) else []
        applied = account.default_sender if sender is None else sender
        if sender is not None and is_french(phone) and not has_stop_mention(message):
            applied = account.default_sender
            warnings.append(stop_mention_warning(message))
        price = DEFAULT_PRICES.price("HQ", phone)
        sms.append((line, phone, message, sender, applied, septets, tuple(warnings), price))
    if not campaign.mult:
        last: dict[object, tuple[object, ...]] = {}
        for row in sms:
            if row[1] in last:
                rejected.append((int(str(last[row[1]][0])), RowError.DUPLICATE))
                del last[row[1]]
            last[row[1]] = row
        sms = sorted(last.values(), key=lambda row: int(str(row[0])))
    rejected.sort(key=lambda r: r[0])
    # Contract 5.4.2: only a row that is sent in the end (not one a later duplicate replaces)
    # invalidates the file through its sender.
    if bad_sender_lines & {int(str(row[0])) for row in sms}:
        return Reason.NO_VALID_TPOA, [], rejected
    if not sms:
        return Reason.EMPTY_FILE, [], rejected
    if not account.subscription and account.credits < sum(int(str(row[7])) for row in sms):
        return Reason.NOT_ENOUGH_CREDITS, [], rejected
    return None, sms, rejected


numbers = st.sampled_from(
    [
        "0612345678",
        "0712345679",
        "33612345678",
        "+33612345678",
        "+33 6 12 34 56 78",
        " 06 12 34 56 78 ",
        "0123456789",
        "+447911123456",
        "447911123456",
        "32471234567",
        "1234567",
        "+6901234",
        "123",
        "06-12",
        "Téléphone",
        "N° mobile",
        "",
        "٠٦١٢٣٤٥٦٧٨",
    ]
)
message_chars = st.sampled_from(
    [*"aZ09 .,!?éàÇ€{}^\\~|[]êçëô\t\f`\x00😀", "\\n", "\n", "\r\n", ";", '"', "STOP au 36180"]
)
messages = st.lists(message_chars, max_size=40).map("".join) | st.sampled_from(
    [
        "Promo STOP au 36180",
        "Promo\\nSTOP au 36180",
        "Promo STOP au 36180 ",
        "Promo STOP au 36180\\n",
        "Promo stop au 36180",
        "PromoSTOP au 36180",
        "Promo STOP au 36180.",
        "Promo STOP au 36180 !",
        "a" * 160,
        "a" * 161,
        "€" * 80,
        "   ",
    ]
)
good_senders = [None, "", "  ", "Shop", "Garage Auto"]
bad_senders = ["Ab", "Expéditeur", "1abc"]
pads = st.sampled_from(["", " ", "\t", " \t "])


def quote(value: str, quoted: bool) -> str:
    if quoted or any(c in value for c in ';"\n\r') or value != value.strip(" \t"):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    rows = []
    # Most files keep to valid senders, or nearly every file would be No_valid_TPOA.
    may_be_bad = draw(st.integers(min_value=0, max_value=4)) == 0
    senders = st.sampled_from(good_senders + bad_senders if may_be_bad else good_senders)
    for _ in range(draw(st.integers(min_value=0, max_value=10))):
        cells = [draw(numbers), draw(messages)]
        sender = draw(senders)
        if sender is not None:
            cells.append(sender)
        if draw(st.booleans()) and sender is not None:
            cells.append("extra;column")
        row = ";".join(draw(pads) + quote(c, draw(st.booleans())) + draw(pads) for c in cells)
        if draw(st.integers(min_value=0, max_value=20)) == 0:
            row = draw(st.sampled_from(['"broken', '"a"b;c', "just one column", "  "]))
        rows.append(row)
    data = draw(st.sampled_from(["\n", "\r\n"])).join(rows).encode()
    if data and draw(st.integers(min_value=0, max_value=10)) == 0:
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + b"\xe9" + data[at:]  # a Latin-1 byte somewhere
    return data


accounts = st.builds(
    Account,
    credits=st.integers(min_value=0, max_value=8) | st.sampled_from([14, 15, 44, 45, 150]),
    subscription=st.booleans(),
    default_sender=st.sampled_from(["36180", "Shop"]),
)


@settings(max_examples=300)
@given(csv_files(), st.booleans(), accounts)
def test_judge_agrees_with_the_reference_model(data: bytes, mult: bool, account: Account) -> None:
    """Contract 5.4-5.9: the fast engine and the one-rule-at-a-time model give the same
    reason, the same SMS and the same rejected rows for any file."""
    name = "Camp_20300101120000_HQ" + ("_MULT" if mult else "") + ".csv"
    verdict = judge(name, data, account, NOW)
    reason, sms, rejected = reference(name, data, account)
    assert verdict.reason is reason
    assert [tuple(s) for s in verdict.sms] == sms
    assert [(r.line, r.error) for r in verdict.rejected] == rejected
