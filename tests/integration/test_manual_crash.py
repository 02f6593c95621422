"""Manual mode (contract 9.4) meets the `crash` fault (9.2): a file crashed before it is
recorded (at claim, or at judge once advanced) is recovered as at a restart, so it waits in
PROCESSING again; advanced, it ends in exactly one folder, charged, recorded and mailed once.
A file crashed after it is recorded (move, mail) is not held again: it finishes on its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver.app import MockServer
from tests.support.billing import DEMO_CREDITS, SMS_CREDITS
from tests.support.serve import csv_rows, ftp_drop
from tests.support.waiting import wait_until

NAME = "Crash_20300716120000_HQ.csv"
FINAL = f"TreatedByMSI_{NAME}"
SMS = 2


@pytest.fixture
def manual(tmp_path: Path) -> Iterator[MockServer]:
    with MockServer(data_dir=tmp_path / "d", mode="manual", clock="2030-07-16T10:00:00") as srv:
        yield srv


def entries(srv: MockServer, folder: str) -> list[str]:
    return sorted(os.listdir(srv.folder("demo", folder)))


def fired(srv: MockServer) -> list[Any]:
    return [rule["fired"] for rule in srv.faults.list()]


def held(srv: MockServer) -> list[str]:
    return [w["name"] for w in srv.waiting()]


def held_again(srv: MockServer) -> None:
    """Crashed before it was recorded: waiting in PROCESSING, nothing recorded or charged."""
    wait_until(lambda: held(srv) == [NAME] and fired(srv) == [1], 10, what="held again")
    assert srv.processor.wait_idle(10)
    assert entries(srv, "PROCESSING") == [NAME]
    assert entries(srv, "SEND_SMS") == entries(srv, "ARCHIVES") == []
    assert srv.files() == []
    assert srv.mail() == []
    account = srv.account("demo")
    assert account is not None
    assert account["credits"] == DEMO_CREDITS


@pytest.mark.parametrize("step", ["claim", "judge", "move", "mail"])
def test_crash_in_manual_mode_then_advance_ends_once(manual: MockServer, step: str) -> None:
    srv = manual
    mark = srv.last_event_id
    srv.faults.add(on=step, action="crash")
    ftp_drop(srv.ftp_port, NAME, csv_rows(SMS))
    wait_until(lambda: held(srv) == [NAME], 10, what="the file held")
    if step == "claim":
        held_again(srv)
    assert [w["name"] for w in srv.advance(NAME)] == [NAME]
    if step == "judge":
        held_again(srv)
        assert [w["name"] for w in srv.advance(NAME)] == [NAME]
    wait_until(lambda: [f["done"] for f in srv.files()] == [True], 10, what="the file done")
    assert srv.processor.wait_idle(10)
    # Exactly one folder, one record, charged once, its SMS once, mailed once.
    assert entries(srv, "ARCHIVES") == [FINAL]
    assert entries(srv, "SEND_SMS") == entries(srv, "PROCESSING") == entries(srv, "INVALIDS") == []
    assert held(srv) == []
    [record] = srv.files()
    assert (record["status"], record["final_name"], record["cost"]) == (
        "archived",
        FINAL,
        SMS * SMS_CREDITS,
    )
    account = srv.account("demo")
    assert account is not None
    assert account["credits"] == DEMO_CREDITS - SMS * SMS_CREDITS
    assert srv.store.total_charged("demo") == SMS * SMS_CREDITS
    assert len(srv.messages()) == SMS
    assert [m["file"] for m in srv.mail()] == [NAME]
    assert fired(srv) == [1]
    finished = [e for e in srv.events(after=mark, timeout=0) if e["type"] == "file.finished"]
    assert [e["name"] for e in finished] == [NAME]
