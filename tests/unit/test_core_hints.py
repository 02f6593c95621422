"""Hints, never rule changes (contract 5.12): "`check`, the API and the recap name the likely
cause of common mistakes: a `,` or tab separator, a header row, a French mobile whose leading 0
a spreadsheet dropped (`612345678`, which the rules read as an international number), a file
whose bytes equal a file this login had processed in the last 10 minutes (`duplicate_of`)"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.bounded import KEPT_ROWS
from mockserver.core.hints import (
    DUPLICATE_WINDOW,
    MAX_LINES,
    content_hints,
    duplicate_hint,
    is_recent,
)
from mockserver.core.judge import judge, judge_rules
from mockserver.core.models import Account, HintCode, RowError, Status, Verdict

NOW = datetime(2030, 1, 1, tzinfo=UTC)
NAME = "Promo_20300716120000_HQ.csv"
ACCOUNT = Account(credits=10**9)


def run(data: bytes, name: str = NAME) -> Verdict:
    return judge(name, data, ACCOUNT, NOW)


def codes(v: Verdict) -> list[str]:
    return [h.code for h in v.hints]


def test_a_comma_separated_file_gets_the_separator_hint_not_a_quote_hunt() -> None:
    """Contract 5.12, "a `,` separator": quoted or not, every row is rejected as the rules say
    (same reason codes), the file is Empty_File, and one hint names the comma. The rows'
    detail no longer speaks of doubling quotes."""
    quoted = run(b'"0612345678","Bonjour"\r\n"0712345678","Salut, toi"\r\n')
    assert quoted.reason is not None
    assert quoted.reason.value == "Empty_File"
    assert [r.error for r in quoted.rejected] == [RowError.MALFORMED_ROW] * 2
    assert all("doubled" not in r.detail and "," in r.detail for r in quoted.rejected)
    assert codes(quoted) == [HintCode.SEPARATOR_COMMA]
    (hint,) = quoted.hints
    assert (hint.count, hint.lines) == (2, (1, 2))
    assert "comma" in hint.message
    assert ";" in hint.message

    bare = run(b"0612345678,Bonjour\n0712345678,Salut\n")
    assert [r.error for r in bare.rejected] == [RowError.TOO_FEW_COLUMNS] * 2
    assert codes(bare) == [HintCode.SEPARATOR_COMMA]


def test_a_tab_separated_file_gets_the_tab_hint() -> None:
    """Contract 5.12, "a ... tab separator"."""
    v = run(b'"0612345678"\t"Bonjour"\n0712345678\tSalut\n')
    assert codes(v) == [HintCode.SEPARATOR_TAB]
    assert all("doubled" not in r.detail for r in v.rejected)


def test_a_comma_file_with_column_titles_gets_the_header_hint_too() -> None:
    """Contract 5.12, "a header row": `Téléphone,Message` is one column for the rules (no `;`);
    split on the comma it is a header row, and the hints say both."""
    v = run("Téléphone,Message\n0612345678,Bonjour\n".encode())
    assert codes(v) == [HintCode.SEPARATOR_COMMA, HintCode.HEADER_ROW]
    assert v.hints[1].lines == (1,)


def test_no_separator_hint_when_most_rows_are_fine() -> None:
    """Only "most rows rejected for a quote/column reason" point at the separator: a `;` file
    whose messages hold commas, or with one stray comma row, gets no such hint."""
    rows = b"".join(b'"06123456%02d";"Bonjour, a demain"\n' % i for i in range(10))
    assert run(rows + b"0612345699,oops\n").hints == ()
    # A row whose quoting is broken for another reason keeps the quote sentence.
    stray = run(b'"0612345678"x;"Bonjour"\n')
    assert "doubled" in stray.rejected[0].detail


def test_a_header_row_is_surfaced_as_a_hint() -> None:
    """Contract 5.4.2 rejects the header row; contract 5.12 names it as a hint as well."""
    v = run("Téléphone;Message;Expéditeur\n0612345678;Bonjour\n".encode())
    assert [r.error for r in v.rejected] == [RowError.HEADER_ROW]
    assert codes(v) == [HintCode.HEADER_ROW]
    assert v.status is Status.ARCHIVED
    assert len(v.sms) == 1


def test_a_dropped_leading_zero_is_named_and_still_sent_abroad() -> None:
    """Contract 5.12: `612345678` is read "as an international number" (contract 5.6): it is
    sent to +61 as the rules say, and the hint names its line. Other lengths are not."""
    v = run(b"612345678;Bonjour\n0612345679;Salut\n712345678;Hi\n61234567;x\n6123456789;y\n")
    assert [s.phone for s in v.sms] == [
        "612345678",
        "33612345679",
        "712345678",
        "61234567",
        "6123456789",
    ]
    assert codes(v) == [HintCode.LEADING_ZERO_DROPPED]
    (hint,) = v.hints
    assert (hint.count, hint.lines) == (2, (1, 3))
    assert "0612345678" in hint.message


def test_hints_are_bounded_whatever_the_size_of_the_file() -> None:
    """One hint a kind, a count and at most MAX_LINES example lines: never one a row."""
    dropped = b"".join(b"6%08d;Bonjour\n" % i for i in range(2000))
    (hint,) = run(dropped, "Promo_20300716120000_HQ_MULT.csv").hints
    assert hint.count == 2000
    assert hint.lines == tuple(range(1, MAX_LINES + 1))
    assert "1995 more" in hint.message
    commas = b"".join(b"06%08d,Bonjour\n" % i for i in range(2000))
    (sep,) = run(commas).hints
    # Issue 16: the separator hint looks at the kept rejected rows (the first KEPT_ROWS) and
    # says how many were rejected alike in all.
    assert (sep.count, len(sep.lines)) == (KEPT_ROWS, MAX_LINES)
    assert "2,000 in all" in sep.message


def test_a_valid_file_has_no_hint() -> None:
    assert run(b'"0612345678";"Bonjour"\n"+44 7911 123456";"Hello"\n').hints == ()


def test_duplicate_window_is_ten_minutes_by_the_given_clock() -> None:
    """Contract 5.12: "a file this login had processed in the last 10 minutes"."""
    assert timedelta(minutes=10) == DUPLICATE_WINDOW
    assert is_recent(NOW, NOW)
    assert is_recent(NOW, NOW + timedelta(minutes=10))
    assert not is_recent(NOW, NOW + timedelta(minutes=10, seconds=1))
    assert not is_recent(NOW + timedelta(seconds=1), NOW)  # a clock set back: not "earlier"
    hint = duplicate_hint(3, "TreatedByMSI_A_20300101120000_HQ.csv")
    assert hint.to_dict()["file_id"] == 3
    assert "rclone" in hint.message


ROW = st.one_of(
    st.sampled_from(
        [
            "0612345678;Bonjour",
            "612345678;Salut",
            "712345678;Hi",
            '"0712345678","Salut, toi"',
            "0612345678,Bonjour",
            "0612345678\tBonjour",
            "Téléphone;Message;Expéditeur",
            "Téléphone,Message",
            "+33612345678;Re;Shop",
            "0612345678;Promo STOP au 36180;Shop",
            '"0612345678";"a ""b"""',
            "",
        ]
    ),
    st.text(alphabet='0123456789+,;\t" abé', max_size=24),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ROW, max_size=12), mult=st.booleans(), credits=st.sampled_from([0, 10**9]))
def test_hints_never_change_the_verdict(rows: list[str], mult: bool, credits: int) -> None:
    """Contract 5.12, "Hints, never rule changes": whatever the rows, the verdict with hints is
    the rules' verdict (status, reason, SMS, rejected rows, cost) with only its hints added,
    at most one of each kind and each naming at most MAX_LINES lines."""
    data = "\n".join(rows).encode()
    name = "Promo_20300716120000_HQ" + ("_MULT" if mult else "") + ".csv"
    account = Account(credits=credits)
    ruled = judge_rules(name, data, account, NOW)
    hinted = judge(name, data, account, NOW)
    assert ruled.hints == ()
    assert replace(hinted, hints=()) == ruled
    assert hinted.hints == content_hints(data, ruled)
    kinds = [h.code for h in hinted.hints]
    assert len(kinds) == len(set(kinds))
    assert all(len(h.lines) <= MAX_LINES and h.count >= len(h.lines) for h in hinted.hints)
