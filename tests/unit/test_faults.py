"""Fault rules (contract 9.2): how they are read, matched and counted. `times` and a seeded
`probability` are exact and reproducible; a bad rule is one clear error naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.faults import FaultError, parse_rule
from mockserver.events import EventBus, FaultFired
from mockserver.faults import Faults
from mockserver.views import event_view


def test_a_rule_with_defaults() -> None:
    """Contract 9.2: protocol `any`, any login, any name, FTP code 451, times 1."""
    rule = parse_rule({"on": "upload", "action": "error"})
    assert (rule.protocol, rule.login, rule.name, rule.code, rule.times) == (
        "any",
        None,
        None,
        451,
        1,
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"on": "upload"}, "action"),
        ({"action": "error"}, "on"),
        ({"on": "upload", "action": "error", "colour": 1}, "colour"),
        ({"on": "judge", "action": "error"}, "applies to"),
        ({"on": "upload", "action": "verdict", "reason": "Empty_File"}, "applies to"),
        ({"on": "judge", "action": "verdict"}, "reason"),
        ({"on": "judge", "action": "verdict", "reason": "Nope"}, "reason"),
        ({"on": "upload", "action": "delay"}, "seconds"),
        ({"on": "upload", "action": "delay", "seconds": -1}, "seconds"),
        ({"on": "upload", "action": "truncate"}, "bytes"),
        ({"on": "upload", "action": "error", "protocol": "http"}, "protocol"),
        ({"on": "claim", "action": "stall", "seconds": 1, "protocol": "ftp"}, "protocol"),
        ({"on": "upload", "action": "error", "times": 2, "probability": 0.5}, "times"),
        ({"on": "upload", "action": "error", "seed": 3}, "seed"),
        ({"on": "upload", "action": "error", "probability": 2}, "probability"),
        ({"on": "upload", "action": "error", "code": 200}, "code"),
        ({"on": "upload", "action": "disconnect", "code": 452}, "code"),
        ({"on": "upload", "action": "error", "times": True}, "times"),
        # Every field that would be silently ignored is refused (a new user's trial).
        ({"on": "mail", "action": "fail", "seconds": 3}, "seconds"),
        ({"on": "upload", "action": "error", "bytes": 3}, "bytes"),
        ({"on": "upload", "action": "disconnect", "message": "bye"}, "message"),
        # Issue 17 (Schemathesis): an unhashable action was a TypeError (a 500 over HTTP).
        ({"on": "login", "action": {}}, "action must be one of"),
        ({"on": "login", "action": ["error"]}, "action must be one of"),
        ({"on": {}, "action": "error"}, "on must be one of"),
        # JSON null is no value: not "leave it out" (docs/spec.md 9.2).
        ({"on": "upload", "action": "error", "seed": None, "probability": 0.5}, "seed"),
        ({"on": "upload", "action": "error", "login": None}, "login must not be null"),
        ({"on": "upload", "action": "error", "times": 2.5}, "times"),
    ],
)
def test_a_bad_rule_names_its_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(FaultError, match=field):
        parse_rule(data)


def test_whole_numbers_may_be_written_with_a_point() -> None:
    """docs/spec.md 9.2: a whole number is one in JSON Schema's sense (the OpenAPI document's
    `"type": "integer"`): `2.0` is 2, as a generated client may send it; `true` is not 1."""
    rule = parse_rule({"on": "upload", "action": "error", "code": 452.0, "times": 2.0})
    assert (rule.code, rule.times) == (452, 2)
    assert type(rule.code) is int
    assert type(rule.times) is int
    with pytest.raises(FaultError, match="times"):
        parse_rule({"on": "upload", "action": "error", "times": float("inf")})


def test_matching_by_operation_protocol_login_and_glob() -> None:
    rule = parse_rule(
        {"on": "upload", "action": "error", "protocol": "ftp", "login": "acme", "name": "*.csv"}
    )
    assert rule.matches("upload", protocol="ftp", login="acme", name="A_20301231120000_HQ.csv")
    assert not rule.matches("upload", protocol="sftp", login="acme", name="a.csv")
    assert not rule.matches("upload", protocol="ftp", login="demo", name="a.csv")
    assert not rule.matches("upload", protocol="ftp", login="acme", name="a.tmp")
    assert not rule.matches("rename", protocol="ftp", login="acme", name="a.csv")


def test_name_glob_matches_the_base_name_or_with_a_slash_the_path() -> None:
    """docs/spec.md "Protocol faults": `name` globs match the base name of the operation's path
    (`x.csv` of `/SEND_SMS/x.csv`), or the whole path when the glob holds a `/`."""
    base = parse_rule({"on": "upload", "action": "error", "name": "x.csv"})
    assert base.matches("upload", name="/SEND_SMS/x.csv")
    assert base.matches("upload", name="x.csv")
    assert not base.matches("upload", name="/SEND_SMS/y.csv")
    path = parse_rule({"on": "delete", "action": "error", "name": "/ARCHIVES/*"})
    assert path.matches("delete", name="/ARCHIVES/x.csv")
    assert not path.matches("delete", name="/SEND_SMS/x.csv")


@given(times=st.integers(1, 20), attempts=st.integers(0, 40))
def test_times_fires_exactly(times: int, attempts: int) -> None:
    """Contract 9.2: `times`: "how many matching operations it fires on"."""
    faults = Faults()
    faults.add({"on": "upload", "action": "error", "times": times})
    fired = sum(faults.fire("upload") is not None for _ in range(attempts))
    assert fired == min(times, attempts)
    assert faults.rules()[0]["fired"] == fired


def test_times_zero_fires_until_removed() -> None:
    faults = Faults()
    rule = faults.add({"on": "delete", "action": "error", "times": 0})
    assert all(faults.fire("delete") for _ in range(50))
    assert faults.remove(rule.id)
    assert faults.fire("delete") is None


@settings(max_examples=50)
@given(seed=st.integers(0, 2**32), p=st.floats(0.05, 0.95))
def test_same_seed_same_sequence(seed: int, p: float) -> None:
    """Contract 9.2: "fire with this probability, from this seed (same seed, same sequence)"."""

    def run() -> list[bool]:
        faults = Faults()
        faults.add({"on": "upload", "action": "error", "probability": p, "seed": seed})
        return [faults.fire("upload") is not None for _ in range(200)]

    first = run()
    assert first == run()
    assert 0 < sum(first) < 200 or p in (0.0, 1.0) or sum(first) in (0, 200)


def test_a_non_matching_operation_draws_nothing() -> None:
    """Only matching operations consume draws: an unrelated operation in between does not
    change the sequence a seed gives."""
    rule = {"on": "upload", "action": "error", "probability": 0.5, "seed": 7}
    a, b = Faults(), Faults()
    a.add(rule)
    b.add(rule)
    seq_a = [a.fire("upload") is not None for _ in range(100)]
    seq_b = []
    for _ in range(100):
        b.fire("rename")
        seq_b.append(b.fire("upload") is not None)
    assert seq_a == seq_b


def test_firing_publishes_fault_fired() -> None:
    """Contract 9.2: "every firing is a `fault.fired` event"."""
    bus = EventBus()
    faults = Faults(bus)
    seen: list[FaultFired] = []
    bus.subscribe(lambda e: seen.append(e) if isinstance(e, FaultFired) else None)
    rule = faults.add({"on": "upload", "action": "error", "code": 452})
    assert faults.fire("upload", protocol="ftp", login="demo", name="/SEND_SMS/a.csv") == rule
    assert faults.fire("upload", protocol="ftp", login="demo") is None
    assert len(seen) == 1
    view = event_view(seen[0])
    assert view["type"] == "fault.fired"
    assert (view["login"], view["rule_id"], view["on"], view["protocol"]) == (
        "demo",
        rule.id,
        "upload",
        "ftp",
    )


def test_reset_keeps_the_config_files_rules_only() -> None:
    """Contract 9.2: "A reset removes every rule added at run time"."""
    config_rule = parse_rule({"on": "mail", "action": "fail", "times": 1}, from_config=True)
    faults = Faults(rules=[config_rule])
    faults.add({"on": "upload", "action": "error"})
    assert faults.fire("mail")
    faults.reset()
    listed = faults.rules()
    assert [r["on"] for r in listed] == ["mail"]
    assert listed[0]["fired"] == 0
    assert listed[0]["source"] == "config"
    assert faults.fire("mail")


@pytest.mark.parametrize("how", ["clear", "remove"])
def test_a_reset_brings_back_the_config_rules_a_test_removed(how: str) -> None:
    """Contract 9.2: a reset keeps the config file's rules: a test that cleared them must not
    take them from every later test (the fixture resets between tests; a new user's trial
    found them gone for good)."""
    config_rule = parse_rule({"on": "mail", "action": "fail", "times": 1}, from_config=True)
    faults = Faults(rules=[config_rule])
    if how == "clear":
        faults.clear()
    else:
        assert faults.remove(faults.rules()[0]["id"])
    assert faults.rules() == []
    faults.reset()
    assert [(r["on"], r["source"], r["fired"]) for r in faults.rules()] == [("mail", "config", 0)]
    assert faults.fire("mail")


def test_a_probability_without_seed_is_seed_zero() -> None:
    """Contract 9.2: faults are deterministic: a probability with no seed draws as seed 0."""
    unseeded = parse_rule({"on": "upload", "action": "error", "probability": 0.5})
    assert unseeded.seed == 0
    a, b = Faults(), Faults()
    a.add({"on": "upload", "action": "error", "probability": 0.5})
    b.add({"on": "upload", "action": "error", "probability": 0.5, "seed": 0})
    assert [a.fire("upload") is not None for _ in range(64)] == [
        b.fire("upload") is not None for _ in range(64)
    ]


def test_an_sftp_rule_lists_no_ftp_code() -> None:
    """Contract 9.2: the `code` is the FTP reply's; an SFTP rule answers SSH_FX_FAILURE."""
    faults = Faults()
    faults.add({"on": "upload", "action": "error", "protocol": "sftp"})
    faults.add({"on": "upload", "action": "error"})
    assert ["code" in r for r in faults.rules()] == [False, True]
