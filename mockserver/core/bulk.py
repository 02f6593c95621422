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
- EMPTY: `[ \\t]*;` then a message and maybe a sender (a third column), without `;`, quote
  or bad byte: `empty_number`;
- LAND: column 1 one token (no inner white space) starting with 0, 33 or +33 that is not a
  French mobile, then `;` and the columns as above: `landline_or_malformed_french_number`;
- BAD: column 1 one token starting otherwise that is not an international number, then `;`
  and the columns as above: `bad_number`;
- QUOTE: `[ \\t]*"` then no quote, `;` or bad byte to the line end, the next line starting
  with `"` and a character that is not a quote, `;`, space, tab or line end: the quoted field
  closes on that next line's quote and text follows it: `malformed_row`;
- NOT_UTF8: no quote, at most one `;`, at least one byte that is not UTF-8: `not_utf8`.

Three columns at most, and no quote (but QUOTE's opening one): only an EMPTY, LAND or BAD line
gives a sender, and the judge reports it as `invalid_sender` beside the number's error when
it breaks the rules (contract 5.4.2: reported, never fatal to the file, for the row is rejected
anyway); a NOT_UTF8 line holds at most one `;`, so no sender.

The header-row rule concerns the first row only: the judge counts in bulk only past
`RejectedLog.cut`, which takes 2 x KEPT_ROWS rejected rows (at least a third as many rows: a
row reports at most two, its sender and its error, and a duplicate one more for an earlier
row). Everything else (a valid row, a quoted field, a fourth column...) ends a run and goes
through the judge row by row.
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
# A message (column 2), then maybe a sender (column 3), to the line end: no fourth column,
# no quote, no bad byte.
_FIELD = f'[^;"\\n{_BAD}]*+'
_MESSAGE = f"{_FIELD}(?:;{_FIELD})?+\\n"
# Column 1 as one token: no white space inside, then spaces or tabs and the `;`.
_TOKEN = f'[^;"\\s{_BAD}]'

BLANK = r"[^\S\n]*+\n"
FEW = f'[^\\S\\n]*+[^\\s;"{_BAD}][^;"\\n{_BAD}]*+\\n'
# Column 1 of EMPTY, LAND and BAD after its leading spaces and tabs, to its `;`; the first
# lookahead of LAND and BAD is implied by what follows it and only fails a line sooner.
_EMPTY_HEAD = ";"
_LAND_HEAD = rf"(?=[03+])(?!{_FRENCH}[ \t]*+;)(?:0|\+?33){_TOKEN}*+[ \t]*+;"
_BAD_HEAD = rf"(?={_TOKEN})(?!0|\+?33)(?!{_INTERNATIONAL}[ \t]*+;){_TOKEN}++[ \t]*+;"
EMPTY = r"[ \t]*+" + _EMPTY_HEAD + _MESSAGE
LAND = r"[ \t]*+" + _LAND_HEAD + _MESSAGE
BAD = r"[ \t]*+" + _BAD_HEAD + _MESSAGE
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
# EMPTY, LAND and BAD share their tail, written once: its group is set when some line of the
# run has a third column (a group that matched keeps its last match), so only then are
# senders looked at.
# Alternatives in the order of SHAPES (the common ones first).
RUN_RE = re.compile(
    f"(?:{BLANK}|{FEW}"
    + f"|[ \\t]*+(?:{_EMPTY_HEAD}|{_LAND_HEAD}|{_BAD_HEAD}){_FIELD}(?:(;){_FIELD})?+\\n"
    + f"|{QUOTE}|{NOT_UTF8})++"
)
# A third column of the run (its line's first `;` starts the match), with a group that
# holds a character when the sender breaks the rules (judge: stripped of spaces and tabs, not
# empty nor white space, not sender.SENDER_RE). SENDER_RE is `[A-Za-z][A-Za-z0-9 ]{2,10}`:
# stripped, a valid sender ends in a letter or a digit (test_core_bulk checks it on samples).
_VALID_SENDER = r"[ \t]*+[A-Za-z][A-Za-z0-9 ]{1,9}[A-Za-z0-9][ \t]*+\n"
_SENDER_RE = re.compile(f";[^;\\n]*+;(?:(?=[^\\S\\n]*+\\n|{_VALID_SENDER})|(?=(.)))")
# Each shape's lines in a run, counted by the line end before them.
_AT = {name: re.compile(f"\\n(?={shape})") for name, shape in SHAPES.items()}
_BLANK_RUN_RE = re.compile(f"(?:{BLANK})++")
_SPACE_RE = re.compile(r"[^\S\n]")
_BAD_RE = re.compile(f"[{_BAD}]")
# A NOT_UTF8 line (in a run, the lines with a bad byte), its group the character before its
# `;`: "" when it has none, `\n` when the `;` comes first (one character, not the text up to
# the `;`: 615,000 lines must not each keep a copy).
_NOT_UTF8_RE = re.compile(f"\\n(?=[^\\n{_BAD}]*+[{_BAD}])(?:[^;\\n]*+(?<=(.));)?+", re.DOTALL)


# A shorter run is left to the judge row by row (counting has a fixed cost); after a line
# that starts no run, the judge looks for one again this many lines later.
MIN_LINES = 8
RETRY_LINES = 16


def run_end(text: str, pos: int) -> tuple[int, bool]:
    """The end of the run of bulk-counted lines starting at `pos` (a line start), or `pos`,
    and whether some line of it has a third column (a sender)."""
    m = RUN_RE.match(text, pos)
    return (pos, False) if m is None else (m.end(), m.group(1) is not None)


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
    end, senders = run_end(text, pos)
    if text.count("\n", pos, end) < MIN_LINES:
        return None
    lines, rows, counts = count_run(text, pos, end, senders)
    log.count_many(line, counts)
    return end, lines, rows


def _found(name: str, text: str, before: int, end: int) -> int:
    return len(_AT[name].findall(text, before, end))


def count_run(
    text: str, start: int, end: int, senders: bool = True
) -> tuple[int, int, dict[str, int]]:
    """(physical lines, rows, rows by error) of the run text[start:end] found by `run_end`;
    `senders` False when `run_end` saw no third column.

    `start` follows a line end (the judge counts in bulk only far into a file). Counts that
    the characters tell are taken with `str.count` (a QUOTE line holds the run's only quote,
    an EMPTY, LAND or BAD line one `;` a column past the first, a NOT_UTF8 line at most one);
    the others with one `findall` a shape, skipped when a cheap test shows the shape cannot
    be there.
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
    # Semicolons of EMPTY, LAND and BAD lines: one each, and one more a third column.
    semicolons = text.count(";", start, end)
    third: list[str] = _SENDER_RE.findall(text, start, end) if senders else []
    semicolons -= len(third)
    counts: dict[str, int] = {RowError.MALFORMED_ROW.value: quoted}
    # NOT_UTF8 lines (the only ones with a bad byte), by their `;`: none, first, later.
    bad = _NOT_UTF8_RE.findall(text, before, end) if _BAD_RE.search(text, start, end) else []
    bad_first = bad.count("\n")
    semicolons -= len(bad) - bad.count("")
    if spaced:
        empty = _found(RowError.EMPTY_NUMBER.value, text, before, end)
    else:
        empty = text.count("\n;", before, end) - bad_first
    land = 0
    if (
        spaced
        or text.count("\n0", before, end)
        or text.count("\n3", before, end)
        or text.count("\n+", before, end)
    ):
        land = _found(RowError.LANDLINE.value, text, before, end)
    counts[RowError.NOT_UTF8.value] = len(bad)
    counts[RowError.EMPTY_NUMBER.value] = empty
    counts[RowError.LANDLINE.value] = land
    counts[RowError.BAD_NUMBER.value] = semicolons - empty - land
    counts[RowError.TOO_FEW_COLUMNS.value] = lines - blank - sum(counts.values())
    # Contract 5.4.2: these rows are rejected for their number; a bad sender is reported
    # beside it, never fatal to the file.
    counts[RowError.INVALID_SENDER.value] = len(third) - third.count("")
    return lines, lines - blank, {error: n for error, n in counts.items() if n}
