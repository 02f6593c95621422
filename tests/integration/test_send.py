"""`allmysms-mock send` (contract 2): upload as `<name>.tmp`, rename, wait over the same
connection; exit 0 archived, 1 invalid, 3 timed out, 2 usage/connection/login errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.app import MockServer
from mockserver.cli import main
from mockserver.client import Progress, find_landing, landed_as
from tests.support.harness import running_mock_server

ROOT = Path(__file__).resolve().parents[2]
NAME = "Promo_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour STOP au 36180";"MaBoutique"\n"+447911123456";"Hello"\n'
ACCOUNTS = [
    {"login": "demo", "password": "demo", "credits": 100},
    {"login": "poor", "password": "pw-poor", "credits": 1},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    with running_mock_server(tmp_path_factory.mktemp("send"), ACCOUNTS) as srv:
        yield srv


@pytest.fixture
def srv(server: MockServer) -> MockServer:
    server.reset()
    return server


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / NAME
    path.write_bytes(ROWS)
    return path


def send(
    srv: MockServer,
    path: Path,
    *extra: str,
    sftp: bool = False,
    login: str = "demo",
    password: str = "demo",
) -> int:
    """`allmysms-mock send` in-process against `srv` (FTP, or SFTP with `sftp=True`)."""
    port = srv.sftp_port if sftp else srv.ftp_port
    args = ["send", str(path), "--login", login, "--password", password, "--port", str(port)]
    return main([*args, *(["--sftp"] if sftp else []), *extra])


@pytest.mark.parametrize("sftp", [False, True], ids=["ftp", "sftp"])
def test_archived_exits_0(
    srv: MockServer, csv: Path, sftp: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Contract 2: "Exit 0 archived"; it says where the file landed (contract 5.3 name)."""
    assert send(srv, csv, "--wait", "20", sftp=sftp) == 0
    out = capsys.readouterr().out
    assert f"archived: /ARCHIVES/TreatedByMSI_{NAME}" in out
    assert (srv.folder("demo", "ARCHIVES") / f"TreatedByMSI_{NAME}").read_bytes() == ROWS
    assert list(srv.folder("demo", "SEND_SMS").iterdir()) == []  # no .tmp left behind
    # The file is in ARCHIVES a moment before its record is complete (recap still going out).
    assert srv.wait_for_file(NAME, 10)["final_name"] == f"TreatedByMSI_{NAME}"
    assert [f["original_name"] for f in srv.files()] == [NAME]


def test_sftp_prints_the_host_key_fingerprint(
    srv: MockServer, csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any host key is accepted by default for a local mock, but its fingerprint is shown."""
    assert send(srv, csv, sftp=True) == 0
    assert f"host key {srv.host_key_fingerprint}" in capsys.readouterr().err


@pytest.mark.parametrize("sftp", [False, True], ids=["ftp", "sftp"])
def test_invalid_exits_1_with_the_reason(
    srv: MockServer, csv: Path, sftp: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Contract 2: "1 invalid"; the reason is read from the name (manual 4.3: "le nom du
    fichier contiendra la raison de l'erreur")."""
    assert send(srv, csv, "--wait", "20", sftp=sftp, login="poor", password="pw-poor") == 1
    out = capsys.readouterr().out
    assert f"invalid: /INVALIDS/TreatedByMSI_Not_enough_credits_{NAME}" in out
    assert "Not_enough_credits" in out


def test_bad_file_name_is_invalid(
    srv: MockServer, csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--name` sets the name in SEND_SMS; a bad one lands as `Incorrect_FileName`."""
    assert send(srv, csv, "--name", "promo.csv", "--wait", "20") == 1
    assert "TreatedByMSI_Incorrect_FileName_promo.csv" in capsys.readouterr().out


def test_same_name_twice_finds_the_numbered_copy(
    srv: MockServer, csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Contract 5.3: "If that name exists, a suffix -2 … goes before .csv"; the earlier copy
    already in ARCHIVES is not mistaken for the new verdict."""
    assert send(srv, csv, "--wait", "20") == 0
    assert send(srv, csv, "--wait", "20", sftp=True) == 0
    out = capsys.readouterr().out
    assert f"archived: /ARCHIVES/TreatedByMSI_{NAME[:-4]}-2.csv" in out


def test_without_wait_it_only_uploads(srv: MockServer, csv: Path) -> None:
    """Without `--wait` the command returns after the rename; the platform does the rest."""
    assert send(srv, csv) == 0
    assert srv.wait_for_file(NAME, 20)["status"] == "archived"


@pytest.mark.parametrize("sftp", [False, True], ids=["ftp", "sftp"])
def test_bad_password_exits_2_in_one_line(
    srv: MockServer, csv: Path, sftp: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Contract 2 usage/login errors: exit 2, one clear line, no traceback; nothing sent."""
    assert send(srv, csv, "--wait", "1", sftp=sftp, password="wrong") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if "login refused" in line]
    assert not [line for line in err if "Traceback" in line]
    assert srv.files() == []


def test_connection_refused_exits_2(csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening: one line naming the address."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for sftp in ([], ["--sftp"]):
        code = main(
            ["send", str(csv), "--login", "demo", "--password", "demo", "--port", str(port), *sftp]
        )
        assert code == 2
        assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_missing_file_and_bad_arguments_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors exit 2 before connecting."""
    assert main(["send", str(tmp_path / "nope.csv"), "--login", "x", "--password", "y"]) == 2
    assert "no such file" in capsys.readouterr().err
    path = tmp_path / NAME
    path.write_bytes(ROWS)
    assert main(["send", str(path), "--login", "x", "--password", "y", "--name", "a/b.csv"]) == 2
    for bad in (["--port", "0"], ["--wait", "soon"], []):
        args = ["send", str(path), "--password", "y", *bad]
        if bad:
            args += ["--login", "x"]
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2


def test_upload_refused_exits_2(
    srv: MockServer, csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Contract 4: upload only into SEND_SMS; a refusal is one line and exit 2."""
    assert send(srv, csv, "--remote-dir", "/ARCHIVES") == 2
    err = capsys.readouterr().err
    assert "refused" in err
    assert "Traceback" not in err


def test_timeout_exits_3(tmp_path: Path, csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Contract 2: "3 timed out" (a file held in PROCESSING by `processing.delay_seconds`)."""
    with MockServer(**{"processing.delay_seconds": 60.0}) as slow:
        assert send(slow, csv, "--wait", "1") == 3
        err = capsys.readouterr().err
        assert "timed out after 1 s" in err
        assert "still in /PROCESSING" in err


def test_nested_layout_with_remote_dir(csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Layout "nested" (contract 3): the folders live in `/<login>/`; `--remote-dir` says so."""
    with MockServer(layout="nested") as nested:
        assert send(nested, csv, "--remote-dir", "/demo/SEND_SMS", "--wait", "20") == 0
        assert f"archived: /demo/ARCHIVES/TreatedByMSI_{NAME}" in capsys.readouterr().out


def test_known_hosts_is_checked(
    srv: MockServer, csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--known-hosts FILE`: the right key connects, another key is refused (exit 2)."""
    import asyncssh

    key = asyncssh.read_private_key(srv.data_dir / "ssh_host_ed25519_key")
    good = tmp_path / "known_hosts"
    good.write_bytes(f"[127.0.0.1]:{srv.sftp_port} ".encode() + key.export_public_key("openssh"))
    assert send(srv, csv, "--known-hosts", str(good), sftp=True) == 0
    other = asyncssh.generate_private_key("ssh-ed25519")
    bad = tmp_path / "other_hosts"
    bad.write_bytes(f"[127.0.0.1]:{srv.sftp_port} ".encode() + other.export_public_key("openssh"))
    assert send(srv, csv, "--known-hosts", str(bad), sftp=True) == 2
    assert "host key" in capsys.readouterr().err


def test_command_line_exit_codes(srv: MockServer, csv: Path) -> None:
    """The real console entry (`python -m mockserver send`): exit codes and clean stderr."""
    base = [sys.executable, "-m", "mockserver", "send", str(csv), "--port", str(srv.ftp_port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run(
        [*base, "--login", "demo", "--password", "demo", "--wait", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "archived:" in ok.stdout
    bad = subprocess.run(
        [*base, "--login", "demo", "--password", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


# -- the pieces -----------------------------------------------------------------------------------


def test_landed_as_reads_the_platforms_names() -> None:
    """Contract 5.3: `TreatedByMSI_<name>`, `TreatedByMSI_<Reason>_<name>`, `-N` before `.csv`."""
    assert landed_as(f"TreatedByMSI_{NAME}", NAME) == ""
    assert landed_as(f"TreatedByMSI_{NAME[:-4]}-2.csv", NAME) == ""
    assert landed_as(f"TreatedByMSI_{NAME[:-4]}-13.csv", NAME) == ""
    assert landed_as(f"TreatedByMSI_Empty_File_{NAME}", NAME) == "Empty_File"
    assert landed_as(f"TreatedByMSI_No_valid_TPOA_{NAME[:-4]}-3.csv", NAME) == "No_valid_TPOA"
    assert landed_as("TreatedByMSI_Incorrect_FileName_x-2", "x") == "Incorrect_FileName"
    assert landed_as(f"TreatedByMSI_Other_{NAME}", NAME) is None
    assert landed_as(f"TreatedByMSI_{NAME}.bak", NAME) is None
    assert landed_as(f"TreatedByMSI_{NAME[:-4]}-0.csv", NAME) is None
    assert landed_as(NAME, NAME) is None


def test_find_landing_ignores_what_was_there_before() -> None:
    """A verdict of an earlier run under the same name is not this run's."""
    old = f"TreatedByMSI_{NAME}"
    new = f"TreatedByMSI_Not_enough_credits_{NAME}"
    before = {"ARCHIVES": {old}, "INVALIDS": set()}
    assert find_landing({"ARCHIVES": [old], "INVALIDS": []}, NAME, before) is None
    found = find_landing({"ARCHIVES": [old], "INVALIDS": [new]}, NAME, before)
    assert found is not None
    assert (found.folder, found.name, found.reason) == ("INVALIDS", new, "Not_enough_credits")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_for_big_files() -> None:
    """A simple bar on stderr for large uploads when it is a terminal; silent otherwise."""
    tty = FakeTty()
    bar = Progress(4 << 20, tty)
    for _ in range(4):
        bar.add(1 << 20)
    bar.close()
    assert "100%" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    small = FakeTty()
    Progress(1000, small).add(1000)
    assert small.getvalue() == ""
    pipe = io.StringIO()
    Progress(4 << 20, pipe).add(4 << 20)
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("sftp", [False, True], ids=["ftp", "sftp"])
def test_a_locked_out_login_prints_the_servers_refusal(
    tmp_path: Path, csv: Path, sftp: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """During a login lockout (docs/spec.md 4.7) `send` prints the server's own refusal (when
    to try again), not "wrong login or password": the password given is the right one."""
    lockout = {
        "limits.login_lockout_failures": 1,
        "limits.login_lockout_seconds": 600,
        "limits.login_failure_delay_seconds": 0,
    }
    with running_mock_server(tmp_path / "data", ACCOUNTS, lockout) as locked:
        assert send(locked, csv, sftp=sftp, password="wrong") == 2
        capsys.readouterr()
        assert send(locked, csv, sftp=sftp) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert err[0].startswith("allmysms-mock send: login refused for 'demo': ")
        assert "too many failed logins from your address; try again in " in err[0].lower()
        assert "wrong login or password" not in err[0]
        assert locked.files() == []
