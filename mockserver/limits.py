"""Per-address and per-login protection shared by the FTP and SFTP servers: the login lockout
after repeated failures, and the total and per-address connection caps. Thread-safe (FTP runs
in its own thread, SFTP on the asyncio loop).
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mockserver.config import LimitsConfig

Clock = Callable[[], float]

# Addresses (and logins) remembered at most (failures and lockouts); the oldest are forgotten
# first, so a flood from many addresses cannot grow the tables without bound.
MAX_TRACKED_ADDRESSES = 10_000


def address_key(address: str) -> str:
    """One key per client host: `::ffff:1.2.3.4` (IPv4 on a dual-stack socket) is `1.2.3.4`."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class ConnectionLimiter:
    """Counts open connections of one server; `acquire` refuses past the caps."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self._lock = threading.Lock()
        self._max_total = max_total
        self._max_per_address = max_per_address
        self._open: Counter[str] = Counter()
        self._total = 0

    def acquire(self, address: str) -> str | None:
        """Count a new connection; None when accepted, else why it is refused (and not counted)."""
        key = address_key(address)
        with self._lock:
            if self._total >= self._max_total:
                return f"too many connections (limit {self._max_total})"
            if self._open[key] >= self._max_per_address:
                return f"too many connections from your address (limit {self._max_per_address})"
            self._open[key] += 1
            self._total += 1
            return None

    def release(self, address: str) -> None:
        key = address_key(address)
        with self._lock:
            if self._open[key] <= 0:
                self._open.pop(key, None)
                return
            self._open[key] -= 1
            self._total -= 1
            if not self._open[key]:
                del self._open[key]

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def count(self, address: str) -> int:
        with self._lock:
            return self._open.get(address_key(address), 0)


# A login is remembered under at most this many characters (an unknown login may be long).
MAX_LOGIN_KEY = 256


class _FailureTable:
    """Failures per key within a window, and the keys locked out (see `LoginLockout`)."""

    def __init__(self, failures: int, window: float) -> None:
        self._failures = failures
        self._window = window
        self._recent: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def remaining(self, key: str, now: float) -> float:
        until = self._locked_until.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._locked_until[key]
            return 0.0
        return until - now

    def failed(self, key: str, now: float) -> bool:
        until = self._locked_until.get(key)
        if until is not None and until > now:
            return True  # not counted: a lockout is never extended by attempts during it
        recent = self._recent.pop(key, None) or deque()
        self._recent[key] = recent  # re-inserted last: the table is kept oldest first
        recent.append(now)
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        # Bounded: the deque never holds more than `failures` stamps.
        while len(recent) > self._failures:
            recent.popleft()
        locked = len(recent) >= self._failures
        if locked:
            self._locked_until.pop(key, None)
            self._locked_until[key] = now + self._window
            del self._recent[key]
        self._trim(now)
        return locked

    def clear(self) -> None:
        self._recent.clear()
        self._locked_until.clear()

    def _trim(self, now: float) -> None:
        for table in (self._recent, self._locked_until):
            while len(table) > MAX_TRACKED_ADDRESSES:
                del table[next(iter(table))]
        expired = [k for k, until in self._locked_until.items() if until <= now]
        for key in expired[:64]:  # amortised: a few at a time
            del self._locked_until[key]


@dataclass(frozen=True, slots=True)
class Lock:
    """A refused login: for how long, and whether the address or the login is locked."""

    seconds: float
    scope: str  # "address" or "login"

    @property
    def reason(self) -> str:
        """The sentence both protocols send (FTP after `421 `), with whole seconds."""
        whose = "from your address" if self.scope == "address" else "for this login"
        return f"too many failed logins {whose}; try again in {max(1, round(self.seconds))} s"


class LoginLockout:
    """Two counters of failed logins (issue 16: an address alone is too little):

    - per address: `failures` failed logins from one address within `window` seconds lock the
      address out for `window` seconds: every login from it is refused meanwhile, right
      password or not;
    - per login: `failures` failed logins *for one login* within `window` seconds, from any
      addresses (rotating 127.0.0.x changes nothing), lock that login out for `window` seconds,
      from every address.

    A lockout lasts exactly `window` seconds from the failure that started it: attempts during
    it are refused and not counted, so they never extend it; a guesser keeps a login locked
    only by guessing again after each lockout, at `failures` guesses a window at most, and the
    real user waits at most `window` seconds after the last lockout began.

    `failures = 0` turns both off. A success does not clear a count: a guesser who knows one
    password must not earn fresh attempts at the others with it.
    """

    def __init__(self, failures: int, window: float, clock: Clock = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._failures = failures
        self._clock = clock
        self._addresses = _FailureTable(failures, window)
        self._logins = _FailureTable(failures, window)

    @property
    def enabled(self) -> bool:
        return self._failures > 0

    def refusal(self, address: str, login: str | None = None) -> Lock | None:
        """The lockout that refuses a login of `login` from `address` now, or None."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            by_address = self._addresses.remaining(address_key(address), now)
            by_login = 0.0 if login is None else self._logins.remaining(_login_key(login), now)
        if not by_address and not by_login:
            return None
        if by_address >= by_login:
            return Lock(by_address, "address")
        return Lock(by_login, "login")

    def remaining(self, address: str, login: str | None = None) -> float:
        """Seconds left before `login` may log in from `address` (0.0: now)."""
        lock = self.refusal(address, login)
        return 0.0 if lock is None else lock.seconds

    def failed(self, address: str, login: str | None = None) -> bool:
        """Record a failed login; True when the address or the login is (now) locked out."""
        if not self.enabled:
            return False
        now = self._clock()
        with self._lock:
            locked = self._addresses.failed(address_key(address), now)
            if login is not None and self._logins.failed(_login_key(login), now):
                locked = True
            return locked

    def clear(self) -> None:
        """Forget every failure and lockout (e.g. on `POST /api/reset` between tests)."""
        with self._lock:
            self._addresses.clear()
            self._logins.clear()


def _login_key(login: str) -> str:
    return login[:MAX_LOGIN_KEY]


@dataclass(eq=False)
class Guard:
    """What one platform (one data dir) shares between its FTP and SFTP servers: a guesser
    alternating protocols meets one lockout. Connection caps are per protocol."""

    lockout: LoginLockout
    ftp_connections: ConnectionLimiter
    sftp_connections: ConnectionLimiter

    @classmethod
    def from_limits(cls, limits: LimitsConfig, clock: Clock = time.monotonic) -> Guard:
        return cls(
            lockout=LoginLockout(
                limits.login_lockout_failures, limits.login_lockout_seconds, clock
            ),
            ftp_connections=ConnectionLimiter(
                limits.max_connections, limits.max_connections_per_ip
            ),
            sftp_connections=ConnectionLimiter(
                limits.max_connections, limits.max_connections_per_ip
            ),
        )


_guards: weakref.WeakValueDictionary[tuple[str, LimitsConfig], Guard] = (
    weakref.WeakValueDictionary()
)
_guards_lock = threading.Lock()


def guard_for(data_dir: Path, limits: LimitsConfig) -> Guard:
    """The Guard of the platform serving `data_dir` (made on first use, kept while a server
    holds it), so the FTP and SFTP servers of one MockServer share it without being told."""
    key = (os.path.abspath(data_dir), limits)
    with _guards_lock:
        guard = _guards.get(key)
        if guard is None:
            guard = Guard.from_limits(limits)
            _guards[key] = guard
        return guard
