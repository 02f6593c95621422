"""The SQLite database behind the store (`<data_dir>/state.sqlite3`): its schema, one writer
connection under a lock and one reader connection per thread (WAL: reads never wait on a write).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Self

log = logging.getLogger("mockserver.store")

SCHEMA_VERSION = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    login TEXT PRIMARY KEY,
    credits INTEGER NOT NULL CHECK (credits >= 0),
    subscription INTEGER NOT NULL DEFAULT 0,
    email TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    configured INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL,
    claim_key TEXT NOT NULL,
    original_name TEXT NOT NULL,
    final_name TEXT NOT NULL,
    stored_name TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    campaign TEXT,
    send_at TEXT,
    send_ts REAL,
    mult INTEGER NOT NULL DEFAULT 0,
    rows INTEGER NOT NULL DEFAULT 0,
    sms_count INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    rejected TEXT NOT NULL DEFAULT '[]',
    received_at TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    processing_ms REAL NOT NULL DEFAULT 0,
    mail TEXT NOT NULL DEFAULT 'pending',
    done INTEGER NOT NULL DEFAULT 0,
    sms_first INTEGER,
    sms_last INTEGER,
    debited INTEGER,
    sha256 TEXT,
    hints TEXT NOT NULL DEFAULT '[]',
    rejected_more TEXT NOT NULL DEFAULT '[]',
    warnings_total INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS files_open_claim
    ON files (login, claim_key) WHERE stored_name IS NULL;
CREATE INDEX IF NOT EXISTS files_login ON files (login);
CREATE INDEX IF NOT EXISTS files_original ON files (original_name);
CREATE INDEX IF NOT EXISTS files_stored ON files (stored_name);
CREATE INDEX IF NOT EXISTS files_undone ON files (done) WHERE done = 0;
CREATE INDEX IF NOT EXISTS files_campaign ON files (campaign);
-- A file's SMS get consecutive ids [files.sms_first, files.sms_last]: the per-file columns
-- (login, campaign, send date) stay on the file and the SMS need no secondary index, which
-- keeps a 150k-SMS insert fast (bench/pipeline.py); filters join through that id range.
CREATE TABLE IF NOT EXISTS sms (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL,
    line INTEGER NOT NULL,
    phone TEXT NOT NULL,
    message TEXT NOT NULL,
    sender_asked TEXT,
    sender_applied TEXT NOT NULL,
    septets INTEGER NOT NULL,
    warnings TEXT NOT NULL DEFAULT '',
    price INTEGER NOT NULL DEFAULT 1
);
"""

# Schema upgrades, by the version they lead to: run once, in order, on an older database.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # Version 2 bills in credits (contract 3 `[pricing]`): each SMS keeps its price. The
    # SMS recorded before were charged 1 credit each, which the default says.
    # The credits taken from the account are recorded with the file (a subscription's are
    # not debited): NULL on older files, which were debited their cost unless on subscription.
    2: (
        "ALTER TABLE sms ADD COLUMN price INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE files ADD COLUMN debited INTEGER",
    ),
    # Version 3 keeps the hints of contract 5.12 with each file, and its content's SHA-256 to
    # find a file whose bytes equal one processed a moment before (`duplicate_of`). Older
    # files have neither: they are never anyone's duplicate.
    3: (
        "ALTER TABLE files ADD COLUMN sha256 TEXT",
        "ALTER TABLE files ADD COLUMN hints TEXT NOT NULL DEFAULT '[]'",
    ),
    # Version 4 (issue 16) keeps a file's first rejected rows in `rejected` and counts the
    # others by error here, a JSON list of [error, count]: memory and stored detail no longer
    # grow with the number of bad rows. Older files kept every row: nothing is counted.
    4: ("ALTER TABLE files ADD COLUMN rejected_more TEXT NOT NULL DEFAULT '[]'",),
    # Version 5 (issue 15) keeps how many warnings a file's SMS carry, counted when they are
    # recorded: the recap read them by adding up every SMS of the file (0.1 s for 150k).
    # NULL on older files, whose recap still adds them up.
    5: ("ALTER TABLE files ADD COLUMN warnings_total INTEGER",),
}

# Indexes on columns a migration adds: made once the schema is current.
_INDEXES = """
CREATE INDEX IF NOT EXISTS files_sha256 ON files (login, sha256) WHERE sha256 IS NOT NULL;
"""


class StoreError(Exception):
    """Base of the store's own errors (each message is one line a user can act on)."""


class ForeignDatabase(StoreError):
    """Issue 16: the file is not this program's database (not SQLite, another application's
    tables, our table names with other columns, a newer schema): never touched, one line."""


# The tables this program makes, and the columns each migration added (by the version it
# leads to): a database at version v must have every column but those added after v.
OUR_TABLES = ("meta", "accounts", "files", "sms")
_ADDED_COLUMNS: dict[int, tuple[tuple[str, str], ...]] = {
    2: (("sms", "price"), ("files", "debited")),
    3: (("files", "sha256"), ("files", "hints")),
    4: (("files", "rejected_more"),),
    5: (("files", "warnings_total"),),
}
_MOVE_AWAY = "move it away or set another server.data_dir"


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _expected_columns() -> dict[str, set[str]]:
    """Every column of our tables at SCHEMA_VERSION, as `_SCHEMA` makes them."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        return {table: _columns(conn, table) for table in OUR_TABLES}
    finally:
        conn.close()


def foreign_reason(conn: sqlite3.Connection) -> str | None:
    """Why the database behind `conn` is not one this program may use, or None (ours, at
    this version or an older one, or empty). Raises sqlite3.DatabaseError when the file is
    not SQLite at all."""
    tables = {
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not str(r[0]).startswith("sqlite_")
    }
    if not tables:
        return None  # a new database
    ours = [t for t in OUR_TABLES if t in tables]
    if not ours:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        return f"it holds none of this program's tables (it has {shown}): another application's?"
    if "meta" not in tables:
        return f"it has tables named like this program's ({', '.join(ours)}) but no meta table"
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    try:
        version = int(row[0]) if row is not None else None
    except (TypeError, ValueError):
        version = None
    if version is None or version < 1:
        return "its meta table names no schema version this program knows"
    if version > SCHEMA_VERSION:
        return (
            f"it was written by a newer allmysms-mockserver (schema {version}; this one knows "
            f"up to {SCHEMA_VERSION}): upgrade, or {_MOVE_AWAY}"
        )
    later = {c for v, cols in _ADDED_COLUMNS.items() if v > version for c in cols}
    for table, columns in _expected_columns().items():
        if table not in tables:
            continue
        missing = sorted(c for c in columns if (table, c) not in later)
        missing = [c for c in missing if c not in _columns(conn, table)]
        if missing:
            return (
                f"its table {table} lacks the columns {', '.join(missing)} "
                f"(schema {version}): another application's table of the same name?"
            )
    return None


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the store only takes aware datetimes")
    return moment.isoformat()


class Database:
    """SQLite state shared by the processor (writes) and the HTTP API (reads).

    Thread-safe: writes go through one connection under a lock (SQLite has one writer at a
    time anyway); each reading thread gets its own connection, so under WAL a long write
    (a 150k-SMS file) never blocks the API's reads.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._closed = False
        try:
            self._writer = self._connect()
            reason = foreign_reason(self._writer)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise  # cannot open or read it (permissions, a lock): not a verdict on it
            reason = f"it is not a SQLite database ({exc})"
        if reason is not None:
            self.close()
            message = f"{self.path} is not this program's database: {reason}"
            if _MOVE_AWAY not in message:
                message += f"; {_MOVE_AWAY}"
            raise ForeignDatabase(message)
        self._writer.execute("PRAGMA journal_mode=WAL")
        with self._write_lock:
            self._writer.executescript(_SCHEMA)
            self._writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
            self._migrate()
            self._writer.executescript(_INDEXES)

    def _migrate(self) -> None:
        """Bring a database made by an older version to `SCHEMA_VERSION`, in one transaction."""
        row = self._writer.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        version = int(row[0])
        if version >= SCHEMA_VERSION:
            return
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS.get(target, ()):
                    self._writer.execute(statement)
            self._writer.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),)
            )
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        if version < 2:
            log.warning(
                "%s upgraded to schema %d: an SMS now costs credits as AllMySMS bills them "
                "(15 a French SMS); balances are kept as they were: POST /api/reset (or "
                "MockServer.reset()) restores the configured credits",
                self.path,
                SCHEMA_VERSION,
            )

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        # NORMAL is durable against a process crash (the mock's failure mode) under WAL;
        # only a power cut may lose the last transactions.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction on the writer connection; rolled back on any error."""
        with self._write_lock:
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection (idempotent)."""
        with self._write_lock:
            self._closed = True
            with self._conns_lock:
                conns, self._conns = self._conns, []
            for conn in conns:
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts ------------------------------------------------------------------------
