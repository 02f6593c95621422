"""The store keeps a file's hints and finds `duplicate_of` (contract 5.12): "a file whose bytes
equal a file this login had processed in the last 10 minutes (`duplicate_of`: a client that
re-uploads after the platform moved its file, as rclone does without `.tmp`, pays twice)"."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from mockserver.core.hints import duplicate_hint
from mockserver.core.models import Hint, HintCode
from mockserver.store import SCHEMA_VERSION, Store
from tests.unit.test_store import NOW, SCHEMA_V1, acc, verdict

# Schema 2 is schema 1 with the statements of its migration (mockserver/store/database.py).
SCHEMA_V2 = (
    SCHEMA_V1.replace("INSERT INTO meta VALUES ('schema', '1');", "")
    + """
ALTER TABLE sms ADD COLUMN price INTEGER NOT NULL DEFAULT 1;
ALTER TABLE files ADD COLUMN debited INTEGER;
INSERT INTO meta VALUES ('schema', '2');
UPDATE files SET debited = 2;
"""
)
SHA = "ab" * 32
HINT = Hint(HintCode.HEADER_ROW.value, "line 1 looks like a header row", 1, (1,))


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "state.sqlite3")
    s.seed_accounts([acc("alice", 100), acc("bob", 100)])
    yield s
    s.close()


def test_a_schema_2_database_is_migrated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Schema 3 keeps each file's hints and content hash: a version 2 database opens, its files
    read with no hint and are never anyone's duplicate; new files keep both. The upgrade says
    nothing about balances (only a version 1 database was billed differently)."""
    path = tmp_path / "v2.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_V2)
    conn.close()
    with caplog.at_level("WARNING", logger="mockserver.store"), Store(path) as s:
        (old,) = s.files(login="alice")
        assert (old.hints, old.duplicate_of, old.debited) == ((), None, 2)
        s.seed_accounts([acc("alice", 100)])
        first = s.record("alice", "k1", replace(verdict(n=1), hints=(HINT,)), NOW, NOW, sha256=SHA)
        assert first.hints == (HINT,)
        again = s.record("alice", "k2", verdict(n=1), NOW, NOW + timedelta(minutes=1), sha256=SHA)
        assert again.duplicate_of is not None
        assert again.duplicate_of.file_id == first.id
    assert "balances" not in caplog.text
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        indexes = {r[1] for r in conn.execute("PRAGMA index_list('files')")}
        assert "files_sha256" in indexes
    conn.close()
    with Store(path) as s:  # opening it again changes nothing
        found = s.file_record(again.id)
        assert found is not None
        assert found.duplicate_of is not None


def test_duplicate_of_names_the_latest_recent_file_of_the_same_login(store: Store) -> None:
    """Same bytes within 10 minutes of the earlier file's processing, by the time given to
    `record` (the platform's clock): `duplicate_of` names it; after 10 minutes, for another
    login, or for other bytes it does not."""
    first = store.record("alice", "k1", verdict(n=1), NOW, NOW, sha256=SHA)
    assert first.duplicate_of is None
    second = store.record("alice", "k2", verdict(n=1), NOW, NOW + timedelta(minutes=9), sha256=SHA)
    assert second.duplicate_of == duplicate_hint(first.id, first.name)
    # The latest one is named; 10 minutes after it, no longer.
    third = store.record("alice", "k3", verdict(n=1), NOW, NOW + timedelta(minutes=19), sha256=SHA)
    assert third.duplicate_of is not None
    assert third.duplicate_of.file_id == second.id
    late = store.record("alice", "k4", verdict(n=1), NOW, NOW + timedelta(minutes=30), sha256=SHA)
    assert late.duplicate_of is None
    other = store.record("bob", "k5", verdict(n=1), NOW, NOW + timedelta(minutes=30), sha256=SHA)
    assert other.duplicate_of is None
    differ = store.record(
        "alice", "k6", verdict(n=1), NOW, NOW + timedelta(minutes=31), sha256="cd" * 32
    )
    assert differ.duplicate_of is None
    unhashed = store.record("alice", "k7", verdict(n=1), NOW, NOW + timedelta(minutes=31))
    assert unhashed.duplicate_of is None
    found = store.file_record(second.id)
    assert found is not None
    assert [h.code for h in found.hints] == [HintCode.DUPLICATE_OF.value]
