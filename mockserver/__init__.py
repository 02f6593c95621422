"""allmysms-mockserver: a local, faithful emulator of the AllMySMS.com FTP/SFTP bulk-SMS API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DISTRIBUTION", "MockServer", "__version__"]

# The distribution's name (contract 1): its metadata holds the one version number, written in
# pyproject.toml.
DISTRIBUTION = "allmysms-mockserver"

if TYPE_CHECKING:
    from mockserver.app import MockServer

    __version__: str


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # a source tree on PYTHONPATH, never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    # Lazy, so `import mockserver` (and the pytest plugin) stays cheap until a server is needed.
    if name == "MockServer":
        from mockserver.app import MockServer

        return MockServer
    if name == "__version__":
        return _version()
    raise AttributeError(name)
