"""The pytest recipes of docs/testing.md run as written: each ```python block that defines a
test is copied into a fresh project and run by pytest with the plugin the package registers
(a user copies them as they are; they used to reach into `srv.backend`, which is no API)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTING = REPO / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def recipes() -> list[str]:
    return [b for b in BLOCK.findall(TESTING.read_text(encoding="utf-8")) if "def test_" in b]


def test_the_testing_guide_has_pytest_recipes() -> None:
    assert len(recipes()) >= 5


@pytest.mark.parametrize("index", range(len(recipes())))
def test_recipe_runs_as_written(index: int, tmp_path: Path) -> None:
    source = recipes()[index]
    assert "backend." not in source, "a recipe uses srv.backend: show the public API instead"
    (tmp_path / f"test_recipe_{index}.py").write_text(source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b[1-9]\d* passed\b", done.stdout), done.stdout[-2000:]
