"""scripts/docker-smoke.sh checks the host's needs before anything starts (`--check-only` runs
only that check, so no Docker engine is needed here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "docker-smoke.sh"


def _check_only(tmp_path: Path, *, paramiko: bool) -> subprocess.CompletedProcess[str]:
    """Run `--check-only` with a `docker` stub on PATH and, when `paramiko` is False, a
    `paramiko` package first on PYTHONPATH whose import fails as a missing module does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "docker"
    stub.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    stub.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    if not paramiko:
        shadow = tmp_path / "shadow" / "paramiko"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text(
            "raise ModuleNotFoundError(\"No module named 'paramiko'\", name='paramiko')\n",
            encoding="utf-8",
        )
        env["PYTHONPATH"] = str(shadow.parent)
    return subprocess.run(
        ["bash", str(SCRIPT), "--check-only"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_smoke_script_names_a_missing_python_module_and_how_to_install_it(
    tmp_path: Path,
) -> None:
    """Without paramiko on the host the script stops at once, non-zero, with one line saying
    what to install, never a bare ModuleNotFoundError traceback."""
    done = _check_only(tmp_path, paramiko=False)
    assert done.returncode == 1
    assert "missing: the Python module paramiko" in done.stderr
    assert "python3 -m pip install paramiko" in done.stderr
    assert "Traceback" not in done.stderr
    assert "ModuleNotFoundError" not in done.stderr


def test_smoke_script_check_passes_when_the_host_has_everything(tmp_path: Path) -> None:
    """With python3 + paramiko and a docker client, `--check-only` reports the host ready."""
    done = _check_only(tmp_path, paramiko=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[smoke] host requirements met"


ENGINE = SCRIPT.parent / "docker-engine.sh"


def test_engine_script_says_why_no_engine_can_start(tmp_path: Path) -> None:
    """Not root, with a client whose engine does not answer: exit 1 and one line saying why
    (what .ci/run prints as the reason the image stays unproven); nothing on stdout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("docker", "exit 1"), ("dockerd", "exit 1"), ("id", "echo 1000")):
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["bash", str(ENGINE), "start"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "[docker-engine] no engine: no engine answers and starting dockerd needs root"
    )
