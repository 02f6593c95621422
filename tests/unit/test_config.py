"""Configuration (contract 3): defaults, TOML, environment, overrides, validation, passwords."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mockserver.auth import Authenticator, StaticAuthenticator
from mockserver.config import (
    AccountConfig,
    ConfigError,
    hash_password,
    load_config,
    verify_password,
)
from mockserver.core.pricing import PriceTable

FULL_TOML = """
[server]
host = "0.0.0.0"
ftp_port = 21
sftp_port = 22
http_port = 8080
passive_ports = "61000-61010"
masquerade_address = "203.0.113.7"
data_dir = "/srv/allmysms"
layout = "nested"

[limits]
max_file_bytes = 1000

[processing]
delay_seconds = 1.5
default_sender = "ACME"
recap_email = false
watch_mode = "polling"
poll_interval = 0.5
rescan_seconds = 2
qualities = ["HQ", "LC"]

[pricing.HQ]
default = 16
"44" = 20
"447" = 21

[pricing.LC]
default = 9

[mail]
smtp_host = "localhost"
smtp_port = 1025

[log]
level = "debug"
format = "json"

[[accounts]]
login = "acme"
password = "s3cret"
credits = 5
subscription = true
email = "ops@acme.test"

[[accounts]]
login = "beta.user-1"
password_hash = "HASH"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_the_contract() -> None:
    """Contract 2: "With no arguments it must work on a fresh machine" with these values."""
    config = load_config(env={})
    assert config.server.host == "127.0.0.1"
    assert (config.server.ftp_port, config.server.sftp_port, config.server.http_port) == (
        2121,
        61022,
        8021,
    )
    assert config.server.passive_ports == (60000, 60099)
    assert config.server.masquerade_address == ""
    assert config.server.data_dir == Path("allmysms-data")
    assert config.server.layout == "flat"
    assert config.limits.max_file_bytes == 8_000_000
    assert config.processing.delay_seconds == 0.0
    assert config.processing.default_sender == "36180"
    assert config.processing.recap_email is True
    assert config.processing.watch_mode == "auto"
    assert config.processing.poll_interval == 1.0
    assert config.processing.rescan_seconds == 5.0
    assert config.processing.qualities == ("HQ",)
    # Contract 3 `[pricing]`: every destination 15 credits, in both qualities.
    assert config.pricing == PriceTable({"HQ": {"default": 15, "33": 15}, "LC": {"default": 15}})
    assert config.pricing.price("HQ", "33612345678") == 15
    assert config.pricing.price("HQ", "447700900123") == 15
    assert config.pricing.price("LC", "33612345678") == 15
    assert (config.mail.smtp_host, config.mail.smtp_port) == ("", 25)
    assert (config.log.level, config.log.format) == ("info", "text")
    (demo,) = config.accounts
    assert demo == AccountConfig(
        login="demo", password="demo", credits=15000, subscription=False, email="demo@example.com"
    )
    assert demo.check_password("demo")
    assert not demo.check_password("Demo")


def test_toml_file_sets_every_key(tmp_path: Path) -> None:
    """Contract 3: every key of the documented TOML file is read."""
    hashed = hash_password("pw")
    config = load_config(_write(tmp_path, FULL_TOML.replace("HASH", hashed)), env={})
    s = config.server
    assert (s.host, s.ftp_port, s.sftp_port, s.http_port) == ("0.0.0.0", 21, 22, 8080)
    assert s.passive_ports == (61000, 61010)
    assert s.masquerade_address == "203.0.113.7"
    assert s.data_dir == Path("/srv/allmysms")
    assert s.layout == "nested"
    assert config.limits.max_file_bytes == 1000
    p = config.processing
    assert (p.delay_seconds, p.default_sender, p.recap_email) == (1.5, "ACME", False)
    assert (p.watch_mode, p.poll_interval, p.rescan_seconds) == ("polling", 0.5, 2.0)
    assert isinstance(p.rescan_seconds, float)
    assert p.qualities == ("HQ", "LC")
    assert config.pricing.table == {
        "HQ": {"default": 16, "44": 20, "447": 21},
        "LC": {"default": 9},
    }
    assert config.pricing.price("HQ", "447700900123") == 21  # the longest prefix wins
    assert config.pricing.price("HQ", "441234567890") == 20
    assert config.pricing.price("HQ", "33612345678") == 16  # the file's HQ table replaces "33"
    assert (config.mail.smtp_host, config.mail.smtp_port) == ("localhost", 1025)
    assert (config.log.level, config.log.format) == ("debug", "json")
    acme, beta = config.accounts
    assert (acme.login, acme.credits, acme.subscription, acme.email) == (
        "acme",
        5,
        True,
        "ops@acme.test",
    )
    assert acme.check_password("s3cret")
    assert beta.password is None
    assert beta.check_password("pw")
    assert not beta.check_password("wrong")
    assert beta.credits == 100
    assert beta.email == "beta.user-1@example.com"


def test_accounts_in_the_file_replace_the_demo_account(tmp_path: Path) -> None:
    """Contract 3: `[[accounts]]` lists the accounts; the embedded demo account is a default."""
    config = load_config(_write(tmp_path, '[[accounts]]\nlogin = "x"\npassword = "y"\n'), env={})
    assert [a.login for a in config.accounts] == ["x"]
    empty = load_config(_write(tmp_path, "accounts = []\n"), env={})
    assert empty.accounts == ()


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    """Contract 3: "A TOML file, then environment variables ..., then command-line flags,
    later wins"."""
    path = _write(tmp_path, "[server]\nftp_port = 21\nsftp_port = 22\nhttp_port = 23\n")
    env = {"ALLMYSMS_MOCK_SERVER_SFTP_PORT": "2222", "ALLMYSMS_MOCK_SERVER_HTTP_PORT": "2323"}
    config = load_config(path, env=env, overrides={"server.http_port": 0, "server.host": None})
    assert config.server.ftp_port == 21  # file
    assert config.server.sftp_port == 2222  # env over file
    assert config.server.http_port == 0  # override over env
    assert config.server.host == "127.0.0.1"  # None means "flag not given"


def test_env_values_are_typed() -> None:
    """Contract 3: `ALLMYSMS_MOCK_<SECTION>_<KEY>` for every key, converted like the TOML."""
    env = {
        "ALLMYSMS_MOCK_SERVER_FTP_PORT": "21",
        "ALLMYSMS_MOCK_SERVER_PASSIVE_PORTS": "30000-30009",
        "ALLMYSMS_MOCK_SERVER_DATA_DIR": "/data",
        "ALLMYSMS_MOCK_SERVER_LAYOUT": "nested",
        "ALLMYSMS_MOCK_LIMITS_MAX_FILE_BYTES": "100",
        "ALLMYSMS_MOCK_PROCESSING_DELAY_SECONDS": "1.5",
        "ALLMYSMS_MOCK_PROCESSING_RECAP_EMAIL": "no",
        "ALLMYSMS_MOCK_PROCESSING_DEFAULT_SENDER": "My Shop",
        "ALLMYSMS_MOCK_PROCESSING_QUALITIES": "HQ, LC",
        "ALLMYSMS_MOCK_PRICING_JSON": '{"LC": {"default": 7, "44": 9}}',
        "ALLMYSMS_MOCK_MAIL_SMTP_PORT": "1025",
        "ALLMYSMS_MOCK_LOG_FORMAT": "json",
        "ALLMYSMS_MOCK_ACCOUNTS_JSON": '[{"login": "ci", "password": "ci", "credits": 3}]',
        "ALLMYSMS_MOCK_CONFIG": "/etc/allmysms.toml",  # read by the command line, not here
        "PATH": "/usr/bin",
    }
    config = load_config(env=env)
    assert config.server.ftp_port == 21
    assert config.server.passive_ports == (30000, 30009)
    assert config.server.data_dir == Path("/data")
    assert config.server.layout == "nested"
    assert config.limits.max_file_bytes == 100
    assert config.processing.delay_seconds == 1.5
    assert config.processing.recap_email is False
    assert config.processing.default_sender == "My Shop"
    assert config.processing.qualities == ("HQ", "LC")
    assert config.pricing.table == {
        "HQ": {"default": 15, "33": 15},  # not named by the variable: as before
        "LC": {"default": 7, "44": 9},
    }
    assert config.mail.smtp_port == 1025
    assert config.log.format == "json"
    assert [(a.login, a.credits) for a in config.accounts] == [("ci", 3)]


def test_base_config_is_kept_under_overrides() -> None:
    """`base=` lets the library apply flags to an existing Config (used by MockServer)."""
    base = load_config(env={}, overrides={"server.ftp_port": 0, "accounts": []})
    config = load_config(env={}, overrides={"limits.max_file_bytes": 10}, base=base)
    assert config.server.ftp_port == 0
    assert config.accounts == ()
    assert config.limits.max_file_bytes == 10


def test_pricing_sources_apply_one_quality_at_a_time(tmp_path: Path) -> None:
    """Contract 3 `[pricing]` and its precedence: each source replaces the qualities it names
    (keeping the earlier `default` when it gives none); a PriceTable override is taken whole,
    and `base`'s prices are kept under other overrides."""
    path = _write(tmp_path, '[pricing.HQ]\ndefault = 20\n"44" = 30\n[pricing.LC]\ndefault = 5\n')
    env = {"ALLMYSMS_MOCK_PRICING_JSON": '{"HQ": {"32": 25}}'}
    config = load_config(path, env=env, overrides={"pricing": {"LC": {"33": 4}}})
    assert config.pricing.table == {
        "HQ": {"default": 20, "32": 25},
        "LC": {"default": 5, "33": 4},
    }
    table = PriceTable({"HQ": {"default": 1}, "LC": {"default": 2}})
    base = load_config(env={}, overrides={"pricing": table})
    assert base.pricing == table
    assert load_config(env={}, overrides={"limits.max_file_bytes": 10}, base=base).pricing == table


INVALID: list[tuple[str, Any, str]] = [
    ("server.ftp_port", "abc", "server.ftp_port: must be an integer 0-65535, got 'abc'"),
    ("server.ftp_port", 70000, "server.ftp_port: must be an integer 0-65535"),
    ("server.sftp_port", -1, "server.sftp_port"),
    ("server.http_port", True, "server.http_port"),  # bool is not an int
    ("server.http_port", 1.5, "server.http_port"),
    ("server.host", "", "server.host"),
    ("server.passive_ports", "60099-60000", "server.passive_ports"),
    ("server.passive_ports", "80-90", "server.passive_ports"),
    ("server.passive_ports", "60000", "server.passive_ports"),
    ("server.passive_ports", [60000], "server.passive_ports"),
    ("server.passive_ports", "60000-70000", "server.passive_ports"),
    ("server.masquerade_address", "ftp.example.com", "server.masquerade_address"),
    ("server.masquerade_address", 7, "server.masquerade_address"),
    ("server.data_dir", "", "server.data_dir"),
    ("server.data_dir", 3, "server.data_dir"),
    ("server.layout", "deep", "server.layout: must be one of 'flat', 'nested'"),
    ("limits.max_file_bytes", 0, "limits.max_file_bytes"),
    ("limits.max_file_bytes", "8 Mo", "limits.max_file_bytes"),
    ("processing.delay_seconds", -1, "processing.delay_seconds"),
    ("processing.delay_seconds", float("nan"), "processing.delay_seconds"),
    ("processing.delay_seconds", False, "processing.delay_seconds"),
    ("processing.default_sender", "1A", "processing.default_sender"),
    ("processing.default_sender", "Expéditeur", "processing.default_sender"),
    ("processing.default_sender", "ABCDEFGHIJKL", "processing.default_sender"),
    ("processing.recap_email", "yes", "processing.recap_email: must be true or false"),
    ("processing.watch_mode", "inotify", "processing.watch_mode"),
    ("processing.poll_interval", 0, "processing.poll_interval"),
    ("processing.rescan_seconds", 0, "processing.rescan_seconds"),
    # Durations are capped at a day (86400 s): a huge wait overflows threading's timeout.
    ("processing.rescan_seconds", 1e10, "processing.rescan_seconds: must be a number > 0 and"),
    ("processing.poll_interval", 86_401, "processing.poll_interval"),
    ("processing.delay_seconds", 1e10, "processing.delay_seconds"),
    ("processing.pickup_delay_seconds", 1e10, "processing.pickup_delay_seconds"),
    ("processing.qualities", [], "processing.qualities: must be a non-empty list"),
    ("processing.qualities", "HQ", "processing.qualities: must be a non-empty list"),
    ("processing.qualities", ["HQ", "XQ"], "processing.qualities: must be"),
    ("processing.qualities", ["HQ", "HQ"], "processing.qualities: must be"),
    ("processing.qualities", ["hq"], "processing.qualities: must be"),
    ("pricing", {"HQ": {"3x": 1}}, 'pricing.HQ."3x": unknown key (expected "default" or a'),
    ("pricing", {"HQ": {"": 1}}, 'pricing.HQ."": unknown key'),
    ("pricing", {"HQ": {"1234567890123456": 1}}, 'pricing.HQ."1234567890123456": unknown key'),
    ("pricing", {"HQ": {"+44": 1}}, 'pricing.HQ."+44": unknown key'),
    ("pricing", {"HQ": {"44": -1}}, 'pricing.HQ."44": must be an integer 0-1000000, got -1'),
    ("pricing", {"HQ": {"44": 1.5}}, 'pricing.HQ."44": must be an integer'),
    ("pricing", {"HQ": {"44": True}}, 'pricing.HQ."44": must be an integer'),
    ("pricing", {"HQ": {"default": "15"}}, "pricing.HQ.default: must be an integer"),
    ("pricing", {"LC": {"default": 10**7}}, "pricing.LC.default: must be an integer 0-1000000"),
    ("pricing", {"MQ": {"default": 1}}, "pricing.MQ: unknown quality (expected one of HQ, LC)"),
    ("pricing", {"HQ": 15}, "pricing.HQ: must be a table of prices"),
    ("pricing", [15], "pricing: must be a table of quality tables"),
    ("mail.smtp_host", 5, "mail.smtp_host"),
    ("mail.smtp_port", 0, "mail.smtp_port"),
    ("log.level", "trace", "log.level"),
    ("log.format", "xml", "log.format"),
    ("server.ftpport", 21, "server.ftpport: unknown setting"),
    ("accounts", [{"login": "a"}], "accounts[0]: account 'a': give exactly one of password"),
    (
        "accounts",
        [{"login": "a", "password": "x", "password_hash": hash_password("x")}],
        "give exactly one of",
    ),
    ("accounts", [{"login": "../x", "password": "x"}], "accounts[0].login"),
    ("accounts", [{"login": "", "password": "x"}], "accounts[0].login"),
    ("accounts", [{"login": "a b", "password": "x"}], "accounts[0].login"),
    (
        "accounts",
        [{"login": "a", "password": "x"}, {"login": "a", "password": "y"}],
        "accounts[1].login: duplicate login 'a'",
    ),
    ("accounts", [{"login": "a", "password": ""}], "accounts[0].password"),
    ("accounts", [{"login": "a", "password_hash": "md5$x"}], "accounts[0].password_hash"),
    ("accounts", [{"login": "a", "password": "x", "credits": -1}], "accounts[0].credits"),
    ("accounts", [{"login": "a", "password": "x", "credits": 1.5}], "accounts[0].credits"),
    ("accounts", [{"login": "a", "password": "x", "credits": True}], "accounts[0].credits"),
    ("accounts", [{"login": "a", "password": "x", "subscription": 1}], "accounts[0].subscription"),
    ("accounts", [{"login": "a", "password": "x", "email": "nope"}], "accounts[0].email"),
    ("accounts", [{"login": "a", "password": "x", "mail": "a@b.c"}], "accounts[0].mail: unknown"),
    ("accounts", {"login": "a"}, "accounts: must be an array"),
]


@pytest.mark.parametrize(("key", "value", "message"), INVALID)
def test_every_invalid_value_is_one_line_naming_the_key(key: str, value: Any, message: str) -> None:
    """Contract 3: "A bad file or value stops start-up with one clear line naming the key"."""
    with pytest.raises(ConfigError) as exc:
        load_config(env={}, overrides={key: value})
    text = str(exc.value)
    assert text.startswith("config error: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nftp_port = 'x'\n", "config error: server.ftp_port: must be an integer"),
        ("[server]\nftpport = 21\n", "config error: server.ftpport: unknown key"),
        ("[serveur]\nftp_port = 21\n", "config error: serveur: unknown section"),
        ("server = 3\n", "config error: server: must be a table"),
        ("[server\n", "invalid TOML"),
        ("[[accounts]]\nlogin = 'a'\npassword = 'b'\ncredit = 3\n", "accounts[0].credit"),
        ('[pricing.HQ]\n"3x" = 15\n', 'config error: pricing.HQ."3x": unknown key'),
        ("[pricing.HQ]\n33 = -2\n", 'config error: pricing.HQ."33": must be an integer 0-'),
        ("[pricing]\nHQ = 15\n", "config error: pricing.HQ: must be a table of prices"),
        ("pricing = 15\n", "config error: pricing: must be a table of quality tables"),
        ("[pricing.hq]\ndefault = 1\n", "config error: pricing.hq: unknown quality"),
        ("[processing]\nqualities = 'HQ'\n", "config error: processing.qualities: must be"),
        ("[processing]\nqualities = ['LC', 'XX']\n", "config error: processing.qualities"),
        # Contract 9.2 `[[faults]]`: the rule's field, numbered from 0 like [[accounts]].
        (
            "[[faults]]\non = 'claim'\naction = 'stall'\nseconds = 1\n"
            "[[faults]]\non = 'judge'\naction = 'boom'\n",
            "config error: faults[1].action: must be one of: error, disconnect, delay,",
        ),
        ("[[faults]]\non = 'mail'\naction = 'crash'\ntimes = -1\n", "faults[0].times: must be"),
        ("[[faults]]\non = 'mail'\naction = 'stall'\n", "faults[0].action: 'stall' needs seconds"),
        ("[[faults]]\non = 'claim'\naction = 'crash'\nsec = 1\n", "faults[0]: unknown field"),
        # Issue 17 (Schemathesis): a table where a name goes was a TypeError, not this line.
        ("[[faults]]\non = 'login'\naction = {}\n", "faults[0].action: must be one of"),
        ("faults = 3\n", "config error: faults: must be an array of rule tables"),
    ],
)
def test_invalid_files(tmp_path: Path, text: str, message: str) -> None:
    """Contract 3: typos in the file are errors, never silently ignored."""
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text), env={})
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_faults_from_the_file_the_environment_and_overrides(tmp_path: Path) -> None:
    """Contract 9.2: "a `[[faults]]` table in the config file"; like `[[accounts]]` the list
    is given whole, and a later source (ALLMYSMS_MOCK_FAULTS_JSON, then an override such as
    `MockServer(faults=[...])`) replaces it. Every such rule is a start-up one (`from_config`,
    kept by a reset)."""
    path = _write(tmp_path, "[[faults]]\non = 'judge'\naction = 'verdict'\nreason = 'Empty_File'\n")
    (rule,) = load_config(path, env={}).faults
    assert (rule.on, rule.action, rule.reason, rule.times, rule.from_config) == (
        "judge",
        "verdict",
        "Empty_File",
        1,
        True,
    )
    env = {"ALLMYSMS_MOCK_FAULTS_JSON": '[{"on": "move", "action": "crash", "times": 0}]'}
    assert [(r.on, r.action) for r in load_config(path, env=env).faults] == [("move", "crash")]
    overrides = {"faults": [{"on": "mail", "action": "fail"}]}
    got = load_config(path, env=env, overrides=overrides).faults
    assert [(r.on, r.action, r.from_config) for r in got] == [("mail", "fail", True)]
    assert load_config(None, env={}).faults == ()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ALLMYSMS_MOCK_SERVER_FTP_PORT": "abc"},
            "config error: ALLMYSMS_MOCK_SERVER_FTP_PORT: must be an integer 0-65535, got 'abc'",
        ),
        ({"ALLMYSMS_MOCK_SERVER_FTPPORT": "21"}, "ALLMYSMS_MOCK_SERVER_FTPPORT: unknown variable"),
        ({"ALLMYSMS_MOCK_SERVR_HOST": "x"}, "ALLMYSMS_MOCK_SERVR_HOST: unknown variable"),
        ({"ALLMYSMS_MOCK_PROCESSING_RECAP_EMAIL": "maybe"}, "must be true or false"),
        ({"ALLMYSMS_MOCK_ACCOUNTS_JSON": "[{"}, "ALLMYSMS_MOCK_ACCOUNTS_JSON: invalid JSON"),
        (
            {"ALLMYSMS_MOCK_ACCOUNTS_JSON": '[{"login": "a"}]'},
            "ALLMYSMS_MOCK_ACCOUNTS_JSON[0]",
        ),
        ({"ALLMYSMS_MOCK_PRICING_JSON": "{"}, "ALLMYSMS_MOCK_PRICING_JSON: invalid JSON"),
        (
            {"ALLMYSMS_MOCK_PRICING_JSON": '{"HQ": {"3x": 1}}'},
            'config error: ALLMYSMS_MOCK_PRICING_JSON.HQ."3x": unknown key',
        ),
        ({"ALLMYSMS_MOCK_FAULTS_JSON": "["}, "ALLMYSMS_MOCK_FAULTS_JSON: invalid JSON"),
        (
            {"ALLMYSMS_MOCK_FAULTS_JSON": '[{"on": "judge", "action": "verdict"}]'},
            "config error: ALLMYSMS_MOCK_FAULTS_JSON[0].reason: must be one of: Incorrect_FileName",
        ),
        (
            {"ALLMYSMS_MOCK_PROCESSING_QUALITIES": "HQ,,LC"},
            "config error: ALLMYSMS_MOCK_PROCESSING_QUALITIES: must be a non-empty list",
        ),
    ],
)
def test_invalid_env_names_the_variable(env: dict[str, str], message: str) -> None:
    """Contract 3 (environment): the error names the variable the user has to fix."""
    with pytest.raises(ConfigError) as exc:
        load_config(env=env)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_config_is_frozen() -> None:
    config = load_config(env={})
    with pytest.raises(AttributeError):
        config.server.ftp_port = 1  # type: ignore[misc]


def test_hash_round_trip_and_format() -> None:
    """`password_hash`: scrypt (n=2**14, r=8, p=1), random 16-byte salt, constant-time check."""
    first = hash_password("pässwörd")
    second = hash_password("pässwörd")
    assert first != second  # salted
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) == 24  # 16 bytes, base64
    assert len(digest) == 44  # 32 bytes, base64
    assert verify_password("pässwörd", first)
    assert verify_password("pässwörd", second)
    assert not verify_password("passwörd", first)
    assert not verify_password("", first)
    assert not verify_password("x", "scrypt$16384$8$1$bad$bad")
    assert not verify_password("x", "scrypt$3$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==")
    assert not verify_password("x", "not a hash")


def test_static_authenticator() -> None:
    """The brief: servers ask on every login; accounts can be added and passwords changed at
    run time, from any thread."""
    auth = StaticAuthenticator(
        [
            AccountConfig(login="plain", password="p1"),
            AccountConfig(login="hashed", password_hash=hash_password("p2")),
        ]
    )
    assert isinstance(auth, Authenticator)
    assert auth.authenticate("plain", "p1")
    assert not auth.authenticate("plain", "P1")
    assert auth.authenticate("hashed", "p2")
    assert not auth.authenticate("hashed", "p1")
    assert not auth.authenticate("nobody", "p1")
    assert auth.exists("plain")
    assert not auth.exists("nobody")
    auth.add(AccountConfig(login="new", password="n"))
    assert auth.authenticate("new", "n")
    with pytest.raises(ValueError, match="already exists"):
        auth.add(AccountConfig(login="new", password="n"))
    with pytest.raises(ValueError, match="invalid login"):
        auth.add(AccountConfig(login="../x", password="n"))
    auth.set_password("hashed", "changed")
    assert auth.authenticate("hashed", "changed")
    assert not auth.authenticate("hashed", "p2")
    with pytest.raises(KeyError):
        auth.set_password("nobody", "x")
    auth.remove("new")
    assert not auth.exists("new")
    auth.replace_all([AccountConfig(login="only", password="o")])
    assert auth.logins() == ("only",)

    errors: list[BaseException] = []

    def hammer(i: int) -> None:
        try:
            for j in range(50):
                auth.add(AccountConfig(login=f"t{i}-{j}", password="x"))
                assert auth.authenticate(f"t{i}-{j}", "x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(auth.logins()) == 201


def test_hash_password_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Contract 2: `allmysms-mock hash-password` reads stdin and prints the hash."""
    from mockserver.commands import hash_password as command

    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert command.run(None) == 0  # type: ignore[arg-type]
    assert verify_password("s3cret", out.getvalue().strip())

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert command.run(None) == 2  # type: ignore[arg-type]
    assert "no password" in err.getvalue()


def test_hash_password_command_line() -> None:
    """The console entry point, as a user types it: `echo pw | allmysms-mock hash-password`."""
    done = subprocess.run(
        [sys.executable, "-m", "mockserver", "hash-password"],
        input="from-pipe\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert verify_password("from-pipe", done.stdout.strip())


def test_short_keys_name_their_section() -> None:
    from mockserver.config import SETTINGS, dotted_key

    short = {s.key: s.section for s in SETTINGS if s.short}
    assert short == {
        **dict.fromkeys(
            [
                "delay_seconds",
                "pickup_delay_seconds",
                "default_sender",
                "recap_email",
                "qualities",
                "watch_mode",
                "poll_interval",
                "rescan_seconds",
                "mode",
                "clock",
            ],
            "processing",
        ),
        **dict.fromkeys(
            [
                "max_file_bytes",
                "max_connections",
                "max_connections_per_ip",
                "idle_timeout_seconds",
                "login_timeout_seconds",
                "login_failure_delay_seconds",
                "max_login_attempts",
                "login_lockout_failures",
                "login_lockout_seconds",
                "max_http_connections",
            ],
            "limits",
        ),
        **dict.fromkeys(
            ["layout", "host", "passive_ports", "masquerade_address", "api_token"], "server"
        ),
    }
    assert dotted_key("delay_seconds") == "processing.delay_seconds"
    assert dotted_key("mail.smtp_port") == "mail.smtp_port"
    assert dotted_key("qualities") == "processing.qualities"
    # The tables given whole keep their name (`MockServer(pricing={...})`).
    assert (dotted_key("pricing"), dotted_key("accounts")) == ("pricing", "accounts")
    with pytest.raises(ConfigError, match=r"^config error: ftp_port: unknown setting$"):
        dotted_key("ftp_port")


def test_every_setting_has_an_environment_variable_and_the_serve_flags_are_fixed() -> None:
    from mockserver.config import SETTINGS

    assert all(s.env == f"ALLMYSMS_MOCK_{s.section}_{s.key}".upper() for s in SETTINGS)
    flags = {s.flag.name: s.dotted for s in SETTINGS if s.flag is not None}
    assert flags == {
        "--data-dir": "server.data_dir",
        "--host": "server.host",
        "--ftp-port": "server.ftp_port",
        "--sftp-port": "server.sftp_port",
        "--http-port": "server.http_port",
        "--log-format": "log.format",
        "--log-level": "log.level",
    }


def test_flag_overrides_follow_the_flags_order_so_the_first_bad_one_is_reported() -> None:
    """`serve --data-dir ' ' --ftp-port 70000` names `server.data_dir`, as it always did."""
    import argparse

    from mockserver.config import ConfigError, add_flags, flag_overrides, load_config

    parser = argparse.ArgumentParser()
    add_flags(parser)
    args = parser.parse_args(["--ftp-port", "70000", "--log-level", "debug", "--data-dir", " "])
    overrides = flag_overrides(args)
    assert list(overrides) == ["server.data_dir", "server.ftp_port", "log.level"]
    with pytest.raises(ConfigError, match=r"server\.data_dir"):
        load_config(None, env={}, overrides=overrides)


@pytest.mark.parametrize(
    "toml",
    [
        '[[accounts]]\nlogin = "demo\\n"\npassword = "y"\n',
        '[[accounts]]\nlogin = "demo"\npassword = "y"\nemail = "a@example.com\\n"\n',
        '[processing]\ndefault_sender = "ACME\\n"\n',
    ],
    ids=["login", "email", "sender"],
)
def test_a_value_ending_in_a_newline_is_refused(tmp_path: Path, toml: str) -> None:
    """Issue 16: the patterns match the whole value (`re.fullmatch`): a `$` would accept a
    trailing `\\n`, which then splits log lines and headers."""
    with pytest.raises(ConfigError):
        load_config(_write(tmp_path, toml), env={})


def test_a_login_ending_in_a_newline_is_not_a_login() -> None:
    """Issue 16: `valid_login` (the HTTP API, the FTP/SFTP authorizers and the store) refuses
    `demo\\n`, and the HTTP API's login field with it."""
    from mockserver.servers.http.validation import BadRequest, email_field, login_field
    from mockserver.tree import valid_login

    assert valid_login("demo")
    assert not valid_login("demo\n")
    with pytest.raises(BadRequest):
        login_field("demo\n")
    with pytest.raises(BadRequest):
        email_field("a@example.com\n")
