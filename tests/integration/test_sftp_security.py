"""The SFTP confinement (contract 4): "A path can never reach outside the login's tree, whatever
`..`, absolute path, backslash, NUL byte or link it uses", and everything else the contract
forbids gets a permission error while the connection stays usable."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import paramiko
import pytest

from tests.support.harness import FINAL, SftpHarness, connect, paramiko_sftp, run, tree_snapshot

DENIED = (asyncssh.SFTPPermissionDenied, asyncssh.SFTPNoSuchFile, asyncssh.SFTPFailure)


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpHarness]:
    harness = SftpHarness(tmp_path)
    (harness.folder("SEND_SMS", "alice2") / "secret.csv").write_bytes(b"alice2's file")
    try:
        yield harness
    finally:
        harness.close()
    assert harness.pending_at_stop == []


def outside_alice(harness: SftpHarness) -> dict[str, tuple[int, int, bytes]]:
    """Every file under the test's base directory that is not in alice's own tree."""
    alice = harness.root("alice").relative_to(harness.base)
    return {
        path: entry
        for path, entry in tree_snapshot(harness.base).items()
        if not Path(path).is_relative_to(alice)
    }


def escapes(harness: SftpHarness) -> list[bytes]:
    """Paths aiming outside alice's tree: at the canary, at alice2's tree, at the system."""
    canary = str(harness.canary)
    up = "../" * 6
    return [
        f"{up}outside/canary.txt".encode(),
        f"/{up}outside/canary.txt".encode(),
        f"/SEND_SMS/{up}outside/canary.txt".encode(),
        canary.encode(),
        f"//{canary}".encode(),
        f"/SEND_SMS/..//..//{up}outside/canary.txt".encode(),
        b"..\\..\\..\\..\\outside\\canary.txt",
        b"/SEND_SMS\\..\\..\\..\\..\\outside\\canary.txt",
        b"/SEND_SMS/x\x00/../../../../outside/canary.txt",
        b"../alice2/SEND_SMS/secret.csv",
        b"/../alice2/SEND_SMS/secret.csv",
        b"/etc/passwd",
        b"/../../etc/passwd",
        b"/SEND_SMS/../../../../../../../../etc/passwd",
    ]


def test_path_escape_matrix_reads_nothing_outside(sftp: SftpHarness) -> None:
    """Contract 4: "A path can never reach outside the login's tree, whatever `..`, absolute
    path, backslash, NUL byte ... it uses": no read of the canary, of alice2's files or of the
    system's, whatever the operation."""
    before = outside_alice(sftp)

    async def main() -> list[bytes]:
        leaked: list[bytes] = []
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for path in escapes(sftp):
                try:
                    async with client.open(path, "rb") as remote:
                        leaked.append(path + b" => " + await remote.read())
                except DENIED:
                    pass
                for op in (client.stat, client.lstat, client.listdir):
                    with contextlib.suppress(DENIED):
                        leaked.append(path + b" => " + repr(await op(path)).encode())
            # The session is still usable after the whole matrix.
            assert "SEND_SMS" in await client.listdir("/")
        return leaked

    assert run(main()) == []
    assert outside_alice(sftp) == before


def test_path_escape_matrix_writes_nothing_outside(sftp: SftpHarness) -> None:
    """Contract 4: an upload, rename or delete aimed outside the tree never lands there."""
    before = outside_alice(sftp)
    (sftp.folder("SEND_SMS") / "mine.tmp").write_bytes(b"mine")

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for path in escapes(sftp):
                with pytest.raises(DENIED):
                    async with client.open(path, "wb") as remote:
                        await remote.write(b"overwritten")
                with pytest.raises(DENIED):
                    await client.remove(path)
                with pytest.raises(DENIED):
                    await client.rename(b"/SEND_SMS/mine.tmp", path)
                with pytest.raises(DENIED):
                    await client.posix_rename(path, b"/SEND_SMS/stolen.csv")
            assert sorted(await client.listdir("/SEND_SMS")) == [".", "..", "mine.tmp"]

    run(main())
    assert outside_alice(sftp) == before
    assert sftp.uploads == []


def test_realpath_never_climbs_above_root_nor_shows_real_paths(sftp: SftpHarness) -> None:
    """Brief: "the client sees `/` = login root; `realpath` returns virtual paths"."""

    async def main() -> list[str]:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            return [
                await client.realpath(p)
                for p in ("..", "/..", "/../..", "/SEND_SMS/../../..", "SEND_SMS/./", ".")
            ]

    assert run(main()) == ["/", "/", "/", "/", "/SEND_SMS", "/"]


def test_symlink_and_hard_link_requests_refused(sftp: SftpHarness) -> None:
    """Contract 4: "never create ... links or symlinks" (also OpenSSH's hardlink@openssh.com)."""
    (sftp.folder("SEND_SMS") / "a.tmp").write_bytes(b"a")
    before = outside_alice(sftp)

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for target in (str(sftp.canary), "../../../outside", "/SEND_SMS/a.tmp"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.symlink(target, "/SEND_SMS/link.csv")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.link("/SEND_SMS/a.tmp", "/SEND_SMS/hard.csv")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.readlink("/SEND_SMS/a.tmp")
            assert sorted(await client.listdir("/SEND_SMS")) == [".", "..", "a.tmp"]

    run(main())
    assert sorted(os.listdir(sftp.folder("SEND_SMS"))) == ["a.tmp"]
    assert outside_alice(sftp) == before


def test_planted_symlinks_are_never_followed(sftp: SftpHarness) -> None:
    """docs/spec.md 4.4: a client could create a symlink to `../` and walk into other logins —
    links put on disk by someone else are hidden from listings and refused by every
    operation; nothing outside is read or written through them."""
    send = sftp.folder("SEND_SMS")
    (send / "evil.csv").symlink_to(sftp.canary)
    (send / "evil_dir").symlink_to(sftp.outside, target_is_directory=True)
    (send / "inner.csv").symlink_to(send / "real.tmp")
    (send / "real.tmp").write_bytes(b"real")
    archives = sftp.folder("ARCHIVES")
    archives.rmdir()
    archives.symlink_to(sftp.outside, target_is_directory=True)
    before = outside_alice(sftp)

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            assert sorted(await client.listdir("/SEND_SMS")) == [".", "..", "real.tmp"]
            assert "ARCHIVES" not in await client.listdir("/")
            for path in (
                "/SEND_SMS/evil.csv",
                "/SEND_SMS/inner.csv",
                "/SEND_SMS/evil_dir/canary.txt",
                "/ARCHIVES/canary.txt",
            ):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.stat(path)
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.lstat(path)
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    async with client.open(path, "rb") as remote:
                        await remote.read()
            for folder in ("/SEND_SMS/evil_dir", "/ARCHIVES"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.listdir(folder)
            for path in ("/SEND_SMS/evil.csv", "/ARCHIVES/canary.txt", "/ARCHIVES/new.csv"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    async with client.open(path, "wb") as remote:
                        await remote.write(b"overwritten")
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.remove(path)
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.rename("/SEND_SMS/evil.csv", f"/SEND_SMS/{FINAL}")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.rename("/SEND_SMS/real.tmp", "/SEND_SMS/evil_dir/x.csv")

    run(main())
    assert outside_alice(sftp) == before
    assert (send / "evil.csv").is_symlink()
    assert sftp.uploads == []


def test_folders_cannot_be_created_removed_or_renamed(sftp: SftpHarness) -> None:
    """Contract 4: "never create, remove or rename the four folders, create sub-folders"."""

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for path in ("/NEW", "/SEND_SMS/sub", "/ARCHIVES/sub", "/SEND_SMS"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.mkdir(path)
            for folder in ("SEND_SMS", "PROCESSING", "ARCHIVES", "INVALIDS"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.rmdir(f"/{folder}")
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.remove(f"/{folder}")
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.rename(f"/{folder}", "/RENAMED")
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.posix_rename(f"/{folder}", f"/SEND_SMS/{folder}.csv")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.rmdir("/")
            assert sorted(await client.listdir("/")) == [
                ".",
                "..",
                "ARCHIVES",
                "INVALIDS",
                "PROCESSING",
                "SEND_SMS",
            ]

    run(main())
    assert sorted(os.listdir(sftp.root())) == ["ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]
    assert all(not any(sftp.folder(f).iterdir()) for f in ("SEND_SMS", "ARCHIVES", "INVALIDS"))


def test_uploads_only_directly_in_send_sms(sftp: SftpHarness) -> None:
    """Contract 4: "upload/rename/delete only in `SEND_SMS`"."""

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for path in ("/ARCHIVES/x.csv", "/INVALIDS/x.csv", "/PROCESSING/x.csv", "/x.csv"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    async with client.open(path, "wb") as remote:
                        await remote.write(b"x")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                async with client.open("/SEND_SMS/sub/x.csv", "wb") as remote:
                    await remote.write(b"x")

    run(main())
    assert sftp.uploads == []
    for folder in ("ARCHIVES", "INVALIDS", "PROCESSING"):
        assert not any(sftp.folder(folder).iterdir())


def test_renames_stay_in_send_sms(sftp: SftpHarness) -> None:
    """Contract 4: rename only within SEND_SMS: never out of it, never into it from elsewhere."""
    (sftp.folder("SEND_SMS") / "a.tmp").write_bytes(b"a")
    (sftp.folder("ARCHIVES") / "TreatedByMSI_a.csv").write_bytes(b"done")

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for rename in (client.rename, client.posix_rename):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await rename("/SEND_SMS/a.tmp", "/ARCHIVES/a.csv")
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await rename("/ARCHIVES/TreatedByMSI_a.csv", "/SEND_SMS/again.csv")
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await rename("/SEND_SMS/a.tmp", "/a.csv")

    run(main())
    assert (sftp.folder("SEND_SMS") / "a.tmp").exists()
    assert sftp.uploads == []


@pytest.mark.parametrize("kind", ["rename", "posix_rename"])
def test_rename_never_overwrites(sftp: SftpHarness, kind: str) -> None:
    """Contract 4: "A rename never overwrites an existing file. SFTP supports both `rename` and
    OpenSSH's `posix-rename`" (docs/spec.md 4.3)."""
    send = sftp.folder("SEND_SMS")
    (send / "new.tmp").write_bytes(b"new")
    (send / FINAL).write_bytes(b"existing")

    async def main() -> str:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            with pytest.raises(asyncssh.SFTPFailure) as excinfo:
                await getattr(client, kind)("/SEND_SMS/new.tmp", f"/SEND_SMS/{FINAL}")
            return excinfo.value.reason

    assert "never overwrites" in run(main())
    assert (send / FINAL).read_bytes() == b"existing"
    assert (send / "new.tmp").read_bytes() == b"new"
    assert sftp.uploads == []


def test_shell_exec_scp_and_forwarding_refused_session_stays_sane(sftp: SftpHarness) -> None:
    """Brief: only the SFTP subsystem; a client asking for a shell, a command, scp or a port
    forward is refused and the connection goes on working."""

    async def main() -> None:
        async with connect(sftp.port) as conn:
            for command in ("ls /", "scp -t /SEND_SMS", None):
                with pytest.raises(asyncssh.ChannelOpenError):
                    await conn.create_process(command)
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_process(subsystem="not-sftp")
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", sftp.port)
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)
            async with conn.start_sftp_client() as client:
                assert "SEND_SMS" in await client.listdir("/")

    run(main())


def test_paramiko_shell_and_exec_refused(sftp: SftpHarness) -> None:
    """Same refusal seen by another client implementation."""
    transport = paramiko.Transport(("127.0.0.1", sftp.port))
    try:
        transport.connect(username="alice", password="pw-alice")
        for start in (lambda ch: ch.exec_command("id"), lambda ch: ch.invoke_shell()):
            channel = transport.open_session(timeout=10)
            with pytest.raises(paramiko.SSHException):
                start(channel)
            channel.close()
        with paramiko.SFTPClient.from_transport(transport) as client:  # type: ignore[union-attr]
            assert "SEND_SMS" in client.listdir("/")
    finally:
        transport.close()


def test_other_login_sees_only_its_own_tree(sftp: SftpHarness) -> None:
    """Contract 4: "a login sees only its own tree" — alice2 sees its file, alice never does."""
    with paramiko_sftp(sftp.port, "alice2") as client:
        assert client.listdir("/SEND_SMS") == ["secret.csv"]
    with paramiko_sftp(sftp.port, "alice") as client:
        assert client.listdir("/SEND_SMS") == []
        with pytest.raises(FileNotFoundError):
            client.stat("/alice2/SEND_SMS/secret.csv")


def test_planted_hard_link_is_never_written_through(sftp: SftpHarness) -> None:
    """Contract 4: "whatever ... link it uses" — a hard link put on disk to a file outside the
    tree cannot be written (nor truncated) over SFTP."""
    os.link(sftp.canary, sftp.folder("SEND_SMS") / "hard.csv")
    before = outside_alice(sftp)

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for mode in ("wb", "ab", "r+b"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    async with client.open("/SEND_SMS/hard.csv", mode) as remote:
                        await remote.write(b"overwritten")

    run(main())
    assert outside_alice(sftp) == before
    assert sftp.uploads == []


def test_planted_hard_link_is_never_truncated_touched_or_read(sftp: SftpHarness) -> None:
    """Contract 4: "A path can never reach outside the login's tree, whatever `..`, absolute
    path, backslash, NUL byte or link it uses": a hard link put on disk to a file outside the
    tree cannot be truncated, extended, touched (setstat by path: size, times) nor read over
    SFTP (issue 16: setstat acted by path and skipped the check `open` makes); the outside
    file keeps its bytes and times."""
    os.link(sftp.canary, sftp.folder("SEND_SMS") / "hard.csv")
    before = outside_alice(sftp)
    path = "/SEND_SMS/hard.csv"

    with paramiko_sftp(sftp.port) as client:
        for size in (0, 4096):
            with pytest.raises(PermissionError, match="other links"):
                client.truncate(path, size)
        with pytest.raises(PermissionError, match="other links"):
            client.utime(path, (0, 0))
        with pytest.raises(PermissionError, match="other links"):
            client.open(path, "r")
        assert client.listdir("/SEND_SMS") == ["hard.csv"]  # the session is still usable

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for attrs in (asyncssh.SFTPAttrs(size=0), asyncssh.SFTPAttrs(atime=0, mtime=0)):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.setstat(path, attrs)
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.rename(path, "/SEND_SMS/renamed.csv")

    run(main())
    assert outside_alice(sftp) == before
    assert sftp.uploads == []


@pytest.mark.parametrize("ch", ["\u202e", "\u200f", "\ufeff", "\u2066"])
def test_names_with_formatting_characters_refused(sftp: SftpHarness, ch: str) -> None:
    """Issue 16: a bidi override, a direction mark or a BOM in a new name (open for writing,
    rename target) is refused with a permission error naming the character (the shared
    policy); nothing is written and the session goes on."""
    (sftp.folder("SEND_SMS") / "a.tmp").write_bytes(b"a")

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            with pytest.raises(asyncssh.SFTPPermissionDenied) as exc:
                await client.open(f"/SEND_SMS/x{ch}vsc.tmp", "wb")
            assert f"U+{ord(ch):04X}" in str(exc.value.reason)
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.rename("/SEND_SMS/a.tmp", f"/SEND_SMS/x{ch}.csv")
            assert sorted(await client.listdir("/SEND_SMS")) == [".", "..", "a.tmp"]

    run(main())
    assert sorted(os.listdir(sftp.folder("SEND_SMS"))) == ["a.tmp"]
