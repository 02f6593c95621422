"""The FTP server with Python's ftplib: sessions, uploads, hooks, limits, logins (contract 2-4)."""

from __future__ import annotations

import ftplib
import io
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.config import AccountConfig
from tests.support.harness import FtpHarness
from tests.support.waiting import wait_until


@pytest.fixture
def ftp_env(tmp_path: Path) -> Iterator[FtpHarness]:
    harness = FtpHarness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


def _error_code(exc: pytest.ExceptionInfo[ftplib.Error]) -> str:
    return str(exc.value)[:3]


def test_login_sees_the_four_folders(ftp_env: FtpHarness) -> None:
    """Manual 4.2: "le client accède aux sous-répertoires suivants : ARCHIVES, INVALIDS,
    PROCESSING, SEND_SMS"; contract 4: the login's root holds them (layout "flat")."""
    ftp = ftp_env.login()
    assert ftp.pwd() == "/"
    assert sorted(ftp.nlst()) == ["ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]
    facts = dict(ftp.mlsd("/"))
    assert {name for name, f in facts.items() if f["type"] == "dir"} >= {"SEND_SMS", "ARCHIVES"}
    ftp.cwd("SEND_SMS")
    assert ftp.pwd() == "/SEND_SMS"
    ftp.cwd("..")
    assert ftp.pwd() == "/"


def test_nested_layout_root_holds_the_login_folder(tmp_path: Path) -> None:
    """Contract 3: layout "nested": the root holds <login>/ which holds the four folders."""
    harness = FtpHarness(tmp_path, layout="nested")
    try:
        ftp = harness.login()
        assert ftp.nlst() == ["alice"]
        assert sorted(ftp.nlst("/alice")) == ["ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]
        ftp.storbinary("STOR /alice/SEND_SMS/a.tmp", io.BytesIO(b"x"))
        assert (harness.folder("SEND_SMS") / "a.tmp").read_bytes() == b"x"
        with pytest.raises(ftplib.error_perm) as exc:
            ftp.storbinary("STOR /SEND_SMS/a.tmp", io.BytesIO(b"x"))
        assert _error_code(exc) == "553"
    finally:
        harness.close()


def test_tmp_upload_then_rename_calls_the_hook_with_both_paths(ftp_env: FtpHarness) -> None:
    """Manual 4.2: "uploader des fichiers temporaires, avec extension .tmp ... remplacer
    l'extension .tmp par .csv"; the brief's hook: after the upload closes and after RNTO."""
    ftp = ftp_env.login()
    body = b'"0612345678";"Bonjour"\r\n'
    ftp.storbinary("STOR SEND_SMS/Camp_20300101120000_HQ.tmp", io.BytesIO(body))
    ftp.rename("SEND_SMS/Camp_20300101120000_HQ.tmp", "/SEND_SMS/Camp_20300101120000_HQ.csv")
    send = ftp_env.folder("SEND_SMS")
    final = send / "Camp_20300101120000_HQ.csv"
    assert final.read_bytes() == body
    assert not (send / "Camp_20300101120000_HQ.tmp").exists()
    expected = [("alice", send / "Camp_20300101120000_HQ.tmp"), ("alice", final)]
    # The hook runs on the server's thread right after the reply is queued: wait for it.
    wait_until(lambda: len(ftp_env.uploads) == 2, what="both hook calls")
    assert ftp_env.uploads == expected
    assert all(p.is_absolute() for _, p in ftp_env.uploads)
    assert ftp_env.open_writes.snapshot() == set()


def test_upload_is_registered_open_while_it_runs(ftp_env: FtpHarness) -> None:
    """docs/spec.md 5.2.1: a rename of x.tmp while x.tmp is still written is refused, and
    nobody may overwrite it meanwhile; once closed the rename works."""
    writer = ftp_env.login()
    other = ftp_env.login()
    path = ftp_env.folder("SEND_SMS") / "x.tmp"
    writer.voidcmd("TYPE I")
    conn = writer.transfercmd("STOR SEND_SMS/x.tmp")
    try:
        conn.sendall(b"first part;")
        wait_until(lambda: ftp_env.open_writes.is_open(path), what="the upload to be registered")
        # 450: "file unavailable (e.g., file busy)" (RFC 959), a temporary refusal.
        with pytest.raises(ftplib.error_temp) as exc:
            other.sendcmd("RNFR SEND_SMS/x.tmp")
        assert _error_code(exc) == "450"
        with pytest.raises(ftplib.error_temp) as exc:
            other.storbinary("STOR SEND_SMS/x.tmp", io.BytesIO(b"clobber"))
        assert _error_code(exc) == "450"
        with pytest.raises(ftplib.error_temp):
            other.delete("SEND_SMS/x.tmp")
        conn.sendall(b"second part")
    finally:
        conn.close()
    writer.voidresp()
    assert not ftp_env.open_writes.is_open(path)
    assert path.read_bytes() == b"first part;second part"
    other.rename("SEND_SMS/x.tmp", "SEND_SMS/x.csv")
    assert (ftp_env.folder("SEND_SMS") / "x.csv").exists()


def test_rename_source_open_between_rnfr_and_rnto_is_refused(ftp_env: FtpHarness) -> None:
    """Pitfall 2 again: the open check is repeated at RNTO (a write may start after RNFR)."""
    ftp = ftp_env.login()
    writer = ftp_env.login()
    ftp.storbinary("STOR SEND_SMS/y.tmp", io.BytesIO(b"v1"))
    path = ftp_env.folder("SEND_SMS") / "y.tmp"
    assert ftp.sendcmd("RNFR SEND_SMS/y.tmp").startswith("350")
    writer.voidcmd("TYPE I")
    conn = writer.transfercmd("APPE SEND_SMS/y.tmp")
    try:
        wait_until(lambda: ftp_env.open_writes.is_open(path), what="the append to be registered")
        with pytest.raises(ftplib.error_temp) as exc:
            ftp.sendcmd("RNTO SEND_SMS/y.csv")
        assert _error_code(exc) == "450"
    finally:
        conn.close()
    writer.voidresp()
    assert path.read_bytes() == b"v1"
    assert not (ftp_env.folder("SEND_SMS") / "y.csv").exists()


def test_overwrite_of_a_closed_file_in_send_sms_is_allowed(ftp_env: FtpHarness) -> None:
    """Decision (contract 4, upload in SEND_SMS): STOR onto an existing, closed file of
    SEND_SMS replaces it, like any FTP server (a retried upload of x.tmp)."""
    ftp = ftp_env.login()
    ftp.storbinary("STOR SEND_SMS/r.tmp", io.BytesIO(b"first try, longer"))
    ftp.storbinary("STOR SEND_SMS/r.tmp", io.BytesIO(b"second"))
    assert (ftp_env.folder("SEND_SMS") / "r.tmp").read_bytes() == b"second"


def test_upload_over_the_limit_is_refused_during_transfer(tmp_path: Path) -> None:
    """Manual 4.1: "la taille maximale des fichiers déposés ne doit pas dépasser 8 Mo";
    contract 3: "a larger upload is refused by the server": 552, partial removed, the
    connection stays usable; exactly the limit is accepted."""
    harness = FtpHarness(tmp_path, **{"limits.max_file_bytes": 10_000})
    try:
        ftp = harness.login()
        ftp.storbinary("STOR SEND_SMS/ok.tmp", io.BytesIO(b"x" * 10_000))
        assert (harness.folder("SEND_SMS") / "ok.tmp").stat().st_size == 10_000
        with pytest.raises((ftplib.error_temp, ftplib.error_perm, OSError)) as raised:
            ftp.storbinary("STOR SEND_SMS/big.tmp", io.BytesIO(b"y" * 50_000))
        if isinstance(raised.value, ftplib.Error):
            reply = str(raised.value)
        else:  # the server closed the data connection while we were still sending
            with pytest.raises(ftplib.Error) as late:
                ftp.voidresp()
            reply = str(late.value)
        assert reply.startswith("552")
        assert ftp.voidcmd("NOOP").startswith("200")
        assert not (harness.folder("SEND_SMS") / "big.tmp").exists()
        assert sorted(ftp.nlst("SEND_SMS")) == ["ok.tmp"]
        wait_until(lambda: harness.uploads, what="the hook call")
        assert [p.name for _, p in harness.uploads] == ["ok.tmp"]
        assert harness.open_writes.snapshot() == set()
    finally:
        harness.close()


def test_resumed_upload_cannot_pass_the_limit(tmp_path: Path) -> None:
    """Contract 3 size limit: the file's size after every write counts, not only the bytes of
    one transfer, so REST/APPE cannot grow a file past it; a REST beyond the end is refused."""
    harness = FtpHarness(tmp_path, **{"limits.max_file_bytes": 10_000})
    try:
        ftp = harness.login()
        ftp.voidcmd("TYPE I")
        ftp.storbinary("STOR SEND_SMS/s.tmp", io.BytesIO(b"a" * 9_999))
        with pytest.raises(ftplib.error_perm) as exc:
            ftp.storbinary("STOR SEND_SMS/s.tmp", io.BytesIO(b"z"), rest=5_000_000)
        assert _error_code(exc) == "554"
        assert (harness.folder("SEND_SMS") / "s.tmp").stat().st_size == 9_999
        with pytest.raises(ftplib.error_perm, match=r"^552"):
            ftp.storbinary("STOR SEND_SMS/s.tmp", io.BytesIO(b"zz"), rest=9_999)
        assert ftp.voidcmd("NOOP").startswith("200")
        wait_until(lambda: not (harness.folder("SEND_SMS") / "s.tmp").exists(), what="removal")
    finally:
        harness.close()


def test_aborted_upload_is_removed_and_not_announced(ftp_env: FtpHarness) -> None:
    """The brief: `on_incomplete_file_received` removes partial uploads; the hook only hears
    about complete files."""
    ftp = ftp_env.login()
    ftp.voidcmd("TYPE I")
    path = ftp_env.folder("SEND_SMS") / "cut.tmp"
    with ftp.transfercmd("STOR SEND_SMS/cut.tmp") as conn:
        conn.sendall(b"x" * 1000)
        wait_until(lambda: ftp_env.open_writes.is_open(path), what="the upload to start")
        ftp.putcmd("ABOR")
        # "426 aborted" then "226 ABOR done" mid-transfer, or "225" before any byte arrived.
        first = ftp.getline()[:3]
        if first == "426":
            assert ftp.getline()[:3] == "226"
        else:
            assert first == "225"
    wait_until(lambda: not path.exists(), what="the partial file to be removed")
    assert ftp.voidcmd("NOOP").startswith("200")
    assert ftp_env.uploads == []
    assert ftp_env.open_writes.snapshot() == set()


def test_listing_and_download_work_everywhere(ftp_env: FtpHarness) -> None:
    """Contract 4: "A login may list and download everywhere in its tree"."""
    for folder in ("ARCHIVES", "INVALIDS", "PROCESSING"):
        (ftp_env.folder(folder) / f"TreatedByMSI_{folder}.csv").write_bytes(folder.encode())
    ftp = ftp_env.login()
    for folder in ("ARCHIVES", "INVALIDS", "PROCESSING"):
        assert ftp.nlst(folder) == [f"TreatedByMSI_{folder}.csv"]
        out = io.BytesIO()
        ftp.retrbinary(f"RETR /{folder}/TreatedByMSI_{folder}.csv", out.write)
        assert out.getvalue() == folder.encode()
        lines: list[str] = []
        ftp.retrlines(f"LIST {folder}", lines.append)
        assert len(lines) == 1
        assert lines[0].endswith(f"TreatedByMSI_{folder}.csv")


def test_size_mdtm_mlst_mfmt_on_an_upload(ftp_env: FtpHarness) -> None:
    """Clients (lftp, rclone, curl) rely on SIZE/MDTM/MLST/MLSD and set times with MFMT:
    MFMT is allowed where writes are (SEND_SMS), refused elsewhere."""
    ftp = ftp_env.login()
    feat = ftp.sendcmd("FEAT")
    for word in ("MFMT", "MDTM", "MLST", "SIZE", "UTF8", "REST STREAM"):
        assert word in feat
    ftp.voidcmd("TYPE I")
    ftp.storbinary("STOR SEND_SMS/t.tmp", io.BytesIO(b"12345"))
    assert ftp.size("SEND_SMS/t.tmp") == 5
    assert ftp.sendcmd("MDTM SEND_SMS/t.tmp").startswith("213 ")
    assert ftp.sendcmd("MFMT 20200102030405 SEND_SMS/t.tmp").startswith("213 Modify=20200102030405")
    assert ftp.sendcmd("MDTM SEND_SMS/t.tmp") == "213 20200102030405"
    facts = dict(ftp.mlsd("SEND_SMS"))
    assert facts["t.tmp"]["size"] == "5"
    assert "t.tmp" in ftp.sendcmd("MLST /SEND_SMS/t.tmp")
    (ftp_env.folder("ARCHIVES") / "a.csv").write_bytes(b"a")
    with pytest.raises(ftplib.error_perm) as exc:
        ftp.sendcmd("MFMT 20200102030405 ARCHIVES/a.csv")
    assert _error_code(exc) == "550"


def test_delete_rules(ftp_env: FtpHarness) -> None:
    """Contract 4: delete in SEND_SMS, ARCHIVES and INVALIDS; not in PROCESSING."""
    for folder in ("SEND_SMS", "ARCHIVES", "INVALIDS", "PROCESSING"):
        (ftp_env.folder(folder) / "f.csv").write_bytes(b"x")
    ftp = ftp_env.login()
    for folder in ("SEND_SMS", "ARCHIVES", "INVALIDS"):
        assert ftp.delete(f"{folder}/f.csv").startswith("250")
        assert not (ftp_env.folder(folder) / "f.csv").exists()
    with pytest.raises(ftplib.error_perm) as exc:
        ftp.delete("PROCESSING/f.csv")
    assert _error_code(exc) == "550"
    assert (ftp_env.folder("PROCESSING") / "f.csv").exists()


def test_wrong_password_unknown_login_and_anonymous_get_530(ftp_env: FtpHarness) -> None:
    """Manual 4.1 PARAMETRES: login and pass are mandatory ("Obligatoire"); no anonymous."""
    for user, password in (("alice", "wrong"), ("nobody", "pw-alice"), ("anonymous", "a@b.c")):
        ftp = ftp_env.connect()
        with pytest.raises(ftplib.error_perm) as exc:
            ftp.login(user, password)
        assert _error_code(exc) == "530"
    ftp = ftp_env.connect()
    with pytest.raises(ftplib.error_perm) as exc:
        ftp.sendcmd("LIST")
    assert _error_code(exc) == "530"


def test_third_failed_login_disconnects(ftp_env: FtpHarness) -> None:
    """The brief: max_login_attempts = 3; the third failure answers 530 and closes."""
    ftp = ftp_env.connect()
    for attempt in range(3):
        with pytest.raises(ftplib.error_perm) as exc:
            ftp.login("alice", f"wrong{attempt}")
        assert _error_code(exc) == "530"
    assert "Disconnecting" in str(exc.value)
    # The server closed the control connection: the next command cannot get an answer.
    with pytest.raises((EOFError, ConnectionError)):
        ftp.login("alice", "pw-alice")


def test_accounts_changed_at_run_time_are_seen_at_the_next_login(ftp_env: FtpHarness) -> None:
    """The brief: servers ask the Authenticator on every login (the HTTP API adds accounts and
    changes passwords); a new account finds its tree made on first login."""
    ftp_env.auth.add(AccountConfig(login="bob", password="pw-bob", email="bob@example.com"))
    ftp = ftp_env.login("bob")
    assert sorted(ftp.nlst()) == ["ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]
    ftp_env.auth.set_password("alice", "new-pw")
    with pytest.raises(ftplib.error_perm):
        ftp_env.login("alice")
    assert ftp_env.login("alice", "new-pw").pwd() == "/"


def test_two_servers_keep_their_own_settings(tmp_path: Path) -> None:
    """docs/design.md, "Threads and loops": pyftpdlib keeps settings in class attributes; each
    server gets its own handler class, so two instances in one process do not share limits."""
    small = FtpHarness(tmp_path / "small", **{"limits.max_file_bytes": 100})
    large = FtpHarness(tmp_path / "large", **{"limits.max_file_bytes": 100_000})
    try:
        large.login().storbinary("STOR SEND_SMS/a.tmp", io.BytesIO(b"x" * 1000))
        ftp = small.login()
        with pytest.raises((ftplib.Error, OSError)):
            ftp.storbinary("STOR SEND_SMS/a.tmp", io.BytesIO(b"x" * 1000))
        assert (large.folder("SEND_SMS") / "a.tmp").stat().st_size == 1000
        wait_until(lambda: not (small.folder("SEND_SMS") / "a.tmp").exists(), what="removal")
    finally:
        small.close()
        large.close()


def test_stop_closes_sessions_and_the_listener(tmp_path: Path) -> None:
    """The brief: `.stop()` closes every socket and joins the thread, without warnings."""
    harness = FtpHarness(tmp_path)
    port = harness.port
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=10)
    ftp.login("alice", "pw-alice")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        harness.close()
    assert harness.server._thread is None
    with pytest.raises((EOFError, OSError)):
        ftp.voidcmd("NOOP")
    ftp.close()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=2),
    ):
        pass
    harness.server.stop()  # idempotent


def test_start_on_a_taken_port_raises_oserror(ftp_env: FtpHarness) -> None:
    """Contract 3: "nothing starts half-way": a taken port is an OSError from start()."""
    from mockserver.servers.ftp import FtpServer

    config = ftp_env.config
    taken = type(config.server)(
        **{
            **{f: getattr(config.server, f) for f in config.server.__slots__},
            "ftp_port": ftp_env.port,
        }
    )
    clash = FtpServer(
        type(config)(
            server=taken,
            limits=config.limits,
            processing=config.processing,
            mail=config.mail,
            accounts=config.accounts,
        ),
        ftp_env.auth,
        ftp_env.open_writes,
        lambda login, path: None,
    )
    with pytest.raises(OSError, match="in use"):
        clash.start()
    clash.stop()
