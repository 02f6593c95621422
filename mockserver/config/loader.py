"""Loading the configuration (contract 3): embedded defaults, a TOML file, environment
variables `ALLMYSMS_MOCK_<SECTION>_<KEY>`, then overrides (the flags), later wins.

Three settings are tables of tables, not `SECTION_KEY` values: `[[accounts]]`, `[pricing]`
(`config.pricing`) and `[[faults]]` (`config.faults`). Each is given whole: in the file, in one
JSON variable (`ALLMYSMS_MOCK_ACCOUNTS_JSON`, `..._PRICING_JSON`, `..._FAULTS_JSON`) or as one
override."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mockserver.config.checks import as_int, boolean
from mockserver.config.checks import config_error as _error
from mockserver.config.faults import ENV_FAULTS, read_faults
from mockserver.config.passwords import valid_password_hash
from mockserver.config.pricing import ENV_PRICING, apply_pricing
from mockserver.config.settings import (
    ENV_PREFIX,
    SCHEMA,
    SECTIONS,
    AccountConfig,
    Config,
    default_accounts,
)
from mockserver.core.pricing import DEFAULT_PRICES
from mockserver.core.text import quote_value as show
from mockserver.tree import valid_login

# The accounts array cannot be spelled as SECTION_KEY variables: one JSON variable replaces it.
ENV_ACCOUNTS = "ALLMYSMS_MOCK_ACCOUNTS_JSON"
# Read by the command line (path of the TOML file), not by load_config; reserved so it is not
# reported as a typo.
ENV_CONFIG_FILE = "ALLMYSMS_MOCK_CONFIG"
# Variables read by other parts than the settings (none is a typo).
ENV_RESERVED = frozenset({ENV_CONFIG_FILE})

_EMAIL = re.compile(r"[^@\s<>\"']+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

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
    if kind == "list":
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                return raw
        return [part.strip() for part in text.split(",")]
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        return raw
    return raw


def _account(entry: Any, where: str) -> AccountConfig:
    if not isinstance(entry, Mapping):
        raise _error(where, f"must be a table of account settings, got {show(entry)}")
    for key in entry:
        if key not in _ACCOUNT_KEYS:
            raise _error(f"{where}.{key}", f"unknown key (expected one of {_ACCOUNT_KEYS})")
    login = entry.get("login")
    if not isinstance(login, str) or not valid_login(login):
        raise _error(
            f"{where}.login",
            "must be 1-64 characters: letters, digits, '_', '.', '-', starting with a letter"
            f" or digit, got {show(login)}",
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
        credits = as_int(entry.get("credits", 100), 0, 2**53, "an integer >= 0")
    except ValueError as exc:
        raise _error(f"{where}.credits", str(exc)) from None
    try:
        subscription = boolean(entry.get("subscription", False))
    except ValueError as exc:
        raise _error(f"{where}.subscription", str(exc)) from None
    email = entry.get("email", f"{login}@example.com")
    if not isinstance(email, str) or not _EMAIL.fullmatch(email):
        raise _error(f"{where}.email", f"must be an e-mail address, got {show(email)}")
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
        raise _error(where, f"must be an array of account tables, got {show(entries)}")
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
    values: dict[str, dict[str, tuple[Any, str]]] = {s: {} for s in SCHEMA}
    accounts_raw: tuple[Any, str] | None = None
    faults_raw: tuple[Any, str] | None = None
    pricing = base.pricing if base is not None else DEFAULT_PRICES
    if base is not None:
        for section in SCHEMA:
            current = getattr(base, section)
            for key in SCHEMA[section]:
                values[section][key] = (getattr(current, key), f"{section}.{key}")

    if path is not None:
        document = _read_toml(Path(path))
        for section, body in document.items():
            if section == "accounts":
                accounts_raw = (body, "accounts")
                continue
            if section == "faults":
                faults_raw = (body, "faults")
                continue
            if section == "pricing":
                pricing = apply_pricing(pricing, body, "pricing")
                continue
            if section not in SCHEMA:
                raise _error(section, f"unknown section (expected one of {_known_sections()})")
            if not isinstance(body, dict):
                raise _error(section, "must be a table, like [section]")
            for key, value in body.items():
                if key not in SCHEMA[section]:
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
        if name == ENV_FAULTS:
            try:
                faults_raw = (json.loads(raw), name)
            except ValueError as exc:
                raise _error(name, f"invalid JSON: {exc}") from None
            continue
        if name == ENV_PRICING:
            try:
                given = json.loads(raw)
            except ValueError as exc:
                raise _error(name, f"invalid JSON: {exc}") from None
            pricing = apply_pricing(pricing, given, name)
            continue
        section, key = _env_key(name)
        values[section][key] = (_from_env(raw, SCHEMA[section][key].env_kind), name)

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        if dotted in ("accounts", "faults"):
            if dotted == "accounts":
                accounts_raw = (value, dotted)
            else:
                faults_raw = (value, dotted)
            continue
        if dotted == "pricing":
            pricing = apply_pricing(pricing, value, "pricing")
            continue
        section, _, key = dotted.partition(".")
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise _error(dotted, "unknown setting")
        values[section][key] = (value, dotted)

    built: dict[str, Any] = {}
    for section, given in values.items():
        kwargs: dict[str, Any] = {}
        for key, (value, where) in given.items():
            check = SCHEMA[section][key].check
            try:
                kwargs[key] = check(value)
            except ValueError as exc:
                raise _error(where, str(exc)) from None
        built[section] = SECTIONS[section](**kwargs)

    if accounts_raw is not None:
        accounts = _accounts(*accounts_raw)
    else:
        accounts = default_accounts() if base is None else base.accounts
    faults = base.faults if base is not None else ()
    if faults_raw is not None:
        faults = read_faults(*faults_raw)
    return Config(accounts=accounts, pricing=pricing, faults=faults, **built)


def _known_sections() -> str:
    return ", ".join([*SCHEMA, "pricing", "accounts", "faults"])


def _unknown_key(section: str) -> str:
    return f"unknown key (expected one of {', '.join(SCHEMA[section])})"


def _env_key(name: str) -> tuple[str, str]:
    rest = name[len(ENV_PREFIX) :].lower()
    for section in SCHEMA:
        if rest.startswith(section + "_"):
            key = rest[len(section) + 1 :]
            if key in SCHEMA[section]:
                return section, key
            raise _error(name, f"unknown variable: {section}.{key}: {_unknown_key(section)}")
    raise _error(
        name,
        "unknown variable (expected ALLMYSMS_MOCK_<SECTION>_<KEY> with a section among"
        f" {', '.join(SCHEMA).upper()}, or {ENV_ACCOUNTS}, {ENV_PRICING}, {ENV_FAULTS})",
    )
