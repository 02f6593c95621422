"""Bounded rejected rows (issue 16): a file's first `KEPT_ROWS` rejected rows in full, every
other one only counted by its error, so the memory and the stored detail of a verdict do not
grow with the number of bad rows (an 8 MB file of `"a\\n` has 2.7 million of them).

"First" is by line, in the order the judge reports them (a row's own reports keep their order,
a duplicate is reported on its earlier line): exactly the first `KEPT_ROWS` of the full list
sorted by line, as `Verdict.rejected` was before the bound. Pure and stdlib only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from mockserver.core.models import RejectedRow
from mockserver.core.text import printable_name

KEPT_ROWS = 100  # rejected rows kept in full a file (as many as the recap lists)
VALUE_CHARS = 64  # characters of a rejected row's value kept (then `…`)

# A row the collector keeps past this line is dropped at once: no line is that long.
_NO_CUT = 1 << 62


def line_of(row: RejectedRow) -> int:
    return row.line


def shown_value(value: str) -> str:
    """A rejected row's value as kept: at most `VALUE_CHARS` characters (then `…`), in its
    printable form (core.text.printable_name: the store, the API and the recap need text)."""
    if len(value) > VALUE_CHARS:
        value = value[:VALUE_CHARS] + "…"
    return value if value.isprintable() else printable_name(value)


class RejectedLog:
    """Collects a file's rejected rows as the judge reports them, in memory bounded by
    `keep`: `add` one row at a time, then `result()`.

    Rows go to a list; once it holds `2 * keep` of them it is sorted by line (stable: a
    line's reports keep their order) and cut to its first `keep`, the others counted. The
    line of the first row cut is remembered: a later row on that line or after it can never
    be among the first `keep` (on that line it comes after the row cut, the sort being
    stable), so it is counted at once. The judge reports rows in line order but for
    duplicates, which it reports on their earlier line.
    """

    __slots__ = ("_cut", "_keep", "_more", "_rows", "_spill")

    def __init__(self, keep: int = KEPT_ROWS) -> None:
        self._keep = keep
        self._spill = max(2 * keep, 16)
        self._rows: list[RejectedRow] = []
        self._more: Counter[str] = Counter()
        self._cut = _NO_CUT

    @property
    def cut(self) -> int:
        """Rows reported on this line or after it are only counted (a very large number
        until the first cut)."""
        return self._cut

    def add(self, row: RejectedRow) -> None:
        if row.line >= self._cut:
            self._more[row.error] += 1
            return
        rows = self._rows
        rows.append(row)
        if len(rows) >= self._spill:
            self._compact()

    def count(self, line: int, error: str) -> None:
        """A row past `cut`, counted without being built (its detail costs time)."""
        if line < self._cut:
            raise ValueError(f"line {line} is before the cut {self._cut}: add the row")
        self._more[error] += 1

    def count_many(self, line: int, counts: dict[str, int]) -> None:
        """Rows on `line` or after it, past `cut`, counted by error (core.bulk)."""
        if line < self._cut:
            raise ValueError(f"line {line} is before the cut {self._cut}: add the rows")
        self._more.update(counts)

    def _compact(self) -> None:
        rows = self._rows
        rows.sort(key=line_of)
        keep = self._keep
        if len(rows) <= keep:
            return
        self._cut = min(self._cut, rows[keep].line)
        more = self._more
        for row in rows[keep:]:
            more[row.error] += 1
        del rows[keep:]

    def result(self) -> tuple[tuple[RejectedRow, ...], tuple[tuple[str, int], ...]]:
        """(the first rows by line, at most `keep`, values shortened by `shown_value`;
        the counts of the other rows by error, sorted by error)."""
        self._compact()
        kept = tuple(
            r
            if len(r.value) <= VALUE_CHARS and r.value.isprintable()
            else r._replace(value=shown_value(r.value))
            for r in self._rows
        )
        return kept, counts_tuple(self._more)


def counts_tuple(counts: Counter[str] | dict[str, int]) -> tuple[tuple[str, int], ...]:
    """Counts by error as the verdict keeps them: sorted by error, no zero."""
    return tuple(sorted((error, n) for error, n in counts.items() if n > 0))


def bounded(
    rows: Iterable[RejectedRow], keep: int = KEPT_ROWS
) -> tuple[tuple[RejectedRow, ...], tuple[tuple[str, int], ...]]:
    """`RejectedLog.result` of `rows` reported in this order."""
    log = RejectedLog(keep)
    for row in rows:
        log.add(row)
    return log.result()
