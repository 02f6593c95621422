"""Issue 12 in the rule engine: credits and prices, the LC quality, the sender's scope and the
header row, the STOP mention's near misses, short foreign numbers, `RejectedRow.value`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.filename import check_filename
from mockserver.core.judge import judge
from mockserver.core.models import Account, Reason, RowError, Status, Verdict, Warning_
from mockserver.core.pricing import DEFAULT_PRICES, FRENCH_SMS_CREDITS, PriceTable

NAME = "Camp_20300101120000_HQ.csv"
LC_NAME = "Camp_20300101120000_LC.csv"
MULT_NAME = "Camp_20300101120000_HQ_MULT.csv"
NOW = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
RICH = Account(credits=10**6)
TEN_FRENCH = "".join(f"06123456{i:02d};Bonjour {i}\n" for i in range(10))


def run(
    text: str,
    name: str = NAME,
    account: Account = RICH,
    prices: PriceTable = DEFAULT_PRICES,
    qualities: tuple[str, ...] = ("HQ",),
) -> Verdict:
    return judge(name, text.encode(), account, NOW, prices=prices, qualities=qualities)


def errors(verdict: Verdict) -> list[tuple[int, str, str]]:
    return [(r.line, r.error, r.value) for r in verdict.rejected]


# --- 1. credits (contract 3 `[pricing]`, 5.4.4) ---------------------------------------------


def test_ten_french_sms_cost_150_credits() -> None:
    """Contract 5.4.4: "An SMS costs the price of its destination and quality ... a French
    SMS costing 15"; "Default table: every destination 15"."""
    verdict = run(TEN_FRENCH)
    assert verdict.archived
    assert verdict.cost == 150
    assert {s.price for s in verdict.sms} == {15}


@pytest.mark.parametrize(("credits", "reason"), [(149, Reason.NOT_ENOUGH_CREDITS), (150, None)])
def test_credits_are_compared_with_the_cost(credits: int, reason: Reason | None) -> None:
    """Manual 4.3: "Not_enough_credits : Le compte n'est pas en abonnement et n'a pas
    suffisamment de crédits"; contract 5.4.4: "credits < the file's cost"."""
    verdict = run(TEN_FRENCH, account=Account(credits=credits))
    assert verdict.reason is reason
    assert verdict.cost == (0 if reason else 150)
    if reason:
        assert "costing 150 credits" in verdict.detail


def test_a_subscription_is_never_short_of_credits() -> None:
    """Contract 3: `subscription = true`: "billed at month end, never Not_enough_credits"."""
    verdict = run(TEN_FRENCH, account=Account(credits=0, subscription=True))
    assert verdict.archived
    assert verdict.cost == 150


def test_prices_by_calling_code() -> None:
    """Contract 3 `[pricing]`: "credits an SMS costs, by the destination's country calling
    code (longest prefix wins); `default` for the rest"."""
    prices = PriceTable({"HQ": {"default": 15, "44": 20}})
    verdict = run("+447911123456;Hello\n0612345678;Bonjour\n", prices=prices)
    assert [(s.phone, s.price) for s in verdict.sms] == [
        ("447911123456", 20),
        ("33612345678", 15),
    ]
    assert verdict.cost == 35


def test_the_longest_prefix_wins() -> None:
    """Contract 3 `[pricing]`: "longest prefix wins"."""
    prices = PriceTable({"HQ": {"default": 15, "4": 10, "44": 20}})
    verdict = run("+447911123456;a\n+4915112345678;b\n+33612345678;c\n", prices=prices)
    assert [s.price for s in verdict.sms] == [20, 10, 15]


def test_price_table_unit() -> None:
    """Contract 3 `[pricing.HQ]` / `[pricing.LC]`: by quality, by calling code, a default."""
    table = PriceTable({"HQ": {"default": 15, "33": 12, "336": 11}, "LC": {"default": 7}})
    assert table.key_length == 3
    assert table.price("HQ", "33612345678") == 11
    assert table.price("HQ", "33712345678") == 12
    assert table.price("HQ", "447911123456") == 15
    assert table.price("LC", "33612345678") == 7
    assert table.price("XX", "33612345678") == FRENCH_SMS_CREDITS  # never raises
    assert table.price("HQ", "") == 15
    assert DEFAULT_PRICES.price("HQ", "33612345678") == 15
    assert DEFAULT_PRICES.price("LC", "1234") == 15
    assert PriceTable({"HQ": {"default": 0}}).key_length == 0
    assert PriceTable({"HQ": {"default": 1}}) == PriceTable({"HQ": {"default": 1}})


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"HQ": {"33": 15}}, "no `default`"),
        ({"HQ": {"default": -1}}, "0 or more"),
        ({"HQ": {"default": True}}, "whole number"),
        ({"HQ": {"default": 15, "+33": 15}}, "digits"),
    ],
)
def test_a_bad_price_table_is_refused(table: dict[str, dict[str, int]], words: str) -> None:
    """Contract 3: "A bad file or value stops start-up with one clear line naming the key"."""
    with pytest.raises(ValueError, match="pricing") as caught:
        PriceTable(table)
    assert words in str(caught.value)


prices_strategy = st.dictionaries(
    st.from_regex(r"[1-9][0-9]{0,3}", fullmatch=True), st.integers(0, 100), max_size=6
).map(lambda d: PriceTable({"HQ": {"default": 15, **d}}))
# Accepted numbers (contract 5.6): French mobiles, and foreign numbers of 4 to 15 digits; a
# number starting with 33 that is not a French mobile is rejected, so it is left out.
number_strategy = st.from_regex(r"\+?[1-9][0-9]{3,14}|0[67][0-9]{8}", fullmatch=True).filter(
    lambda n: not n.lstrip("+").startswith("33")
)


@given(prices_strategy, st.lists(number_strategy, min_size=1, max_size=8), st.booleans())
def test_cost_is_the_sum_of_the_prices(prices: PriceTable, numbers: list[str], mult: bool) -> None:
    """Contract 5.4.4: the file's cost is the sum of its SMS's prices, never negative."""
    name = "Camp_20300101120000_HQ_MULT.csv" if mult else NAME
    text = "".join(f"{n};message\n" for n in numbers)
    verdict = run(text, name=name, prices=prices)
    assert verdict.archived
    assert verdict.cost == sum(s.price for s in verdict.sms) >= 0
    for s in verdict.sms:
        assert s.price == prices.price("HQ", s.phone)


# --- 2. quality LC (contract 3 `processing.qualities`, 5.4.1) ---------------------------------


def test_lc_is_incorrect_by_default() -> None:
    """Manual 2.1: "HQ ..., seule qualité disponible"; contract 5.4.1: "with a quality listed
    in `processing.qualities` (default `HQ` only)"."""
    verdict = run("0612345678;Bonjour\n", name=LC_NAME)
    assert verdict.reason is Reason.INCORRECT_FILENAME
    assert "LC is not offered" in verdict.detail


def test_lc_is_archived_at_the_lc_price_when_offered() -> None:
    """Contract 3: `qualities = ["HQ"]`: add "LC" to accept _LC files; `[pricing.LC]` is
    "used only when processing.qualities lists LC"."""
    prices = PriceTable({"HQ": {"default": 15}, "LC": {"default": 9}})
    verdict = run(TEN_FRENCH, name=LC_NAME, prices=prices, qualities=("HQ", "LC"))
    assert verdict.archived
    assert verdict.campaign is not None
    assert verdict.campaign.quality == "LC"
    assert verdict.cost == 90
    assert run(TEN_FRENCH, prices=prices, qualities=("HQ", "LC")).cost == 150


@pytest.mark.parametrize(
    ("name", "qualities", "hint"),
    [
        ("Camp_20300101120000_lc.csv", ("HQ",), "LC is not offered"),
        ("Camp_20300101120000_lc.csv", ("HQ", "LC"), "write the quality LC in capitals"),
        ("Camp_20300101120000_hq.csv", ("HQ",), "write the quality HQ in capitals"),
        ("Camp_20300101120000_XX.csv", ("HQ", "LC"), "_<HQ|LC>[_MULT].csv"),
        ("Camp_20300101120000_XX.csv", ("HQ",), "_HQ[_MULT].csv"),
    ],
)
def test_quality_hints(name: str, qualities: tuple[str, ...], hint: str) -> None:
    """Contract 5.12: hints name the likely cause; contract 5.4.1: the name grammar."""
    reason = check_filename(name, qualities)
    assert isinstance(reason, str)
    assert hint in reason


# --- 3. sender scope and the header row (contract 5.4.2) ------------------------------------


@pytest.mark.parametrize(
    "bad_row",
    [
        "0123456789;landline;Bad-Sender",
        "123;too short a number;Bad-Sender",
        "0612345678;;Bad-Sender",
        "0612345678;" + "a" * 161 + ";Bad-Sender",
        "only one column",
    ],
)
def test_a_rejected_row_never_invalidates_through_its_sender(bad_row: str) -> None:
    """Contract 5.4.2: "A row rejected for another reason (bad number, empty or too long
    message) never makes the file invalid through its sender"; its sender is still reported."""
    verdict = run(f"0712345678;ok\n{bad_row}\n")
    assert verdict.archived
    if "Bad-Sender" in bad_row:
        assert (2, RowError.INVALID_SENDER, "Bad-Sender") in errors(verdict)


def test_a_row_that_would_send_invalidates_through_its_sender() -> None:
    """Contract 5.4.2: "No_valid_TPOA: some row that would otherwise yield an SMS gives a
    sender that breaks the sender rules"."""
    verdict = run("0712345678;ok\n+447911123456;hello;Bad-Sender\n")
    assert verdict.reason is Reason.NO_VALID_TPOA
    assert errors(verdict) == [(2, RowError.INVALID_SENDER, "Bad-Sender")]


@pytest.mark.parametrize(
    "header",
    [
        "Téléphone;Message;Expéditeur",
        '"Téléphone";"Message";"Expéditeur"',
        "N° mobile;Texte",
        "phone;message;sender",
    ],
)
def test_a_header_row_is_one_rejected_row(header: str) -> None:
    """Contract 5.4.2: "a spreadsheet's header row `Téléphone;Message;Expéditeur` is one
    rejected row, reported as a header row"; the file is archived with the other rows."""
    verdict = run(f"\n{header}\n0612345678;Bonjour STOP au 36180;MaBoutique\n")
    assert verdict.archived
    assert len(verdict.rejected) == 1
    row = verdict.rejected[0]
    assert (row.line, row.error) == (2, RowError.HEADER_ROW)
    assert row.value == header.split(";")[0].strip('"')
    assert "header row" in row.detail
    assert [s.sender_applied for s in verdict.sms] == ["MaBoutique"]


def test_only_the_first_row_can_be_a_header() -> None:
    """Contract 5.4.2: a header row is the first row; a word further down is a bad number."""
    verdict = run("0612345678;Bonjour\nTéléphone;Message\n")
    assert errors(verdict) == [(2, RowError.BAD_NUMBER, "Téléphone")]


# --- 4. the STOP mention (contract 5.9) -----------------------------------------------------


@pytest.mark.parametrize(
    ("message", "applied", "warnings"),
    [
        ('"Promo STOP au 36180 "', "MaBoutique", ()),
        ('"Promo STOP au 36180\n"', "MaBoutique", ()),
        ("Promo STOP au 36180\\n", "MaBoutique", ()),
        ("Promo stop au 36180", "36180", (Warning_.STOP_MENTION_CASE,)),
        ("PromoSTOP au 36180", "36180", (Warning_.STOP_MENTION_NOT_SEPARATED,)),
        ("Promo STOP au 36180.", "36180", (Warning_.STOP_MENTION_PUNCTUATION,)),
        ("Promo STOP au 36180!", "36180", (Warning_.STOP_MENTION_PUNCTUATION,)),
        ("Promo", "36180", (Warning_.SENDER_NOT_APPLIED,)),
        (
            "Fête STOP au 36180.",
            "36180",
            (Warning_.NON_GSM_CHARACTERS, Warning_.STOP_MENTION_PUNCTUATION),
        ),
    ],
)
def test_stop_mention_in_the_engine(
    message: str, applied: str, warnings: tuple[Warning_, ...]
) -> None:
    """Contract 5.9: "a given sender is applied only if the message ends with STOP au 36180
    preceded by a space or a line break (white space after the mention is ignored); otherwise
    the SMS goes out with the default sender and a warning that names the near miss"."""
    verdict = run(f"0612345678;{message};MaBoutique\n")
    (sms,) = verdict.sms
    assert (sms.sender_applied, sms.warnings) == (applied, warnings)


# --- 5. foreign numbers (contract 5.6) ------------------------------------------------------


def test_a_short_foreign_number_is_an_sms() -> None:
    """Manual 4.2: "il n'y a pas de vérification effectuée quant à la longueur des numéros de
    téléphones étrangers"; contract 5.6: at least 4 digits, at most 15."""
    verdict = run("+6901234;Bonjour\n123;trop court\n")
    assert [s.phone for s in verdict.sms] == ["6901234"]
    assert errors(verdict) == [(2, RowError.BAD_NUMBER, "123")]
    assert "4 to 15 digits" in verdict.rejected[0].detail


# --- 6. RejectedRow.value -------------------------------------------------------------------


def test_rejected_rows_carry_the_offending_value() -> None:
    """Contract 5.11: the recap lists "rejected rows ... with their line numbers and
    reasons"; `value` is what the French recap quotes."""
    text = (
        "0612345678;ok\n"
        "0123456789;fixe\n"
        "06 12;mal formé\n"
        ";no number\n"
        "0712345678;\n"
        "0712345679;" + "€" * 81 + "\n"
        "seul\n"
        "0612345678;encore\n"
    )
    data = text.encode() + b"0612345670;caf\xe9\n"
    verdict = judge(NAME, data, RICH, NOW)
    assert verdict.status is Status.ARCHIVED
    assert errors(verdict) == [
        (1, RowError.DUPLICATE, "33612345678"),
        (2, RowError.LANDLINE, "0123456789"),
        (3, RowError.LANDLINE, "06 12"),
        (4, RowError.EMPTY_NUMBER, ""),
        (5, RowError.EMPTY_MESSAGE, ""),
        (6, RowError.MESSAGE_TOO_LONG, "162"),
        (7, RowError.TOO_FEW_COLUMNS, "seul"),
        (9, RowError.NOT_UTF8, "0xE9"),
    ]


def test_not_utf8_value_on_the_slow_path() -> None:
    """Contract 5.5: "bytes that are not UTF-8" reject the row; `value` names the byte."""
    verdict = judge(NAME, b'"06 12 34 56 78";"a\ncaf\xe9"\n0612345679;ok\n', RICH, NOW)
    assert (1, RowError.NOT_UTF8, "0xE9") in errors(verdict)


def test_a_flat_table_prices_every_number_alike_and_a_varied_one_by_number() -> None:
    """Contract 3 `[pricing]`: the engine's shortcut for a table with one price (the default
    table) must give what the longest-prefix rule gives."""
    flat = PriceTable({"HQ": {"default": 15, "33": 15}})
    varied = PriceTable({"HQ": {"default": 15, "44": 20}})
    assert flat.flat_price("HQ") == 15
    assert varied.flat_price("HQ") is None
    data = '"0612345678";"a"\n"+447700900123";"b"\n'
    for table, cost in ((flat, 30), (varied, 35)):
        verdict = run(data, prices=table)
        assert verdict.cost == cost
        assert [s.price for s in verdict.sms] == [table.price("HQ", s.phone) for s in verdict.sms]


@pytest.mark.parametrize("first", ["N/A;Bonjour;Shop", "inconnu;Bonjour", "Mme Durand;Bonjour"])
def test_a_first_data_row_with_a_word_is_a_bad_number_not_a_header(first: str) -> None:
    """Contract 5.4.2: only a spreadsheet's header row is "reported as a header row"; a real
    first row whose number is a word stays a bad number, never hidden as a header."""
    verdict = run(first + "\n" + TEN_FRENCH)
    assert [(r.line, r.error) for r in verdict.rejected] == [(1, RowError.BAD_NUMBER)]


def test_a_bad_sender_on_a_replaced_duplicate_does_not_invalidate_the_file() -> None:
    """Contract 5.4.2: "A row rejected for another reason ... never makes the file invalid
    through its sender": a row a later row of the same number replaces (manual 4.2: "enverra
    le dernier message associé au numéro dupliqué") is rejected as a duplicate."""
    verdict = run("0612345678;premier;Bad-Sender\n0612345678;second\n")
    assert verdict.status is Status.ARCHIVED
    assert [s.message for s in verdict.sms] == ["second"]
    assert sorted((r.line, r.error) for r in verdict.rejected) == [
        (1, RowError.DUPLICATE),
        (1, RowError.INVALID_SENDER),
    ]
    kept_bad = run("0612345678;premier\n0612345678;second;Bad-Sender\n")
    assert kept_bad.reason is Reason.NO_VALID_TPOA  # the row that would be sent
    with_mult = run("0612345678;premier;Bad-Sender\n0612345678;second\n", name=MULT_NAME)
    assert with_mult.reason is Reason.NO_VALID_TPOA  # with _MULT every row is sent


def test_a_windows_1252_header_row_is_reported_in_text() -> None:
    """Manual 4.2: "encodé en UTF-8"; a spreadsheet saved in Windows-1252 has a header
    `Téléphone;Message;Expéditeur` whose é is not UTF-8: its reported value is text (the
    store, the API and the recap need it), with the byte shown as \\xe9."""
    data = "Téléphone;Message;Expéditeur\n0612345678;Bonjour\n".encode("cp1252")
    verdict = judge(NAME, data, RICH, NOW)
    assert verdict.status is Status.ARCHIVED
    for row in verdict.rejected:
        row.value.encode("utf-8")
    assert any("\\xe9" in row.value for row in verdict.rejected)
