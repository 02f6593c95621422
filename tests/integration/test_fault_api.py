"""`/api/faults` (contract 6 and 9.2): add, list with `fired` counts, remove one, remove all;
bad rules are a 400 naming the field; a reset removes the rules added at run time and keeps
the config file's; `srv.faults` (contract 7) is the same list from Python.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockserver.app import MockServer
from mockserver.core.faults import FaultError
from mockserver.faults import MAX_RULES
from tests.support.http import call
from tests.support.serve import csv_rows, ftp_drop

CONFIG_RULE = {"on": "judge", "action": "verdict", "reason": "Empty_File", "name": "Never*"}


@pytest.fixture
def srv() -> Iterator[MockServer]:
    with MockServer(faults=[CONFIG_RULE]) as server:
        yield server


def test_post_answers_201_with_the_rule_and_its_id(srv: MockServer) -> None:
    """Contract 9.2: "`POST` answers `201` with the rule and its `id`"; `GET` lists every rule
    in force, the config file's first, each with its `fired` count and where it came from."""
    added = call(srv, "POST", "/api/faults", {"on": "claim", "action": "stall", "seconds": 2})
    assert added.status == 201, added.body
    assert added.body.endswith(b"\n")
    assert added.json == {
        "id": 2,
        "on": "claim",
        "action": "stall",
        "seconds": 2.0,
        "times": 1,
        "fired": 0,
        "source": "api",
    }
    listed = call(srv, "GET", "/api/faults")
    assert listed.status == 200
    assert [(f["id"], f["source"]) for f in listed.json["faults"]] == [(1, "config"), (2, "api")]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"on": "claim"}, "action must be one of"),
        ({"on": "upload", "action": "verdict", "reason": "Empty_File"}, "action 'verdict'"),
        ({"on": "judge", "action": "verdict", "reason": "Nope"}, "reason must be one of"),
        ({"on": "claim", "action": "stall"}, "needs seconds"),
        ({"on": "claim", "action": "stall", "seconds": -1}, "seconds must be a number"),
        ({"on": "mail", "action": "fail", "times": 1, "probability": 0.5}, "times or probability"),
        ({"on": "mail", "action": "fail", "colour": "red"}, "unknown field 'colour'"),
        ({"on": "claim", "action": "crash", "protocol": "ftp"}, "protocol applies"),
        ([], "the body must be a JSON object"),
        # Issue 17 (Schemathesis): a 500 (an unhashable action), now the 400 of any bad action.
        ({"on": "login", "action": {}}, "action must be one of"),
        ({"on": "mail", "action": "fail", "seed": None}, "seed must not be null"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field(srv: MockServer, rule: object, field: str) -> None:
    """Contract 6: "bad body → 400"; the sentence names what is wrong; nothing is added."""
    answer = call(srv, "POST", "/api/faults", rule)
    assert answer.status == 400, answer.body
    assert field in answer.json["error"]
    assert len(call(srv, "GET", "/api/faults").json["faults"]) == 1


def test_too_many_rules_is_a_409(srv: MockServer) -> None:
    """The list is bounded (mockserver.faults.MAX_RULES): one more is refused, not stored."""
    for _ in range(MAX_RULES - 1):
        srv.faults.add(on="mail", action="fail", name="Nothing*")
    answer = call(srv, "POST", "/api/faults", {"on": "mail", "action": "fail"})
    assert answer.status == 409, answer.body
    assert str(MAX_RULES) in answer.json["error"]
    assert len(srv.faults.list()) == MAX_RULES


def test_delete_one_then_all(srv: MockServer) -> None:
    """`DELETE /api/faults/{id}` answers the rule removed, 404 for an unknown id;
    `DELETE /api/faults` removes every rule, the config file's too."""
    rule = srv.faults.add(on="move", action="crash")
    removed = call(srv, "DELETE", f"/api/faults/{rule['id']}")
    assert (removed.status, removed.json["id"]) == (200, rule["id"])
    for unknown in (str(rule["id"]), "999", "abc"):
        missing = call(srv, "DELETE", f"/api/faults/{unknown}")
        assert missing.status == 404, unknown
        assert missing.json == {"error": f"no fault rule with id '{unknown}'"}
    srv.faults.add(on="move", action="crash")
    cleared = call(srv, "DELETE", "/api/faults")
    assert (cleared.status, cleared.json) == (200, {"removed": 2})
    assert call(srv, "GET", "/api/faults").json == {"faults": []}


def test_fired_counts_and_reset_keeps_the_config_rules(srv: MockServer) -> None:
    """Contract 9.2: "`GET` lists rules with `fired` counts"; "A reset removes every rule added
    at run time": the config file's rule stays, its count back to 0."""
    call(srv, "POST", "/api/faults", {"on": "claim", "action": "stall", "seconds": 0, "times": 0})
    srv.faults.add(on="judge", action="verdict", reason="Empty_File", name="Never*")
    for i in range(3):
        name = f"Count{i}_20300716120000_HQ.csv"
        ftp_drop(srv.ftp_port, name, csv_rows(1, start=i))
        srv.wait_for_file(name, timeout=10)
    never = "Never_20300716120000_HQ.csv"
    ftp_drop(srv.ftp_port, never, csv_rows(1))
    assert srv.wait_for_file(never, timeout=10)["reason"] == "Empty_File"
    listed = call(srv, "GET", "/api/faults").json["faults"]
    fired = [(f["id"], f["source"], f["fired"]) for f in listed]
    assert fired == [(1, "config", 1), (2, "api", 4), (3, "api", 0)]

    assert call(srv, "POST", "/api/reset").status == 200
    kept = call(srv, "GET", "/api/faults").json["faults"]
    assert [(f["id"], f["source"], f["fired"]) for f in kept] == [(1, "config", 0)]


def test_srv_faults_from_python(srv: MockServer) -> None:
    """Contract 7: `srv.faults.add(**rule)` (the rule with its id, or a ValueError naming the
    field), `srv.faults.clear()`; and `remove(id)`, `list()`, as the API shows them."""
    rule = srv.faults.add(on="mail", action="fail", login="demo")
    assert rule == {
        "id": 2,
        "on": "mail",
        "action": "fail",
        "login": "demo",
        "times": 1,
        "fired": 0,
        "source": "api",
    }
    assert srv.faults.list() == call(srv, "GET", "/api/faults").json["faults"]
    with pytest.raises(FaultError, match="reason must be one of"):
        srv.faults.add(on="judge", action="verdict")
    assert srv.faults.remove(rule["id"]) is True
    assert srv.faults.remove(rule["id"]) is False
    assert srv.faults.clear() == 1
    assert srv.faults.list() == []
