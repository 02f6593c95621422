"""CSV reading: records, line numbers, quoting, white space, bad bytes (contract 5.5)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.models import RowError
from mockserver.core.reader import Record, decode, iter_records


def read(data: bytes) -> list[Record]:
    text, bad = decode(data)
    return list(iter_records(text, bad))


def fields(data: bytes) -> list[tuple[int, tuple[str, ...] | None]]:
    return [(line, f) for line, f, _, _ in read(data)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # The manual's own example: "Exemple de contenu correct : "33671717171";"Contenu du
        # SMS" ;"Expéditeur"": the space after the closing quote is ignored.
        (
            '"33671717171";"Contenu du SMS" ;"Expéditeur"'.encode(),
            [(1, ("33671717171", "Contenu du SMS", "Expéditeur"))],
        ),
        (b'"a " ; b ', [(1, ("a ", "b"))]),  # inner spaces kept, outer ones dropped
        (b'\t"a"\t;\t"b"\t', [(1, ("a", "b"))]),
        (b" 06 12 ; hello world ; Snd ", [(1, ("06 12", "hello world", "Snd"))]),
        (b"a;b;c;d;e", [(1, ("a", "b", "c"))]),  # extra columns ignored
        (b'a;b;c;"d""";e', [(1, ("a", "b", "c"))]),
        (b"a;b", [(1, ("a", "b"))]),
        (b"0612345678", [(1, ("0612345678",))]),
        (b";", [(1, ("", ""))]),
        (b'"";""', [(1, ("", ""))]),
        (b'"a;b";c', [(1, ("a;b", "c"))]),  # separator inside quotes
        (b'"a""b";c', [(1, ('a"b', "c"))]),  # "" is a quote
        (b'"""";c', [(1, ('"', "c"))]),
        (b'ab"c;d', [(1, ('ab"c', "d"))]),  # a quote inside an unquoted field is literal
        (b"a;b\nc;d", [(1, ("a", "b")), (2, ("c", "d"))]),
        (b"a;b\r\nc;d\r\n", [(1, ("a", "b")), (2, ("c", "d"))]),  # CRLF
        (b"a;b\rc;d\r", [(1, ("a", "b")), (2, ("c", "d"))]),  # a lone CR ends a line
        (b"a;b\r\r\nc;d", [(1, ("a", "b")), (3, ("c", "d"))]),  # CR then CRLF: two ends
    ],
)
def test_fields(data: bytes, expected: list[tuple[int, tuple[str, ...]]]) -> None:
    """Manual 4.2: "format CSV avec séparateur point-virgule et délimité par des guillemets
    (format de fichier CSV standard, encodé en UTF-8)"; contract 5.5: white space around a
    field, outside its quotes, is ignored; extra columns ignored; CRLF or LF."""
    assert fields(data) == expected


def test_blank_lines_are_skipped_but_counted() -> None:
    """Contract 5.5: "blank lines skipped"; reported line numbers stay the physical ones."""
    data = b"\n  \n\t\na;b\n\n \r\nc;d\n\n"
    assert fields(data) == [(4, ("a", "b")), (7, ("c", "d"))]


def test_a_quoted_field_spans_lines_and_counts_them() -> None:
    """Contract 5.7: "A line break is a real one inside a quoted field"; the record keeps the
    line it starts on and the next record the line it starts on."""
    data = b'a;"one\r\ntwo\nthree";S\r\nb;c\n'
    assert fields(data) == [(1, ("a", "one\ntwo\nthree", "S")), (4, ("b", "c"))]


def test_bom_and_crlf() -> None:
    """Contract 5.5: "UTF-8 (a BOM is ignored)": it must not stick to the first field."""
    data = b'\xef\xbb\xbf"0612345678";"Bonjour"\r\n"0712345678";"Salut"\r\n'
    assert fields(data) == [(1, ("0612345678", "Bonjour")), (2, ("0712345678", "Salut"))]


def test_only_a_leading_bom_is_ignored() -> None:
    """Contract 5.5: a BOM is ignored at the start of the file; elsewhere it is a character."""
    assert fields(b"a;b\n\xef\xbb\xbfc;d") == [(1, ("a", "b")), (2, ("\ufeffc", "d"))]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # The quote never closes: only its row is lost, reading resumes at the next line.
        (
            b'a;"open\nb;c\nd;e\n',
            [(1, None, RowError.UNTERMINATED_QUOTE), (2, ("b", "c"), None), (3, ("d", "e"), None)],
        ),
        (b'a;"abc""', [(1, None, RowError.UNTERMINATED_QUOTE)]),
        (b'"', [(1, None, RowError.UNTERMINATED_QUOTE)]),
        # Text after a closing quote: a stray quote; the row is malformed.
        (
            b'"06"12;x\nb;c',
            [(1, None, RowError.MALFORMED_ROW), (2, ("b", "c"), None)],
        ),
        (
            b'a;"Il dit "oui"";x\nb;c',
            [(1, None, RowError.MALFORMED_ROW), (2, ("b", "c"), None)],
        ),
        # A quote left open swallows nothing: the next line's quote would close it, but the
        # text that follows is then malformed and reading resumes at line 2.
        (
            b'"0612345678";"abc\n"0712345678";"def"\n',
            [(1, None, RowError.MALFORMED_ROW), (2, ("0712345678", "def"), None)],
        ),
    ],
)
def test_broken_quoting_loses_only_its_row(
    data: bytes, expected: list[tuple[int, tuple[str, ...] | None, RowError | None]]
) -> None:
    """Contract 5.5: a row is rejected and reported, "never fatal to the file"; unlike
    Python's csv, an unterminated quote does not swallow the following rows."""
    assert [(line, f, error) for line, f, error, _ in read(data)] == expected


def test_python_csv_would_swallow_the_rows() -> None:
    """docs/design.md, pitfall 5, the reason for a hand-written reader: csv swallows the rows
    after an unterminated quote into one field."""
    rows = list(csv.reader(io.StringIO('a;"open\nb;c\nd;e\n'), delimiter=";"))
    assert len(rows) == 1
    assert len(read(b'a;"open\nb;c\nd;e\n')) == 3


def test_a_200000_character_line_is_one_record() -> None:
    """docs/design.md, pitfall 5: csv raises on fields over 131072 characters; here a huge field
    is just a field (the length rule judges it)."""
    data = b'0612345678;"' + b"x" * 200_000 + b'"\n0712345678;ok\n'
    records = read(data)
    assert [(line, f and len(f[1])) for line, f, _, _ in records] == [(1, 200_000), (2, 2)]


def test_a_long_run_of_spaces_is_fast() -> None:
    """The reader's regexes are possessive: 200,000 spaces before a broken field must not
    backtrack quadratically (this would take minutes if they did)."""
    data = b" " * 200_000 + b'"x\n' + b"a;" + b" " * 200_000 + b"b\n"
    records = read(data)
    assert [(line, error) for line, _, error, _ in records] == [
        (1, RowError.UNTERMINATED_QUOTE),
        (2, None),
    ]


def test_bad_bytes_reject_only_their_rows() -> None:
    """Contract 5.5: a row is rejected for "bytes that are not UTF-8"; the other rows stay."""
    data = b"0612345678;Bonjour\n0712345678;Caf" + b"\xe9\n0612345679;ok\n"
    records = read(data)
    assert [(line, error) for line, _, error, _ in records] == [
        (1, None),
        (2, RowError.NOT_UTF8),
        (3, None),
    ]
    assert "0xE9" in records[1][3]


def test_nul_bytes_are_kept_as_characters() -> None:
    """A NUL is UTF-8; it is kept, and the number or message rules judge it."""
    assert fields(b"06\x00;a\x00b") == [(1, ("06\x00", "a\x00b"))]


@given(st.binary(max_size=300))
def test_the_reader_never_raises(data: bytes) -> None:
    """Any bytes give records, each with a line number inside the file."""
    lines = data.count(b"\n") + data.count(b"\r") + 1
    for line, f, error, detail in read(data):
        assert 1 <= line <= lines
        assert f is not None or (error is not None and detail)
