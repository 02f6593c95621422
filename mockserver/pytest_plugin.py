"""The pytest plugin (entry point `pytest11`, contract 7): the `allmysms_mock` fixture, a clean
platform per test from a server started once per session (and per distinct settings).
Importing it is cheap: the server is imported only when a test asks for the fixture.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mockserver.app import MockServer

# Servers kept alive for other settings; the least recently used beyond this is stopped.
MAX_SERVERS = 4


@pytest.fixture
def allmysms_mock_settings() -> dict[str, Any]:
    """Override in a test module or conftest to configure the server `allmysms_mock` gives:
    dotted config keys (`"processing.delay_seconds": 2.0`, `"limits.max_file_bytes": 1000`),
    the short keys `MockServer` takes (`"delay_seconds": 2.0`, resolved by
    `mockserver.config.dotted_key`) and `"accounts": [{"login": ..., "password": ...,
    "credits": ...}]`. Tests asking for different settings get different servers; equal
    settings share one."""
    return {}


class ServerPool:
    """Started servers by settings, stopped at the end of the session."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._servers: OrderedDict[str, MockServer] = OrderedDict()

    def get(self, settings: Mapping[str, Any]) -> MockServer:
        key = _key(settings)
        server = self._servers.get(key)
        if server is not None:
            self._servers.move_to_end(key)
            return server
        server = self._start(settings)
        self._servers[key] = server
        while len(self._servers) > MAX_SERVERS:
            _, oldest = self._servers.popitem(last=False)
            oldest.stop()
        return server

    def _start(self, settings: Mapping[str, Any]) -> MockServer:
        from mockserver.app import MockServer, StartupError
        from mockserver.config import ConfigError, load_config

        dotted = {k: v for k, v in settings.items() if "." in k or k == "accounts"}
        short = {k: v for k, v in settings.items() if k not in dotted}
        overrides: dict[str, Any] = {
            "server.host": "127.0.0.1",
            "server.ftp_port": 0,
            "server.sftp_port": 0,
            "server.http_port": 0,
            "server.data_dir": str(self._tmp.mktemp("allmysms-mock")),
        }
        overrides.update(dotted)
        try:
            config = load_config(None, env={}, overrides=overrides)
            server = MockServer(config, **short)
            server.start()
        except (ConfigError, StartupError) as exc:
            pytest.fail(f"allmysms_mock: {exc}", pytrace=False)
        return server

    def close(self) -> None:
        errors: list[BaseException] = []
        while self._servers:
            _, server = self._servers.popitem()
            try:
                server.stop()
            except Exception as exc:  # stop the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]


def _key(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=repr)


@pytest.fixture(scope="session")
def _allmysms_mock_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def allmysms_mock(
    _allmysms_mock_pool: ServerPool, allmysms_mock_settings: Mapping[str, Any]
) -> MockServer:
    """A running AllMySMS mock (FTP, SFTP, HTTP API on free ports of 127.0.0.1), reset to a
    clean platform for this test: no files, SMS or mail, configured accounts and credits.

    Account `demo` / `demo` with 15000 credits unless `allmysms_mock_settings` says otherwise.
    Under pytest-xdist each worker has its own server.
    """
    server = _allmysms_mock_pool.get(allmysms_mock_settings)
    server.reset()
    return server
