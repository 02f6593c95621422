"""The mock's configuration (contract 3): embedded defaults, a TOML file, environment variables
`ALLMYSMS_MOCK_<SECTION>_<KEY>`, then flag overrides, later wins; and the password-hash scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from mockserver.tree import Layout, valid_login

ENV_PREFIX = "ALLMYSMS_MOCK_"
# The accounts array cannot be spelled as SECTION_KEY variables: one JSON variable replaces it.
ENV_ACCOUNTS = "ALLMYSMS_MOCK_ACCOUNTS_JSON"
# Read by the command line (path of the TOML file), not by load_config; reserved so it is not
# reported as a typo.
ENV_CONFIG_FILE = "ALLMYSMS_MOCK_CONFIG"
# Read by other parts, not settings: the processor's test-only crash switch.
ENV_RESERVED = frozenset({ENV_CONFIG_FILE, "ALLMYSMS_MOCK_CRASH_AT"})

WatchMode = Literal["auto", "native", "polling"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


class ConfigError(Exception):
    """A bad file or value: the message is one line naming the key (contract 3)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


def _error(where: str, problem: str) -> ConfigError:
    return ConfigError(f"config error: {where}: {problem}")


# -- password hashing -------------------------------------------------------------------------

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_DKLEN = 32
# Upper bounds for values read from a config file, so a hostile hash cannot ask for gigabytes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=dklen,
        maxmem=256 * r * n + 1024 * 1024,
    )


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt_b64$hash_b64` with a random 16-byte salt (stdlib `hashlib.scrypt`)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_DKLEN)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def valid_password_hash(encoded: str) -> bool:
    return _parse_hash(encoded) is not None


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of `password` against a `hash_password` value; False if malformed."""
    parsed = _parse_hash(encoded)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(digest)), digest)


def compare_plain(password: str, expected: str) -> bool:
    """Constant-time comparison of two plain passwords (any Unicode)."""
    return hmac.compare_digest(
        password.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


# -- the typed configuration ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    ftp_port: int = 2121
    sftp_port: int = 61022
    http_port: int = 8021
    passive_ports: tuple[int, int] = (60000, 60099)
    masquerade_address: str = ""
    data_dir: Path = Path("./allmysms-data")
    layout: Layout = "flat"


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Sizes, connection caps, timeouts and login throttling of the FTP and SFTP servers
    (docs/security.md explains each one)."""

    # "la taille maximale des fichiers ... ne doit pas dépasser 8 Mo"
    max_file_bytes: int = 8_000_000
    # Open FTP control + SFTP connections, per protocol: all clients, and from one address.
    max_connections: int = 200
    max_connections_per_ip: int = 50
    # A session with no command (FTP) or request (SFTP) for this long is closed; 0: never.
    idle_timeout_seconds: float = 300.0
    # A connection that has not logged in after this long is closed.
    login_timeout_seconds: float = 30.0
    # Each failed login is answered after this delay; the connection is dropped after
    # `max_login_attempts` failures (like OpenSSH's MaxAuthTries).
    login_failure_delay_seconds: float = 1.0
    max_login_attempts: int = 3
    # `login_lockout_failures` failed logins from one address within `login_lockout_seconds`
    # refuse every login from it (both protocols) for `login_lockout_seconds`; 0: no lockout.
    login_lockout_failures: int = 10
    login_lockout_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class ProcessingConfig:
    delay_seconds: float = 0.0
    # Time a complete file waits in SEND_SMS before pickup (the real platform polls): lets
    # clients that stat a file right after renaming it (rclone's move) see it there.
    pickup_delay_seconds: float = 0.0
    default_sender: str = "36180"
    recap_email: bool = True
    watch_mode: WatchMode = "auto"
    poll_interval: float = 1.0
    rescan_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class MailConfig:
    smtp_host: str = ""  # empty: recaps go to the Maildir only
    smtp_port: int = 25


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: LogLevel = "info"
    format: LogFormat = "text"


@dataclass(frozen=True, slots=True)
class AccountConfig:
    login: str
    password: str | None = None
    password_hash: str | None = None
    credits: int = 100
    subscription: bool = False
    email: str = ""

    def check_password(self, password: str) -> bool:
        """Constant time for a plain password; one scrypt for a hashed one."""
        if self.password_hash is not None:
            return verify_password(password, self.password_hash)
        if self.password is not None:
            return compare_plain(password, self.password)
        return False


def _default_accounts() -> tuple[AccountConfig, ...]:
    return (AccountConfig(login="demo", password="demo", email="demo@example.com"),)


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    accounts: tuple[AccountConfig, ...] = field(default_factory=_default_accounts)
    log: LogConfig = field(default_factory=LogConfig)


# -- validation -------------------------------------------------------------------------------

_SENDER = re.compile(r"^(?:[A-Za-z][A-Za-z0-9 ]{2,10}|[0-9]{3,11})$")
_EMAIL = re.compile(r"^[^@\s<>\"']+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_PORTS = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_int(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"must be {what}, got {_show(value)}")
    return value


def _port(value: Any) -> int:
    return _as_int(value, 0, 65535, "an integer 0-65535")


def _smtp_port(value: Any) -> int:
    return _as_int(value, 1, 65535, "an integer 1-65535")


# Upper bound of the durations: a day (a larger value is surely a unit mistake).
_MAX_SECONDS = 86_400.0


def _float(lo: float, lo_open: bool, hi: float | None = None) -> Any:
    what = f"a number {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        what += f" and <= {hi:g}"

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be {what}, got {_show(value)}")
        number = float(value)
        if not math.isfinite(number) or number < lo or (lo_open and number == lo):
            raise ValueError(f"must be {what}, got {_show(value)}")
        if hi is not None and number > hi:
            raise ValueError(f"must be {what}, got {_show(value)}")
        return number

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {_show(value)}")
    return value


def _str(empty_ok: bool) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or (not empty_ok and not value.strip()):
            raise ValueError(
                f"must be a {'' if empty_ok else 'non-empty '}string, got {_show(value)}"
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters")
        return value

    return check


def _choice(*choices: str) -> Any:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, got {_show(value)}")
        return cast(str, value)

    return check


def _passive(value: Any) -> tuple[int, int]:
    what = 'a range "a-b" with 1024 <= a <= b <= 65535'
    lo: Any
    hi: Any
    if isinstance(value, str):
        match = _PORTS.match(value)
        if not match:
            raise ValueError(f"must be {what}, got {_show(value)}")
        lo, hi = int(match[1]), int(match[2])
    elif isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = value
    else:
        raise ValueError(f"must be {what}, got {_show(value)}")
    if (
        isinstance(lo, bool)
        or isinstance(hi, bool)
        or not isinstance(lo, int)
        or not isinstance(hi, int)
        or not 1024 <= lo <= hi <= 65535
    ):
        raise ValueError(f"must be {what}, got {_show(value)}")
    return (lo, hi)


def _masquerade(value: Any) -> str:
    # pyftpdlib writes it verbatim into the PASV reply "227 ... (h1,h2,h3,h4,p1,p2)".
    if value == "":
        return ""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(
            f'must be an IPv4 address (announced in PASV replies) or "", got {_show(value)}'
        ) from None


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError(f"must be a directory path, got {_show(value)}")
    return Path(value).expanduser()


def _sender(value: Any) -> str:
    if not isinstance(value, str) or not _SENDER.match(value):
        raise ValueError(
            "must be 3-11 characters, a letter then letters/digits/spaces, or all digits"
            f" (like 36180), got {_show(value)}"
        )
    return value


_Check = Any  # Callable[[Any], Any]; kept loose because each check returns its own type
# section -> key -> (validator, environment converter)
_SCHEMA: dict[str, dict[str, tuple[_Check, str]]] = {
    "server": {
        "host": (_str(False), "str"),
        "ftp_port": (_port, "int"),
        "sftp_port": (_port, "int"),
        "http_port": (_port, "int"),
        "passive_ports": (_passive, "str"),
        "masquerade_address": (_masquerade, "str"),
        "data_dir": (_path, "str"),
        "layout": (_choice("flat", "nested"), "str"),
    },
    "limits": {
        "max_file_bytes": (lambda v: _as_int(v, 1, 2**53, "an integer >= 1"), "int"),
        "max_connections": (lambda v: _as_int(v, 1, 100_000, "an integer 1-100000"), "int"),
        "max_connections_per_ip": (
            lambda v: _as_int(v, 1, 100_000, "an integer 1-100000"),
            "int",
        ),
        "idle_timeout_seconds": (_float(0.0, False, _MAX_SECONDS), "float"),
        "login_timeout_seconds": (_float(0.0, True, _MAX_SECONDS), "float"),
        "login_failure_delay_seconds": (_float(0.0, False, 60.0), "float"),
        "max_login_attempts": (lambda v: _as_int(v, 1, 100, "an integer 1-100"), "int"),
        "login_lockout_failures": (
            lambda v: _as_int(v, 0, 1_000_000, "an integer >= 0 (0: no lockout)"),
            "int",
        ),
        "login_lockout_seconds": (_float(0.0, True, _MAX_SECONDS), "float"),
    },
    "processing": {
        # Capped at a day like every duration: past `threading.TIMEOUT_MAX` a wait raises
        # OverflowError, which would kill every processor worker.
        "delay_seconds": (_float(0.0, False, _MAX_SECONDS), "float"),
        "pickup_delay_seconds": (_float(0.0, False, 3600.0), "float"),
        "default_sender": (_sender, "str"),
        "recap_email": (_bool, "bool"),
        "watch_mode": (_choice("auto", "native", "polling"), "str"),
        "poll_interval": (_float(0.0, True, _MAX_SECONDS), "float"),
        "rescan_seconds": (_float(0.0, True, _MAX_SECONDS), "float"),
    },
    "mail": {
        "smtp_host": (_str(True), "str"),
        "smtp_port": (_smtp_port, "int"),
    },
    "log": {
        "level": (_choice("debug", "info", "warning", "error"), "str"),
        "format": (_choice("text", "json"), "str"),
    },
}
_SECTION_TYPES: dict[str, type[Any]] = {
    "server": ServerConfig,
    "limits": LimitsConfig,
    "processing": ProcessingConfig,
    "mail": MailConfig,
    "log": LogConfig,
}
_ACCOUNT_KEYS = ("login", "password", "password_hash", "credits", "subscription", "email")


def _from_env(raw: str, kind: str) -> Any:
    """Environment values are strings: convert them to the type the TOML file would hold."""
    text = raw.strip()
    if kind == "int":
        try:
            return int(text, 10)
        except ValueError:
            return raw
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            return raw
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        return raw
    return raw


def _account(entry: Any, where: str) -> AccountConfig:
    if not isinstance(entry, Mapping):
        raise _error(where, f"must be a table of account settings, got {_show(entry)}")
    for key in entry:
        if key not in _ACCOUNT_KEYS:
            raise _error(f"{where}.{key}", f"unknown key (expected one of {_ACCOUNT_KEYS})")
    login = entry.get("login")
    if not isinstance(login, str) or not valid_login(login):
        raise _error(
            f"{where}.login",
            "must be 1-64 characters: letters, digits, '_', '.', '-', starting with a letter"
            f" or digit, got {_show(login)}",
        )
    password = entry.get("password")
    password_hash = entry.get("password_hash")
    if (password is None) == (password_hash is None):
        raise _error(where, f"account {login!r}: give exactly one of password, password_hash")
    if password is not None and (not isinstance(password, str) or not password):
        raise _error(f"{where}.password", "must be a non-empty string")
    if password_hash is not None and (
        not isinstance(password_hash, str) or not valid_password_hash(password_hash)
    ):
        raise _error(
            f"{where}.password_hash",
            "must be a value printed by `allmysms-mock hash-password` (scrypt$n$r$p$salt$hash)",
        )
    try:
        credits = _as_int(entry.get("credits", 100), 0, 2**53, "an integer >= 0")
    except ValueError as exc:
        raise _error(f"{where}.credits", str(exc)) from None
    try:
        subscription = _bool(entry.get("subscription", False))
    except ValueError as exc:
        raise _error(f"{where}.subscription", str(exc)) from None
    email = entry.get("email", f"{login}@example.com")
    if not isinstance(email, str) or not _EMAIL.match(email):
        raise _error(f"{where}.email", f"must be an e-mail address, got {_show(email)}")
    return AccountConfig(
        login=login,
        password=password,
        password_hash=password_hash,
        credits=credits,
        subscription=subscription,
        email=email,
    )


def _accounts(entries: Any, where: str) -> tuple[AccountConfig, ...]:
    if not isinstance(entries, list | tuple):
        raise _error(where, f"must be an array of account tables, got {_show(entries)}")
    accounts: list[AccountConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if isinstance(entry, AccountConfig):
            entry = {k: getattr(entry, k) for k in _ACCOUNT_KEYS if getattr(entry, k) is not None}
        account = _account(entry, f"{where}[{index}]")
        if account.login in seen:
            raise _error(f"{where}[{index}].login", f"duplicate login {account.login!r}")
        seen.add(account.login)
        accounts.append(account)
    return tuple(accounts)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise _error(str(path), f"invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _error(str(path), f"cannot read the file: {reason}") from None


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    base: Config | None = None,
) -> Config:
    """Defaults (or `base`), then the TOML file at `path`, then `env` (default `os.environ`),
    then `overrides` (`{"server.ftp_port": 0, "accounts": [...]}`; None means "not given").

    Raises ConfigError naming the key (or the environment variable) at the first bad value.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    # key -> (value, where it came from, for the error message)
    values: dict[str, dict[str, tuple[Any, str]]] = {s: {} for s in _SCHEMA}
    accounts_raw: tuple[Any, str] | None = None
    if base is not None:
        for section in _SCHEMA:
            current = getattr(base, section)
            for key in _SCHEMA[section]:
                values[section][key] = (getattr(current, key), f"{section}.{key}")

    if path is not None:
        document = _read_toml(Path(path))
        for section, body in document.items():
            if section == "accounts":
                accounts_raw = (body, "accounts")
                continue
            if section not in _SCHEMA:
                raise _error(section, f"unknown section (expected one of {_known_sections()})")
            if not isinstance(body, dict):
                raise _error(section, "must be a table, like [section]")
            for key, value in body.items():
                if key not in _SCHEMA[section]:
                    raise _error(f"{section}.{key}", _unknown_key(section))
                values[section][key] = (value, f"{section}.{key}")

    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        raw = environ[name]
        if name == ENV_ACCOUNTS:
            try:
                accounts_raw = (json.loads(raw), name)
            except ValueError as exc:
                raise _error(name, f"invalid JSON: {exc}") from None
            continue
        section, key = _env_key(name)
        values[section][key] = (_from_env(raw, _SCHEMA[section][key][1]), name)

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        if dotted == "accounts":
            accounts_raw = (value, "accounts")
            continue
        section, _, key = dotted.partition(".")
        if section not in _SCHEMA or key not in _SCHEMA[section]:
            raise _error(dotted, "unknown setting")
        values[section][key] = (value, dotted)

    built: dict[str, Any] = {}
    for section, given in values.items():
        kwargs: dict[str, Any] = {}
        for key, (value, where) in given.items():
            check = _SCHEMA[section][key][0]
            try:
                kwargs[key] = check(value)
            except ValueError as exc:
                raise _error(where, str(exc)) from None
        built[section] = _SECTION_TYPES[section](**kwargs)

    if accounts_raw is not None:
        accounts = _accounts(*accounts_raw)
    else:
        accounts = _default_accounts() if base is None else base.accounts
    return Config(accounts=accounts, **built)


def _known_sections() -> str:
    return ", ".join([*_SCHEMA, "accounts"])


def _unknown_key(section: str) -> str:
    return f"unknown key (expected one of {', '.join(_SCHEMA[section])})"


def _env_key(name: str) -> tuple[str, str]:
    rest = name[len(ENV_PREFIX) :].lower()
    for section in _SCHEMA:
        if rest.startswith(section + "_"):
            key = rest[len(section) + 1 :]
            if key in _SCHEMA[section]:
                return section, key
            raise _error(name, f"unknown variable: {section}.{key}: {_unknown_key(section)}")
    raise _error(
        name,
        "unknown variable (expected ALLMYSMS_MOCK_<SECTION>_<KEY> with a section among"
        f" {', '.join(_SCHEMA).upper()}, or {ENV_ACCOUNTS})",
    )
