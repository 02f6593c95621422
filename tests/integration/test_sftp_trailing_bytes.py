"""SFTP requests with bytes after their last field, sent by hand through an SSH channel: served
as OpenSSH's sftp-server serves them (the extra bytes ignored), never `SSH_FX_BAD_MESSAGE`
"Unexpected data at end of packet" (docs/spec.md 4.3). rclone 1.60 (pkg/sftp before v1.13.6)
sends every write of a file over 32 KiB that way; each write must store its data field alone.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh
import pytest

from mockserver.servers import sftp_compat
from tests.support.harness import CSV, FINAL, SftpHarness, connect, run
from tests.support.waiting import wait_until

# SFTP version 3 (draft-ietf-secsh-filexfer-02): the request and reply types used here.
INIT, VERSION = 1, 2
OPEN, CLOSE, READ, WRITE, LSTAT, FSTAT, SETSTAT, FSETSTAT = 3, 4, 5, 6, 7, 8, 9, 10
OPENDIR, READDIR, REMOVE, REALPATH, STAT, RENAME = 11, 12, 13, 16, 17, 18
EXTENDED = 200
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
FX_OK, FX_EOF, FX_BAD_MESSAGE = 0, 1, 5
FXF_READ, FXF_WRITE, FXF_CREAT, FXF_TRUNC = 0x01, 0x02, 0x08, 0x10
ATTR_ACMODTIME = 0x08
PADDING = b"\x00padding after the last field\xff" * 3


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def string(value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return u32(len(data)) + data


NO_ATTRS = u32(0)


class RawSftp:
    """An SFTP v3 client that builds every packet itself, so a request can carry bytes after
    its fields (asyncssh's and paramiko's clients never send those)."""

    def __init__(self, writer: asyncssh.SSHWriter[bytes], reader: asyncssh.SSHReader[bytes]):
        self._writer = writer
        self._reader = reader
        self._next_id = 0

    async def _send(self, payload: bytes) -> None:
        self._writer.write(u32(len(payload)) + payload)
        await self._writer.drain()

    async def _receive(self) -> tuple[int, bytes]:
        length = struct.unpack(">I", await self._reader.readexactly(4))[0]
        payload = await self._reader.readexactly(length)
        return payload[0], payload[1:]

    async def init(self) -> None:
        await self._send(bytes([INIT]) + u32(3))
        kind, _ = await self._receive()
        assert kind == VERSION

    async def request(self, kind: int, *fields: bytes, trailing: bytes = b"") -> tuple[int, bytes]:
        """Send one request (`fields`, then `trailing`) and return its reply: (type, body after
        the request id)."""
        self._next_id += 1
        await self._send(bytes([kind]) + u32(self._next_id) + b"".join(fields) + trailing)
        reply, body = await self._receive()
        assert struct.unpack(">I", body[:4])[0] == self._next_id
        return reply, body[4:]

    async def ok(self, kind: int, *fields: bytes, trailing: bytes = b"") -> None:
        """A request whose reply must be the status OK."""
        assert await self.status(kind, *fields, trailing=trailing) == (FX_OK, "")

    async def status(self, kind: int, *fields: bytes, trailing: bytes = b"") -> tuple[int, str]:
        reply, body = await self.request(kind, *fields, trailing=trailing)
        assert reply == STATUS, (reply, body)
        code = struct.unpack(">I", body[:4])[0]
        size = struct.unpack(">I", body[4:8])[0]
        return code, body[8 : 8 + size].decode()

    async def handle(self, kind: int, *fields: bytes, trailing: bytes = b"") -> bytes:
        reply, body = await self.request(kind, *fields, trailing=trailing)
        assert reply == HANDLE, (reply, body)
        size = struct.unpack(">I", body[:4])[0]
        return body[4 : 4 + size]

    async def open_write(self, path: str, trailing: bytes = b"") -> bytes:
        flags = FXF_WRITE | FXF_CREAT | FXF_TRUNC
        return await self.handle(OPEN, string(path), u32(flags), NO_ATTRS, trailing=trailing)

    async def write(self, handle: bytes, offset: int, data: bytes, trailing: bytes = b"") -> None:
        await self.ok(WRITE, string(handle), u64(offset), string(data), trailing=trailing)


@asynccontextmanager
async def raw_sftp(port: int) -> AsyncIterator[RawSftp]:
    """A raw SFTP session on the `sftp` subsystem of an asyncssh connection as alice."""
    async with connect(port) as conn:
        writer, reader, _stderr = await conn.open_session(subsystem="sftp", encoding=None)
        client = RawSftp(writer, reader)
        await client.init()
        try:
            yield client
        finally:
            writer.close()


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpHarness]:
    harness = SftpHarness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    assert harness.pending_at_stop == []


def test_a_padded_write_writes_its_data_field_alone(sftp: SftpHarness) -> None:
    """pkg/sftp's writes of rclone 1.60: the data field, then the rest of a 32 KiB buffer."""
    chunk = 32_768
    body = (CSV * (3 * chunk // len(CSV) + 1))[: 2 * chunk + 1000]
    buffer_tail = b"\xaa" * chunk  # what was left in the client's buffer

    async def main() -> None:
        async with raw_sftp(sftp.port) as client:
            handle = await client.open_write("/SEND_SMS/x.tmp")
            for offset in range(0, len(body), chunk):
                data = body[offset : offset + chunk]
                await client.write(
                    handle, offset, data, trailing=buffer_tail[len(data) :] or PADDING
                )
            await client.ok(CLOSE, string(handle))
            await client.ok(RENAME, string("/SEND_SMS/x.tmp"), string(f"/SEND_SMS/{FINAL}"))

    run(main())
    final = sftp.folder("SEND_SMS") / FINAL
    assert final.read_bytes() == body
    assert sftp.uploads == [("alice", sftp.folder("SEND_SMS") / "x.tmp"), ("alice", final)]
    assert not sftp.open_writes.snapshot()


@pytest.mark.parametrize("trailing", [b"", b"\x00", PADDING], ids=["none", "one-byte", "padding"])
def test_every_request_ignores_bytes_after_its_fields(sftp: SftpHarness, trailing: bytes) -> None:
    """OpenSSH's sftp-server reads the fields it needs and discards the rest of every message
    (`process()` in sftp-server.c); so does this server, whatever the request."""
    (sftp.folder("ARCHIVES") / "old.csv").write_bytes(CSV)
    t = trailing

    async def main() -> None:
        async with raw_sftp(sftp.port) as client:
            reply, body = await client.request(REALPATH, string("."), trailing=t)
            assert reply == NAME
            assert string("/") in body
            for kind in (STAT, LSTAT):
                reply, _ = await client.request(kind, string("/SEND_SMS"), trailing=t)
                assert reply == ATTRS
            folder = await client.handle(OPENDIR, string("/ARCHIVES"), trailing=t)
            reply, body = await client.request(READDIR, string(folder), trailing=t)
            assert reply == NAME
            assert b"old.csv" in body
            await client.ok(CLOSE, string(folder), trailing=t)

            handle = await client.open_write("/SEND_SMS/y.tmp", trailing=t)
            await client.write(handle, 0, CSV, trailing=t)
            reply, _ = await client.request(FSTAT, string(handle), trailing=t)
            assert reply == ATTRS
            times = u32(ATTR_ACMODTIME) + u32(1_900_000_000) * 2
            await client.ok(FSETSTAT, string(handle), times, trailing=t)
            await client.ok(EXTENDED, string("fsync@openssh.com"), string(handle), trailing=t)
            await client.ok(CLOSE, string(handle), trailing=t)
            await client.ok(SETSTAT, string("/SEND_SMS/y.tmp"), times, trailing=t)

            reader = await client.handle(
                OPEN, string("/SEND_SMS/y.tmp"), u32(FXF_READ), NO_ATTRS, trailing=t
            )
            reply, body = await client.request(READ, string(reader), u64(0), u32(4096), trailing=t)
            assert reply == DATA
            assert body == string(CSV)
            await client.ok(CLOSE, string(reader), trailing=t)

            await client.ok(
                RENAME, string("/SEND_SMS/y.tmp"), string("/SEND_SMS/z.tmp"), trailing=t
            )
            await client.ok(
                EXTENDED,
                string("posix-rename@openssh.com"),
                string("/SEND_SMS/z.tmp"),
                string(f"/SEND_SMS/{FINAL}"),
                trailing=t,
            )
            await client.ok(REMOVE, string("/ARCHIVES/old.csv"), trailing=t)

    run(main())
    assert (sftp.folder("SEND_SMS") / FINAL).read_bytes() == CSV
    assert not (sftp.folder("ARCHIVES") / "old.csv").exists()
    assert not sftp.open_writes.snapshot()


def test_a_request_missing_a_field_is_still_a_bad_message(sftp: SftpHarness) -> None:
    """Only bytes *after* the fields are ignored: a write whose data field is cut short is
    `SSH_FX_BAD_MESSAGE`; the session goes on, and ending it releases the upload."""

    async def main() -> None:
        async with raw_sftp(sftp.port) as client:
            handle = await client.open_write("/SEND_SMS/cut.tmp")
            code, _ = await client.status(WRITE, string(handle), u64(0), u32(100), b"short")
            assert code == FX_BAD_MESSAGE
            assert sftp.open_writes.snapshot() == {sftp.folder("SEND_SMS") / "cut.tmp"}
            reply, _ = await client.request(STAT, string("/SEND_SMS"))
            assert reply == ATTRS

    run(main())
    wait_until(lambda: not sftp.open_writes.snapshot(), what="the session to end")
    assert not (sftp.folder("SEND_SMS") / "cut.tmp").exists()
    assert sftp.uploads == []


def test_another_asyncssh_sftp_server_keeps_asyncssh_rules(tmp_path: Path) -> None:
    """The leniency is ours alone: an asyncssh SFTP server of someone else in the same process
    (a test suite running its own next to the pytest plugin's mock) still answers
    `SSH_FX_BAD_MESSAGE`, even after the mock's server is installed."""
    sftp_compat.install()
    root = tmp_path / "other"
    root.mkdir()

    class Open(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return False

    class Chrooted(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
            super().__init__(chan, chroot=str(root))

    async def main() -> tuple[int, int]:
        server = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=Open,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            sftp_factory=Chrooted,
        )
        try:
            async with (
                asyncssh.connect(
                    "127.0.0.1",
                    server.get_port(),
                    username="anyone",
                    known_hosts=None,
                    client_keys=None,
                    agent_path=None,
                    config=None,
                ) as conn,
            ):
                writer, reader, _ = await conn.open_session(subsystem="sftp", encoding=None)
                client = RawSftp(writer, reader)
                await client.init()
                handle = await client.open_write("/f")
                padded = await client.status(WRITE, string(handle), u64(0), string(b"x"), PADDING)
                plain = await client.status(WRITE, string(handle), u64(0), string(b"x"))
                writer.close()
                return padded[0], plain[0]
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == (FX_BAD_MESSAGE, FX_OK)
