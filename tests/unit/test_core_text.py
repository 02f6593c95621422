"""`core.text`: every way user text is made safe for one line, with its properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mockserver.core import text as t

# Characters the escapes are about, mixed into arbitrary text (Hypothesis leaves surrogates out).
SPECIAL = [
    chr(c)
    for c in [
        *range(0x00, 0x20),
        *range(0x7F, 0xA1),
        0x5C,
        0xAD,
        0x200B,
        0x2028,
        0x2029,
        0xFEFF,
        0xE0001,
        0xD800,
        0xDBFF,
        0xDC00,
        0xDC7F,
        0xDC80,
        0xDCE9,
        0xDCFF,
        0xDD00,
        0xDFFF,
    ]
]
TEXT = st.text(st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=100)


def test_printable_name_examples() -> None:
    assert t.printable_name("Promo_20300716120000_HQ.csv") == "Promo_20300716120000_HQ.csv"
    assert t.printable_name("café 😀.csv") == "café 😀.csv"
    raw = b"bad\xff.csv".decode("utf-8", "surrogateescape")
    assert t.printable_name(raw) == b"bad\xff.csv".decode("utf-8", "backslashreplace")
    assert t.printable_name("a\u2028b\nc\x85\ud800") == "a\\u2028b\\x0ac\\x85\\ud800"
    assert t.header_text(None) == "None"


@given(TEXT)
def test_printable_name_is_one_storable_line(name: str) -> None:
    shown = t.printable_name(name)
    assert shown.splitlines() in ([], [shown])
    shown.encode("utf-8")  # no surrogate left: SQLite and e-mail take it
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in shown)
    if name.isprintable():
        assert shown == name
    assert t.header_text(name) == shown


@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=50))
def test_printable_name_only_changes_what_it_must(name: str) -> None:
    # Without controls, line breaks and surrogates, a name is kept as it is (the servers
    # accept such names and the store must show them unchanged).
    clean = "".join(c for c in name if not t._name_escapes(c))
    assert t.printable_name(clean) == clean


def test_detail_examples() -> None:
    assert t.quote_detail("06 12") == "'06 12'"
    assert t.quote_detail("a\nb\tc\x00\x7f") == "'a\\nb\\tc\\x00\\x7f'"
    assert t.quote_detail("x" * 41) == "'" + "x" * 40 + "…'"
    smuggled = b"\xe9t\xe9".decode("utf-8", "surrogateescape")
    assert t.quote_detail(smuggled) == "'\\xe9t\\xe9'"
    assert t.escape_detail("\u2028") == "\u2028"  # left to printable_name downstream


@given(TEXT)
def test_detail_has_no_control_and_is_quoted(value: str) -> None:
    shown = t.quote_detail(value)
    assert shown.startswith("'")
    assert shown.endswith("'")
    assert not any(ord(c) < 32 or ord(c) == 127 or 0xDC80 <= ord(c) <= 0xDCFF for c in shown)
    assert len(t.escape_detail(value)) >= len(value)


def test_terminal_examples() -> None:
    assert t.escape_terminal("Bonjour") == "Bonjour"
    assert t.escape_terminal("a\nb\tc\u2028") == "a\\nb\\tc\\u2028"
    assert t.escape_terminal("\udce9") == "\\udce9"


@given(TEXT)
def test_terminal_output_is_printable(value: str) -> None:
    shown = t.escape_terminal(value)
    assert shown.isprintable()
    if value.isprintable():
        assert shown == value


def test_quote_value() -> None:
    assert t.quote_value("abc") == "'abc'"
    assert t.quote_value(12) == "12"
    long = t.quote_value("x" * 100)
    assert len(long) == 60
    assert long.endswith("...")


@given(TEXT)
def test_quote_value_of_a_string_is_short_printable(value: str) -> None:
    shown = t.quote_value(value)
    assert len(shown) <= t.REPR_CHARS
    assert shown.isprintable()


@given(TEXT)
def test_one_line_and_join_lines(value: str) -> None:
    assert len(t.one_line(value).splitlines()) <= 1
    assert t.one_line(t.one_line(value)) == t.one_line(value)
    assert len(t.join_lines(value).splitlines()) <= 1
    assert t.join_lines("a\nb\r\nc") == "a b c"
