"""The journal of uploads in progress (`<data_dir>/uploads/`, docs/spec.md 4.3): at start the
remains of an upload a crash cut are removed. A marker is a file of the data dir, which the
threat model (docs/security.md) lets a local user write: a hand-made marker must never make
the mock delete a file outside the accounts tree (found by an adversarial pass: `..` in the
path, or a link on the way, deleted files elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mockserver import upload_marks
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


# -- the markers of one run: records of one file (issue 15) -----------------------------------


def test_markers_are_records_of_one_file_written_in_place(tmp_path: Path, tree: Path) -> None:
    """Issue 15: an upload's marker is a record of one file per run, not a file per upload;
    the open uploads of a run that died are found in it, the closed ones are not."""
    send = tree / "demo" / "SEND_SMS"
    writes = OpenWrites()
    writes.journal(tmp_path / "data" / "uploads")
    assert list((tmp_path / "data" / "uploads").iterdir()) == []  # made at the first upload
    paths = [send / f"f{i:03d}.csv" for i in range(150)]  # past the first 64 records
    for path in paths:
        assert writes.claim(path)
        path.write_bytes(b"partial")
    for path in paths[::2]:
        writes.closed(path)
    (marks,) = (tmp_path / "data" / "uploads").iterdir()
    assert marks.suffix == ".upload"
    assert marks.stat().st_size % upload_marks.RECORD == 0
    found = dict(upload_marks.read_marks(tmp_path / "data" / "uploads"))
    assert sorted(found[marks] or []) == sorted(str(p) for p in paths[1::2])
    writes.close()  # the process ends with uploads open: their markers stay

    after_crash = OpenWrites()
    after_crash.journal(tmp_path / "data" / "uploads")
    assert sorted(after_crash.recover(tree)) == sorted(paths[1::2])
    assert all(p.exists() for p in paths[::2])
    assert not any(p.exists() for p in paths[1::2])
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_a_record_is_free_until_its_first_byte_is_written(tmp_path: Path, tree: Path) -> None:
    """A marker is written tail first, its first byte last: a process killed in between leaves
    a record whose first byte is NUL, which names nothing (never a path made of two)."""
    victim = tree / "demo" / "SEND_SMS" / "Promo_20301231120000_HQ.csv"
    victim.write_text("a complete file")
    folder = tmp_path / "data" / "uploads"
    folder.mkdir(parents=True)
    record = bytearray(upload_marks.RECORD)
    key = os.fsencode(str(victim))
    record[1 : len(key) + 1] = key[1:] + b"\0"  # killed before the first byte
    (folder / "cut.upload").write_bytes(bytes(record) * 2)
    writes = OpenWrites()
    writes.journal(folder)
    assert writes.recover(tree) == []
    assert victim.read_text() == "a complete file"
    assert list(folder.iterdir()) == []


def test_recover_leaves_the_markers_of_its_own_run(tmp_path: Path, tree: Path) -> None:
    """`recover` runs at start, before any upload; called later it never takes this run's own
    open uploads for cut ones."""
    path = tree / "demo" / "SEND_SMS" / "open.csv"
    writes = OpenWrites()
    writes.journal(tmp_path / "data" / "uploads")
    assert writes.claim(path)
    path.write_bytes(b"being written")
    assert writes.recover(tree) == []
    assert path.exists()
    writes.closed(path)
    writes.close()
