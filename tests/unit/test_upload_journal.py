"""The journal of uploads in progress (`<data_dir>/uploads/`, docs/spec.md 4.3): at start the
remains of an upload a crash cut are removed. A marker is a file of the data dir, which the
threat model (docs/security.md) lets a local user write: a hand-made marker must never make
the mock delete a file outside the accounts tree (found by an adversarial pass: `..` in the
path, or a link on the way, deleted files elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mockserver.writes import OpenWrites


def journal_with(tmp_path: Path, *paths: str) -> OpenWrites:
    writes = OpenWrites()
    writes.journal(tmp_path / "data" / "uploads")
    for i, path in enumerate(paths):
        (tmp_path / "data" / "uploads" / f"{i:04d}.upload").write_bytes(os.fsencode(path))
    return writes


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    send = tmp_path / "data" / "accounts" / "demo" / "SEND_SMS"
    send.mkdir(parents=True)
    return tmp_path / "data" / "accounts"


def test_a_cut_upload_in_send_sms_is_removed(tmp_path: Path, tree: Path) -> None:
    partial = tree / "demo" / "SEND_SMS" / "Promo_20301231120000_HQ.csv"
    partial.write_bytes(b'"0612345678";"Bonj')
    writes = journal_with(tmp_path, str(partial))
    assert writes.recover(tree) == [partial]
    assert not partial.exists()
    assert list((tmp_path / "data" / "uploads").iterdir()) == []  # the marker is gone too


@pytest.mark.parametrize("how", ["dotdot", "link_dir", "other_folder", "hard_link", "outside"])
def test_a_hand_made_marker_never_deletes_a_file_elsewhere(
    tmp_path: Path, tree: Path, how: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    send = tree / "demo" / "SEND_SMS"
    if how == "dotdot":
        key = f"{tree}/../../victim.txt"
    elif how == "link_dir":
        (tree / "demo" / "LINKDIR").symlink_to(tmp_path)
        key = str(tree / "demo" / "LINKDIR" / "victim.txt")
    elif how == "other_folder":  # uploads are only ever written in SEND_SMS
        (tree / "demo" / "ARCHIVES").mkdir()
        victim = tree / "demo" / "ARCHIVES" / "TreatedByMSI_A_20301231120000_HQ.csv"
        victim.write_text("keep me")
        key = str(victim)
    elif how == "hard_link":  # removing a planted link is harmless, but not ours to do
        os.link(victim, send / "planted.csv")
        key = str(send / "planted.csv")
    else:
        key = str(victim)
    writes = journal_with(tmp_path, key)
    assert writes.recover(tree) == []
    assert victim.read_text() == "keep me"
