"""The exactly-once ledger: a judged file, its SMS and its credit debit in one transaction
keyed on the claimed file (not its name), then its move and its recap marked (docs/design.md,
"Exactly once")."""

from __future__ import annotations

import functools
import itertools
import json
import operator
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mockserver.core.hints import duplicate_hint, is_recent
from mockserver.core.models import Hint, Sms, Verdict
from mockserver.core.text import printable_name
from mockserver.store.accounts import UnknownAccount
from mockserver.store.database import Database, StoreError, iso
from mockserver.store.rows import (
    FILE_COLUMNS,
    MAIL_STATES,
    FileRecord,
    file_record,
    hints_json,
    more_json,
)


class InsufficientCredits(StoreError):
    """The credits changed since the verdict was made: judge again with a fresh snapshot."""

    def __init__(self, login: str, credits: int, cost: int) -> None:
        super().__init__(login, credits, cost)
        self.login, self.credits, self.cost = login, credits, cost

    def __str__(self) -> str:
        return f"account {self.login!r} has {self.credits} credits, the file costs {self.cost}"


_SMS_COLUMNS = (
    "id, file_id, line, phone, message, sender_asked, sender_applied, septets, warnings, price"
)
# A file's SMS go in by runs of consecutive SMS: most of a file's SMS share their sender asked
# and applied, warnings and price, which such a run binds once (issue 15: binding 10 values a
# row was about half of the insert's time). Statements stay under 999 parameters, SQLite's
# oldest limit.
_SHARED_RUN = 200  # SMS per statement when they share those columns: 6 + 4 x 200 parameters
_MIXED_RUN = 50  # SMS per statement otherwise: 10 x 50 parameters
_shape = operator.itemgetter(3, 4, 6, 7)  # Sms: sender_asked, sender_applied, warnings, price
_own = operator.itemgetter(0, 1, 2, 5)  # Sms: line, phone, message, septets


@functools.lru_cache(maxsize=64)
def _shared_sql(rows: int) -> str:
    """`rows` SMS that share their other columns: ids from the first one's, one per row."""
    values = ", ".join(f"({k}, ?, ?, ?, ?)" for k in range(rows))
    return (
        f"INSERT INTO sms ({_SMS_COLUMNS}) SELECT ? + column1, ?, column2, column3, column4, ?,"
        f" ?, column5, ?, ? FROM (VALUES {values})"
    )


@functools.lru_cache(maxsize=64)
def _mixed_sql(rows: int) -> str:
    return f"INSERT INTO sms ({_SMS_COLUMNS}) VALUES " + ", ".join(
        ["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows
    )


def _insert_sms(conn: sqlite3.Connection, file_id: int, first: int, sms: Sequence[Sms]) -> int:
    """Insert a file's SMS with ids first, first+1, … inside the caller's transaction, a run of
    consecutive SMS a statement (no per-row round trip): the columns a run shares are bound
    once, the others gathered in C (`operator.itemgetter`), not a Python loop a row.
    Returns how many warnings the SMS carry (one SMS may carry two)."""
    warned = 0
    for start in range(0, len(sms), _SHARED_RUN):
        run = sms[start : start + _SHARED_RUN]
        shapes = set(map(_shape, run))
        if len(shapes) == 1:
            asked, applied, warnings, price = shapes.pop()
            params: list[Any] = [first + start, file_id, asked, applied, ",".join(warnings)]
            params.append(price)
            params += itertools.chain.from_iterable(map(_own, run))
            conn.execute(_shared_sql(len(run)), params)
            warned += len(warnings) * len(run)
            continue
        for sub in range(0, len(run), _MIXED_RUN):
            part = run[sub : sub + _MIXED_RUN]
            flat: list[Any] = []
            for i, s in enumerate(part, first + start + sub):
                flat += (i, file_id, s.line, s.phone, s.message, s.sender_asked)
                flat += (s.sender_applied, s.septets, ",".join(s.warnings), s.price)
                warned += len(s.warnings)
            conn.execute(_mixed_sql(len(part)), flat)
    return warned


# Earlier files with the same bytes looked at for `duplicate_of` (the latest first).
_SAME_BYTES_SCAN = 20


def _duplicate_of(conn: sqlite3.Connection, login: str, sha256: str, now: datetime) -> Hint | None:
    """Contract 5.12: the hint naming the latest file of `login` with these bytes that was
    processed in the 10 minutes before `now` (the platform's clock), or None."""
    rows = conn.execute(
        "SELECT id, COALESCE(stored_name, final_name), processed_at FROM files"
        " WHERE login = ? AND sha256 = ? ORDER BY id DESC LIMIT ?",
        (login, sha256, _SAME_BYTES_SCAN),
    )
    for file_id, name, processed_at in rows:
        if is_recent(datetime.fromisoformat(processed_at), now):
            return duplicate_hint(int(file_id), str(name))
    return None


# The highest file id a reset deleted (`Store.reset`): ids go on from there, never reused.
FILE_ID_FLOOR = "file_id_floor"


def _next_file_id(conn: sqlite3.Connection) -> int:
    """The id of the file about to be recorded: above every file id ever given, even those a
    reset deleted (contract 6: "every file has an increasing id"; a client holding an
    `after_id` from before a reset must not miss the files after it). SQLite alone would
    start again from 1 on an emptied table."""
    row = conn.execute(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM files), 0),"
        " COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0))",
        (FILE_ID_FLOOR,),
    ).fetchone()
    return int(row[0]) + 1


class Ledger(Database):
    """The ledger half of `Store`."""

    def record(
        self,
        login: str,
        claim_key: str,
        verdict: Verdict,
        received_at: datetime,
        processed_at: datetime,
        processing_ms: float = 0.0,
        *,
        sha256: str | None = None,
    ) -> FileRecord:
        """Record a judged file, its SMS and its cost in ONE transaction; exactly once.

        Idempotent on `(login, claim_key)` while the file is not yet moved: recording the same
        claim again returns the existing row and charges nothing (a restart after a crash
        between "recorded" and "moved").

        Credits never go negative: when the account (not on subscription) has fewer credits
        than `verdict.cost` now — they changed since the verdict was made — nothing is written
        and `InsufficientCredits` is raised, so the caller judges again with a fresh account.
        A subscription account is "billed at month end" (contract 3): its credits are not
        debited, the file's cost is still recorded.

        Names are recorded in their printable form (`core.text.printable_name`): a name put
        straight on disk that is not UTF-8 or holds a line break is stored escaped (SQLite
        refuses lone surrogates); the file keeps its raw name on disk.

        `sha256` is the file's content hash: the record keeps the verdict's hints and, when
        this login had processed a file of the same bytes in the 10 minutes before
        `processed_at`, the `duplicate_of` hint naming it (contract 5.12).
        """
        camp = verdict.campaign
        send_at = camp.send_at.isoformat() if camp else None
        rejected = json.dumps(
            [[r.line, r.error, r.detail, r.value] for r in verdict.rejected], ensure_ascii=False
        )
        with self._write() as conn:
            # Already recorded (a restart after a crash, or another thread meanwhile): checked
            # inside the transaction only, the caller has just looked (`open_claim`).
            row = conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE login = ? AND claim_key = ?"
                " AND stored_name IS NULL",
                (login, claim_key),
            ).fetchone()
            if row is not None:
                return file_record(row)
            acc = conn.execute(
                "SELECT credits, subscription FROM accounts WHERE login = ?", (login,)
            ).fetchone()
            if acc is None:
                raise UnknownAccount(login)
            credits, subscription = int(acc[0]), bool(acc[1])
            cost = verdict.cost
            if cost > 0 and not subscription and credits < cost:
                raise InsufficientCredits(login, credits, cost)
            hints: tuple[Hint, ...] = verdict.hints
            if sha256 is not None:
                earlier = _duplicate_of(conn, login, sha256, processed_at)
                if earlier is not None:
                    hints = (*hints, earlier)
            n_sms = len(verdict.sms)
            first = last = None
            if n_sms:
                first = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM sms").fetchone()[0]) + 1
                last = first + n_sms - 1
            file_id = _next_file_id(conn)
            warned = _insert_sms(conn, file_id, first, verdict.sms) if first is not None else 0
            conn.execute(
                "INSERT INTO files (id, login, claim_key, original_name, final_name, status,"
                " reason, detail, campaign, send_at, send_ts, mult, rows, sms_count, cost,"
                " rejected, received_at, processed_at, processing_ms, sms_first, sms_last,"
                " debited, sha256, hints, rejected_more, warnings_total)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)",
                (
                    file_id,
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
                    iso(received_at),
                    iso(processed_at),
                    round(processing_ms, 3),
                    first,
                    last,
                    0 if subscription else cost,
                    sha256,
                    hints_json(hints),
                    more_json(verdict.rejected_more),
                    warned,
                ),
            )
            if cost > 0 and not subscription:
                conn.execute(
                    "UPDATE accounts SET credits = credits - ? WHERE login = ?", (cost, login)
                )
            row = conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)
            ).fetchone()
        return file_record(row)

    def open_claim(self, login: str, claim_key: str) -> FileRecord | None:
        """The recorded file for this claim that is not yet moved to its final place."""
        row = (
            self._reader()
            .execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE login = ? AND claim_key = ?"
                " AND stored_name IS NULL",
                (login, claim_key),
            )
            .fetchone()
        )
        return file_record(row) if row else None

    def mark_moved(self, file_id: int, stored_name: str) -> None:
        """The file now sits in ARCHIVES/INVALIDS under `stored_name` (recorded in its
        printable form, see `record`)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE files SET stored_name = ? WHERE id = ?",
                (printable_name(stored_name), file_id),
            )

    def mark_mailed(self, file_id: int, mail: str = "sent") -> FileRecord | None:
        """The recap is dealt with (`sent`, `skipped`, `failed`, or `pending`: owed, retried):
        the file is done. Returns the done record (for the pipeline's `file.finished` event)."""
        if mail not in MAIL_STATES:
            raise ValueError(f"unknown mail state {mail!r}")
        with self._write() as conn:
            conn.execute("UPDATE files SET mail = ?, done = 1 WHERE id = ?", (mail, file_id))
            row = conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)
            ).fetchone()
        return file_record(row) if row is not None else None

    def unfinished(self) -> list[FileRecord]:
        """Recorded files whose move or recap was cut short (a crash): for recovery."""
        rows = self._reader().execute(
            f"SELECT {FILE_COLUMNS} FROM files WHERE done = 0 ORDER BY id"
        )
        return [file_record(r) for r in rows]

    def recaps_owed(self) -> list[FileRecord]:
        """Done files whose recap failed for a reason a retry can cure (the Maildir, the disk:
        `processing/recaps.py`): `mail` is still `pending`."""
        rows = self._reader().execute(
            f"SELECT {FILE_COLUMNS} FROM files WHERE done = 1 AND mail = 'pending' ORDER BY id"
        )
        return [file_record(r) for r in rows]

    def file_record(self, file_id: int) -> FileRecord | None:
        row = (
            self._reader()
            .execute(f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?", (file_id,))
            .fetchone()
        )
        return file_record(row) if row else None

    def total_charged(self, login: str | None = None) -> int:
        """Credits debited for archived files (subscription accounts are not debited); files
        recorded before `debited` existed count their cost unless the account is on
        subscription now."""
        sql = (
            "SELECT COALESCE(SUM(COALESCE(f.debited, CASE WHEN a.subscription = 0 THEN f.cost"
            " ELSE 0 END)), 0) FROM files f JOIN accounts a ON a.login = f.login"
            " WHERE f.status = 'archived'"
        )
        params: tuple[Any, ...] = ()
        if login is not None:
            sql += " AND f.login = ?"
            params = (login,)
        return int(self._reader().execute(sql, params).fetchone()[0])

    # -- reading for the API -------------------------------------------------------------
