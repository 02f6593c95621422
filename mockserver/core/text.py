"""User text made safe to show on one line: file names, rule details, terminal output, error
messages. Pure functions of the standard library; every variant lives here, each says why."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

# The characters `str.splitlines()` breaks on: never in a header, a log line or a recap.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _is_smuggled_byte(code: int) -> bool:
    """A byte that is not UTF-8, as `os.fsdecode` hands it over (surrogateescape)."""
    return 0xDC80 <= code <= 0xDCFF


def _escaped(text: str, escapes: Callable[[str], bool], spell: Callable[[str], str]) -> str:
    if text.isprintable():  # the common case costs one C-level scan
        return text
    return "".join(spell(ch) if escapes(ch) else ch for ch in text)


# -- file names: the store, the recap e-mail headers, the logs -------------------------------


def _name_escapes(ch: str) -> bool:
    code = ord(ch)
    return (
        0xD800 <= code <= 0xDFFF
        or ch in LINE_BREAKS
        or code < 32
        or 127 <= code < 160
        or unicodedata.category(ch) == "Cf"
    )


def _name_spelling(ch: str) -> str:
    code = ord(ch)
    if _is_smuggled_byte(code):
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def printable_name(name: str) -> str:
    """The text form of a file name for the store, the recap e-mail and the logs.

    A name put straight on disk may hold bytes that are not UTF-8 (lone surrogates, which
    SQLite and e-mail refuse) or characters that break a line (U+2028, ...), which no header
    may contain. Each byte that is not UTF-8 becomes `\\xNN` (as
    `name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")` writes it),
    each other surrogate, C0/C1 control, line-breaking or invisible formatting character
    (category Cf: U+202E would reverse the rest of a log line) `\\xNN` / `\\uNNNN`; every
    other character, a backslash included, is kept, so every name the FTP/SFTP servers accept
    is returned unchanged (the form is for display and storage, not reversible).
    """
    return _escaped(name, _name_escapes, _name_spelling)


def header_text(value: object) -> str:
    """A mail header value: one line, whatever it holds (`printable_name` of its text),
    because `email` refuses any character `str.splitlines()` breaks on in a header."""
    return printable_name(str(value))


# -- rule details: the sentences of a verdict ----------------------------------------------

DETAIL_CHARS = 40  # characters of a user value quoted in a verdict's detail


def _detail_escapes(ch: str) -> bool:
    code = ord(ch)
    return code < 32 or code == 127 or _is_smuggled_byte(code)


def _detail_spelling(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if _is_smuggled_byte(code):
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}"


def escape_detail(text: str) -> str:
    """A CSV value for a verdict's detail: ASCII controls and bytes that are not UTF-8 as
    `\\n`, `\\t`, `\\xNN`. Narrower than `printable_name` on purpose: details are recorded and
    pinned by the contract, and other characters (U+2028, C1 controls) reach the store and the
    recap through `printable_name` anyway."""
    return _escaped(text, _detail_escapes, _detail_spelling)


def quote_detail(value: str, limit: int = DETAIL_CHARS) -> str:
    """A user-supplied value quoted for a detail sentence: shortened to `limit` characters
    (then `…`), escaped by `escape_detail`, between single quotes."""
    if len(value) > limit:
        value = value[:limit] + "…"
    return f"'{escape_detail(value)}'"


# -- a terminal: `allmysms-mock check` -----------------------------------------------------


def _terminal_spelling(ch: str) -> str:
    if ch == "\n":
        return "\\n"
    return ch.encode("unicode_escape", "backslashreplace").decode("ascii")


def escape_terminal(text: str) -> str:
    """Text safe for a terminal: every character `str.isprintable` refuses spelled as Python
    writes it (`\\n`, `\\t`, `\\x00`, `\\u2028`, `\\udce9`); the result is always printable.
    Wider than `escape_detail`: a terminal must not receive any control or format character."""
    return _escaped(text, lambda ch: not ch.isprintable(), _terminal_spelling)


# -- messages: configuration errors, network errors ------------------------------------------

REPR_CHARS = 60  # longest value quoted in a configuration error


def quote_value(value: Any, limit: int = REPR_CHARS) -> str:
    """Any value as its `repr`, shortened to `limit` characters (ending `...`): what a
    configuration error shows of a bad value (strings printable and quoted by `repr`)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def join_lines(text: str) -> str:
    """`text` on one line: its lines (as `str.splitlines` cuts them) joined by a space."""
    return " ".join(text.splitlines())


def one_line(text: str) -> str:
    """`text` on one line with every run of whitespace (line breaks included) one space, and no
    space at either end: a server's reply or an exception's message for a one-line error."""
    return " ".join(text.split())


def cause_of(exc: BaseException) -> str:
    """An exception as a log line's cause: its message on one line, or its type's name when
    it has none (a `MemoryError` says nothing: issue 16 saw "processing failed: " and no
    cause)."""
    return one_line(str(exc)) or type(exc).__name__
