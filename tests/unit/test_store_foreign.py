"""Issue 16 (finding 9): a `state.sqlite3` that is not this program's database stops the store
with one line naming the file and what is wrong, and is left as it was; ours, of this version or
an older one, opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mockserver.store import SCHEMA_VERSION, ForeignDatabase, Store
from tests.unit.test_store import SCHEMA_V1


def _make(path: Path, script: str) -> bytes:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
    finally:
        conn.close()
    return path.read_bytes()


def _refused(path: Path, *needles: str) -> str:
    before = path.read_bytes()
    with pytest.raises(ForeignDatabase) as caught:
        Store(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    for needle in needles:
        assert needle in message, message
    assert path.read_bytes() == before  # never touched
    return message


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"not a database, a text file of 40 bytes!" * 30)
    _refused(path, "not a SQLite database")


def test_another_applications_sqlite_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _make(path, "CREATE TABLE moz_places (id INTEGER, url TEXT); CREATE TABLE prefs (k, v);")
    _refused(path, "none of this program's tables", "moz_places")


def test_our_table_names_with_other_columns_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _make(
        path,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        f"INSERT INTO meta VALUES ('schema', '{SCHEMA_VERSION}');"
        "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT, size INTEGER);",
    )
    _refused(path, "table files lacks the columns", "login")


def test_our_table_names_without_meta_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _make(path, "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT);")
    _refused(path, "no meta table")


def test_a_newer_schema_is_one_line_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    _refused(path, "newer allmysms-mockserver", f"schema {SCHEMA_VERSION + 1}", str(SCHEMA_VERSION))


def test_ours_at_an_older_version_and_a_new_file_still_open(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    _make(old, SCHEMA_V1)
    with Store(old) as s:
        assert [f.id for f in s.files(login="alice")] == [1]
    with Store(tmp_path / "new.sqlite3") as s:
        assert s.files() == []
    with Store(tmp_path / "new.sqlite3") as s:  # and again, at this version
        assert s.files() == []
