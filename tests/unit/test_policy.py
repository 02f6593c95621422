"""The shared FTP/SFTP permission policy (contract 4) and its confinement guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.servers import policy
from mockserver.servers.policy import Kind, classify, confine, normalise
from mockserver.tree import Folder, make_tree

FLAT = ("flat", "alice")


@pytest.mark.parametrize(
    ("path", "cwd", "expected"),
    [
        ("/", "/", "/"),
        ("", "/SEND_SMS", "/SEND_SMS"),
        ("x.csv", "/SEND_SMS", "/SEND_SMS/x.csv"),
        ("//SEND_SMS///x.csv", "/", "/SEND_SMS/x.csv"),
        ("./SEND_SMS/./x", "/", "/SEND_SMS/x"),
        ("..", "/SEND_SMS", "/"),
        ("../..", "/SEND_SMS", "/"),
        ("/../../etc/passwd", "/", "/etc/passwd"),
        ("../alice2/SEND_SMS", "/", "/alice2/SEND_SMS"),
        ("SEND_SMS/../ARCHIVES", "/", "/ARCHIVES"),
        ("...", "/", "/..."),
        ("a b.csv", "/SEND_SMS", "/SEND_SMS/a b.csv"),
        ("é.csv", "/SEND_SMS", "/SEND_SMS/é.csv"),
        ("a\\b", "/", None),
        ("..\\..", "/", None),
        ("a\x00b", "/", None),
        ("a\nb", "/", None),
        ("a\x7fb", "/", None),
        ("x", "/SEND\x00", None),
    ],
)
def test_normalise(path: str, cwd: str, expected: str | None) -> None:
    """Contract 4: "A path can never reach outside the login's tree, whatever `..`, absolute
    path, backslash, NUL byte ... it uses"; `..` stops at `/`; backslash and control
    characters are refused."""
    assert normalise(path, cwd) == expected


@given(st.text(max_size=40), st.sampled_from(["/", "/SEND_SMS", "/ARCHIVES"]))
def test_normalise_always_gives_a_clean_absolute_path(path: str, cwd: str) -> None:
    """Whatever the input: None, or an absolute path without `.`/`..`/empty components."""
    result = normalise(path, cwd)
    if result is None:
        return
    assert result.startswith("/")
    parts = result.split("/")[1:]
    assert result == "/" or all(p not in ("", ".", "..") for p in parts)
    assert "\\" not in result
    assert all(ord(c) >= 32 and ord(c) != 127 for c in result)
    assert normalise(result) == result


def test_classify_flat_and_nested() -> None:
    """Contract 3 layouts: "flat": the root holds the 4 folders; "nested": <login>/ holds them."""
    assert classify("/", "flat", "alice").kind is Kind.ROOT
    assert classify("/SEND_SMS", "flat", "alice") == policy.Place(Kind.FOLDER, Folder.SEND_SMS)
    assert classify("/ARCHIVES/a.csv", "flat", "alice") == policy.Place(
        Kind.FILE, Folder.ARCHIVES, "a.csv"
    )
    assert classify("/SEND_SMS/sub/a.csv", "flat", "alice").kind is Kind.OTHER
    assert classify("/send_sms", "flat", "alice").kind is Kind.OTHER
    assert classify("/alice", "flat", "alice").kind is Kind.OTHER
    assert classify("/alice", "nested", "alice").kind is Kind.LOGIN_DIR
    assert classify("/alice/SEND_SMS/x", "nested", "alice").kind is Kind.FILE
    assert classify("/SEND_SMS/x", "nested", "alice").kind is Kind.OTHER
    assert classify("/bob/SEND_SMS/x", "nested", "alice").kind is Kind.OTHER


@pytest.mark.parametrize(
    ("path", "write", "delete", "rename_from"),
    [
        ("/SEND_SMS/a.csv", True, True, True),
        ("/SEND_SMS/a.tmp", True, True, True),
        ("/ARCHIVES/a.csv", False, True, False),
        ("/INVALIDS/a.csv", False, True, False),
        ("/PROCESSING/a.csv", False, False, False),
        ("/SEND_SMS", False, False, False),
        ("/ARCHIVES", False, False, False),
        ("/", False, False, False),
        ("/a.csv", False, False, False),
        ("/SEND_SMS/sub/a.csv", False, False, False),
        ("/SEND_SMS/a\x00.csv", False, False, False),
    ],
)
def test_write_delete_rename_rules(path: str, write: bool, delete: bool, rename_from: bool) -> None:
    """Contract 4: "upload/rename/delete only in SEND_SMS, delete in ARCHIVES and INVALIDS"."""
    assert bool(policy.may_write(path, *FLAT)) is write
    assert bool(policy.may_set_times(path, *FLAT)) is write
    assert bool(policy.may_delete(path, *FLAT)) is delete
    assert bool(policy.may_rename_from(path, *FLAT)) is rename_from
    decision = policy.may_write(path, *FLAT)
    assert decision.allowed or decision.reason


def test_list_and_read_everywhere_in_the_tree() -> None:
    """Contract 4: "A login may list and download everywhere in its tree"."""
    for path in ("/", "/SEND_SMS", "/PROCESSING/x.csv", "/ARCHIVES/y.csv", "/INVALIDS"):
        assert policy.may_list(path, *FLAT)
        assert policy.may_read(path, *FLAT)
    assert not policy.may_read("/a\x00", *FLAT)


def test_renames_only_within_send_sms() -> None:
    """Contract 4: rename only within SEND_SMS; never the folders."""
    assert policy.may_rename("/SEND_SMS/a.tmp", "/SEND_SMS/a.csv", *FLAT)
    for src, dst in [
        ("/SEND_SMS/a.tmp", "/ARCHIVES/a.csv"),
        ("/ARCHIVES/a.csv", "/SEND_SMS/a.csv"),
        ("/SEND_SMS", "/SEND_SMS2"),
        ("/SEND_SMS/a.tmp", "/SEND_SMS"),
        ("/SEND_SMS/a.tmp", "/SEND_SMS/sub/a.csv"),
        ("/SEND_SMS/a.tmp", "/SEND_SMS/a.tmp"),
        ("/SEND_SMS/a.tmp", "/SEND_SMS/a\\.csv"),
    ]:
        assert not policy.may_rename(src, dst, *FLAT), (src, dst)


def test_structure_is_fixed() -> None:
    """Contract 4: never create/remove folders, links, or change modes."""
    for path in ("/SEND_SMS/sub", "/NEW", "/SEND_SMS"):
        assert not policy.may_mkdir(path, *FLAT)
        assert not policy.may_rmdir(path, *FLAT)
        assert not policy.may_link(path, *FLAT)
        assert not policy.may_chmod(path, *FLAT)


def test_nested_layout_rules() -> None:
    assert policy.may_write("/alice/SEND_SMS/a.csv", "nested", "alice")
    assert not policy.may_write("/SEND_SMS/a.csv", "nested", "alice")
    assert not policy.may_write("/alice/a.csv", "nested", "alice")
    assert policy.may_delete("/alice/ARCHIVES/a.csv", "nested", "alice")


def test_confine_refuses_links_and_escapes(tmp_path: Path) -> None:
    """Contract 4 "whatever ... link it uses": any symlink component is refused, even one
    pointing inside; the resolved path must stay under the login root."""
    data = tmp_path / "data"
    root = make_tree(data, "flat", "alice")
    make_tree(data, "flat", "alice2")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "SEND_SMS" / "ok.csv").write_text("x")
    assert confine(root, "/SEND_SMS/ok.csv") == root / "SEND_SMS" / "ok.csv"
    assert confine(root, "/SEND_SMS/new.csv") == root / "SEND_SMS" / "new.csv"
    assert confine(root, "/SEND_SMS/missing/deeper") == root / "SEND_SMS" / "missing" / "deeper"
    assert confine(root, "/") == root
    os.symlink(outside, root / "ARCHIVES" / "out")
    os.symlink(root / "SEND_SMS", root / "ARCHIVES" / "inside")
    os.symlink(data / "accounts" / "alice2", root / "sib")
    assert confine(root, "/ARCHIVES/out") is None
    assert confine(root, "/ARCHIVES/out/x") is None
    assert confine(root, "/ARCHIVES/inside/ok.csv") is None
    assert confine(root, "/sib/SEND_SMS") is None
    assert confine(root, "/a\x00") is None
    (root / "INVALIDS").rmdir()
    os.symlink(outside, root / "INVALIDS")
    assert confine(root, "/INVALIDS") is None
    assert confine(root, "/INVALIDS/new.csv") is None


def test_confine_accepts_a_data_dir_behind_a_link(tmp_path: Path) -> None:
    """A data dir reached through a symlink (e.g. /tmp -> /private/tmp) still works: only links
    *below* the login root are refused."""
    real = tmp_path / "real"
    root = make_tree(real, "flat", "alice")
    link = tmp_path / "link"
    os.symlink(real, link)
    linked_root = link / "accounts" / "alice"
    assert confine(linked_root, "/SEND_SMS/x") == linked_root / "SEND_SMS" / "x"
    assert policy.to_virtual(linked_root, linked_root / "SEND_SMS" / "x") == "/SEND_SMS/x"
    assert policy.to_virtual(root, tmp_path / "elsewhere") is None
    assert policy.to_virtual(root, root) == "/"


def test_one_regex_refuses_exactly_the_unusable_characters() -> None:
    """Issue 15: `normalise` looks for unusable characters with one regex search; it refuses
    exactly what the per-character rule (`_bad_char`) and the backslash rule refuse."""
    for code in [*range(0x10000), 0x1F600, 0xE0001, 0x10FFFF]:  # every BMP character, astral ones
        ch = chr(code)
        expected = ch == "\\" or policy._bad_char(ch)
        assert (policy.normalise(f"/SEND_SMS/a{ch}b") is None) == expected, hex(code)
        assert (policy.normalise("x", f"/SEND_SMS{ch}") is None) == expected, hex(code)
