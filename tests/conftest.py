"""Shared test configuration: command-line clients are required in CI, optional elsewhere."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest


def require_tool(name: str) -> str:
    """Path of a command-line client; skip the test when it is missing, fail in CI
    (`ALLMYSMS_REQUIRE_CLIENTS=1`, set by .ci/run) so a missing install step cannot hide."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("ALLMYSMS_REQUIRE_CLIENTS") == "1":
            pytest.fail(f"{name} is not installed but ALLMYSMS_REQUIRE_CLIENTS=1")
        pytest.skip(f"{name} is not installed")
    return path


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Fuzz tests log paths holding lone surrogates (undecodable bytes); pytest-xdist cannot
    send such text between processes, so captured output is made printable first."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [(title, _printable(body)) for title, body in report.sections]
