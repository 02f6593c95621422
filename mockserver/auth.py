"""Who may log in over FTP and SFTP: the `Authenticator` protocol both servers ask on every
login (the `Backend` is one), and `StaticAuthenticator`, a thread-safe credential table: the
Backend's own, changed only by the Backend, together with the store.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from mockserver.config import AccountConfig, compare_plain, hash_password, verify_password
from mockserver.tree import valid_login


@runtime_checkable
class Authenticator(Protocol):
    def authenticate(self, login: str, password: str) -> bool: ...

    def exists(self, login: str) -> bool: ...


# Compared against when the login is unknown, so a wrong login costs about what a wrong
# password costs (no user-enumeration oracle).
_DUMMY_PLAIN = "allmysms-mock-dummy-password"
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def _dummy_password_hash() -> str:
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password(_DUMMY_PLAIN)
        return _dummy_hash


class StaticAuthenticator:
    """Accounts in memory; every method is safe to call from any thread."""

    def __init__(self, accounts: Iterable[AccountConfig] = ()) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, AccountConfig] = {}
        for account in accounts:
            self.add(account)

    def authenticate(self, login: str, password: str) -> bool:
        with self._lock:
            account = self._accounts.get(login)
            any_hashed = any(a.password_hash is not None for a in self._accounts.values())
        # The (possibly slow) check runs outside the lock: logins do not queue behind scrypt.
        if account is None:
            if any_hashed:
                verify_password(password, _dummy_password_hash())
            else:
                compare_plain(password, _DUMMY_PLAIN)
            return False
        return account.check_password(password)

    def exists(self, login: str) -> bool:
        with self._lock:
            return login in self._accounts

    def get(self, login: str) -> AccountConfig | None:
        with self._lock:
            return self._accounts.get(login)

    def logins(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._accounts))

    def add(self, account: AccountConfig) -> None:
        """Add an account; ValueError if the login is invalid or already taken."""
        if not valid_login(account.login):
            raise ValueError(f"invalid login name: {account.login!r}")
        if (account.password is None) == (account.password_hash is None):
            raise ValueError("give exactly one of password, password_hash")
        with self._lock:
            if account.login in self._accounts:
                raise ValueError(f"login already exists: {account.login!r}")
            self._accounts[account.login] = account

    def set_password(self, login: str, password: str) -> None:
        """Replace the login's password (plain); KeyError if the login is unknown."""
        if not password:
            raise ValueError("empty password")
        with self._lock:
            account = self._accounts[login]
            self._accounts[login] = dataclasses.replace(
                account, password=password, password_hash=None
            )

    def remove(self, login: str) -> None:
        """Forget the login; KeyError if it is unknown."""
        with self._lock:
            del self._accounts[login]

    def replace_all(self, accounts: Iterable[AccountConfig]) -> None:
        """Restore a whole account set (e.g. the configured accounts on `POST /api/reset`)."""
        fresh = StaticAuthenticator(accounts)
        with self._lock:
            self._accounts = dict(fresh._accounts)
