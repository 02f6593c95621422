"""`allmysms-mock check` (contract 2): verdicts offline, exit codes, output a user can act on."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mockserver import fixtures as gen
from mockserver.cli import main

NOW = "2030-01-01T00:00:00"  # before every fixture's send date (2030, seed-derived)


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", "--now", NOW, *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write(tmp_path: Path, kind: str, **kw: int) -> Path:
    fx = gen.generate(kind, **kw)
    path = tmp_path / fx.name
    path.write_bytes(fx.data)
    return path


def drop(tmp_path: Path, data: bytes, name: str = "Essai_20300710143000_HQ.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_valid_file_exits_0_and_names_the_archive(tmp_path, capsys):
    """Contract 5.3: archived name `TreatedByMSI_<original name>`; contract 2: exit 0."""
    path = write(tmp_path, "valid")
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert f"ARCHIVES/TreatedByMSI_{path.name}" in out
    assert "10 SMS" in out
    assert "send date 2030-07-10 14:30:00 Europe/Paris" in out


def test_invalid_file_exits_1_with_reason_in_the_name(tmp_path, capsys):
    """Contract 5.3: invalid name `TreatedByMSI_<Reason>_<original name>`; exit 1."""
    path = write(tmp_path, "bad_name")
    code, out, _ = check(capsys, str(path))
    assert code == 1
    assert f"INVALIDS/TreatedByMSI_Incorrect_FileName_{path.name}" in out
    assert "Incorrect_FileName" in out


def test_rejected_rows_are_listed_with_their_line(tmp_path, capsys):
    """Contract 2: every rejected row with its line number and reason."""
    path = write(tmp_path, "landlines")
    code, out, _ = check(capsys, str(path))
    assert code == 0
    for line in (2, 4, 6, 8, 10, 12, 14):
        assert f"line {line}: " in out
    assert "landline" in out


def test_warnings_are_listed_per_sms(tmp_path, capsys):
    """Contract 5.9: a sender without the STOP mention is not applied, with a warning."""
    path = write(tmp_path, "sender_no_stop")
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert "warnings (14)" in out
    assert "line 1: sender_not_applied_no_stop_mention" in out
    # Contract 5.9: "a warning that names the near miss when there is one".
    assert "line 12: sender_not_applied_stop_mention_not_separated" in out
    assert "line 13: sender_not_applied_stop_mention_case" in out
    assert "line 14: sender_not_applied_stop_mention_punctuation" in out


def test_several_files_exit_1_when_one_is_invalid(tmp_path, capsys):
    """Contract 2: exit 0 only when every file would be archived."""
    good = write(tmp_path, "valid")
    bad = drop(tmp_path, b"", "Vide_20300710143000_HQ.csv")
    code, out, _ = check(capsys, str(good), str(bad))
    assert code == 1
    assert "2 files checked: 1 would be archived, 1 would not" in out


def test_json_output_is_one_document_per_file_with_path(tmp_path, capsys):
    """Contract 2 `--json`: a list of verdicts (Verdict.to_dict) plus the path, for scripts."""
    good = write(tmp_path, "valid")
    bad = write(tmp_path, "empty")
    code, out, _ = check(capsys, "--json", str(good), str(bad))
    assert code == 1
    doc = json.loads(out)
    assert [d["path"] for d in doc] == [str(good), str(bad)]
    assert doc[0]["status"] == "archived"
    assert doc[0]["sms_count"] == len(doc[0]["sms"]) == 10
    assert doc[1]["reason"] == "Empty_File"


def test_credits_0_gives_not_enough_credits(tmp_path, capsys):
    """Contract 5.4.4: `Not_enough_credits` when subscription = false and credits < SMS."""
    path = write(tmp_path, "valid")
    code, out, _ = check(capsys, "--credits", "0", str(path))
    assert code == 1
    assert f"TreatedByMSI_Not_enough_credits_{path.name}" in out


def test_subscription_is_never_short_of_credits(tmp_path, capsys):
    """Contract 3: `subscription = true`: billed at month end, never Not_enough_credits."""
    path = write(tmp_path, "valid")
    code, _, _ = check(capsys, "--credits", "0", "--subscription", str(path))
    assert code == 0


def test_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    """Contract 2: exit 2 on usage errors; infrastructure errors are one clear line."""
    code, out, err = check(capsys, str(tmp_path / "nope_20300710143000_HQ.csv"))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "nope_20300710143000_HQ.csv" in err
    assert "no such file" in err


def test_directory_is_one_line_and_exit_2(tmp_path, capsys):
    code, out, err = check(capsys, str(tmp_path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "directory" in err


def test_bad_option_value_is_a_usage_error(tmp_path, capsys):
    """argparse exits 2 on a usage error (contract 2)."""
    path = write(tmp_path, "valid")
    with pytest.raises(SystemExit) as exc:
        main(["check", "--credits", "-1", str(path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["check", "--now", "tomorrow", str(path)])
    assert exc.value.code == 2
    capsys.readouterr()


def test_empty_file_is_empty_file(tmp_path, capsys):
    """Manual 4.3: "Empty_File : Fichier vide ou ne contenant aucun numéro valide"."""
    path = drop(tmp_path, b"")
    code, out, _ = check(capsys, str(path))
    assert code == 1
    assert f"TreatedByMSI_Empty_File_{path.name}" in out


def test_binary_garbage_gets_a_verdict(tmp_path, capsys):
    """Any bytes get a verdict, never a traceback (judge never raises)."""
    path = drop(tmp_path, random.Random(1).randbytes(20_000))
    code, out, _ = check(capsys, str(path))
    assert code == 1
    assert "INVALIDS/TreatedByMSI_" in out
    assert len(out.splitlines()) < 120  # capped lists, no flood


def test_latin1_rows_are_rejected_with_their_line(tmp_path, capsys):
    """Contract 5.5: a row whose bytes are not UTF-8 is rejected and reported."""
    data = '"0612345678";"Bonjour"\n"0687654321";"Été à très bientôt"\n'.encode("latin-1")
    path = drop(tmp_path, data)
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert "1 SMS" in out
    assert "line 2: not_utf8" in out


def test_unterminated_quote_gets_a_verdict(tmp_path, capsys):
    """docs/spec.md 5.5: an open quote is an `unterminated_quote` row; it must not crash nor
    silently eat the file."""
    data = b'"0612345678";"Bonjour\n"0687654321";"Salut"\n'
    path = drop(tmp_path, data)
    code, out, _ = check(capsys, "--json", str(path))
    assert code in (0, 1)
    (doc,) = json.loads(out)
    assert doc["rows"] >= 1
    assert doc["sms_count"] + len(doc["rejected"]) >= 1


def test_very_long_line_is_rejected_not_fatal(tmp_path, capsys):
    """A reader built on Python's csv module would raise past 131072 characters: a
    200,000-character message is one rejected row (docs/spec.md 5.5 and 5.7: over 160) and the
    output stays short."""
    data = b'"0612345678";"' + b"a" * 200_000 + b'"\n"0687654321";"Salut"\n'
    path = drop(tmp_path, data)
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert "line 1: message_too_long" in out
    assert "1 SMS" in out
    assert len(out) < 5_000


def test_long_lists_are_capped_unless_all(tmp_path, capsys):
    """A big file stays readable: 20 lines per section, then "… and N more"."""
    path = write(tmp_path, "valid", rows=300)
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert "… and 280 more (use --all)" in out
    code, out, _ = check(capsys, "--all", str(path))
    assert "more (use --all)" not in out
    assert sum(" 36180 " in ln for ln in out.splitlines()) == 300


def test_control_characters_are_escaped(tmp_path, capsys):
    """A message cannot drive the terminal: controls are shown escaped, line breaks as \\n."""
    data = b'"0612345678";"Alerte \x1b[31mrouge\nfin"\n'
    path = drop(tmp_path, data)
    _, out, _ = check(capsys, str(path))
    assert "\x1b" not in out
    assert "Alerte \\x1b[31mrouge\\nfin" in out


def test_oversized_file_is_flagged_and_not_archived(tmp_path, capsys):
    """Contract 3: a file over `max_file_bytes` is refused by the server, so never archived."""
    path = write(tmp_path, "valid")
    code, out, _ = check(capsys, "--max-bytes", "100", str(path))
    assert code == 1
    assert "over the 100-byte limit" in out
    code, out, _ = check(capsys, "--json", "--max-bytes", "100", str(path))
    assert json.loads(out)[0]["over_limit"] is True


def test_past_send_date_is_sent_at_once(tmp_path, capsys):
    """Contract 5.10: an SMS is scheduled until the send date, sent after."""
    path = write(tmp_path, "valid")
    code = main(["check", "--now", "2031-01-01T00:00:00+00:00", str(path)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "date passed" in out


def test_temporary_name_is_ignored(tmp_path, capsys):
    """Contract 5.1: "A file in SEND_SMS whose name ends in .tmp is never touched (`check`
    reports such a name as `ignored`, not invalid)". An ignored-only run exits 0."""
    fx = gen.generate("valid")
    path = drop(tmp_path, fx.data, fx.name + ".tmp")
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert "-> ignored" in out
    assert "a .tmp file is never touched" in out
    assert "Incorrect_FileName" not in out
    code, out, _ = check(capsys, "--json", str(path))
    assert code == 0
    (doc,) = json.loads(out)
    assert (doc["status"], doc["reason"], doc["original_name"]) == ("ignored", None, path.name)


def test_ignored_names_do_not_hide_a_failure(tmp_path, capsys):
    """Contract 5.1 (ignored) and contract 2 (exit 1 when a file would not be archived)."""
    tmp = drop(tmp_path, b"", "Essai_20300710143000_HQ.csv.tmp")
    bad = drop(tmp_path, b"", "Vide_20300710143000_HQ.csv")
    good = write(tmp_path, "valid")
    code, out, _ = check(capsys, str(tmp), str(good))
    assert code == 0
    assert "1 would be archived, 0 would not, 1 ignored (.tmp)" in out
    code, _, _ = check(capsys, str(tmp), str(bad))
    assert code == 1


def ten_french(tmp_path: Path, quality: str = "HQ") -> Path:
    rows = "".join(f"06123456{i:02d};Bonjour {i}\n" for i in range(10))
    return drop(tmp_path, rows.encode(), f"Essai_20300710143000_{quality}.csv")


def test_credits_are_credits_and_the_cost_is_shown(tmp_path, capsys):
    """Contract 5.4.4: a French SMS costs 15 credits; `Not_enough_credits` when credits <
    the file's cost. `check --credits` is in credits and prints the cost."""
    path = ten_french(tmp_path)
    code, out, _ = check(capsys, "--credits", "149", str(path))
    assert code == 1
    assert "Not_enough_credits" in out
    assert "costing 150 credits" in out
    code, out, _ = check(capsys, "--credits", "150", str(path))
    assert code == 0
    assert "  cost      150 credits (10 SMS at 15); the account's 150 credits would leave 0" in out
    code, out, _ = check(capsys, "--json", str(path))
    (doc,) = json.loads(out)
    assert doc["cost"] == 150
    assert {s["price"] for s in doc["sms"]} == {15}


def test_qualities_option(tmp_path, capsys):
    """Contract 3 `processing.qualities` (default HQ only) and 5.4.1: an `_LC` file is
    Incorrect_FileName unless LC is offered."""
    path = ten_french(tmp_path, "LC")
    code, out, _ = check(capsys, str(path))
    assert code == 1
    assert "Incorrect_FileName" in out
    code, out, _ = check(capsys, "--qualities", "HQ,LC", str(path))
    assert code == 0
    assert "150 credits" in out
    with pytest.raises(SystemExit) as exc:
        main(["check", "--qualities", "XQ", str(path)])
    assert exc.value.code == 2
    capsys.readouterr()


def test_config_file_errors_are_one_line(tmp_path, capsys):
    """Contract 3: "A bad file or value stops start-up with one clear line naming the key"."""
    conf = tmp_path / "bad.toml"
    conf.write_text("[processing]\ndelay_seconds = -1\n", encoding="utf-8")
    code, out, err = check(capsys, "--config", str(conf), str(ten_french(tmp_path)))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "delay_seconds" in err


def test_config_file_without_pricing_keeps_the_defaults(tmp_path, capsys):
    """Contract 3: `[pricing]` defaults to every destination 15, `qualities` to HQ."""
    conf = tmp_path / "ok.toml"
    conf.write_text('[processing]\ndefault_sender = "Mock"\n', encoding="utf-8")
    code, out, _ = check(capsys, "--config", str(conf), "--json", str(ten_french(tmp_path)))
    assert code == 0
    assert json.loads(out)[0]["cost"] == 150


def test_config_pricing_and_qualities_are_applied(tmp_path, capsys, monkeypatch):
    """Contract 3: `[pricing.LC]` is "used only when processing.qualities lists LC"; `check
    --config` judges with the file's `[pricing]` and `processing.qualities`, and with the file
    alone: the shell's `ALLMYSMS_MOCK_*` variables do not change an offline check."""
    conf = tmp_path / "mock.toml"
    conf.write_text(
        '[processing]\nqualities = ["HQ", "LC"]\n\n[pricing.LC]\ndefault = 7\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("ALLMYSMS_MOCK_PRICING_JSON", '{"LC": {"default": 99}}')
    code, out, _ = check(capsys, "--config", str(conf), "--json", str(ten_french(tmp_path, "LC")))
    assert code == 0
    (doc,) = json.loads(out)
    assert doc["cost"] == 70


def test_a_comma_separated_file_shows_the_separator_hint(tmp_path, capsys):
    """Contract 5.12: `check` names the likely cause (a `,` separator) beside the verdict,
    which stays the rules' (Empty_File, rows rejected with their reason codes); the rows no
    longer send the user hunting for quotes. `--json` gives the hint's machine code."""
    path = drop(tmp_path, b'"0612345678","Bonjour"\n"0712345678","Salut"\n612345678,x\n')
    code, out, _ = check(capsys, str(path))
    assert code == 1
    assert "Empty_File" in out
    assert "  hints (1)\n    separator_comma: 3 rows hold no ; but split" in out
    assert "line 1: malformed_row" in out
    assert "doubled" not in out
    code, out, _ = check(capsys, "--json", str(path))
    (result,) = json.loads(out)
    assert [(h["code"], h["count"], h["lines"]) for h in result["hints"]] == [
        ("separator_comma", 3, [1, 2, 3])
    ]


def test_a_dropped_leading_zero_is_hinted_by_check(tmp_path, capsys):
    """Contract 5.12: `612345678` is sent to +61 as the rules say; `check` says why it may be
    a French mobile whose 0 a spreadsheet dropped."""
    path = drop(tmp_path, b"612345678;Bonjour\n")
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert "leading_zero_dropped: 1 row gives a 9-digit number" in out
    assert "write them 0612345678" in out
