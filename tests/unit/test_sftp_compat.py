"""The installed asyncssh has every internal `servers.sftp_compat` relies on, and the shim
does what it says: trailing bytes ignored for our server's sessions only."""

from __future__ import annotations

from pathlib import Path

import asyncssh.sftp
import pytest
from asyncssh.packet import PacketDecodeError, SSHPacket

from mockserver.app import MockServer, StartupError
from mockserver.servers import sftp_compat
from mockserver.servers.sftp_tree import ConfinedTree


@pytest.mark.parametrize(
    ("what", "holds"), sftp_compat.CHECKS, ids=[what for what, _ in sftp_compat.CHECKS]
)
def test_installed_asyncssh_has_the_internal(what: str, holds: object) -> None:
    assert sftp_compat.missing(((what, holds),)) == [], (  # type: ignore[arg-type]
        f"the installed asyncssh lacks {what}: update servers/sftp_compat.py"
    )


def test_verify_accepts_the_installed_asyncssh() -> None:
    sftp_compat.verify()


def test_install_makes_asyncssh_build_the_lenient_handler() -> None:
    sftp_compat.install()
    sftp_compat.install()  # idempotent
    assert asyncssh.sftp.SFTPServerHandler is sftp_compat.LenientHandler
    assert issubclass(ConfinedTree, sftp_compat.LenientSftpServer)


def test_only_the_end_check_is_relaxed() -> None:
    """Bytes after the fields pass `check_end`; a field cut short still fails."""
    strict = SSHPacket(b"\x00\x00\x00\x01xTRAILING")
    assert strict.get_string() == b"x"
    with pytest.raises(PacketDecodeError):
        strict.check_end()
    lenient = sftp_compat.TrailingBytesIgnored(b"\x00\x00\x00\x01xTRAILING")
    assert lenient.get_string() == b"x"
    lenient.check_end()
    with pytest.raises(PacketDecodeError):
        sftp_compat.TrailingBytesIgnored(b"\x00\x00\x00\x09x").get_string()


def test_a_failing_check_is_named() -> None:
    checks = (("present", lambda: True), ("Handler._gone", lambda: False))
    assert sftp_compat.missing(checks) == ["Handler._gone"]


def test_verify_names_what_an_unsupported_asyncssh_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sftp_compat, "CHECKS", (("SFTPServerHandler._process_packet", lambda: False),)
    )
    sftp_compat.verify.cache_clear()
    try:
        with pytest.raises(sftp_compat.IncompatibleAsyncssh) as raised:
            sftp_compat.verify()
        with pytest.raises(sftp_compat.IncompatibleAsyncssh):
            sftp_compat.install()
    finally:
        sftp_compat.verify.cache_clear()
    message = str(raised.value)
    assert "SFTPServerHandler._process_packet" in message
    assert "asyncssh>=2.23.1,<3" in message
    assert "\n" not in message


def test_an_unsupported_asyncssh_stops_start_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`MockServer.start()` (and so `serve`) refuses to run with a StartupError, not a traceback
    and never an SFTP server that answers rclone's writes `SSH_FX_BAD_MESSAGE`."""
    monkeypatch.setattr(sftp_compat, "CHECKS", (("asyncssh.sftp._sftp_handler", lambda: False),))
    sftp_compat.verify.cache_clear()
    try:
        server = MockServer(data_dir=tmp_path / "data")
        with pytest.raises(StartupError) as raised:
            server.start()
        assert not server.running
    finally:
        sftp_compat.verify.cache_clear()
    message = str(raised.value)
    assert message.startswith("asyncssh ")
    assert "lacks asyncssh.sftp._sftp_handler" in message
    assert "\n" not in message
