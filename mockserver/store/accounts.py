"""Accounts and their credits in the store: seeded from the config, created and changed at run
time. Passwords are kept as scrypt hashes, only for accounts created at run time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mockserver.store.database import Database, StoreError, iso
from mockserver.store.rows import ACCOUNT_COLUMNS, AccountLike, AccountRow, account_row


class UnknownAccount(StoreError, KeyError):
    def __str__(self) -> str:
        return f"unknown account {self.args[0]!r}"


class AccountExists(StoreError, ValueError):
    def __str__(self) -> str:
        return f"account {self.args[0]!r} already exists"


def _hash_of(account: AccountLike) -> str | None:
    if account.password_hash:
        return account.password_hash
    if account.password:
        from mockserver.config import hash_password  # config imports nothing from here

        return hash_password(account.password)
    return None


class Accounts(Database):
    """The account half of `Store`."""

    def seed_accounts(self, accounts: Iterable[AccountLike]) -> None:
        """Make sure every configured account exists (at start-up).

        A configured account's settings (subscription, e-mail) follow the config, but its
        credits are a balance: a restart keeps the balance the platform left, only `reset()`
        restores the configured value. A new configured account is added.
        """
        now = iso(datetime.now(UTC))
        with self._write() as conn:
            for acc in accounts:
                conn.execute(
                    "INSERT INTO accounts (login, credits, subscription, email, password_hash,"
                    " configured, created_at) VALUES (?, ?, ?, ?, NULL, 1, ?)"
                    " ON CONFLICT (login) DO UPDATE SET subscription = excluded.subscription,"
                    " email = excluded.email, password_hash = NULL, configured = 1",
                    (acc.login, max(0, acc.credits), int(acc.subscription), acc.email, now),
                )

    def add_account(self, account: AccountLike, *, configured: bool = False) -> AccountRow:
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
                        iso(datetime.now(UTC)),
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
    ) -> AccountRow:
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

    def account(self, login: str) -> AccountRow | None:
        """The account, or None."""
        row = (
            self._reader()
            .execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE login = ?", (login,))
            .fetchone()
        )
        return account_row(row) if row else None

    def accounts(self) -> list[AccountRow]:
        rows = self._reader().execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY login")
        return [account_row(r) for r in rows]

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
