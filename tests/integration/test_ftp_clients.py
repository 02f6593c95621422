"""Real FTP clients (lftp, curl, rclone) doing the manual's recipe against the FTP server:
upload as `.tmp` into SEND_SMS, then rename to the final `.csv` name (manual 4.2).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import FtpHarness
from tests.support.tools import client_env, require_tool
from tests.support.waiting import wait_until

pytestmark = pytest.mark.clients

FINAL = "Campagne_20300716120000_HQ.csv"
BODY = '"0612345678";"Bonjour de la part du client"\r\n"33712345678";"Deuxième"\r\n'.encode()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[FtpHarness]:
    harness = FtpHarness(tmp_path / "srv")
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "work" / "campagne.csv"
    path.parent.mkdir()
    path.write_bytes(BODY)
    return path


def _run(args: list[str], home: Path, extra_env: dict[str, str] | None = None) -> str:
    env = client_env(home)
    env.update(extra_env or {})
    done = subprocess.run(
        args, env=env, cwd=home, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{args[0]} failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def _assert_delivered(env: FtpHarness) -> None:
    """The final file holds the bytes, no .tmp is left, and the hook heard of the final name."""
    send = env.folder("SEND_SMS")
    assert (send / FINAL).read_bytes() == BODY
    assert [p.name for p in send.iterdir()] == [FINAL]
    wait_until(lambda: ("alice", send / FINAL) in env.uploads, what="the hook to see the .csv")
    assert env.open_writes.snapshot() == set()


def test_lftp_put_then_mv(env: FtpHarness, upload: Path, tmp_path: Path) -> None:
    """Manual 4.2 recipe with lftp (passive mode, no TLS)."""
    lftp = require_tool("lftp")
    script = (
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; "
        f"put {upload} -o SEND_SMS/{FINAL}.tmp; "
        f"mv SEND_SMS/{FINAL}.tmp SEND_SMS/{FINAL}; "
        "cls -1 SEND_SMS; quit"
    )
    out = _run(
        [lftp, "-u", "alice,pw-alice", "-e", script, f"ftp://127.0.0.1:{env.port}"],
        tmp_path / "home",
    )
    assert FINAL in out
    _assert_delivered(env)


def test_curl_upload_then_rename_by_quote(env: FtpHarness, upload: Path, tmp_path: Path) -> None:
    """Manual 4.2 recipe with curl: -T uploads the .tmp, post-quote RNFR/RNTO renames it."""
    curl = require_tool("curl")
    _run(
        [
            curl,
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--user",
            "alice:pw-alice",
            "-T",
            str(upload),
            f"ftp://127.0.0.1:{env.port}/SEND_SMS/{FINAL}.tmp",
            "-Q",
            f"-RNFR /SEND_SMS/{FINAL}.tmp",
            "-Q",
            f"-RNTO /SEND_SMS/{FINAL}",
        ],
        tmp_path / "home",
    )
    _assert_delivered(env)
    out = _run(
        [curl, "-sS", "--user", "alice:pw-alice", f"ftp://127.0.0.1:{env.port}/SEND_SMS/"],
        tmp_path / "home",
    )
    assert FINAL in out


def test_curl_refused_upload_reports_an_error(
    env: FtpHarness, upload: Path, tmp_path: Path
) -> None:
    """Contract 4: an upload outside SEND_SMS is refused; curl exits non-zero."""
    curl = require_tool("curl")
    done = subprocess.run(
        [
            curl,
            "-sS",
            "--max-time",
            "30",
            "--user",
            "alice:pw-alice",
            "-T",
            str(upload),
            f"ftp://127.0.0.1:{env.port}/ARCHIVES/{FINAL}",
        ],
        env=client_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert not (env.folder("ARCHIVES") / FINAL).exists()


def test_rclone_copyto_then_moveto(env: FtpHarness, upload: Path, tmp_path: Path) -> None:
    """Manual 4.2 recipe with rclone (config from environment variables, obscured password)."""
    rclone = require_tool("rclone")
    home = tmp_path / "home"
    obscured = _run([rclone, "obscure", "pw-alice"], home).strip()
    settings = {
        "RCLONE_CONFIG": str(home / "rclone.conf"),
        "RCLONE_CONFIG_MOCK_TYPE": "ftp",
        "RCLONE_CONFIG_MOCK_HOST": "127.0.0.1",
        "RCLONE_CONFIG_MOCK_PORT": str(env.port),
        "RCLONE_CONFIG_MOCK_USER": "alice",
        "RCLONE_CONFIG_MOCK_PASS": obscured,
    }
    common = ["--retries", "1", "--low-level-retries", "1", "--contimeout", "10s"]
    _run([rclone, "copyto", *common, str(upload), f"mock:SEND_SMS/{FINAL}.tmp"], home, settings)
    _run(
        [rclone, "moveto", *common, f"mock:SEND_SMS/{FINAL}.tmp", f"mock:SEND_SMS/{FINAL}"],
        home,
        settings,
    )
    _assert_delivered(env)
    listing = _run([rclone, "lsf", *common, "mock:SEND_SMS"], home, settings)
    assert listing.split() == [FINAL]
