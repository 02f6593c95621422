"""Every setting, declared once: its field in a typed section carries the default, the check,
the `serve` flag and whether `MockServer(**settings)` takes it by its short key; `SETTINGS` is
the table read by the TOML file, the environment, the flags and the short keys."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from mockserver.config import checks as c
from mockserver.config.checks import Check, config_error
from mockserver.config.passwords import compare_plain, verify_password
from mockserver.core.faults import FaultRule
from mockserver.core.pricing import PriceTable
from mockserver.tree import Layout

ENV_PREFIX = "ALLMYSMS_MOCK_"

WatchMode = Literal["auto", "native", "polling"]
LogFormat = Literal["text", "json"]
ProcessingMode = Literal["auto", "manual"]
LogLevel = Literal["debug", "info", "warning", "error"]

_META = "allmysms_setting"


@dataclass(frozen=True, slots=True)
class Flag:
    """A `serve` command-line flag overriding a setting (`dest` is argparse's, from `name`)."""

    name: str  # "--ftp-port"
    help: str
    rank: int  # its place in `serve --help`
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


@dataclass(frozen=True, slots=True)
class _Spec:
    check: Check
    flag: Flag | None
    short: bool


def spec(check: Check, *, flag: Flag | None = None, short: bool = False) -> dict[str, Any]:
    """The `metadata` of a section field (its default is the field's own): the `check` every
    value goes through, the `serve` flag, and `short`: `MockServer(key=...)` may name it
    without its section."""
    return {_META: _Spec(check, flag, short)}


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the table, built from a section field."""

    section: str
    key: str
    default: Any
    check: Check
    flag: Flag | None
    short: bool

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        """`ALLMYSMS_MOCK_<SECTION>_<KEY>`."""
        return f"{ENV_PREFIX}{self.section}_{self.key}".upper()

    @property
    def env_kind(self) -> str:
        """How an environment string is converted before the check: the TOML type of the
        default ("int", "float", "bool"), "list" for a list of names (`HQ,LC`), or "str"
        (ranges, paths and names are strings)."""
        if isinstance(self.default, tuple) and all(isinstance(v, str) for v in self.default):
            return "list"
        for kind in (bool, int, float):
            if type(self.default) is kind:
                return kind.__name__
        return "str"


# -- the sections ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = field(
        default="127.0.0.1",
        metadata=spec(
            c.string(False),
            flag=Flag("--host", "address to bind (default 127.0.0.1)", 2),
            short=True,
        ),
    )
    ftp_port: int = field(
        default=2121,
        metadata=spec(
            c.port, flag=Flag("--ftp-port", "FTP port, 0 = any free port (default 2121)", 3, int)
        ),
    )
    sftp_port: int = field(
        default=61022,
        metadata=spec(
            c.port,
            flag=Flag("--sftp-port", "SFTP port, 0 = any free port (default 61022)", 4, int),
        ),
    )
    http_port: int = field(
        default=8021,
        metadata=spec(
            c.port,
            flag=Flag("--http-port", "HTTP API port, 0 = any free port (default 8021)", 5, int),
        ),
    )
    passive_ports: tuple[int, int] = field(
        default=(60000, 60099), metadata=spec(c.passive, short=True)
    )
    masquerade_address: str = field(default="", metadata=spec(c.masquerade, short=True))
    data_dir: Path = field(
        default=Path("./allmysms-data"),
        metadata=spec(
            c.directory,
            flag=Flag("--data-dir", "data directory (default ./allmysms-data)", 1),
        ),
    )
    layout: Layout = field(default="flat", metadata=spec(c.choice("flat", "nested"), short=True))
    # Contract 11: set, every `/api/` call needs `Authorization: Bearer <token>`. No flag: a
    # command line is readable by every local user (ps); never in a repr, log or message.
    api_token: str = field(default="", repr=False, metadata=spec(c.secret, short=True))


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Sizes, connection caps, timeouts and login throttling of the FTP and SFTP servers
    (docs/security.md explains each one)."""

    # "la taille maximale des fichiers ... ne doit pas dépasser 8 Mo"
    max_file_bytes: int = field(
        default=8_000_000, metadata=spec(c.integer(1, 2**53, "an integer >= 1"), short=True)
    )
    # Open FTP control + SFTP connections, per protocol: all clients, and from one address.
    max_connections: int = field(
        default=200, metadata=spec(c.integer(1, 100_000, "an integer 1-100000"), short=True)
    )
    max_connections_per_ip: int = field(
        default=50, metadata=spec(c.integer(1, 100_000, "an integer 1-100000"), short=True)
    )
    # A session with no command (FTP) or request (SFTP) for this long is closed; 0: never.
    idle_timeout_seconds: float = field(
        default=300.0, metadata=spec(c.number(0.0, False, c.MAX_SECONDS), short=True)
    )
    # A connection that has not logged in after this long is closed.
    login_timeout_seconds: float = field(
        default=30.0, metadata=spec(c.number(0.0, True, c.MAX_SECONDS), short=True)
    )
    # Each failed login is answered after this delay; the connection is dropped after
    # `max_login_attempts` failures (like OpenSSH's MaxAuthTries).
    login_failure_delay_seconds: float = field(
        default=1.0, metadata=spec(c.number(0.0, False, 60.0), short=True)
    )
    max_login_attempts: int = field(
        default=3, metadata=spec(c.integer(1, 100, "an integer 1-100"), short=True)
    )
    # `login_lockout_failures` failed logins from one address, or for one login from any
    # addresses, within `login_lockout_seconds` refuse every login from that address, or of
    # that login (both protocols), for `login_lockout_seconds`; 0: no lockout.
    login_lockout_failures: int = field(
        default=10,
        metadata=spec(c.integer(0, 1_000_000, "an integer >= 0 (0: no lockout)"), short=True),
    )
    login_lockout_seconds: float = field(
        default=60.0, metadata=spec(c.number(0.0, True, c.MAX_SECONDS), short=True)
    )
    # HTTP API connections open at once (never more than a quarter of the open-files limit);
    # one more is answered 503 and closed. A connection has `login_timeout_seconds` to send
    # its first request, and 15 s between requests once kept alive.
    max_http_connections: int = field(
        default=512, metadata=spec(c.integer(1, 100_000, "an integer 1-100000"), short=True)
    )


@dataclass(frozen=True, slots=True)
class ProcessingConfig:
    # Capped at a day like every duration: past `threading.TIMEOUT_MAX` a wait raises
    # OverflowError, which would kill every processor worker.
    delay_seconds: float = field(
        default=0.0, metadata=spec(c.number(0.0, False, c.MAX_SECONDS), short=True)
    )
    # Time a complete file waits in SEND_SMS before pickup (the real platform polls): lets
    # clients that stat a file right after renaming it (rclone's move) see it there.
    pickup_delay_seconds: float = field(
        default=0.0, metadata=spec(c.number(0.0, False, 3600.0), short=True)
    )
    default_sender: str = field(default="36180", metadata=spec(c.sender, short=True))
    recap_email: bool = field(default=True, metadata=spec(c.boolean, short=True))
    # Manual 2.1: "HQ ..., seule qualité disponible"; "LC" (listed on the platform's public
    # FTP page) makes `_LC` files valid, billed at `[pricing.LC]` (contract 3).
    qualities: tuple[str, ...] = field(default=("HQ",), metadata=spec(c.qualities, short=True))
    watch_mode: WatchMode = field(
        default="auto", metadata=spec(c.choice("auto", "native", "polling"), short=True)
    )
    poll_interval: float = field(
        default=1.0, metadata=spec(c.number(0.0, True, c.MAX_SECONDS), short=True)
    )
    rescan_seconds: float = field(
        default=5.0, metadata=spec(c.number(0.0, True, c.MAX_SECONDS), short=True)
    )
    # Contract 9.4: "manual": a claimed file waits in PROCESSING until advanced.
    mode: ProcessingMode = field(
        default="auto", metadata=spec(c.choice("auto", "manual"), short=True)
    )
    # Contract 9.3: "" real time; an ISO-8601 date-time starts a frozen virtual clock there.
    clock: str = field(default="", metadata=spec(c.instant_or_empty, short=True))


@dataclass(frozen=True, slots=True)
class MailConfig:
    smtp_host: str = field(
        default="", metadata=spec(c.string(True))
    )  # empty: recaps go to the Maildir only
    smtp_port: int = field(default=25, metadata=spec(c.smtp_port))


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: LogLevel = field(
        default="info",
        metadata=spec(
            c.choice("debug", "info", "warning", "error"),
            flag=Flag(
                "--log-level",
                "log level (default info)",
                7,
                str.lower,
                ("debug", "info", "warning", "error"),
            ),
        ),
    )
    format: LogFormat = field(
        default="text",
        metadata=spec(
            c.choice("text", "json"),
            flag=Flag("--log-format", "log line format (default text)", 6, None, ("text", "json")),
        ),
    )


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


# Contract 3: the demo account has 15000 credits, a thousand French SMS at 15 credits each.
DEMO_CREDITS = 15_000


def default_accounts() -> tuple[AccountConfig, ...]:
    return (
        AccountConfig(
            login="demo", password="demo", credits=DEMO_CREDITS, email="demo@example.com"
        ),
    )


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    accounts: tuple[AccountConfig, ...] = field(default_factory=default_accounts)
    log: LogConfig = field(default_factory=LogConfig)
    # `[pricing.HQ]`, `[pricing.LC]` (contract 3), read by `config.pricing`, not by SETTINGS.
    pricing: PriceTable = field(default_factory=PriceTable)
    # `[[faults]]` (contract 9.2), read by `config.faults`: rules in force from start-up.
    faults: tuple[FaultRule, ...] = ()


# -- the table --------------------------------------------------------------------------------

# In the order error messages and the environment scan list them.
SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "limits": LimitsConfig,
    "processing": ProcessingConfig,
    "mail": MailConfig,
    "log": LogConfig,
}


def _table() -> dict[str, dict[str, Setting]]:
    table: dict[str, dict[str, Setting]] = {}
    for section, cls in SECTIONS.items():
        table[section] = {}
        for f in fields(cls):
            spec: _Spec = f.metadata[_META]
            table[section][f.name] = Setting(
                section, f.name, f.default, spec.check, spec.flag, spec.short
            )
    return table


# section -> key -> Setting
SCHEMA: Mapping[str, Mapping[str, Setting]] = _table()
SETTINGS: tuple[Setting, ...] = tuple(s for keys in SCHEMA.values() for s in keys.values())
_SHORT: dict[str, Setting] = {s.key: s for s in SETTINGS if s.short}
# Settings given whole rather than as `section.key` (a table of tables, an array of tables).
WHOLE = ("accounts", "pricing", "faults")


def dotted_key(key: str) -> str:
    """The `section.key` name of a `MockServer(**settings)` key: dotted keys and the whole
    tables (`accounts`, `pricing`, `faults`) as they are, the short keys (`delay_seconds`,
    `max_file_bytes`, `layout`, ...) with their section."""
    if "." in key or key in WHOLE:
        return key
    found = _SHORT.get(key)
    if found is None:
        raise config_error(key, "unknown setting")
    return found.dotted


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add the `serve` flags of the settings that have one, in their `rank` order."""
    flagged = sorted((s.flag for s in SETTINGS if s.flag is not None), key=lambda f: f.rank)
    for flag in flagged:
        kwargs: dict[str, Any] = {"help": flag.help}
        if flag.type is not None:
            kwargs["type"] = flag.type
        if flag.choices is not None:
            kwargs["choices"] = flag.choices
        parser.add_argument(flag.name, **kwargs)


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`load_config` overrides (`{"server.ftp_port": 0}`) from the flags given, in the
    flags' `rank` order (the first bad one is the one reported)."""
    overrides: dict[str, Any] = {}
    flagged = sorted(((s.flag, s) for s in SETTINGS if s.flag is not None), key=lambda p: p[0].rank)
    for flag, setting in flagged:
        value = getattr(args, flag.dest, None)
        if value is not None:
            overrides[setting.dotted] = value
    return overrides
