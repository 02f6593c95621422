"""Shared test configuration (the helpers themselves live in `tests/support/`)."""

from __future__ import annotations

from typing import Any

import pytest


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Fuzz tests log paths holding lone surrogates (undecodable bytes); pytest-xdist cannot
    send such text between processes, so captured output is made printable first."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [(title, _printable(body)) for title, body in report.sections]
