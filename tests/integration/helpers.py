"""Generic helpers for integration tests: waiting on a condition, free ports, throw-away HOMEs."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Poll `predicate` until it returns a truthy value (returned) or `timeout` passes
    (AssertionError naming `what`). Polling a condition, never a bare sleep, is how tests wait.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what or predicate}")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (for programs that cannot be told to use port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def client_env(home: Path) -> dict[str, str]:
    """Environment for a command-line client: a private HOME and XDG dirs, no user config."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "LFTP"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        LC_ALL="C.UTF-8",
    )
    return env


def tree_snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every regular file under `root` (not following links) with (size, mtime_ns, content)."""
    snap: dict[str, tuple[int, int, bytes]] = {}
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            st = path.stat()
            snap[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, path.read_bytes())
    return snap
