"""Generic helpers for integration tests: waiting on a condition, free ports, throw-away HOMEs."""

from __future__ import annotations

import contextlib
import ftplib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from mockserver.app import MockServer

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


@contextlib.contextmanager
def running_mock_server(
    data_dir: Path,
    accounts: Sequence[Mapping[str, object]],
    overrides: Mapping[str, object] | None = None,
) -> Iterator[MockServer]:
    """A started `MockServer` over `data_dir` with every port chosen by the system (0), stopped
    on exit. `overrides` adds or replaces config keys ("limits.max_file_bytes": ...)."""
    from mockserver.app import MockServer
    from mockserver.config import load_config

    settings: dict[str, object] = {
        "server.ftp_port": 0,
        "server.sftp_port": 0,
        "server.http_port": 0,
        "server.data_dir": str(data_dir),
        "accounts": list(accounts),
    }
    settings.update(overrides or {})
    config = load_config(None, env={}, overrides=settings)
    with MockServer(config) as srv:
        yield srv


# -- an in-process FTP server for tests ---------------------------------------------------------

ACCOUNTS = (
    {"login": "alice", "password": "pw-alice", "email": "alice@example.com"},
    # A sibling whose name starts like alice's: a prefix check would let one reach the other.
    {"login": "alice2", "password": "pw-alice2", "email": "alice2@example.com"},
)


class ServerHarness:
    """What the FTP and SFTP harnesses share: `<base>/data` with a tree per account, a canary
    file `<base>/outside/canary.txt` outside every login tree, the config, the authenticator,
    the open-writes registry and a thread-safe record of the upload hook's calls."""

    def __init__(
        self, base: Path, layout: str, port_key: str, protocol: str, overrides: dict[str, object]
    ) -> None:
        from mockserver.auth import StaticAuthenticator
        from mockserver.config import load_config
        from mockserver.tree import make_tree
        from mockserver.writes import OpenWrites

        self.base = base
        self.data_dir = base / "data"
        self.outside = base / "outside"
        self.outside.mkdir(parents=True, exist_ok=True)
        self.canary = self.outside / "canary.txt"
        self.canary.write_bytes(f"canary: must never be read or changed over {protocol}\n".encode())
        settings: dict[str, object] = {
            port_key: 0,
            "server.data_dir": str(self.data_dir),
            "server.layout": layout,
            "accounts": [dict(a) for a in ACCOUNTS],
        }
        settings.update(overrides)
        self.config = load_config(None, env={}, overrides=settings)
        for account in self.config.accounts:
            make_tree(self.data_dir, self.config.server.layout, account.login)
        self.auth = StaticAuthenticator(self.config.accounts)
        self.open_writes = OpenWrites()
        self._lock = threading.Lock()
        self._uploads: list[tuple[str, Path]] = []

    def _on_upload(self, login: str, path: Path) -> None:
        with self._lock:
            self._uploads.append((login, path))

    @property
    def uploads(self) -> list[tuple[str, Path]]:
        with self._lock:
            return list(self._uploads)

    def folder(self, name: str, login: str = "alice") -> Path:
        from mockserver.tree import Folder, folder_path

        return folder_path(self.data_dir, self.config.server.layout, login, Folder(name))

    def root(self, login: str = "alice") -> Path:
        return self.data_dir / "accounts" / login


def outside_snapshot(harness: ServerHarness, login: str = "alice") -> dict[str, tuple[int, int]]:
    """Every entry under the data dir except the login's own tree, plus the canary's folder."""
    own = harness.root(login).resolve()
    snap: dict[str, tuple[int, int]] = {}
    for top in (harness.data_dir, harness.outside):
        for dirpath, dirs, files in os.walk(top):
            here = Path(dirpath)
            dirs[:] = [d for d in dirs if (here / d).resolve() != own]
            for name in dirs:
                snap[str(here / name)] = (os.lstat(here / name).st_mode, 0)
            for name in files:
                st = os.lstat(here / name)
                snap[str(here / name)] = (st.st_size, st.st_mtime_ns)
    return snap


class FtpHarness(ServerHarness):
    """A started `FtpServer` on 127.0.0.1:0 over `<base>/data`, recording the upload hook.

    `<base>/outside/canary.txt` is a file outside every login tree that escape tests watch.
    """

    def __init__(self, base: Path, layout: str = "flat", **overrides: object) -> None:
        from mockserver.servers.ftp import FtpServer

        super().__init__(base, layout, "server.ftp_port", "FTP", overrides)
        self.server = FtpServer(
            self.config, self.auth, self.open_writes, self._on_upload, auth_failed_delay=0.01
        )
        self.server.start()
        self._clients: list[ftplib.FTP] = []

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self) -> ftplib.FTP:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", self.port, timeout=10)
        self._clients.append(ftp)
        return ftp

    def login(self, login: str = "alice", password: str | None = None) -> ftplib.FTP:
        ftp = self.connect()
        ftp.login(login, password if password is not None else f"pw-{login}")
        return ftp

    def close(self) -> None:
        for ftp in self._clients:
            with contextlib.suppress(OSError):
                ftp.close()
        self.server.stop()
