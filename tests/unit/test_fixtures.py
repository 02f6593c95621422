"""The committed `fixtures/` against the rules, and the generator behind them (contract 2).

`fixtures/expected.json` was written from the contract (what each row was built to be), not
from the rule engine's output, so a disagreement here is a real finding.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import faker
import pytest

from mockserver import fixtures as gen
from mockserver.cli import main
from mockserver.core.models import Reason

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = EXPECTED["cases"]
NOW = "2030-01-01T00:00:00"
# Contract 5.4.1, the drop-file name grammar.
NAME = re.compile(r"^[A-Za-z0-9]+_\d{14}_(HQ|LC)(_MULT)?\.csv$")


def case_id(case: dict[str, Any]) -> str:
    return case["kind"] + ("[" + " ".join(case["args"]) + "]" if case["args"] else "")


def run_check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(["check", "--json", "--now", NOW, *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, json.loads(out)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fixture_gets_the_expected_verdict(case, capsys):
    """Each committed fixture gets the verdict the contract gives it (contract 5.3 to 5.9;
    the case's description says which rule it pins)."""
    code, (got,) = run_check(capsys, *case["args"], str(FIXTURES / case["file"]))
    assert got["original_name"] == case["file"]
    assert (got["status"], got["reason"], got["final_name"]) == (
        case["status"],
        case["reason"],
        case["final_name"],
    )
    assert code == (0 if case["status"] == "archived" else 1)
    assert got["sms_count"] == case["sms_count"]
    # Contract 5.4.4: an archived file costs 15 credits a SMS (default table), an invalid 0.
    assert (
        got["cost"]
        == case["cost"]
        == (15 * case["sms_count"] if got["status"] == "archived" else 0)
    )
    if "rows" in case:
        assert got["rows"] == case["rows"]
    if "rejected" in case:
        assert [(r["line"], r["error"]) for r in got["rejected"]] == [
            (r["line"], r["error"]) for r in case["rejected"]
        ]
    if "sms" in case:
        keys = ("line", "phone", "message", "sender_asked", "sender_applied", "septets", "price")
        got_sms = sorted(got["sms"], key=lambda s: s["line"])
        for want, have in zip(case["sms"], got_sms, strict=True):
            assert {k: have[k] for k in keys} == {k: want[k] for k in keys}
            assert sorted(have["warnings"]) == sorted(want["warnings"]), want["line"]


def test_expected_json_lists_every_committed_file():
    files = {p.name for p in FIXTURES.iterdir() if p.name != "expected.json"}
    assert files == {c["file"] for c in CASES}
    assert {c["kind"] for c in CASES} == set(gen.SMALL_KINDS)


def test_committed_fixtures_are_what_the_generator_writes():
    """The committed files are `allmysms-mock fixtures --kind small` output for the recorded
    seed (Faker only promises the same data for the same Faker version)."""
    if EXPECTED["faker_version"] != faker.VERSION:
        pytest.skip(f"fixtures made with Faker {EXPECTED['faker_version']}, not {faker.VERSION}")
    made = gen.generate_many(gen.SMALL_KINDS, seed=EXPECTED["seed"], rows=EXPECTED["rows"])
    for fx in made:
        assert (FIXTURES / fx.name).read_bytes() == fx.data, fx.kind
    assert gen.expected_document(made, seed=EXPECTED["seed"], rows=EXPECTED["rows"]) == EXPECTED


def test_same_seed_same_bytes_other_seed_other_bytes():
    """Contract 2: "deterministic for a given seed"; names carry a seed-derived date, not today."""
    first = gen.generate_many(gen.SMALL_KINDS, seed=7, rows=5)
    again = gen.generate_many(gen.SMALL_KINDS, seed=7, rows=5)
    other = gen.generate_many(gen.SMALL_KINDS, seed=8, rows=5)
    assert [(f.name, f.data) for f in first] == [(f.name, f.data) for f in again]
    for a, b in zip(first, other, strict=True):
        assert (a.name, a.data) != (b.name, b.data), a.kind
    assert gen.send_stamp(7) == gen.send_stamp(7) != gen.send_stamp(8)


def test_one_kind_alone_is_the_same_as_within_all():
    """`--kind X` writes the very file X is in the full set (a seed per kind)."""
    alone = gen.generate("duplicates", seed=3)
    within = {f.kind: f for f in gen.generate_many(gen.SMALL_KINDS, seed=3)}["duplicates"]
    assert (alone.name, alone.data) == (within.name, within.data)


def test_names_follow_the_grammar_except_the_bad_name_cases():
    """Manual 4.2 "Le nom de fichier doit correspondre au formalisme suivant" (contract 5.4.1);
    an `_LC` name is Incorrect_FileName under the default qualities (contract 3)."""
    for fx in gen.generate_many(gen.SMALL_KINDS, seed=11):
        bad = fx.kind in {"bad_name", "bad_date", "lc"}
        assert bool(NAME.match(fx.name)) is (fx.kind != "bad_name"), fx.name
        assert (fx.expectations[0].reason is Reason.INCORRECT_FILENAME) is bad


def test_large_is_within_the_limit_and_close_to_it():
    """Manual 4.1: "la taille maximale des fichiers déposés ne doit pas dépasser 8 Mo"
    (contract 3: 8,000,000 bytes); the large fixture sits right on the limit."""
    fx = gen.generate("large")
    assert len(fx.data) <= gen.DEFAULT_MAX_BYTES
    assert len(fx.data) >= gen.DEFAULT_MAX_BYTES - 1_000
    lines = fx.data.split(b"\n")
    assert lines[-1] == b""
    assert len(lines) - 1 == fx.expectations[0].sms_count
    phones = {line.split(b";", 1)[0] for line in lines[:-1]}
    assert len(phones) == len(lines) - 1  # unique numbers: no dedup shrinks it


def test_fixtures_command_writes_files_and_expected_json(tmp_path, capsys):
    """`allmysms-mock fixtures --out DIR --kind ... --max-bytes N` prints what it wrote."""
    code = main(
        [
            "fixtures",
            "--out",
            str(tmp_path),
            "--kind",
            "valid",
            "--kind",
            "large",
            "--max-bytes",
            "50000",
            "--seed",
            "5",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    doc = json.loads((tmp_path / "expected.json").read_text(encoding="utf-8"))
    assert sorted(c["file"] for c in doc["cases"]) == sorted(set(written) - {"expected.json"})
    large = next(c for c in doc["cases"] if c["kind"] == "large")
    assert 49_000 <= (tmp_path / large["file"]).stat().st_size <= 50_000
    for name in written:
        assert name in out


def test_fixtures_command_small_skips_large(tmp_path, capsys):
    assert main(["fixtures", "--out", str(tmp_path), "--kind", "small", "--rows", "3"]) == 0
    capsys.readouterr()
    assert not list(tmp_path.glob("Large_*"))
    assert len(list(tmp_path.glob("*.csv"))) == len(gen.SMALL_KINDS)
