"""The processing platform without its servers: a `Processor` over a `Backend` on one data dir,
wired as the app wires them, with the `platform` and `platform_factory` fixtures (registered
for the integration tests by `tests/integration/conftest.py`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mockserver import views
from mockserver.backend import Backend
from mockserver.config import (
    AccountConfig,
    Config,
    MailConfig,
    ProcessingConfig,
    ServerConfig,
)
from mockserver.mailbox import Mailbox
from mockserver.processing import Processor
from mockserver.spool import Spool
from mockserver.store import Store
from mockserver.tree import Folder
from mockserver.writes import OpenWrites
from tests.support.billing import SMS_CREDITS

NAME = "Promo_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour"\n"33711223344";"Salut"\n"+44 7911 123456";"Hello"\n'
# Contract 3 `[pricing]`: 15 credits an SMS, whatever the destination, by default.
ROWS_COST = 3 * SMS_CREDITS


def make_config(
    data_dir: Path,
    *,
    credits: int = 100,
    subscription: bool = False,
    accounts: tuple[AccountConfig, ...] | None = None,
    **processing: Any,
) -> Config:
    proc = {"rescan_seconds": 5.0, "poll_interval": 0.1, **processing}
    return Config(
        server=ServerConfig(data_dir=data_dir),
        processing=ProcessingConfig(**proc),
        mail=MailConfig(),
        accounts=accounts
        or (
            AccountConfig(
                login="alice",
                password="pw",
                credits=credits,
                subscription=subscription,
                email="alice@example.com",
            ),
        ),
    )


@dataclass
class Platform:
    """The processor over a Backend on one data dir, as the app wires them; its `files`,
    `messages` and `account` answer in the contract's JSON shapes (`mockserver.views`)."""

    config: Config
    backend: Backend
    processor: Processor

    @classmethod
    def start(cls, config: Config, **kw: Any) -> Platform:
        # One bus for the Backend and the processor, as the app wires them: a test's own bus
        # (to watch the events) is the Backend's too, or waits would never be woken.
        # A test's own `clock` (a callable giving an aware datetime) is the Backend's, so the
        # processor and the store see its time (the 10 minutes of contract 5.12, say).
        clock = kw.pop("clock", None)
        backend = Backend(config, bus=kw.pop("bus", None), **({"clock": clock} if clock else {}))
        backend.open()
        kw.setdefault("settle_seconds", 0.2)
        proc = Processor.over(backend, **kw)
        try:
            proc.start()
        except BaseException:
            backend.close()
            raise
        # Issue 16: recovery runs on a worker; the tests read what it left, as before.
        assert proc.wait_recovered(30), "start-up recovery did not finish"
        return cls(config, backend, proc)

    @property
    def store(self) -> Store:
        return self.backend.store

    @property
    def spool(self) -> Spool:
        return self.backend.spool

    @property
    def mailbox(self) -> Mailbox:
        return self.backend.mailbox

    @property
    def writes(self) -> OpenWrites:
        return self.backend.open_writes

    def stop(self) -> None:
        assert self.processor.stop(10)
        self.backend.close()

    def folder(self, folder: Folder, login: str = "alice") -> Path:
        return self.spool.folder(login, folder)

    def drop(self, name: str = NAME, data: bytes = ROWS, login: str = "alice") -> Path:
        """Upload as `.tmp`, then rename to the final name (manual 4.2)."""
        send = self.folder(Folder.SEND_SMS, login)
        tmp = send / f"{name}.{time.monotonic_ns()}.tmp"
        tmp.write_bytes(data)
        os.rename(tmp, send / name)
        return send / name

    def names(self, folder: Folder, login: str = "alice") -> list[str]:
        return sorted(os.listdir(self.folder(folder, login)))

    def files(self, **kw: Any) -> list[dict[str, Any]]:
        return [views.file_view(f) for f in self.store.files(**kw)]

    def messages(self, **kw: Any) -> list[dict[str, Any]]:
        now = self.backend.now()
        return [views.sms_view(m, now) for m in self.backend.messages(**kw)]

    def account(self, login: str) -> dict[str, Any]:
        found = self.backend.account(login)
        assert found is not None, f"no account {login}"
        return views.account_view(found)

    def wait_file(self, name: str, timeout: float = 10.0, **kw: Any) -> dict[str, Any]:
        found = self.backend.wait_for_file(name, timeout, **kw)
        assert found is not None, f"no verdict for {name}"
        return views.file_view(found)


@pytest.fixture
def platform_factory(tmp_path: Path) -> Iterator[Callable[..., Platform]]:
    started: list[Platform] = []

    def make(config: Config | None = None, **kw: Any) -> Platform:
        p = Platform.start(config or make_config(tmp_path / "data"), **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.processor.stop(10)
        p.store.close()


@pytest.fixture
def platform(platform_factory: Callable[..., Platform]) -> Platform:
    return platform_factory()
