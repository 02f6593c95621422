"""Hints, never rule changes (contract 5.12): the likely cause of a common mistake, computed
from what the judge already knows (its rows, rejected rows and accepted numbers).

Pure and bounded: at most one hint of each kind a file, each with a count and at most
`MAX_LINES` example lines, whatever the size of the file. A hint is added beside a verdict,
never taken into account by it (`with_hints` only fills `Verdict.hints`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from mockserver.core.models import Hint, HintCode, RejectedRow, RowError, Sms, Verdict
from mockserver.core.phone import looks_like_header
from mockserver.core.reader import decode

MAX_LINES = 5  # example lines a hint names
# Contract 5.12: "a file whose bytes equal a file this login had processed in the last 10
# minutes".
DUPLICATE_WINDOW = timedelta(minutes=10)

# Rows a wrong separator gets rejected for: one column, or quoting the reader cannot cut.
_SEPARATOR_ERRORS = frozenset(
    {RowError.TOO_FEW_COLUMNS, RowError.MALFORMED_ROW, RowError.UNTERMINATED_QUOTE}
)
_SEPARATORS = ((",", HintCode.SEPARATOR_COMMA, "comma"), ("\t", HintCode.SEPARATOR_TAB, "tab"))
# A French mobile read as international once a spreadsheet dropped its 0: 6/7 + 8 digits.
_DROPPED_LENGTH = 9


def _lines_text(lines: Sequence[int], count: int) -> str:
    shown = ", ".join(str(n) for n in lines)
    more = count - len(lines)
    word = "line" if count == 1 else "lines"
    return f"{word} {shown}" + (f" and {more} more" if more > 0 else "")


def _rows(count: int, verb: str) -> str:
    """`1 row gives` / `3 rows give`."""
    return f"1 row {verb}s" if count == 1 else f"{count} rows {verb}"


def separator_hints(data: bytes, verdict: Verdict) -> list[Hint]:
    """Contract 5.12, "a `,` or tab separator": most rows are rejected for a column or
    quoting reason and their line holds no `;` but splits in 2 or more columns on `,` (or a
    tab). Returns that hint, with a header-row hint when the first such line splits into
    column titles (a header row the reader could not see as one)."""
    # Issue 16: the kept rejected rows (the first ones) are the sample whose lines are
    # looked at; "most rows" is judged on every rejected row, counted ones included.
    suspects = [r.line for r in verdict.rejected if r.error in _SEPARATOR_ERRORS]
    counts = verdict.rejected_counts if verdict.rejected_more else {}
    total = sum(n for e, n in counts.items() if e in _SEPARATOR_ERRORS) or len(suspects)
    if not suspects or 2 * total <= verdict.rows:
        return []  # a valid file stops here: nothing to decode again
    text, _ = decode(data)
    physical = text.split("\n", suspects[-1])
    found: list[Hint] = []
    for sep, code, word in _SEPARATORS:
        lines: list[int] = []
        titles = False
        for number in suspects:
            row = physical[number - 1] if number <= len(physical) else ""
            if ";" in row or sep not in row:
                continue
            fields = next(csv.reader([row], delimiter=sep), [])
            if len(fields) < 2:
                continue
            lines.append(number)
            if number == 1 and looks_like_header(fields[0]):
                titles = True
        if 2 * len(lines) <= len(suspects):
            continue  # not most of them: another cause
        count = len(lines)
        # Issue 16: only the kept rows were looked at; say so when more were rejected alike.
        sample = (
            f" (of the first {len(suspects):,} rows rejected for their columns or quoting, "
            f"{total:,} in all)"
            if total > len(suspects)
            else ""
        )
        found.append(
            Hint(
                code.value,
                f"{_rows(count, 'hold')} no ; but {'splits' if count == 1 else 'split'} into "
                f"columns on a {word} "
                f"({_lines_text(lines[:MAX_LINES], count)}){sample}: the file looks "
                f"{word}-separated, "
                "and the platform separates columns with ; only (save it as CSV with ; as "
                "the separator)",
                count,
                tuple(lines[:MAX_LINES]),
            )
        )
        if titles:
            found.append(_header_hint(1))
        break
    return found


def _header_hint(line: int) -> Hint:
    return Hint(
        HintCode.HEADER_ROW.value,
        f"line {line} looks like a spreadsheet's header row (column titles, not a recipient): "
        "it yields no SMS; remove the column titles from the file",
        1,
        (line,),
    )


def header_hints(rejected: Iterable[RejectedRow]) -> list[Hint]:
    """Contract 5.12, "a header row": the rejected row `header_row` (contract 5.4.2)."""
    for row in rejected:
        if row.error == RowError.HEADER_ROW.value:
            return [_header_hint(row.line)]
    return []


def leading_zero_hints(sms: Sequence[Sms]) -> list[Hint]:
    """Contract 5.12, "a French mobile whose leading 0 a spreadsheet dropped (`612345678`,
    which the rules read as an international number)": accepted numbers of exactly 9 digits
    starting with 6 or 7. They are still sent where the rules say (+61…, +7…)."""
    lines = [s.line for s in sms if len(s.phone) == _DROPPED_LENGTH and s.phone[0] in "67"]
    if not lines:
        return []
    first = lines[0]  # in the order of the SMS; the example is the first one's number
    example = next(s.phone for s in sms if s.line == first)
    lines.sort()
    count = len(lines)
    return [
        Hint(
            HintCode.LEADING_ZERO_DROPPED.value,
            f"{_rows(count, 'give')} a 9-digit number starting with 6 or 7 "
            f"({_lines_text(lines[:MAX_LINES], count)}), sent abroad as an international "
            f"number (+{example}): if these are French mobiles whose leading 0 a spreadsheet "
            f"dropped, write them 0{example} (format the column as text)",
            count,
            tuple(lines[:MAX_LINES]),
        )
    ]


def content_hints(data: bytes, verdict: Verdict) -> tuple[Hint, ...]:
    """Every hint the file's content gives (contract 5.12), at most one of each kind."""
    found = separator_hints(data, verdict)
    if not any(h.code == HintCode.HEADER_ROW.value for h in found):
        found += header_hints(verdict.rejected)
    found += leading_zero_hints(verdict.sms)
    return tuple(found)


def with_hints(verdict: Verdict, data: bytes) -> Verdict:
    """`verdict` with its content hints: nothing else of it changes."""
    hints = content_hints(data, verdict)
    return replace(verdict, hints=hints) if hints else verdict


def is_recent(earlier: datetime, now: datetime) -> bool:
    """Contract 5.12: `earlier` (an earlier file's processing time) is within the last 10
    minutes of `now`, by the platform's clock."""
    return timedelta(0) <= now - earlier <= DUPLICATE_WINDOW


def duplicate_hint(file_id: int, final_name: str) -> Hint:
    """Contract 5.12: the file's bytes equal those of file `file_id`, which this login had
    processed in the last 10 minutes."""
    return Hint(
        HintCode.DUPLICATE_OF.value,
        f"the same bytes as file {file_id} ({final_name}), which this login had processed "
        "less than 10 minutes earlier: this one was processed again (and, when accepted, "
        "charged again); a client that uploads again after the platform moved its file (as "
        "rclone does without .tmp) pays twice",
        0,
        (),
        file_id,
        final_name,
    )
