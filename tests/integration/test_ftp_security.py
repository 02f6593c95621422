"""Contract 4 over FTP: "A path can never reach outside the login's tree, whatever `..`, absolute
path, backslash, NUL byte or link it uses", and every forbidden action gets 550/553 with the
connection still usable. Each test also checks nothing outside alice's tree was read or written.
"""

from __future__ import annotations

import ftplib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.servers.policy import normalise
from tests.support.harness import FtpHarness, tree_snapshot


@pytest.fixture
def env(tmp_path: Path) -> Iterator[FtpHarness]:
    harness = FtpHarness(tmp_path)
    # Something worth stealing in the sibling account and outside every tree.
    (harness.folder("SEND_SMS", "alice2") / "secret.csv").write_bytes(b"alice2's secret")
    (harness.folder("ARCHIVES", "alice2") / "old.csv").write_bytes(b"alice2's archive")
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def ftp(env: FtpHarness) -> ftplib.FTP:
    return env.login()


def _outside_alice(env: FtpHarness) -> dict[str, tuple[int, int, bytes]]:
    """Everything under the test's base directory except alice's own tree."""
    snap = tree_snapshot(env.base)
    alice = str(env.root("alice").relative_to(env.base)) + os.sep
    return {k: v for k, v in snap.items() if not k.startswith(alice)}


def _refused(ftp: ftplib.FTP, command: str) -> str:
    """Send one command; it must fail with a 4xx/5xx reply and leave the session usable."""
    with pytest.raises(ftplib.Error) as exc:
        ftp.sendcmd(command)
    code = str(exc.value)[:3]
    assert code[0] in "45", f"{command!r} answered {exc.value}"
    assert ftp.voidcmd("NOOP").startswith("200")
    return code


ESCAPES = [
    "..",
    "../..",
    "/../..",
    "/../../outside/canary.txt",
    "../alice2/SEND_SMS",
    "../alice2/SEND_SMS/secret.csv",
    "/SEND_SMS/../../alice2/ARCHIVES/old.csv",
    "//..//..//outside",
    "..\\..\\outside\\canary.txt",
    "SEND_SMS\\..\\..\\alice2",
    "/etc/passwd",
    "a\x00b",
    "SEND_SMS/\x00../../alice2",
    "SEND_SMS/x\x01y",
]


@pytest.mark.parametrize("path", ESCAPES)
@pytest.mark.parametrize("verb", ["RETR", "SIZE", "MDTM", "MLST", "CWD", "DELE", "RNFR"])
def test_escapes_read_nothing_outside(
    env: FtpHarness, ftp: ftplib.FTP, verb: str, path: str
) -> None:
    """Contract 4: `..`, absolute paths, backslashes and NUL bytes never leave the tree;
    docs/spec.md 4.4: a NUL byte gets an error reply, not a dropped connection."""
    before = _outside_alice(env)
    if normalise(path) == "/" and verb in ("CWD", "MLST"):
        # `..` never climbs above the login's root (contract 4): it *is* the root.
        reply = ftp.sendcmd(f"{verb} {path}")
        assert reply.startswith("250")
        assert ftp.pwd() == "/"
        assert sorted(ftp.nlst()) == ["ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]
    else:
        _refused(ftp, f"{verb} {path}")
        assert ftp.pwd() == "/"
    assert _outside_alice(env) == before


def test_absolute_real_paths_mean_paths_inside_the_tree(env: FtpHarness, ftp: ftplib.FTP) -> None:
    """Contract 4: an absolute path is relative to the login's root, never the real disk."""
    before = _outside_alice(env)
    for real in (env.canary, env.folder("SEND_SMS", "alice2") / "secret.csv"):
        _refused(ftp, f"SIZE {real}")
        with pytest.raises(ftplib.error_perm):
            ftp.retrbinary(f"RETR {real}", lambda _b: None)
    assert _outside_alice(env) == before


@pytest.mark.parametrize("path", ESCAPES)
def test_escapes_write_nothing_outside(env: FtpHarness, ftp: ftplib.FTP, path: str) -> None:
    """Contract 4: uploads through escaping paths are refused (550/553)."""
    before = _outside_alice(env)
    alice_before = tree_snapshot(env.root("alice"))
    with pytest.raises(ftplib.error_perm) as exc:
        ftp.storbinary(f"STOR {path}", io.BytesIO(b"pwned"))
    assert str(exc.value)[:3] in ("550", "553")
    with pytest.raises(ftplib.error_perm):
        ftp.storbinary(f"APPE {path}", io.BytesIO(b"pwned"))
    assert ftp.voidcmd("NOOP").startswith("200")
    assert _outside_alice(env) == before
    assert tree_snapshot(env.root("alice")) == alice_before


def test_listing_escapes_show_only_alices_tree(env: FtpHarness, ftp: ftplib.FTP) -> None:
    """Contract 4: LIST/NLST/MLSD of `..` or `/..` show the login's root, nothing above."""
    for path in ("..", "/..", "../..", "/../../..", "//"):
        assert sorted(ftp.nlst(path)) == ["ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"]
        assert sorted(name for name, _ in ftp.mlsd(path)) == [
            "ARCHIVES",
            "INVALIDS",
            "PROCESSING",
            "SEND_SMS",
        ]
    for path in ("../alice2", "a\x00b", "..\\alice2"):
        with pytest.raises(ftplib.error_perm):
            ftp.nlst(path)
        assert ftp.voidcmd("NOOP").startswith("200")


def test_links_planted_on_disk_are_not_followed(env: FtpHarness, ftp: ftplib.FTP) -> None:
    """Contract 4 "whatever ... link it uses": a symlink or hard link put in the tree on disk
    (pointing outside or to the sibling) is neither listed, read, written, renamed nor
    deleted through."""
    archives = env.folder("ARCHIVES")
    send = env.folder("SEND_SMS")
    os.symlink(env.canary, archives / "to_canary.csv")
    os.symlink(env.outside, archives / "to_outside")
    os.symlink(env.root("alice2"), env.root("alice") / "to_alice2")
    os.symlink(env.canary, send / "to_canary.tmp")
    os.link(env.canary, send / "hard.tmp")
    before = _outside_alice(env)

    assert sorted(ftp.nlst("ARCHIVES")) == []
    assert "to_alice2" not in ftp.nlst("/")
    for command in (
        "RETR ARCHIVES/to_canary.csv",
        "SIZE ARCHIVES/to_canary.csv",
        "MLST ARCHIVES/to_canary.csv",
        "CWD ARCHIVES/to_outside",
        "MLST ARCHIVES/to_outside/canary.txt",
        "RETR ARCHIVES/to_outside/canary.txt",
        "CWD /to_alice2",
        "RETR /to_alice2/SEND_SMS/secret.csv",
        "DELE SEND_SMS/to_canary.tmp",
        "RNFR SEND_SMS/to_canary.tmp",
        "MFMT 20000101000000 SEND_SMS/to_canary.tmp",
    ):
        _refused(ftp, command)
    with pytest.raises(ftplib.error_perm):
        ftp.retrbinary("RETR ARCHIVES/to_canary.csv", lambda _b: None)
    with pytest.raises(ftplib.error_perm):
        ftp.nlst("ARCHIVES/to_outside")
    for target in ("SEND_SMS/to_canary.tmp", "SEND_SMS/hard.tmp", "/to_alice2/SEND_SMS/x.tmp"):
        with pytest.raises(ftplib.error_perm):
            ftp.storbinary(f"STOR {target}", io.BytesIO(b"pwned"))
        with pytest.raises(ftplib.error_perm):
            ftp.storbinary(f"APPE {target}", io.BytesIO(b"pwned"))
    assert ftp.voidcmd("NOOP").startswith("200")
    assert _outside_alice(env) == before


def test_planted_hard_link_is_never_touched_read_or_renamed(
    env: FtpHarness, ftp: ftplib.FTP
) -> None:
    """Contract 4: "A path can never reach outside the login's tree, whatever `..`, absolute
    path, backslash, NUL byte or link it uses": a hard link put on disk to a file outside the
    tree gets no new times (MFMT acted by path without the check `open` makes: issue 16), is
    not read, and is not renamed into a name the processor would judge; the outside file keeps
    its bytes and times. Deleting the planted name removes only that name."""
    os.link(env.canary, env.folder("SEND_SMS") / "hard.tmp")
    before = _outside_alice(env)
    assert _refused(ftp, "MFMT 20000101000000 SEND_SMS/hard.tmp") == "550"
    with pytest.raises(ftplib.error_perm, match="other links"):
        ftp.retrbinary("RETR SEND_SMS/hard.tmp", lambda _b: None)
    ftp.sendcmd("RNFR SEND_SMS/hard.tmp")
    assert _refused(ftp, "RNTO SEND_SMS/hard.csv") == "550"
    assert _outside_alice(env) == before
    ftp.delete("SEND_SMS/hard.tmp")
    assert _outside_alice(env) == before
    assert not (env.folder("SEND_SMS") / "hard.tmp").exists()


def test_a_folder_replaced_by_a_link_is_refused(env: FtpHarness, ftp: ftplib.FTP) -> None:
    """Contract 4: even one of the four folders, if it is a link on disk, is not followed."""
    invalids = env.folder("INVALIDS")
    invalids.rmdir()
    os.symlink(env.outside, invalids)
    before = _outside_alice(env)
    _refused(ftp, "CWD INVALIDS")
    _refused(ftp, "MLST INVALIDS/canary.txt")
    with pytest.raises(ftplib.error_perm):
        ftp.nlst("INVALIDS")
    with pytest.raises(ftplib.error_perm):
        ftp.storbinary("STOR INVALIDS/x.csv", io.BytesIO(b"x"))
    assert _outside_alice(env) == before


def test_fifo_planted_on_disk_does_not_hang_the_server(env: FtpHarness, ftp: ftplib.FTP) -> None:
    """A special file in the tree is refused at once (the server is single-threaded: a blocking
    open would freeze every session)."""
    os.mkfifo(env.folder("ARCHIVES") / "pipe.csv")
    os.mkfifo(env.folder("SEND_SMS") / "pipe.tmp")
    with pytest.raises(ftplib.error_perm):
        ftp.retrbinary("RETR ARCHIVES/pipe.csv", lambda _b: None)
    with pytest.raises(ftplib.error_perm):
        ftp.storbinary("STOR SEND_SMS/pipe.tmp", io.BytesIO(b"x"))
    assert env.login("alice2").voidcmd("NOOP").startswith("200")


@pytest.mark.parametrize(
    "folder", ["ARCHIVES", "INVALIDS", "PROCESSING", "", "SEND_SMS/sub", "NEW_FOLDER"]
)
def test_uploads_only_directly_in_send_sms(env: FtpHarness, ftp: ftplib.FTP, folder: str) -> None:
    """Contract 4: "upload ... only in SEND_SMS"."""
    before = tree_snapshot(env.base)
    for verb in ("STOR", "APPE"):
        with pytest.raises(ftplib.error_perm) as exc:
            ftp.storbinary(f"{verb} {folder}/x.csv", io.BytesIO(b"x"))
        assert str(exc.value)[:3] == "553"
    with pytest.raises(ftplib.error_perm):
        ftp.sendcmd(f"STOU {folder}/x")
    assert ftp.voidcmd("NOOP").startswith("200")
    assert tree_snapshot(env.base) == before


def test_stou_makes_a_unique_file_in_send_sms(env: FtpHarness, ftp: ftplib.FTP) -> None:
    """STOU is an upload like STOR: allowed in SEND_SMS, announced to the hook."""
    ftp.cwd("/SEND_SMS")
    ftp.voidcmd("TYPE I")
    with ftp.transfercmd("STOU") as conn:
        conn.sendall(b"unique")
    ftp.voidresp()
    names = ftp.nlst()
    assert len(names) == 1
    assert (env.folder("SEND_SMS") / names[0]).read_bytes() == b"unique"


@pytest.mark.parametrize(
    "command",
    [
        "MKD SEND_SMS/sub",
        "MKD /NEW",
        "XMKD /NEW",
        "RMD SEND_SMS",
        "RMD /ARCHIVES",
        "XRMD /INVALIDS",
        "RMD /",
        "DELE SEND_SMS",
        "DELE /",
        "DELE /PROCESSING",
        "RNFR /SEND_SMS",
        "RNFR /ARCHIVES",
        "RNFR /",
        "RNFR ARCHIVES/a.csv",
        "RNFR PROCESSING/p.csv",
        "SITE CHMOD 777 SEND_SMS/a.tmp",
        "SITE CHMOD 777 /",
        "MFMT 20200101000000 /SEND_SMS",
    ],
)
def test_the_tree_cannot_be_changed(env: FtpHarness, ftp: ftplib.FTP, command: str) -> None:
    """Contract 4: "never create, remove or rename the four folders, create sub-folders ...
    or change modes"."""
    (env.folder("SEND_SMS") / "a.tmp").write_bytes(b"a")
    (env.folder("ARCHIVES") / "a.csv").write_bytes(b"a")
    (env.folder("PROCESSING") / "p.csv").write_bytes(b"p")
    os.chmod(env.folder("SEND_SMS") / "a.tmp", 0o600)
    before = tree_snapshot(env.base)
    modes = {p: p.stat().st_mode for p in env.base.rglob("*")}
    code = _refused(ftp, command)
    assert code in ("550", "553")
    assert tree_snapshot(env.base) == before
    assert {p: p.stat().st_mode for p in env.base.rglob("*")} == modes


def test_renames_stay_in_send_sms_and_never_overwrite(env: FtpHarness, ftp: ftplib.FTP) -> None:
    """Contract 4: "A rename never overwrites an existing file"; rename only within SEND_SMS."""
    send = env.folder("SEND_SMS")
    (send / "a.tmp").write_bytes(b"a")
    (send / "b.csv").write_bytes(b"b")
    before = tree_snapshot(env.base)
    for target in (
        "SEND_SMS/b.csv",
        "/ARCHIVES/a.csv",
        "/INVALIDS/a.csv",
        "/PROCESSING/a.csv",
        "/a.csv",
        "/SEND_SMS/sub/a.csv",
        "../alice2/SEND_SMS/a.csv",
        "/SEND_SMS",
        "/SEND_SMS/a.tmp",
        "SEND_SMS/a\x00.csv",
    ):
        assert ftp.sendcmd("RNFR SEND_SMS/a.tmp").startswith("350")
        code = _refused(ftp, f"RNTO {target}")
        assert code in ("550", "553")
    assert tree_snapshot(env.base) == before
    # RNTO without a fresh RNFR: 503, the refused RNTO consumed the previous RNFR.
    assert _refused(ftp, "RNTO SEND_SMS/c.csv") == "503"
    ftp.rename("SEND_SMS/a.tmp", "SEND_SMS/a.csv")
    assert (send / "a.csv").read_bytes() == b"a"


def test_sibling_account_cannot_see_alice(env: FtpHarness) -> None:
    """Contract 4: "a login sees only its own tree"; alice2's name starts like alice's."""
    (env.folder("SEND_SMS") / "mine.tmp").write_bytes(b"alice")
    other = env.login("alice2")
    assert sorted(other.nlst("SEND_SMS")) == ["secret.csv"]
    for path in ("../alice/SEND_SMS/mine.tmp", "/../alice/SEND_SMS/mine.tmp"):
        with pytest.raises(ftplib.error_perm):
            other.retrbinary(f"RETR {path}", lambda _b: None)
    assert other.voidcmd("NOOP").startswith("200")


@pytest.mark.parametrize("ch", ["\u202e", "\u200f", "\ufeff", "\u2066"])
def test_names_with_formatting_characters_refused(
    env: FtpHarness, ftp: ftplib.FTP, ch: str
) -> None:
    """Issue 16: a bidi override, a direction mark or a BOM in a new name (upload or rename
    target) is refused with 553 naming the character, by the shared policy; nothing is written."""
    (env.folder("SEND_SMS") / "a.tmp").write_bytes(b"a")
    before = tree_snapshot(env.base)
    with pytest.raises(ftplib.error_perm) as exc:
        ftp.storbinary(f"STOR SEND_SMS/x{ch}vsc.tmp", io.BytesIO(b"x"))
    assert str(exc.value)[:3] == "553"
    assert f"U+{ord(ch):04X}" in str(exc.value)
    ftp.sendcmd("RNFR SEND_SMS/a.tmp")
    with pytest.raises(ftplib.error_perm) as exc:
        ftp.sendcmd(f"RNTO SEND_SMS/x{ch}.csv")
    assert str(exc.value)[:3] == "553"
    assert ftp.voidcmd("NOOP").startswith("200")
    assert tree_snapshot(env.base) == before
