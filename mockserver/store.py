"""The platform's state in SQLite (`<data_dir>/state.sqlite3`): accounts and their credits,
processed files, sent SMS. Owns the exactly-once ledger: a file's verdict, its SMS and its
credit debit are written in one transaction keyed on the claimed file (ARCHITECTURE pitfall 4).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mockserver.core.models import RejectedRow, Sms, Status, Verdict
from mockserver.spool import printable_name

SCHEMA_VERSION = 1

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
    sms_last INTEGER
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
    warnings TEXT NOT NULL DEFAULT ''
);
"""

MAIL_STATES = ("pending", "sent", "skipped", "failed")


class StoreError(Exception):
    """Base of the store's own errors (each message is one line a user can act on)."""


class UnknownAccount(StoreError, KeyError):
    def __str__(self) -> str:
        return f"unknown account {self.args[0]!r}"


class AccountExists(StoreError, ValueError):
    def __str__(self) -> str:
        return f"account {self.args[0]!r} already exists"


class InsufficientCredits(StoreError):
    """The credits changed since the verdict was made: judge again with a fresh snapshot."""

    def __init__(self, login: str, credits: int, cost: int) -> None:
        super().__init__(login, credits, cost)
        self.login, self.credits, self.cost = login, credits, cost

    def __str__(self) -> str:
        return f"account {self.login!r} has {self.credits} credits, the file costs {self.cost}"


class AccountLike(Protocol):
    """What the store reads from a configured or created account (`config.AccountConfig`)."""

    @property
    def login(self) -> str: ...
    @property
    def password(self) -> str | None: ...
    @property
    def password_hash(self) -> str | None: ...
    @property
    def credits(self) -> int: ...
    @property
    def subscription(self) -> bool: ...
    @property
    def email(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A processed file as recorded (the processor's view; the API gets `to_dict()`)."""

    id: int
    login: str
    claim_key: str
    original_name: str
    final_name: str  # the verdict's name, before any -2/-3 suffix
    stored_name: str | None  # the name it really got in ARCHIVES/INVALIDS; None until moved
    status: Status
    reason: str | None
    detail: str
    campaign: str | None
    send_at: str | None
    mult: bool
    rows: int
    sms_count: int
    cost: int
    rejected: tuple[RejectedRow, ...]
    received_at: str
    processed_at: str
    processing_ms: float
    mail: str
    done: bool

    @property
    def name(self) -> str:
        """The file's name in ARCHIVES or INVALIDS."""
        return self.stored_name or self.final_name

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "login": self.login,
            "original_name": self.original_name,
            "final_name": self.name,
            "folder": "ARCHIVES" if self.status is Status.ARCHIVED else "INVALIDS",
            "status": self.status.value,
            "reason": self.reason,
            "detail": self.detail,
            "campaign": self.campaign,
            "send_at": self.send_at,
            "mult": self.mult,
            "rows": self.rows,
            "sms_count": self.sms_count,
            "cost": self.cost,
            "rejected": [
                {"line": r.line, "error": r.error, "detail": r.detail} for r in self.rejected
            ],
            "received_at": self.received_at,
            "processed_at": self.processed_at,
            "processing_ms": self.processing_ms,
            "mail": self.mail,
            "done": self.done,
        }


_FILE_COLUMNS = (
    "id, login, claim_key, original_name, final_name, stored_name, status, reason, detail, "
    "campaign, send_at, mult, rows, sms_count, cost, rejected, received_at, processed_at, "
    "processing_ms, mail, done"
)


def _file_record(row: Sequence[Any]) -> FileRecord:
    rejected = tuple(RejectedRow(int(r[0]), str(r[1]), str(r[2])) for r in json.loads(row[15]))
    return FileRecord(
        id=row[0],
        login=row[1],
        claim_key=row[2],
        original_name=row[3],
        final_name=row[4],
        stored_name=row[5],
        status=Status(row[6]),
        reason=row[7],
        detail=row[8],
        campaign=row[9],
        send_at=row[10],
        mult=bool(row[11]),
        rows=row[12],
        sms_count=row[13],
        cost=row[14],
        rejected=rejected,
        received_at=row[16],
        processed_at=row[17],
        processing_ms=row[18],
        mail=row[19],
        done=bool(row[20]),
    )


def _account_dict(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "login": row[0],
        "credits": row[1],
        "subscription": bool(row[2]),
        "email": row[3],
        "configured": bool(row[4]),
    }


_ACCOUNT_COLUMNS = "login, credits, subscription, email, configured"


_SMS_CHUNK = 50  # rows per INSERT statement: fewer statement steps, far below SQLite's limits
_SMS_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SMS_INSERT = (
    "INSERT INTO sms (id, file_id, line, phone, message, sender_asked, sender_applied,"
    " septets, warnings) VALUES "
)


def _insert_sms(conn: sqlite3.Connection, file_id: int, first: int, sms: Sequence[Sms]) -> None:
    """Insert a file's SMS with ids first, first+1, … inside the caller's transaction, by
    `executemany` over multi-row statements (one Python call, no per-row round trip)."""

    def flat(start: int, stop: int) -> tuple[Any, ...]:
        out: list[Any] = []
        for i in range(start, stop):
            s = sms[i]
            out += (
                first + i,
                file_id,
                s.line,
                s.phone,
                s.message,
                s.sender_asked,
                s.sender_applied,
                s.septets,
                ",".join(s.warnings),
            )
        return tuple(out)

    n = len(sms)
    full = n - n % _SMS_CHUNK
    if full:
        conn.executemany(
            _SMS_INSERT + ", ".join([_SMS_VALUES] * _SMS_CHUNK),
            (flat(i, i + _SMS_CHUNK) for i in range(0, full, _SMS_CHUNK)),
        )
    if full < n:
        conn.executemany(_SMS_INSERT + _SMS_VALUES, (flat(i, i + 1) for i in range(full, n)))


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the store only takes aware datetimes")
    return moment.isoformat()


def _hash_of(account: AccountLike) -> str | None:
    if account.password_hash:
        return account.password_hash
    if account.password:
        from mockserver.config import hash_password  # config imports nothing from here

        return hash_password(account.password)
    return None


class Store:
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
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        with self._write_lock:
            self._writer.executescript(_SCHEMA)
            self._writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        self._changed = threading.Condition()
        self._version = 0
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

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

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts ------------------------------------------------------------------------

    def seed_accounts(self, accounts: Iterable[AccountLike]) -> None:
        """Make sure every configured account exists (at start-up).

        A configured account's settings (subscription, e-mail) follow the config, but its
        credits are a balance: a restart keeps the balance the platform left, only `reset()`
        restores the configured value. A new configured account is added.
        """
        now = _iso(datetime.now(UTC))
        with self._write() as conn:
            for acc in accounts:
                conn.execute(
                    "INSERT INTO accounts (login, credits, subscription, email, password_hash,"
                    " configured, created_at) VALUES (?, ?, ?, ?, NULL, 1, ?)"
                    " ON CONFLICT (login) DO UPDATE SET subscription = excluded.subscription,"
                    " email = excluded.email, password_hash = NULL, configured = 1",
                    (acc.login, max(0, acc.credits), int(acc.subscription), acc.email, now),
                )

    def add_account(self, account: AccountLike, *, configured: bool = False) -> dict[str, Any]:
        """Create an account at run time (contract 6, `POST /api/accounts`).

        Its password is kept as a hash so that `runtime_accounts()` can let it log in again
        after a restart. Raises `AccountExists`, or `ValueError` for negative credits.
        """
        if account.credits < 0:
            raise ValueError("credits must be >= 0")
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO accounts (login, credits, subscription, email, password_hash,"
                    " configured, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        account.login,
                        account.credits,
                        int(account.subscription),
                        account.email,
                        None if configured else _hash_of(account),
                        int(configured),
                        _iso(datetime.now(UTC)),
                    ),
                )
        except sqlite3.IntegrityError:
            raise AccountExists(account.login) from None
        created = self.account(account.login)
        assert created is not None
        return created

    def update_account(
        self,
        login: str,
        *,
        credits: int | None = None,
        subscription: bool | None = None,
        email: str | None = None,
        password: str | None = None,
        password_hash: str | None = None,
    ) -> dict[str, Any]:
        """Change an account (contract 6, `PATCH /api/accounts/{login}`); returns it.

        Raises `UnknownAccount`, or `ValueError` for negative credits.
        """
        if credits is not None and credits < 0:
            raise ValueError("credits must be >= 0")
        sets: list[str] = []
        params: list[Any] = []
        if credits is not None:
            sets.append("credits = ?")
            params.append(int(credits))
        if subscription is not None:
            sets.append("subscription = ?")
            params.append(int(subscription))
        if email is not None:
            sets.append("email = ?")
            params.append(email)
        if password is not None and password_hash is None:
            from mockserver.config import hash_password

            password_hash = hash_password(password)
        if password_hash is not None:
            sets.append("password_hash = ?")
            params.append(password_hash)
        with self._write() as conn:
            if sets:
                cur = conn.execute(
                    f"UPDATE accounts SET {', '.join(sets)} WHERE login = ?", (*params, login)
                )
                if cur.rowcount == 0:
                    raise UnknownAccount(login)
            elif (
                conn.execute("SELECT 1 FROM accounts WHERE login = ?", (login,)).fetchone() is None
            ):
                raise UnknownAccount(login)
        result = self.account(login)
        assert result is not None
        return result

    def account(self, login: str) -> dict[str, Any] | None:
        """`{login, credits, subscription, email, configured}` or None."""
        row = (
            self._reader()
            .execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE login = ?", (login,))
            .fetchone()
        )
        return _account_dict(row) if row else None

    def accounts(self) -> list[dict[str, Any]]:
        rows = self._reader().execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY login")
        return [_account_dict(r) for r in rows]

    def runtime_accounts(self) -> list[Any]:
        """Accounts created at run time (not in the config), as `config.AccountConfig`
        objects carrying their password hash, so the app can let them log in after a restart.
        Those without a stored password are left out (nobody could log in as them)."""
        from mockserver.config import AccountConfig

        rows = self._reader().execute(
            "SELECT login, credits, subscription, email, password_hash FROM accounts"
            " WHERE configured = 0 AND password_hash IS NOT NULL ORDER BY login"
        )
        return [
            AccountConfig(
                login=r[0],
                password=None,
                password_hash=r[4],
                credits=r[1],
                subscription=bool(r[2]),
                email=r[3],
            )
            for r in rows
        ]

    # -- the ledger ----------------------------------------------------------------------

    def record(
        self,
        login: str,
        claim_key: str,
        verdict: Verdict,
        received_at: datetime,
        processed_at: datetime,
        processing_ms: float = 0.0,
    ) -> FileRecord:
        """Record a judged file, its SMS and its cost in ONE transaction; exactly once.

        Idempotent on `(login, claim_key)` while the file is not yet moved: recording the same
        claim again returns the existing row and charges nothing (a restart after a crash
        between "recorded" and "moved", ARCHITECTURE pitfall 4).

        Credits never go negative: when the account (not on subscription) has fewer credits
        than `verdict.cost` now — they changed since the verdict was made — nothing is written
        and `InsufficientCredits` is raised, so the caller judges again with a fresh account.
        A subscription account is "billed at month end" (contract 3): its credits are not
        debited, the file's cost is still recorded.

        Names are recorded in their printable form (`spool.printable_name`): a name put
        straight on disk that is not UTF-8 or holds a line break is stored escaped (SQLite
        refuses lone surrogates); the file keeps its raw name on disk.
        """
        existing = self.open_claim(login, claim_key)
        if existing is not None:
            return existing
        camp = verdict.campaign
        send_at = camp.send_at.isoformat() if camp else None
        rejected = json.dumps(
            [[r.line, r.error, r.detail] for r in verdict.rejected], ensure_ascii=False
        )
        with self._write() as conn:
            # Re-check inside the transaction: another thread may have recorded it meanwhile.
            row = conn.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE login = ? AND claim_key = ?"
                " AND stored_name IS NULL",
                (login, claim_key),
            ).fetchone()
            if row is not None:
                return _file_record(row)
            acc = conn.execute(
                "SELECT credits, subscription FROM accounts WHERE login = ?", (login,)
            ).fetchone()
            if acc is None:
                raise UnknownAccount(login)
            credits, subscription = int(acc[0]), bool(acc[1])
            cost = verdict.cost
            if cost > 0 and not subscription and credits < cost:
                raise InsufficientCredits(login, credits, cost)
            n_sms = len(verdict.sms)
            first = last = None
            if n_sms:
                first = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM sms").fetchone()[0]) + 1
                last = first + n_sms - 1
            cur = conn.execute(
                "INSERT INTO files (login, claim_key, original_name, final_name, status,"
                " reason, detail, campaign, send_at, send_ts, mult, rows, sms_count, cost,"
                " rejected, received_at, processed_at, processing_ms, sms_first, sms_last)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    login,
                    claim_key,
                    printable_name(verdict.original_name),
                    printable_name(verdict.final_name),
                    verdict.status.value,
                    verdict.reason.value if verdict.reason else None,
                    printable_name(verdict.detail),
                    camp.name if camp else None,
                    send_at,
                    camp.send_at.timestamp() if camp else None,
                    int(camp.mult) if camp else 0,
                    verdict.rows,
                    n_sms,
                    cost,
                    rejected,
                    _iso(received_at),
                    _iso(processed_at),
                    round(processing_ms, 3),
                    first,
                    last,
                ),
            )
            file_id = cur.lastrowid
            assert file_id is not None
            if first is not None:
                _insert_sms(conn, file_id, first, verdict.sms)
            if cost > 0 and not subscription:
                conn.execute(
                    "UPDATE accounts SET credits = credits - ? WHERE login = ?", (cost, login)
                )
            row = conn.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)
            ).fetchone()
        return _file_record(row)

    def open_claim(self, login: str, claim_key: str) -> FileRecord | None:
        """The recorded file for this claim that is not yet moved to its final place."""
        row = (
            self._reader()
            .execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE login = ? AND claim_key = ?"
                " AND stored_name IS NULL",
                (login, claim_key),
            )
            .fetchone()
        )
        return _file_record(row) if row else None

    def mark_moved(self, file_id: int, stored_name: str) -> None:
        """The file now sits in ARCHIVES/INVALIDS under `stored_name` (recorded in its
        printable form, see `record`)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE files SET stored_name = ? WHERE id = ?",
                (printable_name(stored_name), file_id),
            )

    def mark_mailed(self, file_id: int, mail: str = "sent") -> None:
        """The recap is dealt with (`sent`, `skipped`, `failed`): the file is done, and
        waiters (`wait_for_file`, listeners, `GET /api/files?wait=`) are woken."""
        if mail not in MAIL_STATES:
            raise ValueError(f"unknown mail state {mail!r}")
        with self._write() as conn:
            conn.execute("UPDATE files SET mail = ?, done = 1 WHERE id = ?", (mail, file_id))
            row = conn.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)
            ).fetchone()
        if row is not None:
            self._notify(_file_record(row))

    def unfinished(self) -> list[FileRecord]:
        """Recorded files whose move or recap was cut short (a crash): for recovery."""
        rows = self._reader().execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE done = 0 ORDER BY id"
        )
        return [_file_record(r) for r in rows]

    def file_record(self, file_id: int) -> FileRecord | None:
        row = (
            self._reader()
            .execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,))
            .fetchone()
        )
        return _file_record(row) if row else None

    def total_charged(self, login: str | None = None) -> int:
        """Credits debited for archived files (subscription accounts are not debited)."""
        sql = (
            "SELECT COALESCE(SUM(f.cost), 0) FROM files f JOIN accounts a ON a.login = f.login"
            " WHERE f.status = 'archived' AND a.subscription = 0"
        )
        params: tuple[Any, ...] = ()
        if login is not None:
            sql += " AND f.login = ?"
            params = (login,)
        return int(self._reader().execute(sql, params).fetchone()[0])

    # -- reading for the API -------------------------------------------------------------

    def files(
        self,
        login: str | None = None,
        status: str | None = None,
        name: str | None = None,
        *,
        campaign: str | None = None,
        since_id: int | None = None,
        include_pending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Processed files, oldest first (contract 6, `GET /api/files`).

        `name` matches the original name or the final name. Files still being finished
        (moved, recap) are left out unless `include_pending`.
        """
        where, params = self._file_filters(login, status, name, campaign, since_id)
        if not include_pending:
            where.append("done = 1")
        sql = f"SELECT {_FILE_COLUMNS} FROM files"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        return [_file_record(r).to_dict() for r in self._reader().execute(sql, params)]

    @staticmethod
    def _file_filters(
        login: str | None,
        status: str | None,
        name: str | None,
        campaign: str | None,
        since_id: int | None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if login is not None:
            where.append("login = ?")
            params.append(login)
        if status is not None:
            where.append("status = ?")
            params.append(Status(status).value)
        if name is not None:
            where.append("(original_name = ? OR stored_name = ? OR final_name = ?)")
            text = printable_name(name)  # names are stored in their printable form
            params += [text, text, text]
        if campaign is not None:
            where.append("campaign = ?")
            params.append(campaign)
        if since_id is not None:
            where.append("id > ?")
            params.append(int(since_id))
        return where, params

    def file_by_name(self, name: str, login: str | None = None) -> dict[str, Any] | None:
        """The latest done file whose original or final name is `name`."""
        found = self.files(login=login, name=name)
        return found[-1] if found else None

    def last_file_id(self) -> int:
        row = self._reader().execute("SELECT COALESCE(MAX(id), 0) FROM files").fetchone()
        return int(row[0])

    def messages(
        self,
        login: str | None = None,
        campaign: str | None = None,
        phone: str | None = None,
        file: str | None = None,
        *,
        file_id: int | None = None,
        status: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded SMS, in file then line order (contract 6, `GET /api/messages`).

        `file` matches the file's original or final name. `status` is computed at read time
        (contract 5.10): `scheduled` while the send date is in the future, `sent` after.
        """
        moment = (now or datetime.now(UTC)).timestamp()
        where: list[str] = []
        params: list[Any] = []
        if login is not None:
            where.append("f.login = ?")
            params.append(login)
        if campaign is not None:
            where.append("f.campaign = ?")
            params.append(campaign)
        if phone is not None:
            where.append("s.phone = ?")
            params.append(phone)
        if file is not None:
            where.append("(f.original_name = ? OR f.stored_name = ? OR f.final_name = ?)")
            text = printable_name(file)
            params += [text, text, text]
        if file_id is not None:
            where.append("f.id = ?")
            params.append(int(file_id))
        if status == "scheduled":
            where.append("f.send_ts > ?")
            params.append(moment)
        elif status == "sent":
            where.append("f.send_ts <= ?")
            params.append(moment)
        elif status is not None:
            raise ValueError(f"unknown SMS status {status!r} (scheduled or sent)")
        # Files outer, each one's SMS by id range: ordered by (file, SMS) without a sort.
        sql = (
            "SELECT s.id, f.id, f.login, f.campaign, s.phone, s.message, s.sender_asked,"
            " s.sender_applied, f.send_at, f.send_ts, s.line, s.septets, s.warnings,"
            " f.original_name, COALESCE(f.stored_name, f.final_name)"
            " FROM files f JOIN sms s ON s.id BETWEEN f.sms_first AND f.sms_last"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY f.id, s.id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        return [
            {
                "id": r[0],
                "file_id": r[1],
                "login": r[2],
                "campaign": r[3],
                "phone": r[4],
                "message": r[5],
                "sender_asked": r[6],
                "sender_applied": r[7],
                "scheduled_at": r[8],
                "status": "scheduled" if r[9] > moment else "sent",
                "line": r[10],
                "septets": r[11],
                "warnings": r[12].split(",") if r[12] else [],
                "file": r[13],
                "final_name": r[14],
            }
            for r in self._reader().execute(sql, params)
        ]

    def count_messages(self, login: str | None = None) -> int:
        reader = self._reader()
        if login is None:
            return int(reader.execute("SELECT COUNT(*) FROM sms").fetchone()[0])
        return int(
            reader.execute(
                "SELECT COALESCE(SUM(sms_count), 0) FROM files WHERE login = ?"
                " AND sms_first IS NOT NULL",
                (login,),
            ).fetchone()[0]
        )

    # -- change notification -------------------------------------------------------------

    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call `callback(file_dict)` (from the processor's thread) each time a file is done.
        It must be quick and must not raise; e.g. `loop.call_soon_threadsafe(...)`."""
        with self._changed:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        with self._changed, contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def _notify(self, record: FileRecord) -> None:
        with self._changed:
            self._version += 1
            listeners = list(self._listeners)
            self._changed.notify_all()
        data = record.to_dict()
        for callback in listeners:
            with contextlib.suppress(Exception):  # a listener's bug must not stop processing
                callback(data)

    def wait_for_file(
        self,
        name: str,
        timeout: float,
        *,
        login: str | None = None,
        since_id: int | None = None,
    ) -> dict[str, Any] | None:
        """Block until a done file named `name` (original or final name) exists; None when
        `timeout` runs out. `since_id` ignores files recorded before (e.g. an earlier drop
        under the same name)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                version = self._version
            found = self.files(login=login, name=name, since_id=since_id)
            if found:
                return found[-1]
            with self._changed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if self._version == version:
                    self._changed.wait(remaining)

    # -- reset ---------------------------------------------------------------------------

    def reset(self, configured: Iterable[AccountLike]) -> list[str]:
        """Empty files and SMS; restore the configured accounts with their configured
        credits, subscription and e-mail; remove accounts created at run time (contract 6,
        `POST /api/reset`: "restores configured accounts"). Returns the removed logins."""
        configured = list(configured)
        logins = {acc.login for acc in configured}
        with self._write() as conn:
            conn.execute("DELETE FROM sms")
            conn.execute("DELETE FROM files")
            removed = [
                r[0]
                for r in conn.execute("SELECT login FROM accounts ORDER BY login").fetchall()
                if r[0] not in logins
            ]
            conn.executemany("DELETE FROM accounts WHERE login = ?", [(x,) for x in removed])
            now = _iso(datetime.now(UTC))
            for acc in configured:
                conn.execute(
                    "INSERT INTO accounts (login, credits, subscription, email, password_hash,"
                    " configured, created_at) VALUES (?, ?, ?, ?, NULL, 1, ?)"
                    " ON CONFLICT (login) DO UPDATE SET credits = excluded.credits,"
                    " subscription = excluded.subscription, email = excluded.email,"
                    " password_hash = NULL, configured = 1",
                    (acc.login, max(0, acc.credits), int(acc.subscription), acc.email, now),
                )
        with self._changed:
            self._version += 1
            self._changed.notify_all()
        return removed
