"""The folder tree as files move through it: claims and final moves never overwrite, links
are never followed (manual 4.3, contract 4 and 5.3; docs/spec.md 5.2.4)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mockserver import spool as spool_mod
from mockserver.core.models import Status
from mockserver.spool import FileKey, Spool, move_noreplace, numbered
from mockserver.tree import Folder

NAME = "Camp_20300101120000_HQ.csv"


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    s = Spool(tmp_path, "flat")
    s.ensure("alice")
    return s


def drop(spool: Spool, name: str = NAME, data: bytes = b'"0612345678";"hi"\n') -> Path:
    path = spool.folder("alice", Folder.SEND_SMS) / name
    path.write_bytes(data)
    return path


def test_tree_layouts(tmp_path: Path) -> None:
    """Contract 4: `<data_dir>/accounts/<login>/{SEND_SMS,PROCESSING,ARCHIVES,INVALIDS}`;
    layout "nested" puts them in `<root>/<login>/`."""
    flat = Spool(tmp_path, "flat")
    root = flat.ensure("alice")
    assert sorted(p.name for p in root.iterdir()) == [
        "ARCHIVES",
        "INVALIDS",
        "PROCESSING",
        "SEND_SMS",
    ]
    nested = Spool(tmp_path / "n", "nested")
    nested.ensure("bob")
    path = nested.folder("bob", Folder.SEND_SMS) / "x.csv"
    assert path == tmp_path / "n" / "accounts" / "bob" / "bob" / "SEND_SMS" / "x.csv"
    assert nested.locate(path) == ("bob", Folder.SEND_SMS, "x.csv")
    assert nested.locate(tmp_path / "n" / "accounts" / "bob" / "SEND_SMS" / "x.csv") is None


def test_locate_only_direct_children_of_the_four_folders(spool: Spool) -> None:
    send = spool.folder("alice", Folder.SEND_SMS)
    assert spool.locate(send / NAME) == ("alice", Folder.SEND_SMS, NAME)
    assert spool.locate(send / "sub" / NAME) is None
    assert spool.locate(send) is None
    assert spool.locate(spool.root("alice") / "OTHER" / NAME) is None
    assert spool.locate("/etc/passwd") is None


def test_claim_moves_into_processing_under_the_same_name(spool: Spool) -> None:
    """Manual 4.3: "Un fichier en cours de traitement … sera déplacé du dossier SEND_SMS vers
    le dossier PROCESSING"."""
    path = drop(spool)
    ino = path.stat().st_ino
    claim = spool.claim("alice", path)
    assert claim is not None
    assert claim.path == spool.folder("alice", Folder.PROCESSING) / NAME
    assert claim.key.ino == ino
    assert not path.exists()
    assert spool.read(claim) == b'"0612345678";"hi"\n'


def test_second_claim_of_the_same_file_fails_harmlessly(spool: Spool) -> None:
    """A claim is an atomic move: a second trigger then fails harmlessly."""
    path = drop(spool)
    results = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(spool.claim("alice", path))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_claim_never_overwrites_a_file_in_processing(spool: Spool) -> None:
    """Contract 5.3: "Never overwrite a file already in PROCESSING": a second
    file of the same name waits in SEND_SMS."""
    first = spool.claim("alice", drop(spool, data=b"first"))
    assert first is not None
    second = drop(spool, data=b"second")
    assert spool.claim("alice", second) is None
    assert second.read_bytes() == b"second"
    assert first.path.read_bytes() == b"first"


def test_finish_numbers_collisions_before_the_extension(spool: Spool) -> None:
    """Contract 5.3: "If that name exists, a suffix -2, -3, … goes before .csv"."""
    placed = []
    for i in range(3):
        claim = spool.claim("alice", drop(spool, data=str(i).encode()))
        assert claim is not None
        placed.append(spool.finish("alice", claim.path, "TreatedByMSI_" + NAME, Status.ARCHIVED))
    assert [p.name for p in placed] == [
        "TreatedByMSI_Camp_20300101120000_HQ.csv",
        "TreatedByMSI_Camp_20300101120000_HQ-2.csv",
        "TreatedByMSI_Camp_20300101120000_HQ-3.csv",
    ]
    assert [p.read_bytes() for p in placed] == [b"0", b"1", b"2"]
    assert all(p.parent == spool.folder("alice", Folder.ARCHIVES) for p in placed)


def test_invalid_goes_to_invalids(spool: Spool) -> None:
    claim = spool.claim("alice", drop(spool, "bad name.txt"))
    assert claim is not None
    dest = spool.finish(
        "alice", claim.path, "TreatedByMSI_Incorrect_FileName_bad name.txt", Status.INVALID
    )
    assert dest.parent == spool.folder("alice", Folder.INVALIDS)


def test_numbered() -> None:
    assert numbered("a.csv", 1) == "a.csv"
    assert numbered("a.csv", 2) == "a-2.csv"
    assert numbered("a.b.csv", 3) == "a.b-3.csv"
    assert numbered("noext", 2) == "noext-2"


def test_symlinks_are_never_claimed_nor_followed(spool: Spool, tmp_path: Path) -> None:
    """Contract 4: no links; a symlink planted in SEND_SMS is never picked up or read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    link = spool.folder("alice", Folder.SEND_SMS) / NAME
    link.symlink_to(secret)
    assert spool.probe(link) is None
    assert spool.claim("alice", link) is None
    assert link.is_symlink()
    assert spool.entries("alice", Folder.SEND_SMS) == []


def test_read_refuses_a_link_swapped_in_after_the_claim(spool: Spool, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    claim = spool.claim("alice", drop(spool))
    assert claim is not None
    os.unlink(claim.path)
    claim.path.symlink_to(secret)
    assert spool.read(claim) is None


def test_read_refuses_another_file_under_the_claimed_name(spool: Spool) -> None:
    claim = spool.claim("alice", drop(spool))
    assert claim is not None
    os.unlink(claim.path)
    claim.path.write_bytes(b"other")
    assert spool.read(claim) is None


def test_fifo_and_directories_are_ignored(spool: Spool) -> None:
    send = spool.folder("alice", Folder.SEND_SMS)
    os.mkfifo(send / "pipe.csv")
    (send / "dir.csv").mkdir()
    assert spool.claim("alice", send / "pipe.csv") is None
    assert spool.claim("alice", send / "dir.csv") is None
    assert spool.entries("alice", Folder.SEND_SMS) == []


def test_vanished_file_is_not_claimed(spool: Spool) -> None:
    assert spool.claim("alice", spool.folder("alice", Folder.SEND_SMS) / "gone.csv") is None


def test_find_placed_matches_the_inode(spool: Spool) -> None:
    """Recovery after a crash between the move and its record finds where the file went."""
    other = spool.claim("alice", drop(spool, data=b"other"))
    assert other is not None
    spool.finish("alice", other.path, "TreatedByMSI_" + NAME, Status.ARCHIVED)
    claim = spool.claim("alice", drop(spool))
    assert claim is not None
    dest = spool.finish("alice", claim.path, "TreatedByMSI_" + NAME, Status.ARCHIVED)
    found = spool.find_placed("alice", Status.ARCHIVED, "TreatedByMSI_" + NAME, claim.key)
    assert found == dest
    assert found.name.endswith("-2.csv")
    missing = FileKey(0, 0, 0, 0)
    assert spool.find_placed("alice", Status.ARCHIVED, "TreatedByMSI_" + NAME, missing) is None


@pytest.mark.parametrize("mode", ["renameat2", "link"])
def test_move_noreplace_both_strategies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Whichever primitive the platform has, an existing target is never replaced."""
    if mode == "link":
        monkeypatch.setattr(spool_mod, "_noreplace_ok", False)
    elif spool_mod._renameat2 is None:
        pytest.skip("no renameat2 here")
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_text("a")
    dst.write_text("b")
    assert move_noreplace(src, dst) is False
    assert dst.read_text() == "b"
    assert src.exists()
    dst.unlink()
    assert move_noreplace(src, dst) is True
    assert not src.exists()
    assert dst.read_text() == "a"
    with pytest.raises(FileNotFoundError):
        move_noreplace(src, tmp_path / "c")
