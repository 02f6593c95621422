"""Issue 16: rows rejected in bulk. Once a verdict keeps its first rejected rows
(core.bounded), a later row that yields no SMS is only counted by its error; an 8 MB file of
`;\\n` has 4 million of them, and one Python iteration a row costs more than judging a valid
8 MB file. Here a run of lines of a few simple shapes is recognised by one regex match and
counted by error with `str.count` (and `findall` when a count cannot be told from the
characters alone), all in C.

Each shape is a whole physical line ending in `\\n` whose verdict `judge` would give row by
row without looking at any other line (but QUOTE, which looks at the next line's first
characters), and the shapes exclude one another:

- BLANK: only white space (`str.isspace`, which is what `\\s` matches): no row (contract 5.5);
- FEW: no `;`, no quote, no byte that is not UTF-8, not blank: `too_few_columns`;
- EMPTY: `[ \\t]*;` then a message without `;` or quote: `empty_number`;
- LAND: column 1 one token (no inner white space) starting with 0, 33 or +33 that is not a
  French mobile, then `;` and a message as above: `landline_or_malformed_french_number`;
- BAD: column 1 one token starting otherwise that is not an international number, then `;`
  and a message as above: `bad_number`;
- QUOTE: `[ \\t]*"` then no quote, `;` or bad byte to the line end, the next line starting
  with `"` and a character that is not a quote, `;`, space, tab or line end: the quoted field
  closes on that next line's quote and text follows it: `malformed_row`;
- NOT_UTF8: no quote, at most one `;`, at least one byte that is not UTF-8: `not_utf8`.

Two columns at most and no quote (but QUOTE's opening one): no sender is ever given, so no
`invalid_sender` is reported beside these errors. The header-row rule concerns the first row
only: the judge counts in bulk only past `RejectedLog.cut`, which takes 2 x KEPT_ROWS rejected
rows (at least a third as many rows: a row reports at most two, its sender and its error, and a
duplicate one more for an earlier row). Everything else (a valid row, a quoted field, a
third column...) ends a run and goes through the judge row by row.
"""

from __future__ import annotations

import re

from mockserver.core.bounded import RejectedLog
from mockserver.core.models import RowError
from mockserver.core.phone import FRENCH_MOBILE_RE, INTERNATIONAL_RE

# A byte that is not UTF-8, as reader.decode keeps it (surrogateescape).
_BAD = "\udc80-\udcff"


def _uncaptured(pattern: str) -> str:
    """`pattern` with its groups made non-capturing (findall must not return them)."""
    return re.sub(r"\((?!\?)", "(?:", pattern)


_FRENCH = _uncaptured(FRENCH_MOBILE_RE.pattern)
_INTERNATIONAL = _uncaptured(INTERNATIONAL_RE.pattern)
# A message (column 2) that ends the line: no `;` (no third column), no quote.
_MESSAGE = f'[^;"\\n{_BAD}]*+\\n'
# Column 1 as one token: no white space inside, then spaces or tabs and the `;`.
_TOKEN = f'[^;"\\s{_BAD}]'

BLANK = r"[^\S\n]*+\n"
FEW = f'[^\\S\\n]*+[^\\s;"{_BAD}][^;"\\n{_BAD}]*+\\n'
EMPTY = r"[ \t]*+;" + _MESSAGE
LAND = rf"[ \t]*+(?!{_FRENCH}[ \t]*+;)(?:0|\+?33){_TOKEN}*+[ \t]*+;" + _MESSAGE
BAD = rf"[ \t]*+(?!0|\+?33)(?!{_INTERNATIONAL}[ \t]*+;){_TOKEN}++[ \t]*+;" + _MESSAGE
QUOTE = f'[ \\t]*+"[^";\\n{_BAD}]*+\\n(?="[^"; \\t\\n])'
NOT_UTF8 = f'(?=[^\\n{_BAD}]*+[{_BAD}])[^;"\\n]*+(?:;[^;"\\n]*+)?+\\n'

SHAPES = {
    "blank": BLANK,
    RowError.TOO_FEW_COLUMNS.value: FEW,
    RowError.EMPTY_NUMBER.value: EMPTY,
    RowError.LANDLINE.value: LAND,
    RowError.BAD_NUMBER.value: BAD,
    RowError.MALFORMED_ROW.value: QUOTE,
    RowError.NOT_UTF8.value: NOT_UTF8,
}

# One run of such lines, as long as it goes (possessive: the shapes exclude one another).
RUN_RE = re.compile("(?:" + "|".join(SHAPES.values()) + ")++")
# Each shape's lines in a run, counted by the line end before them.
_AT = {name: re.compile(f"\\n(?={shape})") for name, shape in SHAPES.items()}
_BLANK_RUN_RE = re.compile(f"(?:{BLANK})++")
_SPACE_RE = re.compile(r"[^\S\n]")
_BAD_RE = re.compile(f"[{_BAD}]")


# A shorter run is left to the judge row by row (counting has a fixed cost); after a line
# that starts no run, the judge looks for one again this many lines later.
MIN_LINES = 8
RETRY_LINES = 16


def run_end(text: str, pos: int) -> int:
    """The end of the run of bulk-counted lines starting at `pos` (a line start), or `pos`."""
    m = RUN_RE.match(text, pos)
    return pos if m is None else m.end()


def counted_run(text: str, pos: int, line: int, log: RejectedLog) -> tuple[int, int, int] | None:
    """Count into `log` the rows of the run starting at `pos`, physical line `line` (a line
    start): (its end, its physical lines, its rows); None, counting nothing, when it has
    fewer than `MIN_LINES` lines. Before `log.cut` only a run of blank lines is taken (they
    are no rows: `  \n` * 4 million holds none, and never reaches the cut)."""
    if line < log.cut:
        m = _BLANK_RUN_RE.match(text, pos)
        end = pos if m is None else m.end()
        lines = text.count("\n", pos, end)
        return (end, lines, 0) if lines >= MIN_LINES else None
    end = run_end(text, pos)
    if text.count("\n", pos, end) < MIN_LINES:
        return None
    lines, rows, counts = count_run(text, pos, end)
    log.count_many(line, counts)
    return end, lines, rows


def _found(name: str, text: str, before: int, end: int) -> int:
    return len(_AT[name].findall(text, before, end))


def count_run(text: str, start: int, end: int) -> tuple[int, int, dict[str, int]]:
    """(physical lines, rows, rows by error) of the run text[start:end] found by `run_end`.

    `start` follows a line end (the judge counts in bulk only far into a file). Counts that
    the characters tell are taken with `str.count` (a QUOTE line holds the run's only quote,
    an EMPTY, LAND or BAD line its only `;`); the others with one `findall` a shape, skipped
    when a cheap test shows the shape cannot be there.
    """
    if start < 1 or text[start - 1] != "\n":
        raise ValueError("a run starts after a line end")
    before = start - 1  # every line of the run follows a "\n" from here on
    lines = text.count("\n", start, end)
    quoted = text.count('"', start, end)
    blank = 0
    if text.count("\n\n", before, end) or _SPACE_RE.search(text, start, end) is not None:
        blank = _found("blank", text, before, end)
    spaced = text.count("\n ", before, end) or text.count("\n\t", before, end)
    counts: dict[str, int] = {RowError.MALFORMED_ROW.value: quoted}
    if _BAD_RE.search(text, start, end) is not None:
        # Lines with a bad byte may hold a `;`: every count by its own shape.
        for name in (RowError.NOT_UTF8, RowError.EMPTY_NUMBER, RowError.LANDLINE):
            counts[name.value] = _found(name.value, text, before, end)
        counts[RowError.BAD_NUMBER.value] = _found(RowError.BAD_NUMBER.value, text, before, end)
    else:
        semicolons = text.count(";", start, end)  # one an EMPTY, LAND or BAD line
        if spaced:
            empty = _found(RowError.EMPTY_NUMBER.value, text, before, end)
        else:
            empty = text.count("\n;", before, end)
        land = 0
        if (
            spaced
            or text.count("\n0", before, end)
            or text.count("\n3", before, end)
            or text.count("\n+", before, end)
        ):
            land = _found(RowError.LANDLINE.value, text, before, end)
        counts[RowError.EMPTY_NUMBER.value] = empty
        counts[RowError.LANDLINE.value] = land
        counts[RowError.BAD_NUMBER.value] = semicolons - empty - land
    counts[RowError.TOO_FEW_COLUMNS.value] = lines - blank - sum(counts.values())
    return lines, lines - blank, {error: n for error, n in counts.items() if n}
