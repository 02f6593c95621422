"""Message length in GSM 03.38 septets (manual 4.2 "Longueur", contract 5.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.length import count_septets, has_non_gsm, measure

# An independent transcription of 3GPP TS 23.038 6.2.1 (default alphabet) by code point, to
# check the engine's table against: {character: septet}.
_SPECIAL = {
    0x00: "\u0040", 0x01: "\u00a3", 0x02: "\u0024", 0x03: "\u00a5", 0x04: "\u00e8",
    0x05: "\u00e9", 0x06: "\u00f9", 0x07: "\u00ec", 0x08: "\u00f2", 0x09: "\u00c7",
    0x0A: "\u000a", 0x0B: "\u00d8", 0x0C: "\u00f8", 0x0D: "\u000d", 0x0E: "\u00c5",
    0x0F: "\u00e5", 0x10: "\u0394", 0x11: "\u005f", 0x12: "\u03a6", 0x13: "\u0393",
    0x14: "\u039b", 0x15: "\u03a9", 0x16: "\u03a0", 0x17: "\u03a8", 0x18: "\u03a3",
    0x19: "\u0398", 0x1A: "\u039e", 0x1C: "\u00c6", 0x1D: "\u00e6", 0x1E: "\u00df",
    0x1F: "\u00c9", 0x24: "\u00a4", 0x40: "\u00a1", 0x5B: "\u00c4", 0x5C: "\u00d6",
    0x5D: "\u00d1", 0x5E: "\u00dc", 0x5F: "\u00a7", 0x60: "\u00bf", 0x7B: "\u00e4",
    0x7C: "\u00f6", 0x7D: "\u00f1", 0x7E: "\u00fc", 0x7F: "\u00e0",
}  # fmt: skip
GSM_BASIC = {
    _SPECIAL.get(code, chr(code)): code for code in range(0x80) if code != 0x1B
}  # ESC (0x1B) introduces the extension table; it is not a character
GSM_EXTENSION = {
    "\u000c": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "\u20ac": 0x65,
}  # fmt: skip


def gsm_encode(text: str) -> bytes:
    """GSM 03.38 septets of `text`, one byte each, extension characters as ESC + septet."""
    out = bytearray()
    for char in text:
        if char in GSM_BASIC:
            out.append(GSM_BASIC[char])
        else:
            out += bytes((0x1B, GSM_EXTENSION[char]))
    return bytes(out)


def test_the_oracle_table_is_complete() -> None:
    """3GPP TS 23.038: 127 basic characters (ESC excluded) and 10 extension characters."""
    assert len(GSM_BASIC) == 127
    assert not set(GSM_BASIC) & set(GSM_EXTENSION)


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("a", 1),
        ("Contenu du SMS", 14),
        ("àéèùìòÇ", 7),  # accented letters of the basic table
        ("€", 2),  # extension characters count 2 (contract 5.7)
        ("^{}\\[]~|€", 18),
        ("\f", 2),  # form feed is a GSM 03.38 extension character
        ("a\nb", 4),  # "Le retour à la ligne ... compte double"
        ("\n\n", 4),
        ("a" * 160, 160),
        ("ê", 1),  # outside GSM 03.38: counted 1 (contract 5.7)
        ("😀", 1),
        ("", 0),
    ],
)
def test_septet_counts(text: str, septets: int) -> None:
    """Manual 4.2: "La longueur du message SMS ne doit pas dépasser 160 caractères, en prenant
    en compte les longueurs de caractères spéciaux" and "Le retour à la ligne est encodé par
    '\\n'. Il compte double"; contract 5.7."""
    assert count_septets(text) == septets


@pytest.mark.parametrize(
    ("text", "non_gsm"),
    [
        ("Bonjour à tous", False),
        ("Ça marche", False),  # Ç is in the basic table
        ("ça marche", True),  # ç is not
        ("fête", True),
        ("Noël", True),
        ("naïve", True),
        ("`", True),
        ("\x1b", True),  # the escape code itself is not a character
        ("\x00", True),  # a NUL kept from the file
        ("\t", True),
        ("€ {x}", False),
        ("a\nb", False),
        ("😀", True),
        ("Δ_ΦΓΛΩΠΨΣΘΞ", False),
    ],
)
def test_non_gsm_characters(text: str, non_gsm: bool) -> None:
    """Contract 5.7: "Characters outside GSM 03.38 are accepted (counted 1) and flagged as a
    formatting warning"; manual: "...contient des caractères non-supportés, les messages
    seront rejetés ou envoyés avec un formatage incorrect"."""
    assert has_non_gsm(text) is non_gsm
    assert measure(text) == (count_septets(text), non_gsm)


gsm_text_without_breaks = st.text(
    alphabet=sorted((set(GSM_BASIC) | set(GSM_EXTENSION)) - {"\n"}), max_size=200
)


@given(gsm_text_without_breaks)
def test_septets_equal_the_gsm_encoding_length(text: str) -> None:
    """Contract 5.7: for GSM text the count is the length of its GSM 03.38 encoding
    (extension characters as escape + character). Line breaks are tested apart: the manual
    makes them count 2 where GSM has LF as a basic character."""
    assert count_septets(text) == len(gsm_encode(text))
    assert not has_non_gsm(text)


@given(gsm_text_without_breaks, st.integers(min_value=1, max_value=5))
def test_each_line_break_adds_two(text: str, breaks: int) -> None:
    """Manual 4.2: "Le retour à la ligne est encodé par '\\n'. Il compte double"."""
    assert count_septets(text + "\n" * breaks) == count_septets(text) + 2 * breaks
