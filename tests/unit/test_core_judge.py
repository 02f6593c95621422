"""The rule engine's verdicts: file-level reasons, row rejections, SMS (manual 4.3, contract 5)."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.judge import judge
from mockserver.core.models import (
    Account,
    Reason,
    RejectedRow,
    RowError,
    Sms,
    Status,
    Verdict,
    Warning_,
)

NAME = "Camp_20300101120000_HQ.csv"
MULT = "Camp_20300101120000_HQ_MULT.csv"
NOW = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
RICH = Account(login="rich", credits=10**6)


def run(text: str | bytes, name: str = NAME, account: Account = RICH) -> Verdict:
    data = text.encode() if isinstance(text, str) else text
    return judge(name, data, account, NOW)


def errors(verdict: Verdict) -> list[tuple[int, str]]:
    return [(r.line, r.error) for r in verdict.rejected]


def only_sms(text: str, name: str = NAME) -> Sms:
    verdict = run(text, name)
    assert verdict.status is Status.ARCHIVED, verdict.detail
    assert len(verdict.sms) == 1
    return verdict.sms[0]


# --- the manual's own example and the basic shape ------------------------------------------


def test_the_manuals_example_row() -> None:
    """Manual 4.2: "Exemple de contenu correct : "33671717171";"Contenu du SMS"
    ;"Expéditeur"". Its sender has an accent, which the same section forbids ("Pas de
    caractères accentués"): read literally, the file is No_valid_TPOA. Without the accent
    the row is sent, with the default sender (France, no STOP mention)."""
    verdict = run('"33671717171";"Contenu du SMS" ;"Expéditeur"')
    assert verdict.reason is Reason.NO_VALID_TPOA
    assert errors(verdict) == [(1, RowError.INVALID_SENDER)]
    sms = only_sms('"33671717171";"Contenu du SMS" ;"Expediteur"')
    assert sms == Sms(
        line=1,
        phone="33671717171",
        message="Contenu du SMS",
        sender_asked="Expediteur",
        sender_applied="36180",
        septets=14,
        warnings=(Warning_.SENDER_NOT_APPLIED,),
        price=15,
    )


def test_an_archived_verdict() -> None:
    """Manual 4.3: "l'API déplacera les fichiers ... vers le répertoire ARCHIVES si l'exécution
    du fichier s'est bien déroulée"; contract 5.4: credits drop by the file's cost (15 credits
    a French SMS by default, contract 3 `[pricing]`)."""
    verdict = run("0612345678;Bonjour\n0712345678;Salut\n", account=Account(credits=30))
    assert verdict.status is Status.ARCHIVED
    assert verdict.archived
    assert verdict.reason is None
    assert verdict.final_name == "TreatedByMSI_" + NAME
    assert verdict.cost == 30
    assert [s.price for s in verdict.sms] == [15, 15]
    assert verdict.rows == 2
    assert verdict.detail == ""
    assert verdict.judged_at == NOW
    assert verdict.campaign is not None
    assert verdict.campaign.name == "Camp"
    assert [s.phone for s in verdict.sms] == ["33612345678", "33712345678"]
    json.dumps(verdict.to_dict())


# --- file-level verdicts and their order ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "account", "reason"),
    [
        ("Camp_20300101120000_HQ.CSV", "0612345678;ok", RICH, Reason.INCORRECT_FILENAME),
        # The name is checked first: the content is not even read.
        ("bad name.csv", "0612345678;ok;!!", Account(credits=0), Reason.INCORRECT_FILENAME),
        ("Camp_20301301120000_HQ.csv", "0612345678;ok", RICH, Reason.INCORRECT_FILENAME),
        # A bad sender beats an empty file and missing credits.
        # Contract 5.4.2: a bad sender on a row rejected anyway is no TPOA failure.
        (NAME, "0123456789;ok;X", Account(credits=0), Reason.EMPTY_FILE),
        (NAME, "0612345678;ok;X", Account(credits=0), Reason.NO_VALID_TPOA),
        # An empty file beats missing credits.
        (NAME, "", Account(credits=0), Reason.EMPTY_FILE),
        (NAME, "0123456789;landline", Account(credits=0), Reason.EMPTY_FILE),
        (NAME, "0612345678;ok", Account(credits=0), Reason.NOT_ENOUGH_CREDITS),
        (NAME, "0612345678;ok", Account(credits=0, subscription=True), None),
        (NAME, "0612345678;ok", Account(credits=14), Reason.NOT_ENOUGH_CREDITS),
        (NAME, "0612345678;ok", Account(credits=15), None),
    ],
)
def test_file_verdicts_in_contract_order(
    name: str, text: str, account: Account, reason: Reason | None
) -> None:
    """Contract 5.4: "File-level verdicts, checked in this order: Incorrect_FileName,
    No_valid_TPOA, Empty_File, Not_enough_credits"; manual 4.3 lists the four reasons."""
    verdict = run(text, name, account)
    assert verdict.reason is reason
    if reason is None:
        assert verdict.status is Status.ARCHIVED
        assert verdict.final_name == "TreatedByMSI_" + name
    else:
        assert verdict.status is Status.INVALID
        assert verdict.final_name == f"TreatedByMSI_{reason.value}_{name}"
        assert verdict.sms == ()
        assert verdict.cost == 0
        assert verdict.detail.endswith(".")
        assert "\n" not in verdict.detail


def test_incorrect_filename_does_not_read_the_content() -> None:
    """Contract 5.4.1: the name is checked first; no rows are read or reported."""
    verdict = run("0612345678;ok\n0123456789;x", "nope.csv")
    assert (verdict.rows, verdict.rejected, verdict.campaign) == (0, (), None)
    assert "does not have the form" in verdict.detail


def test_invalid_verdicts_keep_the_rejected_rows() -> None:
    """Contract 5.4: "An invalid file sends nothing and costs nothing"; its rejected rows are
    still reported so the recap can list every problem with its line."""
    verdict = run("0123456789;x\n0612345678;ok", account=Account(credits=0))
    assert verdict.reason is Reason.NOT_ENOUGH_CREDITS
    assert errors(verdict) == [(1, RowError.LANDLINE)]
    assert "1 SMS" in verdict.detail


@pytest.mark.parametrize(
    ("credits", "subscription", "rows", "reason"),
    [
        (0, False, 1, Reason.NOT_ENOUGH_CREDITS),
        (44, False, 3, Reason.NOT_ENOUGH_CREDITS),
        (45, False, 3, None),  # exactly enough
        (-5, False, 1, Reason.NOT_ENOUGH_CREDITS),
        (0, True, 3, None),  # "en abonnement": never Not_enough_credits
        (-5, True, 3, None),
    ],
)
def test_credits(credits: int, subscription: bool, rows: int, reason: Reason | None) -> None:
    """Manual 4.3: "Not_enough_credits : Le compte n'est pas en abonnement et n'a pas
    suffisamment de crédits"; contract 5.4.4 (15 credits a French SMS by default)."""
    text = "".join(f"061234567{i};msg\n" for i in range(rows))
    verdict = run(text, account=Account(credits=credits, subscription=subscription))
    assert verdict.reason is reason
    assert verdict.cost == (0 if reason else 15 * rows)


# --- empty files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\n\n", b"  \r\n\t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"],
)
def test_empty_files(data: bytes) -> None:
    """Manual 4.3: "Empty_File : Fichier vide ou ne contenant aucun numéro valide"."""
    verdict = run(data)
    assert verdict.reason is Reason.EMPTY_FILE
    assert verdict.rows == 0
    assert "no row" in verdict.detail


def test_a_file_without_a_valid_number_is_empty() -> None:
    """Manual 4.3: "Empty_File : ... ne contenant aucun numéro valide"."""
    verdict = run("0123456789;a\nabc;b\n;c\n")
    assert verdict.reason is Reason.EMPTY_FILE
    assert errors(verdict) == [
        (1, RowError.LANDLINE),
        (2, RowError.BAD_NUMBER),
        (3, RowError.EMPTY_NUMBER),
    ]
    assert "3 rows" in verdict.detail


# --- row rejections -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("0612345678", RowError.TOO_FEW_COLUMNS),  # "2 colonnes minimum"
        ('"0612345678"', RowError.TOO_FEW_COLUMNS),
        (";message", RowError.EMPTY_NUMBER),
        ("0123456789;message", RowError.LANDLINE),
        ("+33123456789;message", RowError.LANDLINE),
        ("0033612345678;message", RowError.LANDLINE),
        ("123;message", RowError.BAD_NUMBER),
        ("06 12 34 56 7x;message", RowError.LANDLINE),
        ("+44-7911-123456;message", RowError.BAD_NUMBER),
        ("06\x0012345678;message", RowError.LANDLINE),  # a NUL makes a bad number
        ("0612345678;", RowError.EMPTY_MESSAGE),
        ('0612345678;""', RowError.EMPTY_MESSAGE),
        ('0612345678;"   "', RowError.EMPTY_MESSAGE),  # white space only
        ('0612345678;"\\n"', RowError.EMPTY_MESSAGE),
        ("0612345678;" + "a" * 161, RowError.MESSAGE_TOO_LONG),
        ("0612345678;" + "€" * 81, RowError.MESSAGE_TOO_LONG),
        ("0612345678;" + "a\\n" * 54, RowError.MESSAGE_TOO_LONG),
        ('0612345678;"' + "a\n" * 54 + '"', RowError.MESSAGE_TOO_LONG),
        ('0612345678;"open', RowError.UNTERMINATED_QUOTE),
        ('0612345678;"a"b', RowError.MALFORMED_ROW),
    ],
)
def test_row_rejections(row: str, error: RowError) -> None:
    """Contract 5.5: "A row is rejected (and reported, never fatal to the file) for: fewer
    than 2 columns, a bad number, an empty message, a message over 160, bytes that are not
    UTF-8"; manual 4.2: "doit contenir 2 colonnes minimum", "160 caractères maximum"."""
    verdict = run(row + "\n0712345678;the good row\n")
    assert verdict.status is Status.ARCHIVED
    assert errors(verdict) == [(1, error)]
    assert verdict.rejected[0].detail
    # The good row starts on the line after the rejected record (which may span lines).
    assert [s.line for s in verdict.sms] == [row.count("\n") + 2]


@pytest.mark.parametrize(
    ("message", "septets"),
    [
        ("a" * 160, 160),
        ("€" * 80, 160),
        ("a\\n" * 53 + "a", 160),  # the two characters \n count 2
        ("Prix: 10€ {promo}", 20),
    ],
)
def test_messages_up_to_160_are_sent(message: str, septets: int) -> None:
    """Manual 4.2: "La longueur du message SMS ne doit pas dépasser 160 caractères, en prenant
    en compte les longueurs de caractères spéciaux"; contract 5.7."""
    assert only_sms(f'0612345678;"{message}"').septets == septets


def test_message_too_long_detail_gives_the_count() -> None:
    """Contract 5.7: a message over 160 is rejected; the detail says how long it is."""
    verdict = run("0612345678;" + "€" * 100)
    assert errors(verdict) == [(1, RowError.MESSAGE_TOO_LONG)]
    assert "200" in verdict.rejected[0].detail


# --- line breaks and characters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message", "septets"),
    [
        ('"a\\nb"', "a\nb", 4),  # the two characters backslash + n
        ("a\\nb", "a\nb", 4),
        ('"a\nb"', "a\nb", 4),  # a real line break inside quotes
        ('"a\r\nb"', "a\nb", 4),  # CRLF inside quotes is one line break
        ('"a\rb"', "a\nb", 4),
        ('"a\\\\nb"', "a\\\nb", 6),  # no escape: backslash then \n (both count 2)
    ],
)
def test_line_breaks(field: str, message: str, septets: int) -> None:
    """Manual 4.2: "Le retour à la ligne est encodé par '\\n'. Il compte double dans le calcul
    de la longueur du message"; contract 5.7: "A line break is a real one inside a quoted field
    or the two characters \\n; either is stored as a real line break"."""
    sms = only_sms(f"0612345678;{field}")
    assert (sms.message, sms.septets) == (message, septets)


@pytest.mark.parametrize(
    ("message", "warned"),
    [
        ("Bonjour à tous", False),
        ("Ça coûte 5€", True),  # û is outside GSM 03.38
        ("Joyeux Noël", True),
        ("smile 😀", True),
        ("nul\x00byte", True),  # a NUL in a message is a non-GSM character
        ("Prix {x} ^ [y] ~ |z| \\", False),
    ],
)
def test_non_gsm_characters_are_sent_with_a_warning(message: str, warned: bool) -> None:
    """Contract 5.7: "Characters outside GSM 03.38 are accepted (counted 1) and flagged as a
    formatting warning on the SMS"; manual: "envoyés avec un formatage incorrect"."""
    sms = only_sms(f'0612345678;"{message}"')
    assert sms.message == message
    assert (Warning_.NON_GSM_CHARACTERS in sms.warnings) is warned


# --- encodings ------------------------------------------------------------------------------


def test_a_latin1_file() -> None:
    """Manual 4.2: "Le message doit être encodé en UTF-8"; contract 5.5: rows with bytes that
    are not UTF-8 are rejected, pure ASCII rows of the same file are still sent."""
    text = "0612345678;Café crème\n0712345678;Plain ascii\n0612345679;Noël\n"
    verdict = run(text.encode("latin-1"))
    assert verdict.status is Status.ARCHIVED
    assert errors(verdict) == [(1, RowError.NOT_UTF8), (3, RowError.NOT_UTF8)]
    assert [s.line for s in verdict.sms] == [2]
    assert "0xE9" in verdict.rejected[0].detail


def test_a_latin1_file_without_ascii_rows_is_empty() -> None:
    """Contract 5.4.3 and 5.5: every row has a non-UTF-8 byte, so no row yields an SMS."""
    verdict = run("0612345678;Café\n0712345678;Noël\n".encode("latin-1"))
    assert verdict.reason is Reason.EMPTY_FILE
    assert errors(verdict) == [(1, RowError.NOT_UTF8), (2, RowError.NOT_UTF8)]


def test_bom_and_crlf() -> None:
    """Contract 5.5: "UTF-8 (a BOM is ignored), ... CRLF or LF"."""
    data = b'\xef\xbb\xbf"0612345678";"Bonjour"\r\n"0712345678";"Salut"\r\n'
    verdict = run(data)
    assert [(s.line, s.phone, s.message) for s in verdict.sms] == [
        (1, "33612345678", "Bonjour"),
        (2, "33712345678", "Salut"),
    ]


def test_binary_garbage() -> None:
    """Any bytes get a verdict (contract 5.5: rows are rejected, never fatal)."""
    data = random.Random(7).randbytes(20_000)
    verdict = run(data)
    assert verdict.status is Status.INVALID
    assert verdict.reason in (Reason.EMPTY_FILE, Reason.NO_VALID_TPOA)
    assert verdict.sms == ()
    json.dumps(verdict.to_dict())


def test_a_200000_character_line() -> None:
    """docs/design.md, pitfall 5 (csv raises over 131072 characters): here the row is only
    rejected as too long and the next row is still read."""
    verdict = run("0612345678;" + "x" * 200_000 + "\n0712345678;ok\n")
    assert errors(verdict) == [(1, RowError.MESSAGE_TOO_LONG)]
    assert [s.line for s in verdict.sms] == [2]


def test_an_unterminated_quote_loses_only_its_row() -> None:
    """docs/design.md, pitfall 5: "an unterminated quote swallows the next rows" in csv; here the
    row is rejected and reading resumes at the next line."""
    verdict = run('0612345678;"never closed\n0712345678;two\n0612345679;three\n')
    assert errors(verdict) == [(1, RowError.UNTERMINATED_QUOTE)]
    assert [s.line for s in verdict.sms] == [2, 3]


# --- duplicates -----------------------------------------------------------------------------


def test_duplicates_the_last_row_wins() -> None:
    """Manual 4.2: "Les numéros de téléphones doivent être uniques. Le système supprimera
    automatiquement les doublons et enverra le dernier message associé au numéro dupliqué";
    contract 5.8. The winners keep the order of their lines; superseded rows are reported."""
    text = "0612345678;first\n0712345678;other\n+33 6 12 34 56 78;second\n33612345678;third\n"
    verdict = run(text)
    assert [(s.line, s.phone, s.message) for s in verdict.sms] == [
        (2, "33712345678", "other"),
        (4, "33612345678", "third"),
    ]
    assert errors(verdict) == [(1, RowError.DUPLICATE), (3, RowError.DUPLICATE)]
    assert "line 3" in verdict.rejected[0].detail
    assert "line 4" in verdict.rejected[1].detail
    assert [r.value for r in verdict.rejected] == ["33612345678", "33612345678"]
    assert verdict.cost == 30


def test_an_invalid_row_does_not_supersede() -> None:
    """Contract 5.8: the last *valid* row wins; a later rejected row changes nothing."""
    verdict = run("0612345678;kept\n0612345678;\n")
    assert [s.message for s in verdict.sms] == ["kept"]
    assert errors(verdict) == [(2, RowError.EMPTY_MESSAGE)]


def test_mult_sends_every_row() -> None:
    """Manual 4.2: "Option d'envoi multiple (MULT ...)"; contract 5.8: "with _MULT every row
    is an SMS"."""
    verdict = run("0612345678;one\n0612345678;two\n33612345678;three\n", MULT)
    assert [s.message for s in verdict.sms] == ["one", "two", "three"]
    assert verdict.rejected == ()
    assert verdict.cost == 45


# --- sender ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "asked", "applied", "warnings"),
    [
        ("0612345678;Promo STOP au 36180;MaBoutique", "MaBoutique", "MaBoutique", ()),
        ("0612345678;Promo\\nSTOP au 36180;MaBoutique", "MaBoutique", "MaBoutique", ()),
        ('0612345678;"Promo\nSTOP au 36180";MaBoutique', "MaBoutique", "MaBoutique", ()),
        (
            "0612345678;Promo;MaBoutique",
            "MaBoutique",
            "36180",
            (Warning_.SENDER_NOT_APPLIED,),
        ),
        (
            "0612345678;Fête STOP au 36180x;MaBoutique",
            "MaBoutique",
            "36180",
            (Warning_.NON_GSM_CHARACTERS, Warning_.SENDER_NOT_APPLIED),
        ),
        ("+447911123456;Promo;MaBoutique", "MaBoutique", "MaBoutique", ()),
        ("0612345678;Promo", None, "36180", ()),
        ("0612345678;Promo;", None, "36180", ()),
        ('0612345678;Promo;"  "', None, "36180", ()),
        ("0612345678;Promo; Garage Auto ", "Garage Auto", "36180", (Warning_.SENDER_NOT_APPLIED,)),
    ],
)
def test_sender(row: str, asked: str | None, applied: str, warnings: tuple[str, ...]) -> None:
    """Manual 4.2: "la personnalisation de l'émetteur pour les envois vers la France ne sera
    prise en compte que si la fin du message contient la mention STOP au 36180, précédée d'un
    espace ou d'un retour à la ligne"; contract 5.9: "Every SMS records the sender asked for
    and the one applied"."""
    sms = only_sms(row)
    assert (sms.sender_asked, sms.sender_applied, sms.warnings) == (asked, applied, warnings)


def test_the_default_sender_comes_from_the_account() -> None:
    """Contract 3 (`default_sender`) and 5.9: the default sender is used when none is given
    or it is not applied."""
    verdict = run("0612345678;Promo;MaBoutique", account=Account(default_sender="Mock"))
    assert verdict.sms[0].sender_applied == "Mock"


@pytest.mark.parametrize(
    "text",
    [
        "0612345678;ok;Ab",
        "0612345678;ok;Expéditeur",
        "0612345678;ok;1Shop\n0712345678;ok;Shop",
        "0712345678;ok\n0612345678;ok;TooLongSender",
        '0712345678;ok\n0612345678;ok;" Shop"',  # an inner leading space
    ],
)
def test_an_invalid_sender_invalidates_the_file(text: str) -> None:
    """Manual 4.3: "No_valid_TPOA : L'expéditeur ne respecte pas les conditions
    d'utilisations"; contract 5.4.2: "some row that would otherwise yield an SMS gives a
    sender that breaks the sender rules"."""
    verdict = run(text)
    assert verdict.reason is Reason.NO_VALID_TPOA
    assert verdict.sms == ()
    assert RowError.INVALID_SENDER in [r.error for r in verdict.rejected]
    assert verdict.detail.startswith("Line ")


# --- properties -----------------------------------------------------------------------------

valid_names = st.builds(
    lambda camp, mult: f"{camp}_20300101120000_HQ{'_MULT' if mult else ''}.csv",
    st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True),
    st.booleans(),
)
accounts = st.builds(
    Account,
    login=st.just("p"),
    credits=st.integers(min_value=-2, max_value=6) | st.sampled_from([14, 15, 45, 150, 10**6]),
    subscription=st.booleans(),
    default_sender=st.just("36180"),
)
csv_alphabet = st.sampled_from([*';"\n\r \t\\n0123456789+€éaZ', "STOP au 36180"])
csv_text = st.lists(csv_alphabet, max_size=60).map("".join)
numbers = st.sampled_from(
    ["0612345678", "33612345678", "+33612345678", "0712345678", "447911123456", "0123456789"]
)
rows = st.tuples(numbers, st.text(max_size=30), st.sampled_from(["", "Shop", "Bad-", None]))


def _check_invariants(verdict: Verdict, account: Account) -> None:
    """Contract 5.4: archived => cost == the sum of the SMS's prices; invalid => cost 0 and
    no SMS."""
    if verdict.status is Status.ARCHIVED:
        assert verdict.reason is None
        assert verdict.cost == sum(s.price for s in verdict.sms) > 0
        assert all(s.price == 15 for s in verdict.sms)  # the default table
        assert account.subscription or account.credits >= verdict.cost
    else:
        assert verdict.reason is not None
        assert verdict.cost == 0
        assert verdict.sms == ()
    assert verdict.judged_at == NOW
    json.dumps(verdict.to_dict())
    for row in verdict.rejected:
        assert isinstance(row, RejectedRow)
        assert row.line >= 1
        assert row.detail
        assert "\n" not in row.detail
        row.detail.encode("utf-8")  # no lone surrogate leaks into a detail
        row.value.encode("utf-8")  # nor into a value (the store and the recap need text)


@given(st.text(max_size=60), st.binary(max_size=300), accounts)
def test_judge_never_raises_on_any_name_and_bytes(name: str, data: bytes, account: Account) -> None:
    """Contract 5.5: rejections are values; the engine answers every input."""
    _check_invariants(judge(name, data, account, NOW), account)


@given(valid_names, st.binary(max_size=400), accounts)
def test_judge_never_raises_on_valid_names_and_any_bytes(
    name: str, data: bytes, account: Account
) -> None:
    """Contract 5.5: with a valid name every byte sequence is read; no exception escapes."""
    _check_invariants(judge(name, data, account, NOW), account)


@given(valid_names, csv_text, accounts)
def test_judge_never_raises_on_csv_like_text(name: str, text: str, account: Account) -> None:
    """Contract 5.5: quotes, separators and line breaks in any arrangement give a verdict."""
    _check_invariants(judge(name, text.encode(), account, NOW), account)


@settings(max_examples=200)
@given(st.lists(rows, max_size=12), st.booleans(), accounts)
def test_verdict_properties(
    generated: list[tuple[str, str, str | None]], mult: bool, account: Account
) -> None:
    """Contract 5.4 (cost and credits), 5.6 (stored numbers) and 5.8 (without _MULT no
    number twice)."""
    lines = []
    for number, message, sender in generated:
        quoted = '"' + message.replace('"', '""') + '"'
        lines.append(f"{number};{quoted}" + ("" if sender is None else f";{sender}"))
    name = MULT if mult else NAME
    verdict = judge(name, "\n".join(lines).encode(), account, NOW)
    _check_invariants(verdict, account)
    phones = [s.phone for s in verdict.sms]
    assert all(re.fullmatch(r"33[67][0-9]{8}|[1-9][0-9]{3,14}", p) for p in phones)
    if not mult:
        assert len(phones) == len(set(phones))
    # Recompute the verdict's reason from the rows, independently of the engine.
    if verdict.reason in (Reason.EMPTY_FILE, Reason.NOT_ENOUGH_CREDITS, None):
        relaxed = judge(name, "\n".join(lines).encode(), Account(subscription=True), NOW)
        count = len(relaxed.sms)
        if count == 0:
            assert verdict.reason is Reason.EMPTY_FILE
        elif not account.subscription and account.credits < 15 * count:
            assert verdict.reason is Reason.NOT_ENOUGH_CREDITS
        else:
            assert verdict.reason is None
            assert verdict.cost == 15 * count


@given(
    st.integers(min_value=1, max_value=8), st.integers(min_value=-1, max_value=150), st.booleans()
)
def test_not_enough_credits_iff_no_subscription_and_too_few_credits(
    count: int, credits: int, subscription: bool
) -> None:
    """Manual 4.3: "Not_enough_credits : Le compte n'est pas en abonnement et n'a pas
    suffisamment de crédits"; contract 5.4.4 (a French SMS costs 15 credits by default)."""
    text = "".join(f"06123456{i:02d};message {i}\n" for i in range(count))
    verdict = run(text, account=Account(credits=credits, subscription=subscription))
    short = not subscription and credits < 15 * count
    assert (verdict.reason is Reason.NOT_ENOUGH_CREDITS) is short
    assert verdict.cost == (0 if short else 15 * count)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "The file holds no row (it is empty or only blank lines)."),
        (b"0612345678\n", "Its only row yields no valid SMS; see the rejected rows."),
        (b"0612345678\n12;x\n", "None of the 2 rows yields a valid SMS; see the rejected rows."),
    ],
)
def test_an_empty_files_detail_counts_its_rows_right(data: bytes, detail: str) -> None:
    """Manual 4.3 `Empty_File` ("aucun numéro valide"): the detail says how many rows were
    read, in English that agrees with the number (a new user saw "None of the 1 rows")."""
    verdict = judge("Promo_20301231120000_HQ.csv", data, Account(credits=10**6), NOW)
    assert verdict.reason == Reason.EMPTY_FILE
    assert verdict.detail == detail
