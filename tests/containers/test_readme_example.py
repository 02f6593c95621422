"""The README's "Use from testcontainers" example runs as written against the image."""

from __future__ import annotations

import re

import pytest

from tests.containers.conftest import ROOT


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use from testcontainers", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "no python block under 'Use from testcontainers'"
    return found.group(1)


def test_readme_testcontainers_example(mock_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLMYSMS_MOCK_IMAGE", mock_image)
    namespace: dict[str, object] = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)  # the README, ours
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) == 1
    tests[0]()
