"""`Backend`: the one owner of the platform's state (store, folder tree, mailbox, accounts and
their credentials, login guard, open-writes registry, event bus) and of every operation on it.
Servers, the processor, the HTTP API and `MockServer` all act through it; nothing else keeps
a copy of an account.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from mockserver.auth import StaticAuthenticator
from mockserver.clock import PlatformClock, parse_instant
from mockserver.config import AccountConfig, Config
from mockserver.core.phone import normalise_number
from mockserver.events import (
    AccountChanged,
    ClockChanged,
    Event,
    EventBus,
    FileFinished,
    PlatformReset,
)
from mockserver.faults import Faults
from mockserver.health import Health
from mockserver.limits import Guard
from mockserver.mailbox import Mailbox
from mockserver.manual import Waiting, WaitingFile
from mockserver.retrying import Retrying
from mockserver.spool import Spool
from mockserver.store import (
    AccountExists,
    AccountRow,
    FileRecord,
    ForeignDatabase,
    SmsRecord,
    Store,
)
from mockserver.tree import FOLDERS, Folder, folder_path, make_tree, valid_login
from mockserver.writes import OpenWrites

_T = TypeVar("_T")
Clock = Callable[[], datetime]
Quiesce = Callable[[], AbstractContextManager[None]]


class BackendError(RuntimeError):
    """The state cannot be opened; the message is one line a user can act on."""


class BadFilter(ValueError):
    """A filter value no row can match (a phone that is no number, an unknown SMS status);
    the message is one sentence, the HTTP API's 400 answer as it is."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def _nothing_to_pause() -> Iterator[None]:
    yield


class Backend:
    """All mutable state of one platform (one data dir). `open()` before use, `close()` after.

    Thread-safe: every method may be called from the FTP thread, the asyncio loop (through an
    executor: several methods block), the processor's workers or a test."""

    def __init__(
        self, config: Config, *, bus: EventBus | None = None, clock: Clock = _utc_now
    ) -> None:
        self.config = config
        # Contract 9.3: the one clock of the platform. A plain callable given here is its
        # real time (tests move it by hand); `processing.clock` starts it frozen.
        if isinstance(clock, PlatformClock):
            self.clock = clock
        else:
            start = config.processing.clock
            self.clock = PlatformClock(parse_instant(start) if start else None, source=clock)
        self.bus = bus or EventBus(self.clock)
        self.clock.on_change(self._clock_changed)
        # Contract 9.4: the files manual mode holds in PROCESSING (the processor fills it).
        self.waiting = Waiting()
        self.retrying = Retrying()  # issue 16: files and recaps retried after a failure
        # Contract 9.2: the fault rules in force (the config's `[[faults]]` first); adapters
        # and the pipeline call `fire`.
        self.faults = Faults(self.bus, config.faults)
        self.open_writes = OpenWrites()
        # One login lockout for both protocols, and per-protocol connection caps.
        self.guard = Guard.from_limits(config.limits)
        self.health = Health()  # issue 16: what `/health` reports as degraded
        # The credentials the servers check logins against: configured accounts from the
        # config, run-time ones from the store. Only this class changes them, always
        # together with the store, under `_accounts_lock`.
        self._credentials = StaticAuthenticator(config.accounts)
        self._accounts_lock = threading.RLock()
        self._quiesce: Quiesce = _nothing_to_pause
        self._store: Store | None = None
        self._spool: Spool | None = None
        self._mailbox: Mailbox | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the database, seed the configured accounts, make every login's folders."""
        data_dir = self.data_dir
        path = data_dir / "state.sqlite3"
        try:
            store = Store(path)
        except ForeignDatabase as exc:
            raise BackendError(str(exc)) from None  # issue 16: one line naming the file
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open {path}: {exc}") from None
        self._store = store
        store.seed_accounts(self.config.accounts)
        for acc in store.runtime_accounts():
            self._credentials.add(acc)
        self._spool = Spool(data_dir, self.config.server.layout, self.open_writes)
        # docs/spec.md 4.3: an upload cut by a crash (kill -9) was never complete: its remains
        # are removed before the processor's start-up scan could judge them.
        self.open_writes.journal(data_dir / "uploads")
        self.open_writes.recover(self._spool.accounts_dir)
        for row in store.accounts():
            self._spool.ensure(row.login)
        try:
            self._mailbox = Mailbox(data_dir / "mailbox", self.config.mail)
        except OSError as exc:
            raise BackendError(str(exc.strerror or exc)) from None

    def close(self) -> None:
        self.open_writes.close()  # the upload journal's file (its markers stay)
        if self._store is not None:
            self._store.close()
        self._store = self._spool = self._mailbox = None

    def set_quiesce(self, quiesce: Quiesce) -> None:
        """How `reset()` makes sure no file is being processed meanwhile (the processor's
        `paused`, given by the app: the Backend never imports the processing layer)."""
        self._quiesce = quiesce

    # -- parts -------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.config.server.data_dir

    @property
    def store(self) -> Store:
        return _need(self._store)

    @property
    def spool(self) -> Spool:
        return _need(self._spool)

    @property
    def mailbox(self) -> Mailbox:
        return _need(self._mailbox)

    def now(self) -> datetime:
        return self.clock()

    def _clock_changed(self, now: datetime, frozen: bool) -> None:
        self.publish(ClockChanged(now=now, frozen=frozen))

    def publish(self, event: Event) -> Event:
        return self.bus.publish(event)

    def folder(self, login: str, folder: Folder | str) -> Path:
        """The real directory behind `/SEND_SMS` (etc.) of `login`."""
        return folder_path(self.data_dir, self.config.server.layout, login, Folder(folder))

    # -- logins (the servers' `Authenticator`) -----------------------------------------------

    def authenticate(self, login: str, password: str) -> bool:
        return self._credentials.authenticate(login, password)

    def exists(self, login: str) -> bool:
        return self._credentials.exists(login)

    # -- accounts ----------------------------------------------------------------------------

    def account(self, login: str) -> AccountRow | None:
        return self.store.account(login) if valid_login(login) else None

    def accounts(self) -> list[AccountRow]:
        return self.store.accounts()

    def add_account(
        self,
        login: str,
        password: str,
        credits: int = 100,
        *,
        subscription: bool = False,
        email: str | None = None,
    ) -> AccountRow:
        """Create an account and its folders at run time; it can log in at once. Raises
        `ValueError` for an invalid login and `AccountExists` for a taken one."""
        if not valid_login(login):
            raise ValueError(f"invalid login {login!r}")
        acc = AccountConfig(
            login=login,
            password=password,
            password_hash=None,
            credits=credits,
            subscription=subscription,
            email=email or f"{login}@example.com",
        )
        with self._accounts_lock:
            if self._credentials.exists(login):
                raise AccountExists(login)
            created = self.store.add_account(acc)
            self.spool.ensure(login)
            self._credentials.add(acc)
        self.publish(AccountChanged(login=login, change="created", credits=created.credits))
        return created

    def update_account(
        self,
        login: str,
        *,
        credits: int | None = None,
        subscription: bool | None = None,
        email: str | None = None,
        password: str | None = None,
    ) -> AccountRow:
        """Change an account (contract 6, `PATCH /api/accounts/{login}`); a new password is
        checked at the next login. Raises `UnknownAccount`, `ValueError` (negative credits)."""
        with self._accounts_lock:
            changed = self.store.update_account(
                login, credits=credits, subscription=subscription, email=email, password=password
            )
            if password is not None:
                try:
                    self._credentials.set_password(login, password)
                except KeyError:
                    self._credentials.add(
                        AccountConfig(
                            login=login,
                            password=password,
                            credits=changed.credits,
                            subscription=changed.subscription,
                            email=changed.email,
                        )
                    )
        self.publish(AccountChanged(login=login, change="updated", credits=changed.credits))
        return changed

    # -- files, SMS, mail --------------------------------------------------------------------

    def files(
        self,
        login: str | None = None,
        status: str | None = None,
        name: str | None = None,
        *,
        campaign: str | None = None,
        after_id: int | None = None,
        include_pending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[FileRecord]:
        """Files with a verdict, oldest first; `name` is the original or the final name;
        `after_id` keeps those with a higher id (see `last_file_id`). Files still being
        finished (moved, recap) only with `include_pending`."""
        return self.store.files(
            login=login,
            status=status,
            name=name,
            campaign=campaign,
            after_id=after_id,
            include_pending=include_pending,
            limit=limit,
            offset=offset,
        )

    def last_file_id(self) -> int:
        """The highest file id on the platform, whatever its login (0 when none), files being
        finished included: a file dropped after this reading gets a higher id, so
        `wait_for_file(name, after_id=last_file_id())` never answers with an earlier drop of
        that name (contract 6, `last_id` and `after_id`). Ids are never reused, not even after
        a reset."""
        return self.store.last_file_id()

    @staticmethod
    def phone_filter(phone: str) -> str:
        """A phone filter in any spelling the platform accepts (0612345678, +33612345678,
        33 6 12 34 56 78) as the SMS store it; `BadFilter` for any other. The one rule for
        `messages(phone=)`, the HTTP API and `MockServer.messages`."""
        wanted = normalise_number(phone)
        if wanted is None:
            raise BadFilter(f"phone {phone!r} is not a number the platform accepts")
        return wanted

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
    ) -> list[SmsRecord]:
        """Recorded SMS in file then line order. `phone` in any spelling the platform accepts
        (0612345678, +33612345678, 33 6 12 34 56 78): normalised here, once, for every
        caller. `status` is `scheduled` or `sent` at `now` (default: this backend's clock;
        contract 5.10); a caller that also labels the SMS passes the same `now` to
        `views.sms_view`. `BadFilter` (a `ValueError`) for a phone that is no number
        (`phone_filter`) or an unknown status."""
        wanted = None if phone is None else self.phone_filter(phone)
        if status not in (None, "scheduled", "sent"):
            raise BadFilter(f"unknown SMS status {status!r} (scheduled or sent)")
        moment = (now or self.now()).timestamp()
        return self.store.messages(
            login=login,
            campaign=campaign,
            phone=wanted,
            file=file,
            file_id=file_id,
            sent_by=moment if status == "sent" else None,
            scheduled_after=moment if status == "scheduled" else None,
            limit=limit,
            offset=offset,
        )

    def mail(self, login: str | None = None, to: str | None = None) -> list[dict[str, Any]]:
        """The recap e-mails in the Maildir, oldest first, optionally filtered."""
        mail = self.mailbox.messages()
        if login is not None:
            mail = [m for m in mail if m.get("login") == login]
        if to is not None:
            mail = [m for m in mail if to in str(m.get("to", ""))]
        return mail

    def wait_for_file(
        self,
        name: str,
        timeout: float,
        *,
        login: str | None = None,
        after_id: int | None = None,
    ) -> FileRecord | None:
        """Block until a done file named `name` (original or final name) exists; return the
        newest such file, None when `timeout` runs out. Woken by `file.finished` and `reset`
        events, never by polling. `after_id` (a `last_file_id()` reading) ignores the files
        recorded up to it: an earlier drop of a reused name never answers."""
        changed = threading.Condition()
        version = [0]

        def wake(event: Event) -> None:
            if isinstance(event, FileFinished | PlatformReset):
                with changed:
                    version[0] += 1
                    changed.notify_all()

        deadline = time.monotonic() + timeout
        stop = self.bus.subscribe(wake)
        try:
            while True:
                with changed:
                    seen = version[0]
                found = self.store.files(login=login, name=name, after_id=after_id)
                if found:
                    return found[-1]
                with changed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    if version[0] == seen:
                        changed.wait(remaining)
        finally:
            stop()

    # -- reset -------------------------------------------------------------------------------

    def reset(self) -> None:
        """A clean platform without restarting: no files, SMS, mail, lockouts or files waiting
        in PROCESSING (manual mode); configured accounts, credits and passwords restored;
        accounts added at run time removed; the clock back to `processing.clock`.
        Not from an event callback nor a processing step (`RuntimeError`): both would wait
        for the platform to stop working on the very thing that called."""
        if self.bus.delivering():
            # The processor's workers may be waiting to publish on this very delivery: a
            # pause here would wait for them forever.
            raise RuntimeError("cannot reset the platform from an event callback")
        configured = self.config.accounts
        layout = self.config.server.layout
        with self._quiesce(), self._accounts_lock:
            for row in self.store.accounts():
                for folder in FOLDERS:
                    _empty_dir(self.folder(row.login, folder))
            removed = self.store.reset(configured)
            for login in removed:
                shutil.rmtree(self.spool.root(login), ignore_errors=True)
            self._credentials.replace_all(configured)
            for acc in configured:
                make_tree(self.data_dir, layout, acc.login)
            self.mailbox.clear()
            self.guard.lockout.clear()
            self.faults.reset()
            # Their files are gone: each one's steps end at once, freeing its name.
            self.waiting.release_all()
        for login in removed:
            self.publish(AccountChanged(login=login, change="removed"))
        self.publish(PlatformReset())
        # After `reset`, so that nothing of the emptied platform is released by it.
        self.clock.reset()

    # -- manual mode (contract 9.4) ----------------------------------------------------------

    def waiting_files(self) -> list[WaitingFile]:
        """The files manual mode holds in PROCESSING, in claim order."""
        return self.waiting.files()

    def advance(self, name: str | None = None, login: str | None = None) -> list[WaitingFile]:
        """Let the waiting files named `name` (all when None) go on; `manual.NotWaiting`
        when a name is given and no such file waits."""
        return self.waiting.advance(name, login)


def _need(part: _T | None) -> _T:
    if part is None:
        raise RuntimeError("MockServer is not running: call start() or use `with`")
    return part


def _empty_dir(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
