"""The SFTP server with real clients (asyncssh, paramiko): logins, uploads, renames, the hook,
the size limit, the host key and a clean stop."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import asyncssh
import paramiko
import pytest

from mockserver.auth import StaticAuthenticator
from mockserver.config import AccountConfig, load_config
from mockserver.servers.sftp import HostKeyError, SftpServer, load_or_create_host_key
from mockserver.writes import OpenWrites
from tests.support.harness import CSV, FINAL, SftpHarness, connect, paramiko_sftp, run
from tests.support.waiting import wait_until

T = TypeVar("T")


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpHarness]:
    harness = SftpHarness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    assert harness.pending_at_stop == [], "stop() left tasks running"


# -- logins ------------------------------------------------------------------------------------


def test_login_with_password_and_realpath_is_virtual_root(sftp: SftpHarness) -> None:
    """Contract 4: "Over FTP and SFTP a login sees only its own tree ... `/SEND_SMS`,
    `/PROCESSING`, `/ARCHIVES`, `/INVALIDS`"; the client's `/` is the login root."""

    async def main() -> tuple[str, list[str]]:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            return await client.realpath("."), sorted(await client.listdir("/"))

    home, names = run(main())
    assert home == "/"
    assert names == [".", "..", "ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]


def test_nested_layout_shows_login_folder(tmp_path: Path) -> None:
    """Contract 3 `layout = "nested"`: "the root holds <login>/ which holds them"."""
    harness = SftpHarness(tmp_path, layout="nested")
    try:

        async def main() -> list[str]:
            async with connect(harness.port) as conn, conn.start_sftp_client() as client:
                await client.put(_local(tmp_path, b"x"), "/alice/SEND_SMS/a.tmp")
                return sorted(await client.listdir("/alice"))

        assert run(main()) == [".", "..", "ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]
        assert (harness.folder("SEND_SMS") / "a.tmp").read_bytes() == b"x"
    finally:
        harness.close()


def test_wrong_password_is_refused_and_accounts_are_read_live(sftp: SftpHarness) -> None:
    """Brief: the authenticator is asked on every login (accounts change at run time)."""

    async def login(login: str, password: str) -> bool:
        try:
            async with connect(sftp.port, login, password):
                return True
        except asyncssh.PermissionDenied:
            return False

    assert not run(login("alice", "wrong"))
    assert not run(login("nobody", "pw-nobody"))
    sftp.auth.set_password("alice", "changed")
    assert not run(login("alice", "pw-alice"))
    assert run(login("alice", "changed"))
    sftp.auth.add(AccountConfig(login="carol", password="pw-carol"))
    assert run(login("carol", "pw-carol"))


def test_three_failed_attempts_disconnect(sftp: SftpHarness) -> None:
    """Brief: "after 3 failed attempts disconnect": the 4th attempt, even with the right
    password, never gets an answer on that connection."""
    transport = paramiko.Transport(("127.0.0.1", sftp.port))
    try:
        transport.start_client(timeout=10)
        for _ in range(2):
            with pytest.raises(paramiko.AuthenticationException):
                transport.auth_password("alice", "wrong")
        with pytest.raises((paramiko.AuthenticationException, paramiko.SSHException, EOFError)):
            transport.auth_password("alice", "wrong")
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            transport.auth_password("alice", "pw-alice")
        assert not transport.is_authenticated()
    finally:
        transport.close()


def test_only_password_auth_is_offered(sftp: SftpHarness) -> None:
    """Brief: password logins only, no "none", no public key, no keyboard-interactive."""
    transport = paramiko.Transport(("127.0.0.1", sftp.port))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as excinfo:
            transport.auth_none("alice")
        assert excinfo.value.allowed_types == ["password"]
    finally:
        transport.close()


# -- uploads and renames -----------------------------------------------------------------------


def _local(tmp_path: Path, data: bytes, name: str = "local.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_asyncssh_upload_tmp_then_rename_calls_hook(sftp: SftpHarness, tmp_path: Path) -> None:
    """Manual 4.2: "il est conseillé d'uploader des fichiers temporaires, avec extension .tmp
    ... remplacer l'extension .tmp par .csv afin que le traitement démarre"; the hook sees the
    closed upload and then the final name."""
    local = _local(tmp_path, CSV)

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            await client.put(local, "/SEND_SMS/x.tmp")
            await client.rename("/SEND_SMS/x.tmp", f"/SEND_SMS/{FINAL}")

    run(main())
    send = sftp.folder("SEND_SMS")
    assert (send / FINAL).read_bytes() == CSV
    assert not (send / "x.tmp").exists()
    assert sftp.uploads == [("alice", send / "x.tmp"), ("alice", send / FINAL)]
    assert not sftp.open_writes.snapshot()


def test_paramiko_upload_tmp_then_posix_rename(sftp: SftpHarness) -> None:
    """Contract 4: "SFTP supports both `rename` and OpenSSH's `posix-rename`"."""
    send = sftp.folder("SEND_SMS")
    with paramiko_sftp(sftp.port) as client:
        client.putfo(io.BytesIO(CSV), "/SEND_SMS/y.tmp")
        client.posix_rename("/SEND_SMS/y.tmp", f"/SEND_SMS/{FINAL}")
        assert client.listdir("/SEND_SMS") == [FINAL]
    assert (send / FINAL).read_bytes() == CSV
    assert sftp.uploads[-1] == ("alice", send / FINAL)


def test_download_everywhere_in_tree(sftp: SftpHarness) -> None:
    """Contract 4: "A login may list and download everywhere in its tree"."""
    for folder in ("ARCHIVES", "INVALIDS", "PROCESSING"):
        (sftp.folder(folder) / f"TreatedByMSI_{FINAL}").write_bytes(folder.encode())
    with paramiko_sftp(sftp.port) as client:
        for folder in ("ARCHIVES", "INVALIDS", "PROCESSING"):
            with client.open(f"/{folder}/TreatedByMSI_{FINAL}") as remote:
                assert remote.read() == folder.encode()
            assert client.listdir(f"/{folder}") == [f"TreatedByMSI_{FINAL}"]


def test_rename_refused_while_the_source_is_being_written(sftp: SftpHarness) -> None:
    """docs/spec.md 5.2.1: a rename of x.tmp to x.csv can arrive while x.tmp is still being
    written by another connection: it is refused."""
    with paramiko_sftp(sftp.port) as writer, paramiko_sftp(sftp.port) as other:
        remote = writer.open("/SEND_SMS/z.tmp", "wb")
        remote.write(b"half")
        remote.flush()
        with pytest.raises(OSError, match="still being uploaded"):
            other.rename("/SEND_SMS/z.tmp", f"/SEND_SMS/{FINAL}")
        with pytest.raises(OSError, match="being uploaded by another session"):
            other.open("/SEND_SMS/z.tmp", "wb")
        remote.close()
        other.rename("/SEND_SMS/z.tmp", f"/SEND_SMS/{FINAL}")
    assert (sftp.folder("SEND_SMS") / FINAL).read_bytes() == b"half"


def test_a_file_another_session_is_writing_cannot_be_deleted(sftp: SftpHarness) -> None:
    """docs/spec.md 4.3: "A file another session is writing cannot be overwritten, deleted or
    renamed" (both protocols); once closed it can."""
    with paramiko_sftp(sftp.port) as writer, paramiko_sftp(sftp.port) as other:
        remote = writer.open("/SEND_SMS/z.tmp", "wb")
        remote.write(b"half")
        remote.flush()
        with pytest.raises(OSError, match="being uploaded by another session"):
            other.remove("/SEND_SMS/z.tmp")
        remote.close()
        other.remove("/SEND_SMS/z.tmp")
    assert not (sftp.folder("SEND_SMS") / "z.tmp").exists()


def test_a_removed_upload_can_be_uploaded_again_in_the_same_session(sftp: SftpHarness) -> None:
    """rclone, after a failed write, removes its half-written file without closing the handle,
    then retries the upload: the abandoned upload no longer holds the name, and closing it
    later announces nothing."""
    send = sftp.folder("SEND_SMS")
    with paramiko_sftp(sftp.port) as client:
        abandoned = client.open("/SEND_SMS/x.tmp", "wb")
        abandoned.write(b"half")
        abandoned.flush()
        client.remove("/SEND_SMS/x.tmp")
        assert not sftp.open_writes.snapshot()
        with client.open("/SEND_SMS/x.tmp", "wb") as retry:
            retry.write(CSV)
        assert sftp.uploads == [("alice", send / "x.tmp")]
        abandoned.write(b" more")
        abandoned.close()
        assert (send / "x.tmp").read_bytes() == CSV
        client.rename("/SEND_SMS/x.tmp", f"/SEND_SMS/{FINAL}")
    assert sftp.uploads == [("alice", send / "x.tmp"), ("alice", send / FINAL)]
    assert not sftp.open_writes.snapshot()


def test_a_second_write_open_in_the_same_session_says_so(sftp: SftpHarness) -> None:
    """A file this very session is writing: the refusal names the open handle, not "another
    session"."""
    with paramiko_sftp(sftp.port) as client, paramiko_sftp(sftp.port) as other:
        first = client.open("/SEND_SMS/x.tmp", "wb")
        with pytest.raises(OSError, match="already open for writing in this session"):
            client.open("/SEND_SMS/x.tmp", "wb")
        with pytest.raises(OSError, match="being uploaded by another session"):
            other.open("/SEND_SMS/x.tmp", "wb")
        first.close()
        client.open("/SEND_SMS/x.tmp", "wb").close()
    assert not sftp.open_writes.snapshot()


def test_delete_in_send_archives_invalids_not_processing(sftp: SftpHarness) -> None:
    """Contract 4: "upload/rename/delete only in SEND_SMS, delete in ARCHIVES and INVALIDS"."""
    for folder in ("SEND_SMS", "ARCHIVES", "INVALIDS", "PROCESSING"):
        (sftp.folder(folder) / "f.csv").write_bytes(b"x")
    with paramiko_sftp(sftp.port) as client:
        for folder in ("SEND_SMS", "ARCHIVES", "INVALIDS"):
            client.remove(f"/{folder}/f.csv")
        with pytest.raises(PermissionError):
            client.remove("/PROCESSING/f.csv")
        assert client.listdir("/SEND_SMS") == []  # the session still works
    assert (sftp.folder("PROCESSING") / "f.csv").exists()


def test_size_limit_refuses_and_removes_partial_file(tmp_path: Path) -> None:
    """Contract 3: `max_file_bytes` — "a larger upload is refused by the server"; the partial
    file is removed when the handle closes, the hook never sees it, the session goes on."""
    harness = SftpHarness(tmp_path, **{"limits.max_file_bytes": 1000})
    try:
        exact = _local(tmp_path, b"a" * 1000, "exact.bin")
        big = _local(tmp_path, b"b" * 1001, "big.bin")

        async def main() -> str:
            async with connect(harness.port) as conn, conn.start_sftp_client() as client:
                await client.put(exact, "/SEND_SMS/exact.tmp")
                with pytest.raises(asyncssh.SFTPFailure) as excinfo:
                    await client.put(big, "/SEND_SMS/big.tmp")
                assert sorted(await client.listdir("/SEND_SMS")) == [".", "..", "exact.tmp"]
                return excinfo.value.reason

        assert run(main()) == "file too large: limit 1000 bytes"
        send = harness.folder("SEND_SMS")
        assert not (send / "big.tmp").exists()
        assert harness.uploads == [("alice", send / "exact.tmp")]
        assert not harness.open_writes.snapshot()
    finally:
        harness.close()


def test_sparse_write_past_limit_refused(tmp_path: Path) -> None:
    """docs/spec.md 4.5: a write at a huge offset would make a sparse file past any size limit —
    the check is offset + length on every write."""
    harness = SftpHarness(tmp_path, **{"limits.max_file_bytes": 1000})
    try:
        with paramiko_sftp(harness.port) as client:
            remote = client.open("/SEND_SMS/sparse.tmp", "wb", bufsize=0)
            remote.seek(10**12)
            with pytest.raises(OSError, match="file too large"):
                remote.write(b"x")
            remote.close()
            assert client.listdir("/SEND_SMS") == []
        assert harness.uploads == []
        assert not (harness.folder("SEND_SMS") / "sparse.tmp").exists()
    finally:
        harness.close()


def test_interrupted_upload_is_removed_and_not_reported(sftp: SftpHarness) -> None:
    """Pitfall 1: "Upload finished" is a protocol event: a connection lost with the file still
    open is not a finished upload (like FTP's incomplete transfers)."""

    async def main() -> None:
        conn = await connect(sftp.port).__aenter__()
        client = await conn.start_sftp_client()
        remote = await client.open("/SEND_SMS/" + FINAL, "wb")
        await remote.write(b"half a file")
        conn.abort()
        await conn.wait_closed()

    run(main())
    target = sftp.folder("SEND_SMS") / FINAL
    wait_until(lambda: not sftp.open_writes.snapshot(), what="the write handle to close")
    assert not target.exists()
    assert sftp.uploads == []


def test_setstat_times_accepted_mode_change_refused(sftp: SftpHarness) -> None:
    """Contract 4: "never ... change modes"; times after an upload (OpenSSH `put -p`, rclone)
    are applied in SEND_SMS so such uploads do not fail."""
    with paramiko_sftp(sftp.port) as client:
        client.putfo(io.BytesIO(b"x"), "/SEND_SMS/t.tmp")
        client.utime("/SEND_SMS/t.tmp", (1_000_000_000, 1_000_000_000))
        mode = stat.S_IMODE(client.stat("/SEND_SMS/t.tmp").st_mode or 0)
        client.chmod("/SEND_SMS/t.tmp", mode)  # a no-op is accepted
        with pytest.raises(PermissionError):
            client.chmod("/SEND_SMS/t.tmp", 0o777)
        with pytest.raises(PermissionError):
            client.chmod("/SEND_SMS", 0o777)
        (sftp.folder("ARCHIVES") / "a.csv").write_bytes(b"x")
        with pytest.raises(PermissionError):
            client.utime("/ARCHIVES/a.csv", (1, 1))
    real = sftp.folder("SEND_SMS") / "t.tmp"
    assert real.stat().st_mtime == 1_000_000_000
    assert stat.S_IMODE(real.stat().st_mode) == mode


# -- lifecycle and host key -------------------------------------------------------------------


def test_host_key_created_0600_and_reused(tmp_path: Path) -> None:
    """Contract 4: "<data_dir>/ssh_host_ed25519_key made on first start, reused after"."""
    first = SftpHarness(tmp_path)
    try:
        fingerprint = first.server.fingerprint
    finally:
        first.close()
    key_file = tmp_path / "data" / "ssh_host_ed25519_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert fingerprint.startswith("SHA256:")
    second = SftpHarness(tmp_path)
    try:
        assert second.server.fingerprint == fingerprint

        async def main() -> str:
            async with connect(second.port) as conn:
                key = conn.get_server_host_key()
                assert key is not None
                return key.get_fingerprint()

        assert run(main()) == fingerprint
    finally:
        second.close()


def test_corrupt_host_key_stops_startup_with_clear_error(tmp_path: Path) -> None:
    """Contract 3: "A bad file or value stops start-up with one clear line"; the key is never
    silently replaced."""
    key_file = tmp_path / "data" / "ssh_host_ed25519_key"
    key_file.parent.mkdir(parents=True)
    key_file.write_bytes(b"not a key")
    with pytest.raises(HostKeyError) as excinfo:
        SftpHarness(tmp_path)
    message = str(excinfo.value)
    assert str(key_file) in message
    assert "\n" not in message
    assert key_file.read_bytes() == b"not a key"
    with pytest.raises(HostKeyError):
        load_or_create_host_key(key_file)


def test_stop_closes_open_connections(sftp: SftpHarness) -> None:
    """Brief: `stop()` closes the listener and every connection, leaving no task behind."""

    async def main() -> None:
        async with connect(sftp.port) as conn, conn.start_sftp_client() as client:
            await client.listdir("/")
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: sftp.call(sftp.server.stop())
            )
            await asyncio.wait_for(conn.wait_closed(), 10)

    run(main())


def test_server_unit_options(tmp_path: Path) -> None:
    """A server that is not started has no port or fingerprint (a clear error, not None)."""
    config = load_config(None, env={}, overrides={"server.data_dir": str(tmp_path)})
    server = SftpServer(config, StaticAuthenticator(), OpenWrites(), lambda login, path: None)
    with pytest.raises(RuntimeError):
        _ = server.port
    with pytest.raises(RuntimeError):
        _ = server.fingerprint
    assert os.fspath(server.host_key_path).endswith("ssh_host_ed25519_key")


def test_append_counts_from_the_end_of_the_file(tmp_path: Path) -> None:
    """Contract 3 `max_file_bytes`: an append (resumed upload) is checked at the file's end,
    whatever offset the client sends."""
    harness = SftpHarness(tmp_path, **{"limits.max_file_bytes": 1000})
    try:
        (harness.folder("SEND_SMS") / "r.tmp").write_bytes(b"a" * 900)

        async def main() -> None:
            async with connect(harness.port) as conn, conn.start_sftp_client() as client:
                async with client.open("/SEND_SMS/r.tmp", "ab") as remote:
                    await remote.write(b"b" * 100, 0)
                with pytest.raises(asyncssh.SFTPFailure, match="file too large"):
                    async with client.open("/SEND_SMS/r.tmp", "ab") as remote:
                        await remote.write(b"c", 0)

        run(main())
        assert not (harness.folder("SEND_SMS") / "r.tmp").exists()  # refused: removed at close
        send = harness.folder("SEND_SMS")
        assert harness.uploads == [("alice", send / "r.tmp")]
    finally:
        harness.close()


def test_reads_are_not_uploads_and_a_failing_hook_does_not_break_the_session(
    sftp: SftpHarness,
) -> None:
    """Brief: the hook is called after an upload closes and after a rename, nothing else; it
    must be cheap, and a bug in it never becomes a client error."""
    (sftp.folder("ARCHIVES") / "a.csv").write_bytes(b"done")

    def broken(login: str, path: Path) -> None:
        raise RuntimeError("hook bug")

    with paramiko_sftp(sftp.port) as client:
        with client.open("/ARCHIVES/a.csv") as remote:
            assert remote.read() == b"done"
        assert sftp.uploads == []
        sftp.server.on_upload = broken
        client.putfo(io.BytesIO(CSV), "/SEND_SMS/h.tmp")
        client.rename("/SEND_SMS/h.tmp", f"/SEND_SMS/{FINAL}")
        assert client.listdir("/SEND_SMS") == [FINAL]
