"""Shared test configuration: command-line clients are required in CI, optional elsewhere."""

from __future__ import annotations

import os
import shutil

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
