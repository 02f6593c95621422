"""Issue 16: one SFTP session cannot hold the whole mock's descriptors. At most 64 open files
(`sftp_session.MAX_HANDLES`) and 64 open folder handles (`sftp_tree.MAX_DIR_HANDLES`) per
session; the next is refused with SSH_FX_FAILURE, the session goes on, closing one frees a
place. Before, one session held 1,004 files under `ulimit -n 1024` and FTP died.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from mockserver.servers.sftp_session import MAX_HANDLES
from mockserver.servers.sftp_tree import MAX_DIR_HANDLES
from tests.support.harness import SftpHarness, connect, run


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpHarness]:
    harness = SftpHarness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


def test_the_65th_open_file_is_refused_and_the_session_goes_on(sftp: SftpHarness) -> None:
    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            files = [await client.open(f"/SEND_SMS/f{i}.tmp", "wb") for i in range(MAX_HANDLES)]
            with pytest.raises(asyncssh.SFTPFailure, match="too many open files in this session"):
                await client.open("/SEND_SMS/one-more.tmp", "wb")
            with pytest.raises(asyncssh.SFTPFailure, match="too many open files"):
                await client.open("/SEND_SMS/f0.tmp", "rb")  # reading counts too
            # The session goes on: listing, stat, writing to the files it holds.
            assert "f63.tmp" in await client.listdir("/SEND_SMS")
            await files[1].write(b"still here")
            # Another session has its own places.
            async with (
                connect(sftp.port) as other,
                other.start_sftp_client() as second,
                await second.open("/SEND_SMS/other.tmp", "wb") as f,
            ):
                await f.write(b"x")
            # Closing one frees a place.
            await files[0].close()
            again = await client.open("/SEND_SMS/one-more.tmp", "wb")
            with pytest.raises(asyncssh.SFTPFailure, match="too many open files"):
                await client.open("/SEND_SMS/two-more.tmp", "wb")
            for f in [*files[1:], again]:
                await f.close()
            async with await client.open("/SEND_SMS/f1.tmp", "rb") as f:
                assert await f.read() == b"still here"

    run(main())


def test_folder_handles_have_their_own_cap_of_64(sftp: SftpHarness) -> None:
    """Decided: a folder handle holds no descriptor (the folder is read whole at the first
    readdir, then closed) but its names; it gets its own cap, apart from the files'."""

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            handler = client._handler
            handles = [await handler.opendir(b"/SEND_SMS") for _ in range(MAX_DIR_HANDLES)]
            with pytest.raises(asyncssh.SFTPFailure, match="too many open folders in this session"):
                await handler.opendir(b"/")
            # Files are counted apart: a file still opens; the handles held still read.
            async with await client.open("/SEND_SMS/a.tmp", "wb") as f:
                await f.write(b"a")
            names, _ = await handler.readdir(handles[5])
            assert {n.filename for n in names} >= {b".", b"..", b"a.tmp"}
            await handler.close(handles[0])
            extra = await handler.opendir(b"/")
            with pytest.raises(asyncssh.SFTPFailure, match="too many open folders"):
                await handler.opendir(b"/")
            for handle in [*handles[1:], extra]:
                await handler.close(handle)
            # All closed: a listing works as before.
            assert "a.tmp" in await client.listdir("/SEND_SMS")

    run(main())


def test_a_session_ending_frees_its_folder_handles(sftp: SftpHarness) -> None:
    async def hold() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            for _ in range(MAX_DIR_HANDLES):
                await client._handler.opendir(b"/")

    async def afterwards() -> int:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            return len([await client._handler.opendir(b"/") for _ in range(MAX_DIR_HANDLES)])

    run(hold())
    assert run(afterwards()) == MAX_DIR_HANDLES  # the places are per session
