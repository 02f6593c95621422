"""Contract 9.2 faults on protocol operations seen by the command-line clients users have: lftp
retries an FTP upload refused with a 4xx reply, OpenSSH `sftp` stops its batch on an injected
SSH_FX_FAILURE.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.app import MockServer
from tests.support.harness import ACCOUNTS, running_mock_server
from tests.support.tools import client_env, require_tool

pytestmark = pytest.mark.clients

NAME = "Promo_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour"\n"33711223344";"Salut"\n'
OPENSSH_OPTIONS = [
    "-F",
    "/dev/null",
    "-oStrictHostKeyChecking=no",
    "-oUserKnownHostsFile=/dev/null",
    "-oPreferredAuthentications=password",
    "-oPubkeyAuthentication=no",
    "-oLogLevel=ERROR",
    "-oBatchMode=no",
]


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[MockServer]:
    with running_mock_server(tmp_path / "data", ACCOUNTS) as server:
        yield server


@pytest.fixture
def local_csv(tmp_path: Path) -> Path:
    path = tmp_path / "local.csv"
    path.write_bytes(ROWS)
    return path


def run_client(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        env=client_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_lftp_retries_an_upload_refused_with_452(
    srv: MockServer, local_csv: Path, tmp_path: Path
) -> None:
    """docs/testing.md recipe: the next FTP upload fails with 452 and the client retries."""
    lftp = require_tool("lftp")
    rule = srv.backend.faults.add({"on": "upload", "action": "error", "code": 452, "times": 1})
    script = (
        "set ftp:ssl-allow no; set net:timeout 10; set net:max-retries 3; "
        "set net:reconnect-interval-base 1; "
        f"put {local_csv} -o SEND_SMS/{NAME}; quit"
    )
    done = run_client(
        [lftp, "-d", "-u", "alice,pw-alice", "-e", script, f"ftp://127.0.0.1:{srv.ftp_port}"],
        tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    assert "452 Injected fault (rule 1): the upload failed" in done.stderr  # lftp's debug log
    record = srv.wait_for_file(NAME, timeout=20)
    assert record["status"] == "archived"
    assert len(srv.files(name=NAME)) == 1  # archived once
    assert (srv.folder("alice", "ARCHIVES") / record["final_name"]).read_bytes() == ROWS
    found = srv.backend.faults.get(rule.id)
    assert found is not None
    assert found["fired"] == 1


def test_openssh_sftp_batch_stops_on_an_injected_failure_then_succeeds(
    srv: MockServer, local_csv: Path, tmp_path: Path
) -> None:
    require_tool("sshpass")
    sftp = require_tool("sftp")
    rule = srv.backend.faults.add(
        {"on": "upload", "action": "error", "protocol": "sftp", "name": "*.tmp"}
    )
    batch = tmp_path / "batch"
    tmp = f"/SEND_SMS/{NAME}.tmp"
    batch.write_text(f"put {local_csv} {tmp}\nrename {tmp} /SEND_SMS/{NAME}\n")
    command = ["sshpass", "-p", "pw-alice", sftp, *OPENSSH_OPTIONS, "-P", str(srv.sftp_port)]
    command += ["-b", str(batch), "alice@127.0.0.1"]

    refused = run_client(command, tmp_path / "home")
    assert refused.returncode == 1
    assert f'dest open "/SEND_SMS/{NAME}.tmp": Failure' in refused.stderr
    assert list(srv.folder("alice", "SEND_SMS").iterdir()) == []

    again = run_client(command, tmp_path / "home")  # times 1: the rule is spent
    assert again.returncode == 0, again.stderr
    assert srv.wait_for_file(NAME, timeout=20)["status"] == "archived"
    found = srv.backend.faults.get(rule.id)
    assert found is not None
    assert found["fired"] == 1
