"""What `MockServer` offers over its platform's state: the Backend's operations in the
contract's JSON shapes (contract 7), the event stream (9.1), the fault rules (9.2), the clock
(9.3) and manual mode (9.4). The lifecycle (ports, threads, data dir) is `MockServer`'s own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mockserver import views
from mockserver.backend import Backend
from mockserver.clock import PlatformClock
from mockserver.event_feed import EventTest, read_events, wait_for_event
from mockserver.faults import FaultControl
from mockserver.tree import Folder


class PlatformFacade:
    """Mixed into `MockServer`, which sets `backend`."""

    backend: Backend

    @property
    def faults(self) -> FaultControl:
        """Contract 9.2: `srv.faults.add(**rule)`, `.remove(id)`, `.clear()`, `.list()`."""
        return FaultControl(self.backend.faults)

    # -- state, through the Backend, as the contract's JSON shapes -------------------------

    def folder(self, login: str, folder: Folder | str) -> Path:
        """The real directory behind `/SEND_SMS` (etc.) of `login`."""
        return self.backend.folder(login, folder)

    def add_account(
        self,
        login: str,
        password: str,
        credits: int = 100,
        *,
        subscription: bool = False,
        email: str | None = None,
    ) -> dict[str, Any]:
        """Create an account (and its folders) at run time; it can log in at once."""
        return views.account_view(
            self.backend.add_account(
                login, password, credits, subscription=subscription, email=email
            )
        )

    def set_credits(self, login: str, credits: int) -> dict[str, Any]:
        return views.account_view(self.backend.update_account(login, credits=credits))

    def account(self, login: str) -> dict[str, Any] | None:
        found = self.backend.account(login)
        return None if found is None else views.account_view(found)

    def files(self, **filters: Any) -> list[dict[str, Any]]:
        return [views.file_view(f) for f in self.backend.files(**filters)]

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        """SMS as `GET /api/messages` lists them; `phone=` in any accepted spelling, by the
        same rule and with the same error (`backend.BadFilter`, a ValueError) as the API."""
        now = filters.pop("now", None) or self.backend.now()
        return [views.sms_view(m, now) for m in self.backend.messages(**filters, now=now)]

    def mail(self) -> list[dict[str, Any]]:
        return self.backend.mail()

    @property
    def last_file_id(self) -> int:
        """The highest file id on the platform (0 when none), as `GET /api/files` gives it in
        `last_id`: read it before dropping a file whose name was used before, then
        `wait_for_file(name, after_id=...)` answers with the new verdict, never the old one."""
        return self.backend.last_file_id()

    def wait_for_file(
        self,
        name: str,
        timeout: float = 10.0,
        after_id: int | None = None,
        *,
        login: str | None = None,
    ) -> dict[str, Any]:
        """Block until a file named `name` (original or final name) has a verdict; return
        its record (the newest, if the name was used more than once). With `after_id` (a
        `last_file_id` reading) only a file recorded after it answers. TimeoutError when
        none arrives within `timeout` seconds."""
        found = self.backend.wait_for_file(name, timeout, login=login, after_id=after_id)
        if found is None:
            after = "" if after_id is None else f" after file id {after_id}"
            raise TimeoutError(f"no verdict for {name!r}{after} within {timeout:g} s")
        return views.file_view(found)

    @property
    def last_event_id(self) -> int:
        """The latest event's id (0: none): a mark for `events` and `wait_for` (`after=`)."""
        return self.backend.bus.last_id

    def events(
        self, after: int | None = None, timeout: float | None = 5.0, *, login: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Contract 9.1's events as dicts, as `GET /api/events` shows them (`read_events`)."""
        return map(views.event_view, read_events(self.backend.bus, after, timeout, login))

    def wait_for(
        self, predicate: EventTest, timeout: float = 10.0, after: int | None = None
    ) -> dict[str, Any]:
        """The first event (a dict) satisfying `predicate` (`wait_for_event`; TimeoutError)."""
        view = views.event_view
        return view(wait_for_event(self.backend.bus, lambda e: predicate(view(e)), timeout, after))

    def reset(self) -> None:
        """A clean platform without restarting: no files, SMS, mail or waiting files;
        configured accounts and credits restored; accounts added at run time removed; the
        clock back to `processing.clock`."""
        self.backend.reset()

    @property
    def clock(self) -> PlatformClock:
        """Contract 9.3: `clock.now()`, `clock.set(datetime)`, `clock.advance(seconds)`,
        `clock.real()`; each change publishes `clock.changed`."""
        return self.backend.clock

    def advance(self, name: str | None = None, *, login: str | None = None) -> list[dict[str, Any]]:
        """Contract 9.4, manual mode: let the waiting file `name` (every one when None) go on;
        returns those advanced. `manual.NotWaiting` (a LookupError) for a name not waiting."""
        return [w.to_dict() for w in self.backend.advance(name, login)]

    def waiting(self) -> list[dict[str, Any]]:
        """Contract 9.4: the files manual mode holds in PROCESSING (login, name, claimed_at)."""
        return [w.to_dict() for w in self.backend.waiting_files()]

    def retrying(self) -> list[dict[str, Any]]:
        """Issue 16: the files (and recaps) whose processing failed for a reason outside the
        file and waits out a back-off: login, name, step, attempts, cause, next_at."""
        return [r.to_dict() for r in self.backend.retrying.files()]
