"""The validators of setting values and `ConfigError`: each check returns the typed value or
raises ValueError with the one-line problem that `ConfigError` prefixes with the key."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mockserver.clock import parse_instant
from mockserver.core.text import join_lines
from mockserver.core.text import quote_value as show

Check = Callable[[Any], Any]


class ConfigError(Exception):
    """A bad file or value: the message is one line naming the key (contract 3)."""

    def __init__(self, message: str) -> None:
        super().__init__(join_lines(message))


def config_error(where: str, problem: str) -> ConfigError:
    return ConfigError(f"config error: {where}: {problem}")


_SENDER = re.compile(r"(?:[A-Za-z][A-Za-z0-9 ]{2,10}|[0-9]{3,11})")
_PORTS = re.compile(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*")
# Upper bound of the durations: a day (a larger value is surely a unit mistake).
MAX_SECONDS = 86_400.0


def as_int(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"must be {what}, got {show(value)}")
    return value


def integer(lo: int, hi: int, what: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        return as_int(value, lo, hi, what)

    return check


def port(value: Any) -> int:
    return as_int(value, 0, 65535, "an integer 0-65535")


def smtp_port(value: Any) -> int:
    return as_int(value, 1, 65535, "an integer 1-65535")


def number(lo: float, lo_open: bool, hi: float | None = None) -> Callable[[Any], float]:
    what = f"a number {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        what += f" and <= {hi:g}"

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be {what}, got {show(value)}")
        result = float(value)
        if not math.isfinite(result) or result < lo or (lo_open and result == lo):
            raise ValueError(f"must be {what}, got {show(value)}")
        if hi is not None and result > hi:
            raise ValueError(f"must be {what}, got {show(value)}")
        return result

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {show(value)}")
    return value


def string(empty_ok: bool) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or (not empty_ok and not value.strip()):
            raise ValueError(
                f"must be a {'' if empty_ok else 'non-empty '}string, got {show(value)}"
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters")
        return value

    return check


MAX_SECRET = 1024


def secret(value: Any) -> str:
    """A token ("" for none): printable ASCII without spaces. The problem never shows the value."""
    if not isinstance(value, str) or len(value) > MAX_SECRET:
        raise ValueError(f"must be a string of at most {MAX_SECRET} characters (not shown)")
    if any(not 33 <= ord(ch) <= 126 for ch in value):
        raise ValueError("must be printable ASCII characters without spaces (not shown)")
    return value


def choice(*choices: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, got {show(value)}")
        return value

    return check


def passive(value: Any) -> tuple[int, int]:
    what = 'a range "a-b" with 1024 <= a <= b <= 65535'
    lo: Any
    hi: Any
    if isinstance(value, str):
        match = _PORTS.fullmatch(value)
        if not match:
            raise ValueError(f"must be {what}, got {show(value)}")
        lo, hi = int(match[1]), int(match[2])
    elif isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = value
    else:
        raise ValueError(f"must be {what}, got {show(value)}")
    if (
        isinstance(lo, bool)
        or isinstance(hi, bool)
        or not isinstance(lo, int)
        or not isinstance(hi, int)
        or not 1024 <= lo <= hi <= 65535
    ):
        raise ValueError(f"must be {what}, got {show(value)}")
    return (lo, hi)


def masquerade(value: Any) -> str:
    # pyftpdlib writes it verbatim into the PASV reply "227 ... (h1,h2,h3,h4,p1,p2)".
    if value == "":
        return ""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(
            f'must be an IPv4 address (announced in PASV replies) or "", got {show(value)}'
        ) from None


def directory(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError(f"must be a directory path, got {show(value)}")
    return Path(value).expanduser()


def sender(value: Any) -> str:
    if not isinstance(value, str) or not _SENDER.fullmatch(value):
        raise ValueError(
            "must be 3-11 characters, a letter then letters/digits/spaces, or all digits"
            f" (like 36180), got {show(value)}"
        )
    return value


def qualities(value: Any) -> tuple[str, ...]:
    """`processing.qualities`: a non-empty list of "HQ" and "LC", each at most once."""
    what = 'a non-empty list of "HQ", "LC" (each at most once)'
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"must be {what}, got {show(value)}")
    if any(q not in ("HQ", "LC") for q in value) or len(set(value)) != len(value):
        raise ValueError(f"must be {what}, got {show(value)}")
    return tuple(value)


def instant_or_empty(value: Any) -> str:
    """`processing.clock`: "" (real time) or an ISO-8601 date-time (`clock.parse_instant`)."""
    if value == "":
        return ""
    if not isinstance(value, str):
        raise ValueError(f'must be "" (real time) or a date-time string, got {show(value)}')
    parse_instant(value)
    return value.strip()
