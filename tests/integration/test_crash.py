"""Kill the processor dead at each step of a file's pipeline, restart it, and check the
exactly-once invariants (docs/spec.md 5.2.4): every file ends in exactly one of
ARCHIVES/INVALIDS, is charged once, its SMS are recorded once, its recap mailed once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mockserver.mailbox import Mailbox
from mockserver.store import Store
from tests.support.crashing import CRASH_POINTS

REPO = Path(__file__).resolve().parents[2]
CREDITS = 100
GOOD = b'"0612345678";"Bonjour"\n"0712345678";"Salut"\n'
FILES = {
    "Alpha_20300716120000_HQ.csv": GOOD,
    "Beta_20300716120000_HQ.csv": GOOD + b'"0612000000";"Encore"\n',
    "bad name.csv": GOOD,
    "Gamma_20300716120000_HQ.csv": b"",
}


def write_config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    cfg = tmp_path / "mock.toml"
    cfg.write_text(
        f"""
[server]
data_dir = "{data}"

[processing]
rescan_seconds = 0.5

[[accounts]]
login = "alice"
password = "pw"
credits = {CREDITS}
email = "alice@example.com"
""",
        encoding="utf-8",
    )
    send = data / "accounts" / "alice" / "SEND_SMS"
    send.mkdir(parents=True)
    for name, content in FILES.items():
        (send / name).write_bytes(content)
    return cfg


def run(cfg: Path, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    crash = ["--at", crash_at] if crash_at else []
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.crashing",
            *crash,
            "processor",
            "--config",
            str(cfg),
            "--until-idle",
            "--settle",
            "0",
            "--idle-timeout",
            "60",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_then_restart_is_exactly_once(tmp_path: Path, point: str) -> None:
    """Contract 5.2: "a file found in PROCESSING at start-up (a crash) is judged again
    without charging or recording twice"."""
    cfg = write_config(tmp_path)
    crashed = run(cfg, point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    root = tmp_path / "data" / "accounts" / "alice"
    left = os.listdir(root / "SEND_SMS") + os.listdir(root / "PROCESSING")
    with Store(tmp_path / "data" / "state.sqlite3") as store:
        cut_short = store.unfinished()
    assert left or cut_short, "the crash left nothing to recover"
    if point != "after_claim":
        assert cut_short, "the killed file should be recorded but not finished"

    started = time.monotonic()
    again = run(cfg, None)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 60

    assert os.listdir(root / "SEND_SMS") == []
    assert os.listdir(root / "PROCESSING") == []
    archives, invalids = (
        sorted(os.listdir(root / "ARCHIVES")),
        sorted(os.listdir(root / "INVALIDS")),
    )
    assert archives == [
        "TreatedByMSI_Alpha_20300716120000_HQ.csv",
        "TreatedByMSI_Beta_20300716120000_HQ.csv",
    ]
    assert invalids == [
        "TreatedByMSI_Empty_File_Gamma_20300716120000_HQ.csv",
        "TreatedByMSI_Incorrect_FileName_bad name.csv",
    ]
    with Store(tmp_path / "data" / "state.sqlite3") as store:
        files = store.files()
        assert sorted(f.original_name for f in files) == sorted(FILES)
        assert store.unfinished() == []
        assert store.count_messages() == 5
        # 5 SMS at 15 credits (contract 3 `[pricing]`), charged once.
        assert store.account("alice").credits == CREDITS - 5 * 15
        assert store.total_charged("alice") == 5 * 15
    mails = Mailbox(tmp_path / "data" / "mailbox").messages()
    assert sorted(m["file"] for m in mails) == sorted(FILES)
