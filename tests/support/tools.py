"""Command-line clients and the machine: required in CI, optional elsewhere; a private HOME for
each client; free ports."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path

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


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (for programs that cannot be told to use port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def client_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a command-line client: a private HOME and XDG dirs, no user config, no
    SSH agent, none of the mock's own settings; plus `extra`."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RCLONE_", "LFTP", "ALLMYSMS_MOCK_", "SSH_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        LC_ALL="C.UTF-8",
    )
    env.update(extra or {})
    return env
