"""The platform's state in SQLite (`<data_dir>/state.sqlite3`): accounts and their credits,
processed files, sent SMS. `Store` is the one repository over it; its rows come out typed
(`store.rows`), never in a wire shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from mockserver.store.accounts import AccountExists, Accounts, UnknownAccount
from mockserver.store.database import SCHEMA_VERSION, ForeignDatabase, StoreError, iso
from mockserver.store.ledger import FILE_ID_FLOOR, InsufficientCredits, Ledger
from mockserver.store.queries import Queries
from mockserver.store.rows import (
    MAIL_STATES,
    AccountLike,
    AccountRow,
    FileRecord,
    SmsRecord,
)

__all__ = [
    "MAIL_STATES",
    "SCHEMA_VERSION",
    "AccountExists",
    "AccountLike",
    "AccountRow",
    "FileRecord",
    "ForeignDatabase",
    "InsufficientCredits",
    "SmsRecord",
    "Store",
    "StoreError",
    "UnknownAccount",
]


class Store(Accounts, Ledger, Queries):
    """SQLite state shared by the processor (writes) and the HTTP API (reads); thread-safe."""

    def reset(self, configured: Iterable[AccountLike]) -> list[str]:
        """Empty files and SMS; restore the configured accounts with their configured
        credits, subscription and e-mail; remove accounts created at run time (contract 6,
        `POST /api/reset`: "restores configured accounts"). Returns the removed logins."""
        configured = list(configured)
        logins = {acc.login for acc in configured}
        with self._write() as conn:
            # File ids go on after a reset (ledger `_next_file_id`): keep the highest one given.
            conn.execute(
                "INSERT INTO meta (key, value)"
                " SELECT ?, MAX(COALESCE((SELECT MAX(id) FROM files), 0),"
                " COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0))"
                " WHERE 1 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (FILE_ID_FLOOR, FILE_ID_FLOOR),
            )
            conn.execute("DELETE FROM sms")
            conn.execute("DELETE FROM files")
            removed = [
                r[0]
                for r in conn.execute("SELECT login FROM accounts ORDER BY login").fetchall()
                if r[0] not in logins
            ]
            conn.executemany("DELETE FROM accounts WHERE login = ?", [(x,) for x in removed])
            now = iso(datetime.now(UTC))
            for acc in configured:
                conn.execute(
                    "INSERT INTO accounts (login, credits, subscription, email, password_hash,"
                    " configured, created_at) VALUES (?, ?, ?, ?, NULL, 1, ?)"
                    " ON CONFLICT (login) DO UPDATE SET credits = excluded.credits,"
                    " subscription = excluded.subscription, email = excluded.email,"
                    " password_hash = NULL, configured = 1",
                    (acc.login, max(0, acc.credits), int(acc.subscription), acc.email, now),
                )
        return removed
