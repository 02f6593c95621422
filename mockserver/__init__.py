"""allmysms-mockserver: a local, faithful emulator of the AllMySMS.com FTP/SFTP bulk-SMS API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["MockServer", "__version__"]

if TYPE_CHECKING:
    from mockserver.app import MockServer


def __getattr__(name: str) -> Any:
    # Lazy, so `import mockserver` (and the pytest plugin) stays cheap until a server is needed.
    if name == "MockServer":
        from mockserver.app import MockServer

        return MockServer
    raise AttributeError(name)
