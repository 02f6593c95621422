"""SFTP request fuzzing with asyncssh's low-level client (contract 4: "Anything else gets a
permission error ..., never a crash, and the connection stays usable"; "A path can never reach
outside the login's tree, whatever `..`, absolute path, backslash, NUL byte or link it uses").

Seeded and bounded in time: `ALLMYSMS_FUZZ_SECONDS` (default 5) and `ALLMYSMS_FUZZ_SEED`.
After every case: `stat("/")` still works, nothing was logged at error level, nothing outside the
login's tree changed, and the tree keeps its shape.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh import SFTPAttrs

from tests.support.harness import ErrorRecords, SftpHarness, connect, outside_snapshot

FUZZ_SECONDS = float(os.environ.get("ALLMYSMS_FUZZ_SECONDS", "5"))
SEED = int(os.environ.get("ALLMYSMS_FUZZ_SEED", "20240501"))
MAX_CASES = 200_000
LIMIT = 10_000  # limits.max_file_bytes of the fuzzed server
U32 = 2**32 - 1
U64 = 2**64 - 1

_PARTS: list[bytes] = [
    b"", b".", b"..", b"...", b"/", b"SEND_SMS", b"ARCHIVES", b"PROCESSING", b"INVALIDS",
    b"alice", b"alice2", b"x.csv", b"a.tmp", b"b.tmp", b"Camp_20300101120000_HQ.csv", b"*",
    b"..\\..", b"\\", b"%2e%2e", b"\x00", b"a\x00b", b"\x01", b"\x1b", b"\x7f", b"\n",
    b"\xff\xfe", b"\xc3(", "é".encode(), "名前".encode(), b"N" * 300, b"/etc/passwd",
    b"/proc/self/root", b"~",
]  # fmt: skip
_OFFSETS = [0, 1, 100, LIMIT - 1, LIMIT, LIMIT + 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, U64]
_SIZES = [0, 1, 10, 4096, LIMIT, LIMIT + 1, 32_768, 65_536]


def random_path(rng: random.Random) -> bytes:
    parts = [rng.choice(_PARTS) for _ in range(rng.randint(1, 5))]
    path = (b"/" if rng.random() < 0.6 else b"") + b"/".join(parts)
    if rng.random() < 0.05:
        path = b"../" * rng.randint(1, 400) + path
    return path


def writable_path(rng: random.Random) -> bytes:
    """A path the policy allows to write most of the time, so writes and renames happen."""
    name = rng.choice([b"x.csv", b"a.tmp", b"b.tmp", b"c.tmp", "é.tmp".encode(), b"\xff.tmp"])
    return rng.choice([b"/SEND_SMS/", b"SEND_SMS/", b"/SEND_SMS/../SEND_SMS/"]) + name


def random_attrs(rng: random.Random) -> SFTPAttrs:
    attrs = SFTPAttrs()
    if rng.random() < 0.4:
        attrs.size = rng.choice([0, 1, LIMIT, LIMIT + 1, rng.randint(0, U64)])
    if rng.random() < 0.3:
        attrs.uid = rng.choice([0, os.getuid(), rng.randint(0, U32)])
        attrs.gid = rng.choice([0, os.getgid(), rng.randint(0, U32)])
    if rng.random() < 0.4:
        attrs.permissions = rng.choice([0o644, 0o100644, 0o777, 0o4755, rng.randint(0, U32)])
    if rng.random() < 0.4:
        attrs.atime = rng.randint(0, U32)
        attrs.mtime = rng.randint(0, U32)
    return attrs


def random_pflags(rng: random.Random) -> int:
    if rng.random() < 0.1:
        return rng.randint(0, U32)
    flags = 0
    for bit in (
        asyncssh.FXF_READ,
        asyncssh.FXF_WRITE,
        asyncssh.FXF_APPEND,
        asyncssh.FXF_CREAT,
        asyncssh.FXF_TRUNC,
        asyncssh.FXF_EXCL,
    ):
        if rng.random() < 0.4:
            flags |= bit
    return flags


class Fuzzer:
    """One random request a step, on asyncssh's request layer (no client-side checks)."""

    def __init__(self, rng: random.Random, handler: Any) -> None:
        self.rng = rng
        self.h = handler
        self.handles: list[bytes] = []

    def path(self) -> bytes:
        return writable_path(self.rng) if self.rng.random() < 0.5 else random_path(self.rng)

    def handle(self) -> bytes:
        if self.handles and self.rng.random() < 0.9:
            return self.rng.choice(self.handles)
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 8)))

    async def step(self) -> str:
        rng, h = self.rng, self.h
        op = rng.choice(
            ["open", "open", "open", "write", "write", "write", "read", "close", "fstat",
             "fsetstat", "stat", "lstat", "setstat", "rename", "posix_rename", "remove", "mkdir",
             "rmdir", "symlink", "link", "readlink", "realpath", "opendir", "statvfs"]
        )  # fmt: skip
        if op == "open":
            handle = await h.open(self.path(), random_pflags(rng), random_attrs(rng))
            if len(self.handles) < 8:
                self.handles.append(handle)
            else:
                await h.close(handle)
        elif op == "write":
            size = rng.choice(_SIZES)
            await h.write(self.handle(), rng.choice(_OFFSETS), rng.randbytes(size))
        elif op == "read":
            await h.read(self.handle(), rng.choice(_OFFSETS), rng.choice(_SIZES))
        elif op == "close":
            handle = self.handle()
            if handle in self.handles:
                self.handles.remove(handle)
            await h.close(handle)
        elif op == "fstat":
            await h.fstat(self.handle(), 0)
        elif op == "fsetstat":
            await h.fsetstat(self.handle(), random_attrs(rng))
        elif op == "stat":
            await h.stat(self.path(), 0)
        elif op == "lstat":
            await h.lstat(self.path(), 0)
        elif op == "setstat":
            await h.setstat(self.path(), random_attrs(rng))
        elif op == "rename":
            await h.rename(self.path(), self.path(), 0)
        elif op == "posix_rename":
            await h.posix_rename(self.path(), self.path())
        elif op == "remove":
            await h.remove(self.path())
        elif op == "mkdir":
            await h.mkdir(self.path(), random_attrs(rng))
        elif op == "rmdir":
            await h.rmdir(self.path())
        elif op == "symlink":
            await h.symlink(rng.choice([b"/", b"..", b"/etc", b"../../outside"]), self.path())
        elif op == "link":
            await h.link(rng.choice([b"/etc/passwd", self.path()]), self.path())
        elif op == "readlink":
            await h.readlink(self.path())
        elif op == "realpath":
            await h.realpath(self.path())
        elif op == "opendir":
            handle = await h.opendir(self.path())
            await h.readdir(handle)
            await h.close(handle)
        else:
            await h.statvfs(self.path())
        return op


@pytest.fixture
def error_records() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    loggers = [logging.getLogger("mockserver"), logging.getLogger("asyncssh")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def assert_tree_shape(harness: SftpHarness) -> None:
    """Contract 4: the four folders only, files only, no link, nothing over the size limit."""
    root = harness.root()
    assert sorted(p.name for p in root.iterdir()) == [
        "ARCHIVES",
        "INVALIDS",
        "PROCESSING",
        "SEND_SMS",
    ]
    for folder in root.iterdir():
        assert not folder.is_symlink()
        for entry in folder.iterdir():
            st = os.lstat(entry)
            assert entry.is_file(), entry
            assert not entry.is_symlink(), entry
            assert st.st_nlink == 1, entry
            assert st.st_size <= LIMIT, entry


def test_sftp_request_fuzzing(tmp_path: Path, error_records: ErrorRecords) -> None:
    """Contract 4: random requests (paths with `..`, NUL, backslashes, invalid UTF-8, long
    names; random open flags, offsets, sizes, attributes, renames, links) get an SFTP status;
    after each, `stat("/")` works, no error is logged and nothing outside the tree changed."""
    harness = SftpHarness(
        tmp_path,
        **{"limits.login_lockout_failures": 0, "limits.max_file_bytes": LIMIT},
    )
    before = outside_snapshot(harness)
    stats: dict[str, Any] = {"cases": 0, "refused": 0, "ops": {}}
    started = time.monotonic()

    async def main() -> None:
        rng = random.Random(SEED)
        async with connect(harness.port) as conn, conn.start_sftp_client() as client:
            fuzzer = Fuzzer(rng, client._handler)
            while time.monotonic() - started < FUZZ_SECONDS and stats["cases"] < MAX_CASES:
                case = f"case {stats['cases']} (seed {SEED})"
                try:
                    op = await asyncio.wait_for(fuzzer.step(), 10)
                    stats["ops"][op] = stats["ops"].get(op, 0) + 1
                except asyncssh.SFTPError:
                    stats["refused"] += 1
                attrs = await asyncio.wait_for(client.stat("/"), 10)
                assert attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY, case
                assert not error_records.records, f"{case}: {error_records.records[0].getMessage()}"
                assert outside_snapshot(harness) == before, f"{case}: changed outside the tree"
                if stats["cases"] % 50 == 0:
                    assert_tree_shape(harness)
                stats["cases"] += 1
            for handle in fuzzer.handles:
                await client._handler.close(handle)

    try:
        asyncio.run(main())
        elapsed = time.monotonic() - started
        print(
            f"\nSFTP fuzz: {stats['cases']} cases in {elapsed:.1f} s"
            f" ({stats['cases'] / elapsed:.0f}/s), {stats['refused']} refused, seed {SEED};"
            f" accepted: {dict(sorted(stats['ops'].items()))}"
        )
        assert stats["cases"] >= 20
        assert stats["ops"].get("write", 0) > 0
        assert_tree_shape(harness)
        assert harness.open_writes.snapshot() == set()
        assert harness.canary.read_bytes().startswith(b"canary")
    finally:
        harness.close()
    assert not error_records.records


# -- regressions the fuzzer found ---------------------------------------------------------------


def test_reads_past_off_t_and_huge_reads_are_answered(tmp_path: Path) -> None:
    """A read at an offset past what the OS accepts (2**63 and more) is end of file, not an
    internal error; a read of 4 GiB at once gets a bounded slice, not a 4 GiB buffer."""
    harness = SftpHarness(tmp_path)
    (harness.folder("ARCHIVES") / "big.csv").write_bytes(b"x" * 300_000)

    async def main() -> tuple[int, bytes]:
        async with connect(harness.port) as conn, conn.start_sftp_client() as client:
            handle = await client._handler.open(
                b"/ARCHIVES/big.csv", asyncssh.FXF_READ, SFTPAttrs()
            )
            try:
                data, _ = await client._handler.read(handle, 0, U32)
                with pytest.raises(asyncssh.SFTPEOFError):
                    await client._handler.read(handle, U64, 10)
                return len(data), (await client._handler.read(handle, 299_999, 10))[0]
            finally:
                await client._handler.close(handle)

    try:
        size, tail = asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        harness.close()
    assert size == 256 * 1024
    assert tail == b"x"


def test_names_that_are_not_utf8_are_logged_escaped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A path of bytes that are not UTF-8 reaches the logs escaped: every log line can be
    written as UTF-8 (a file, JSON, pytest-xdist), whatever the client sent."""
    harness = SftpHarness(tmp_path)

    async def main() -> None:
        async with connect(harness.port) as conn, conn.start_sftp_client() as client:
            with pytest.raises(asyncssh.SFTPError):
                await client._handler.open(b"/ARCHIVES/\xff.tmp", asyncssh.FXF_WRITE, SFTPAttrs())

    caplog.set_level(logging.INFO, logger="mockserver.sftp")
    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        harness.close()
    refused = [r.getMessage() for r in caplog.records if "refused upload" in r.getMessage()]
    assert refused == [
        "login=alice SFTP refused upload /ARCHIVES/\\udcff.tmp:"
        " uploads are allowed only in SEND_SMS, not in ARCHIVES"
    ]
    for record in caplog.records:
        record.getMessage().encode("utf-8")
