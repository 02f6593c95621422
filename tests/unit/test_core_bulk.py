"""Issue 16: rows counted in bulk (core.bulk) give the verdict the judge gives row by row:
same status, reason, SMS, kept rejected rows, counts and hints, on files that mix valid rows
and every bad-row shape and are long enough to pass the kept rows. Timings are
bench/adversarial.py's, not a unit test's."""

from __future__ import annotations

import re
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core import bulk
from mockserver.core import judge as judge_module
from mockserver.core.bounded import KEPT_ROWS, RejectedLog
from mockserver.core.judge import judge
from mockserver.core.models import Account, RowError, Verdict
from tests.unit.test_core_reference import reference

NAME = "Camp_20300101120000_HQ.csv"
NOW = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
RICH = Account(login="rich", credits=10**9)


def row_by_row(name: str, data: bytes, account: Account = RICH) -> Verdict:
    """The judge with core.bulk switched off: every row through the per-row loop."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(judge_module, "counted_run", lambda text, pos, line, log: None)
        return judge(name, data, account, NOW)


def _bulk_used(data: bytes) -> bool:
    calls: list[int] = []

    def spy(text: str, pos: int, line: int, log: RejectedLog) -> tuple[int, int, int] | None:
        run = bulk.counted_run(text, pos, line, log)
        if run is not None:
            calls.append(run[1])
        return run

    with pytest.MonkeyPatch.context() as m:
        m.setattr(judge_module, "counted_run", spy)
        judge(NAME, data, RICH, NOW)
    return bool(calls)


# Every shape core.bulk counts, near misses it must leave to the judge, and valid rows.
LINES = [
    # valid rows (SMS, duplicates, hints)
    b"0612345678;Bonjour",
    b'"0612345679";"Salut"',
    b"+447911123456;hi;Shop",
    b"612345678;leading zero dropped",
    b"1234;m",
    b"33612345678 ;m",
    b" 0712345678\t;m",
    # empty number
    b";",
    b" ;m",
    b"\t; m ",
    b";\xe9",
    b'"";m',
    b";m;Ab",
    b";m;Shop",
    # bad number, landline
    b"x;m",
    b" x ;m",
    b"x\t;m",
    b"x y;m",
    b"0x;m",
    b"33;m",
    b"+33x;m",
    b"+3;m",
    b"3;m",
    b"+;m",
    b"06 12;m",
    b"0612345678x;m",
    b"0144556677;fixe",
    b"\x0bx;m",
    b"x\x0b;m",
    b"x;m;Ab",
    b"x;m;Shop",
    b"0x;m;Ab",
    b"0x;m;Shop",
    b" x ;;Ab1",
    b"x;m; Shop \t",
    b"x;m;Sh op",
    b"x;m;Shop ",
    b"x;m;Abcdefghijk",
    b"x;m;Abcdefghijkl",
    b"x;m;1abc",
    b"x;m;Ab!",
    b"x;m;",
    b"x;m; \t",
    b"x;m;\x0b",
    b"x;m;\xc2\xa0",
    b"x;m;\xc3\xa9tude",
    b"x;m;Sh\xe9",
    b"x;\xe9;Shop",
    b"x;m;Ab;c",
    b'x;m;"Ab"',
    b"x;;",
    b"x;m;",
    b'x;"m"',
    b"\xe9;m",
    b"x\xe9;m",
    b"0612345678;\xe9",
    # one column, blank, bad bytes
    b"a",
    b" a b",
    b"0612345678",
    b"a,b,c",
    b"06,12",
    b"a\tb",
    b"\x00",
    b"\xe9",
    b" \xe9 ",
    b"\xc2\xa0\xe9",
    b"",
    b"  ",
    b"\t",
    b"\x0b",
    b"\x1c",
    b"\xc2\xa0",
    b"\xe2\x80\xa8",
    b'a"b',
    # quotes
    b'"a',
    b' "a',
    b'"a;b',
    b'"a"b;c',
    b'"a", b',
    b'"a"\tb',
    b'"',
    b'""',
    b'"a""b',
    b'"\xe9',
    b'" a',
    b'"\ta',
    b'";a',
    b'" ;a',
    b'" ',
    b'"\t\t',
    b'"x;m"',
    # a header row, a message too long, an empty message
    b"T\xe9l\xe9phone;Message",
    b"T\xc3\xa9l\xc3\xa9phone;Message;Exp\xc3\xa9diteur",
    b"0612345678;" + b"a" * 161,
    b"0612345678; ",
]

line_ends = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def long_files(draw: st.DrawFn) -> bytes:
    """Runs of lines of every shape, often after enough bad rows to pass the kept ones."""
    end = draw(line_ends)
    parts: list[bytes] = []
    if draw(st.booleans()):
        parts.append(
            (draw(st.sampled_from([b"x;m", b";", b'"a', b"a", b"x;m;Ab", b"\xe9"])) + end)
            * draw(st.integers(KEPT_ROWS, 2 * KEPT_ROWS + 20))
        )
    for _ in range(draw(st.integers(0, 25))):
        line = draw(st.sampled_from(LINES))
        if draw(st.integers(0, 3)) == 0:
            line = draw(st.sampled_from(LINES))[:3] + line  # a mixed shape
        parts.append(
            (line + draw(line_ends if draw(st.booleans()) else st.just(end)))
            * draw(st.integers(1, 60))
        )
    data = b"".join(parts)
    if data and draw(st.booleans()):
        data = data.rstrip(b"\r\n")  # no line end after the last line
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data  # a BOM
    return data


@settings(max_examples=250, deadline=None)
@given(data=long_files(), mult=st.booleans())
def test_bulk_counting_gives_the_row_by_row_verdict(data: bytes, mult: bool) -> None:
    name = "Camp_20300101120000_HQ" + ("_MULT" if mult else "") + ".csv"
    assert judge(name, data, RICH, NOW) == row_by_row(name, data)


@settings(max_examples=100, deadline=None)
@given(data=long_files(), mult=st.booleans())
def test_bulk_counting_agrees_with_the_reference_model(data: bytes, mult: bool) -> None:
    """The reference model (test_core_reference) lists every rejected row: the verdict keeps
    its first KEPT_ROWS and counts every one."""
    name = "Camp_20300101120000_HQ" + ("_MULT" if mult else "") + ".csv"
    verdict = judge(name, data, RICH, NOW)
    reason, sms, rejected = reference(name, data, RICH)
    assert verdict.reason is reason
    assert [tuple(s) for s in verdict.sms] == sms
    assert [(r.line, r.error) for r in verdict.rejected] == rejected[:KEPT_ROWS]
    assert verdict.rejected_counts == dict(sorted(Counter(e.value for _, e in rejected).items()))


@pytest.mark.parametrize("line", LINES, ids=repr)
@pytest.mark.parametrize("end", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_each_shape_repeated_past_the_kept_rows(line: bytes, end: bytes) -> None:
    """300 rows of one shape (between valid rows): the same verdict both ways."""
    data = b"0612345678;first" + end + (line + end) * 300 + b"0712345678;last" + end
    assert judge(NAME, data, RICH, NOW) == row_by_row(NAME, data)


@pytest.mark.parametrize(
    ("unit", "error"),
    [
        (b";\n", RowError.EMPTY_NUMBER),
        (b"x;m\n", RowError.BAD_NUMBER),
        (b"0x;m\n", RowError.LANDLINE),
        (b"a\n", RowError.TOO_FEW_COLUMNS),
        (b'"a\n', RowError.MALFORMED_ROW),
        (b"0612345678;\xe9\n", RowError.NOT_UTF8),
        (b"x;m\n;\n\n a\n0x;m\n", None),
        (b"x;m;Ab\n", RowError.INVALID_SENDER),
        (b"\xe9\n;\n", RowError.NOT_UTF8),
    ],
)
def test_the_adversarial_shapes_are_counted_in_bulk(unit: bytes, error: RowError | None) -> None:
    """The shapes of bench/adversarial.py take the bulk path (a regression there is a
    timing regression) and keep their counts."""
    data = unit * 2000
    assert _bulk_used(data)
    verdict = judge(NAME, data, RICH, NOW)
    assert verdict == row_by_row(NAME, data)
    if error is not None:
        assert error.value in verdict.rejected_counts


@settings(max_examples=200, deadline=None)
@given(
    sender=st.text(alphabet='Ab1 \t\x0b\xa0;"\xe9', max_size=14),
    number=st.sampled_from(["x", "0x", ""]),
)
def test_a_sender_beside_a_bad_number_is_judged_as_row_by_row(sender: str, number: str) -> None:
    """The bulk test of a third column (valid, none, or breaking the sender rules) is the
    judge's (sender.SENDER_RE on the column stripped of spaces and tabs)."""
    row = f"{number};m;{sender}\n".encode()
    data = b"0612345678;first\n" + row * 300 + b"0712345678;last\n"
    assert judge(NAME, data, RICH, NOW) == row_by_row(NAME, data)


def test_a_valid_file_never_looks_for_a_run_past_the_kept_rows() -> None:
    data = b"".join(b"06%08d;Bonjour\n" % i for i in range(3000))
    assert not _bulk_used(data)


def test_blank_is_what_str_isspace_says() -> None:
    """BLANK uses `\\s`, the reader `str.isspace`: the same characters."""
    space = re.compile(r"\s")
    assert all(
        (space.fullmatch(c) is not None) == c.isspace() for c in map(chr, range(sys.maxunicode + 1))
    )


def test_the_shapes_exclude_one_another() -> None:
    """Each line of the list matches at most one shape (the run regex is possessive)."""
    for line in LINES:
        text = line.decode("utf-8", "surrogateescape") + '\n"x'
        matched = [name for name, shape in bulk.SHAPES.items() if re.match(shape, text)]
        assert len(matched) <= 1, (line, matched)


def test_count_many_refuses_a_line_before_the_cut() -> None:
    log = RejectedLog(1)
    with pytest.raises(ValueError, match="before the cut"):
        log.count_many(5, {"bad_number": 3})
    with pytest.raises(ValueError, match="after a line end"):
        bulk.count_run("x;m\n", 0, 4)


@pytest.mark.parametrize("blank", [b"\n", b"  \n", b"\t\r\n", b"\xc2\xa0\n"])
def test_blank_lines_are_skipped_in_bulk_before_any_row(blank: bytes) -> None:
    """Blank lines are no rows: a run of them is skipped even before the kept rows fill."""
    data = blank * 500 + b"0612345678;a\n" + blank * 500 + b"x;m\n"
    assert _bulk_used(data)
    verdict = judge(NAME, data, RICH, NOW)
    assert verdict == row_by_row(NAME, data)
    assert (verdict.rows, verdict.sms[0].line, verdict.rejected[0].line) == (2, 501, 1002)
