"""Phone numbers: accepted formats and their normal form (manual 4.2, contract 5.6)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.models import RowError
from mockserver.core.phone import check_number, looks_like_header, normalise_number

STORED_RE = re.compile(r"33[67][0-9]{8}|[1-9][0-9]{3,14}")


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("0612345678", "33612345678"),  # "06xxxxxxxx"
        ("0712345678", "33712345678"),  # "(ou 07xxxxxxxx)"
        ("33612345678", "33612345678"),  # "336xxxxxxxx"
        ("33712345678", "33712345678"),  # "(ou 337 xxxxxxxx)"
        ("337 12345678", "33712345678"),
        ("+33612345678", "33612345678"),  # "+336 xxxxxxxx"
        ("+336 12345678", "33612345678"),
        ("06 12 34 56 78", "33612345678"),  # spaces are ignored
        (" 0 6 1 2 3 4 5 6 7 8 ", "33612345678"),
        ("33671717171", "33671717171"),  # the manual's example row
        ("+447911123456", "447911123456"),  # "+CCxxxxxxxx"
        ("447911123456", "447911123456"),  # "CCxxxxxxxx"
        ("32471234567", "32471234567"),  # "32 pour la Belgique"
        ("12025550123", "12025550123"),
        ("12345678", "12345678"),  # 8 digits in all
        ("1234567", "1234567"),  # 7 digits: foreign lengths are not checked
        ("+6901234", "6901234"),  # a short foreign number (contract 5.6)
        ("1234", "1234"),  # 4 digits in all, the fewest
        ("123456789012345", "123456789012345"),  # 15 digits in all
        ("+1 202 555 0123", "12025550123"),
    ],
)
def test_accepted_numbers(raw: str, stored: str) -> None:
    """Manual 4.2: "Vers la France, trois formats possibles : 06xxxxxxxx (ou 07xxxxxxxx),
    336xxxxxxxx (ou 337 xxxxxxxx), +336 xxxxxxxx" and "Vers l'international, deux formats
    possibles : +CCxxxxxxxx, CCxxxxxxxx"; contract 5.6 (stored as 33 + 9 digits, spaces
    ignored, 4 to 15 digits for international numbers)."""
    assert check_number(raw) == (stored, None)
    assert normalise_number(raw) == stored


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", RowError.EMPTY_NUMBER),
        ("   ", RowError.EMPTY_NUMBER),
        ("0123456789", RowError.LANDLINE),  # Paris landline
        ("0412345678", RowError.LANDLINE),
        ("0812345678", RowError.LANDLINE),
        ("0912345678", RowError.LANDLINE),
        ("33123456789", RowError.LANDLINE),
        ("+33123456789", RowError.LANDLINE),
        ("061234567", RowError.LANDLINE),  # 9 digits
        ("06123456789", RowError.LANDLINE),  # 11 digits
        ("336123456789", RowError.LANDLINE),
        ("+3361234567", RowError.LANDLINE),
        ("0033612345678", RowError.LANDLINE),  # a 00 prefix starts with 0
        ("06.12.34.56.78", RowError.LANDLINE),  # starts with 0: malformed French number
        ("06-12-34-56-78", RowError.LANDLINE),
        ("33", RowError.LANDLINE),
        ("123", RowError.BAD_NUMBER),  # 3 digits: fewer than E.164's shortest
        ("+690", RowError.BAD_NUMBER),
        ("1234567890123456", RowError.BAD_NUMBER),  # 16 digits
        ("+44-7911-123456", RowError.BAD_NUMBER),
        ("+44.7911.123456", RowError.BAD_NUMBER),
        ("44\t7911123456", RowError.BAD_NUMBER),  # only spaces are ignored, not tabs
        ("44\u00a07911123456", RowError.BAD_NUMBER),  # nor non-breaking spaces
        ("4479111234\x00", RowError.BAD_NUMBER),
        ("++447911123456", RowError.BAD_NUMBER),
        ("44+7911123456", RowError.BAD_NUMBER),
        ("(44)7911123456", RowError.BAD_NUMBER),
        ("٤٤٧٩١١١٢٣٤٥٦", RowError.BAD_NUMBER),  # Arabic-Indic digits
        ("４４７９１１１２３４５６", RowError.BAD_NUMBER),  # full-width digits
        ("abc", RowError.BAD_NUMBER),
        ("+", RowError.BAD_NUMBER),
    ],
)
def test_rejected_numbers(raw: str, error: RowError) -> None:
    """Manual 4.2: "Tout envoi vers un téléphone fixe ou un numéro ne respectant pas le
    formatage défini ci-dessus sera rejeté"; contract 5.6: "Any other number starting with
    0, 33 or +33 is rejected (landline or malformed)"."""
    assert check_number(raw) == (None, error)
    assert normalise_number(raw) is None


number_like = st.text(alphabet="0123456789+ 367", max_size=20)


@given(st.one_of(number_like, st.text(max_size=20)))
def test_normalisation_is_idempotent_and_well_formed(raw: str) -> None:
    """Contract 5.6: an accepted number is stored as `33` + 9 digits or 4 to 15 digits, and
    normalising a stored number gives it back."""
    stored = normalise_number(raw)
    if stored is None:
        return
    assert STORED_RE.fullmatch(stored)
    assert normalise_number(stored) == stored


@pytest.mark.parametrize("raw", ["+6901234", "6901234", "+690 12 34", "1234", "+1234"])
def test_foreign_number_lengths_are_not_checked(raw: str) -> None:
    """Manual 4.2: "il n'y a pas de vérification effectuée quant à la longueur des numéros de
    téléphones étrangers"; contract 5.6: "at most 15 digits in all (E.164) and at least 4, no
    further length check". `+6901234` (New Caledonia) is an SMS."""
    stored, error = check_number(raw)
    assert error is None
    assert stored == raw.replace(" ", "").lstrip("+")


@pytest.mark.parametrize(
    ("raw", "header"),
    [
        ("Téléphone", True),
        ("telephone", True),
        ("N° mobile", True),
        ("phone_number", True),
        ("Tel.", True),
        (" Numéro de portable ", True),
        ("Mobile (GSM)", True),
        ("0612345678", False),
        ("Tel 1", False),  # a digit: not a column title
        ("+33 6", False),
        ("", False),
        ("_x", False),
        ("!!", False),
    ],
)
def test_looks_like_header(raw: str, header: bool) -> None:
    """Contract 5.4.2: a spreadsheet's header row (`Téléphone;Message;Expéditeur`): column 1
    holds no digit and looks like a word."""
    assert looks_like_header(raw) is header
