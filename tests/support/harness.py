"""In-process server harnesses: the FTP and SFTP servers alone over a confined data tree, and a
whole `MockServer`; snapshots of the tree for escape tests."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import logging
import os
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncssh
import paramiko

from mockserver.servers.sftp import SftpServer

if TYPE_CHECKING:
    from mockserver.app import MockServer

T = TypeVar("T")

# A one-row drop file and a final name the SFTP tests upload.
FINAL = "Campagne_20301231120000_HQ.csv"
CSV = b'"0612345678";"Bonjour STOP au 36180"\n'


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


class SftpHarness(ServerHarness):
    """A started `SftpServer` on 127.0.0.1:0 over `<base>/data`, on its own asyncio loop in a
    background thread (as in the app, where the HTTP API shares that loop), recording the
    upload hook. `<base>/outside/canary.txt` lies outside every login tree."""

    def __init__(self, base: Path, layout: str = "flat", **overrides: object) -> None:
        super().__init__(base, layout, "server.sftp_port", "SFTP", overrides)
        self.server = SftpServer(self.config, self.auth, self.open_writes, self._on_upload)
        self.server.failed_login_delay = 0.01
        self.loop = asyncio.new_event_loop()
        self.pending_at_stop: list[asyncio.Task[Any]] = []
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="sftp-test-loop")
        self._thread.start()
        ready.wait(10)
        try:
            self.call(self.server.start())
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        """Run `coro` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def port(self) -> int:
        return self.server.port

    def close(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.pending_at_stop = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in self.pending_at_stop:
            task.cancel()
        if self.pending_at_stop:
            self.loop.run_until_complete(
                asyncio.gather(*self.pending_at_stop, return_exceptions=True)
            )
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


def password_of(login: str) -> str:
    return f"pw-{login}"


def connect(
    port: int, login: str = "alice", password: str | None = None
) -> contextlib.AbstractAsyncContextManager[asyncssh.SSHClientConnection]:
    """An asyncssh client connection with no user configuration, keys or agent."""
    return asyncssh.connect(
        "127.0.0.1",
        port,
        username=login,
        password=password if password is not None else password_of(login),
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        config=None,
        preferred_auth="password",
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


@contextlib.contextmanager
def paramiko_sftp(
    port: int, login: str = "alice", password: str | None = None
) -> Iterator[paramiko.SFTPClient]:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username=login, password=password or password_of(login))
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        try:
            yield client
        finally:
            client.close()
    finally:
        transport.close()


class ErrorRecords(logging.Handler):
    """Error-level log records, kept for a test to assert there are none."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
