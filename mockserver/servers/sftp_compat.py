"""The only place the SFTP server reaches into asyncssh's internals: requests with bytes after
their last field are served, as OpenSSH's sftp-server serves them, instead of being answered
`SSH_FX_BAD_MESSAGE "Unexpected data at end of packet"`.

asyncssh's `SFTPServerHandler` ends the decoding of every request with `packet.check_end()`.
OpenSSH's sftp-server reads the fields it needs and discards the rest of the message ("discard
the remaining bytes from the current packet", `process()` in sftp-server.c), and clients rely
on it: pkg/sftp before v1.13.6 (rclone 1.60, Debian 12's) sends each write of a file over
32 KiB with the rest of its buffer after the data field. The data field alone is written.

`install()` (run when an `SftpServer` starts) checks that the installed asyncssh still has
every internal relied on (`CHECKS`), raising `IncompatibleAsyncssh`, one line naming what is
missing, otherwise; then makes `asyncssh.sftp.SFTPServerHandler`, the class asyncssh makes
for each SFTP session, `LenientHandler`. The leniency is opt-in: only sessions of a
`LenientSftpServer` (our `ConfinedTree`) get it, so any other asyncssh SFTP server in the
same process (a test suite's own, next to the pytest plugin's mock) keeps asyncssh's rules.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

import asyncssh
import asyncssh.sftp as _sftp
from asyncssh.packet import SSHPacket

__all__ = [
    "CHECKS",
    "IncompatibleAsyncssh",
    "LenientHandler",
    "LenientSftpServer",
    "TrailingBytesIgnored",
    "install",
    "missing",
    "verify",
]

SUPPORTED = "asyncssh>=2.23.1,<3"


class _Absent:
    """Stands for an asyncssh class that is gone: every attribute asked of it is missing."""


# The handler asyncssh makes for each SFTP session (captured before `install` replaces it).
_Handler: type[Any] = getattr(_sftp, "SFTPServerHandler", None) or type(
    "SFTPServerHandler", (_Absent,), {}
)


class IncompatibleAsyncssh(RuntimeError):
    """The installed asyncssh lacks an internal the SFTP server relies on."""


class TrailingBytesIgnored(SSHPacket):
    """A request's payload whose end is not checked: bytes after the fields read are ignored."""

    def check_end(self) -> None:
        """OpenSSH's sftp-server discards whatever follows a request's fields."""


class LenientSftpServer(asyncssh.SFTPServer):
    """An SFTP server whose sessions ignore trailing bytes after a request's fields."""


class LenientHandler(_Handler):  # type: ignore[misc]
    """asyncssh's SFTP session handler; for a `LenientSftpServer`, each request is decoded
    from a `TrailingBytesIgnored` copy of its payload (after the type and the request id)."""

    _server: asyncssh.SFTPServer

    async def _process_packet(self, pkttype: int, pktid: int, packet: SSHPacket) -> None:
        if isinstance(self._server, LenientSftpServer):
            packet = TrailingBytesIgnored(packet.get_remaining_payload())
        await super()._process_packet(pkttype, pktid, packet)


def _assigned_in_init(cls: type[Any], name: str) -> bool:
    """Whether some `__init__` of `cls`'s classes sets `self.<name>` (False if no source)."""
    pattern = re.compile(rf"\bself\.{re.escape(name)}\s*(:[^=\n]*)?=(?!=)")
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or klass is object:
            continue
        try:
            if pattern.search(inspect.getsource(init)):
                return True
        except (OSError, TypeError):
            return False
    return False


def _handler_made_from_module_name() -> bool:
    """asyncssh makes each session's handler from the module's `SFTPServerHandler` name, read
    at that time: replacing the name reaches every new session."""
    make = getattr(_sftp, "_sftp_handler", None)
    code = getattr(make, "__code__", None)
    return code is not None and "SFTPServerHandler" in code.co_names


def _process_packet_takes_a_packet() -> bool:
    method = vars(_Handler).get("_process_packet")
    if method is None or not inspect.iscoroutinefunction(method):
        return False
    return list(inspect.signature(method).parameters) == ["self", "pkttype", "pktid", "packet"]


# Every asyncssh internal relied on: (what, check). Each must hold on a supported asyncssh.
CHECKS: tuple[tuple[str, Callable[[], bool]], ...] = (
    ("asyncssh.sftp.SFTPServerHandler", lambda: not issubclass(_Handler, _Absent)),
    ("asyncssh.sftp._sftp_handler making SFTPServerHandler", _handler_made_from_module_name),
    (
        "SFTPServerHandler._process_packet(pkttype, pktid, packet)",
        _process_packet_takes_a_packet,
    ),
    ("SFTPServerHandler._server", lambda: _assigned_in_init(_Handler, "_server")),
    ("SSHPacket.check_end", lambda: callable(getattr(SSHPacket, "check_end", None))),
    (
        "SSHPacket.get_remaining_payload",
        lambda: callable(getattr(SSHPacket, "get_remaining_payload", None)),
    ),
)


def missing(checks: tuple[tuple[str, Callable[[], bool]], ...] | None = None) -> list[str]:
    """What of `checks` (default: `CHECKS`) the installed asyncssh does not have."""
    return [what for what, holds in (CHECKS if checks is None else checks) if not holds()]


@functools.cache
def verify() -> None:
    """Raise IncompatibleAsyncssh, one line naming what is missing, on an unsupported asyncssh
    (checked once per process)."""
    absent = missing()
    if absent:
        version = getattr(asyncssh, "__version__", "?")
        raise IncompatibleAsyncssh(
            f"asyncssh {version} is not supported (it lacks {', '.join(absent)});"
            f" install {SUPPORTED}"
        )


def install() -> None:
    """Verify asyncssh, then have it make a `LenientHandler` for each new SFTP session
    (idempotent)."""
    verify()
    _sftp.SFTPServerHandler = LenientHandler  # type: ignore[misc]
