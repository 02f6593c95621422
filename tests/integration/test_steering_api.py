"""Contract 9.3 and 9.4 through a whole `MockServer`: the clock calls (`GET`/`PUT /api/clock`,
`srv.clock`), `processing.clock` at start, and manual mode (`processing.mode = "manual"`)
with real FTP uploads: what the client sees in PROCESSING while a file is held, advancing by
name and all, an unknown name, a reset and a restart with files waiting."""

from __future__ import annotations

import ftplib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver import MockServer
from mockserver.manual import NotWaiting
from tests.support.http import call
from tests.support.waiting import wait_until

A = "Promo_20300716120000_HQ.csv"
B = "Rappel_20300716120000_HQ.csv"
CSV = b'"0612345678";"Bonjour"\n'
FROZEN = "2030-07-16T11:00:00+02:00"


@pytest.fixture
def manual(tmp_path: Path) -> Iterator[MockServer]:
    with MockServer(data_dir=tmp_path / "d", mode="manual", clock=FROZEN) as srv:
        yield srv


def ftp_login(srv: MockServer) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", srv.ftp_port, timeout=30)
    ftp.login("demo", "demo")
    return ftp


def upload(ftp: ftplib.FTP, name: str) -> None:
    ftp.storbinary(f"STOR /SEND_SMS/{name}.tmp", io.BytesIO(CSV))
    ftp.rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}")


def waiting_names(srv: MockServer) -> list[str]:
    return sorted(w["name"] for w in srv.waiting())


def put_clock(srv: MockServer, body: Any) -> Any:
    return call(srv, "PUT", "/api/clock", body, {"Content-Type": "application/json"})


# -- the clock ----------------------------------------------------------------------------------


def test_clock_calls(tmp_path: Path) -> None:
    """Contract 9.3: `GET /api/clock` -> `{"now", "frozen"}`; `PUT` with `now` (no offset:
    Europe/Paris), `advance_seconds`, `real`; each change is a `clock.changed` event."""
    with MockServer(data_dir=tmp_path / "d") as srv:
        got = call(srv, "GET", "/api/clock")
        assert got.status == 200
        assert got.json["frozen"] is False
        assert got.body.endswith(b"\n")
        with srv.backend.bus.subscription() as sub:
            put = put_clock(srv, {"now": "2030-07-16T12:00:00"})
            assert put.status == 200
            assert put.json == {"now": "2030-07-16T10:00:00+00:00", "frozen": True}
            put = put_clock(srv, {"advance_seconds": 90})
            assert put.json == {"now": "2030-07-16T10:01:30+00:00", "frozen": True}
            assert call(srv, "GET", "/api/clock").json == put.json
            put = put_clock(srv, {"real": True})
            assert put.status == 200
            assert put.json["frozen"] is False
            events = [sub.get(5) for _ in range(3)]
        assert [e.type for e in events if e] == ["clock.changed"] * 3
        assert [e.frozen for e in events if e] == [True, True, False]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"now": "next tuesday"}, "now"),
        ({"now": 5}, "now"),
        ({"advance_seconds": -5}, "advance_seconds"),
        ({"advance_seconds": 0}, "advance_seconds"),
        ({"advance_seconds": "60"}, "advance_seconds"),
        ({"real": False}, "real"),
        ({"speed": 2}, "speed"),
        ({}, "exactly one"),
        ("[1]", "JSON object"),
        ("not json", "JSON object"),
    ],
)
def test_bad_clock_bodies_are_400_naming_the_field(
    manual: MockServer, body: Any, field: str
) -> None:
    """Contract 6: a bad body is a 400 `{"error"}`; the clock is left as it was."""
    before = manual.clock.now()
    reply = put_clock(manual, body)
    assert reply.status == 400, reply.body
    assert field in reply.json["error"]
    assert manual.clock.now() == before


def test_processing_clock_starts_frozen(manual: MockServer) -> None:
    """Contract 3 `processing.clock`: an ISO date-time starts a frozen virtual clock; the
    Python calls move it (contract 7)."""
    assert call(manual, "GET", "/api/clock").json == {
        "now": "2030-07-16T09:00:00+00:00",
        "frozen": True,
    }
    manual.clock.advance(3600)
    assert manual.clock.now().isoformat() == "2030-07-16T10:00:00+00:00"
    manual.clock.real()
    assert not manual.clock.frozen


# -- manual mode --------------------------------------------------------------------------------


def test_held_file_is_seen_in_processing_until_advanced_by_name(manual: MockServer) -> None:
    """Contract 9.4: a claimed file stays in PROCESSING (a client's LIST shows it there, no
    verdict exists) until `POST /api/processing/advance {"name"}`; the answer lists it; the
    other file waits on until `{}` advances every waiting file."""
    ftp = ftp_login(manual)
    try:
        upload(ftp, A)
        upload(ftp, B)
        wait_until(lambda: waiting_names(manual) == [A, B], what="both files held")
        assert sorted(ftp.nlst("/PROCESSING")) == [A, B]
        assert ftp.nlst("/SEND_SMS") == []
        assert ftp.nlst("/ARCHIVES") == []
        assert manual.files() == []
        listed = call(manual, "GET", "/api/processing").json
        assert listed["mode"] == "manual"
        assert listed["waiting"][0] == {
            "login": "demo",
            "name": A,
            "claimed_at": "2030-07-16T09:00:00+00:00",
        }

        reply = call(manual, "POST", "/api/processing/advance", {"name": A})
        assert reply.status == 200
        assert [w["name"] for w in reply.json["advanced"]] == [A]
        assert manual.wait_for_file(A)["status"] == "archived"
        assert ftp.nlst("/PROCESSING") == [B]
        assert waiting_names(manual) == [B]
        assert ftp.nlst("/ARCHIVES") == [f"TreatedByMSI_{A}"]

        reply = call(manual, "POST", "/api/processing/advance", {})
        assert [w["name"] for w in reply.json["advanced"]] == [B]
        manual.wait_for_file(B)
        assert ftp.nlst("/PROCESSING") == []
        assert manual.waiting() == []
    finally:
        ftp.quit()


def test_advance_an_unknown_name(manual: MockServer) -> None:
    """docs/spec.md 9.4: a name no file waits under is a 404 (a typo must not pass for
    "done"), `NotWaiting` in Python; `{}` with nothing waiting is an empty list."""
    reply = call(manual, "POST", "/api/processing/advance", {"name": "Nope_20300716120000_HQ.csv"})
    assert reply.status == 404
    assert "Nope_" in reply.json["error"]
    with pytest.raises(NotWaiting):
        manual.advance("Nope_20300716120000_HQ.csv")
    assert call(manual, "POST", "/api/processing/advance", {}).json == {"advanced": []}
    assert manual.advance() == []
    bad = call(manual, "POST", "/api/processing/advance", {"name": 5})
    assert bad.status == 400
    assert "name" in bad.json["error"]


def test_a_null_name_or_login_advances_nothing(manual: MockServer) -> None:
    """docs/spec.md 9.4 (issue 17, found by Schemathesis): `{"name": null}` was read as `{}`
    and let every waiting file go on; a key given must hold a value: 400, nothing advanced."""
    ftp = ftp_login(manual)
    try:
        upload(ftp, A)
        wait_until(lambda: waiting_names(manual) == [A], what="the file held")
        for body in ({"name": None}, {"login": None}, {"name": A, "login": None}):
            reply = call(manual, "POST", "/api/processing/advance", body)
            assert reply.status == 400, (body, reply.body)
            assert "must be" in reply.json["error"]
        assert waiting_names(manual) == [A]
        assert manual.files() == []
    finally:
        ftp.quit()


def test_reset_clears_waiting_files(manual: MockServer) -> None:
    """docs/spec.md 9.4: a reset empties PROCESSING and the waiting list; the name is free
    again: the same file uploaded after it is held, then processed when advanced."""
    ftp = ftp_login(manual)
    try:
        upload(ftp, A)
        wait_until(lambda: waiting_names(manual) == [A], what="A held")
        manual.reset()
        assert manual.waiting() == []
        assert ftp.nlst("/PROCESSING") == []
        upload(ftp, A)
        wait_until(lambda: waiting_names(manual) == [A], what="A held again")
        manual.advance(A)
        assert manual.wait_for_file(A)["status"] == "archived"
        assert len(manual.files()) == 1
    finally:
        ftp.quit()


def test_waiting_files_survive_a_restart(tmp_path: Path) -> None:
    """docs/spec.md 9.4: a stop leaves a held file in PROCESSING; at the next start it is
    recovered and, in manual mode, waits again; advanced, it is processed once."""
    data = tmp_path / "d"
    with MockServer(data_dir=data, mode="manual") as srv:
        ftp = ftp_login(srv)
        upload(ftp, A)
        wait_until(lambda: waiting_names(srv) == [A], what="A held")
        ftp.quit()
    with MockServer(data_dir=data, mode="manual") as srv:
        # Issue 16: recovery runs once everything listens, on a worker.
        (held,) = wait_until(srv.waiting, what="A held again")
        assert held["name"] == A
        assert [p.name for p in srv.folder("demo", "PROCESSING").iterdir()] == [A]
        assert srv.files() == []
        assert srv.advance() == [held]
        assert srv.wait_for_file(A)["status"] == "archived"
        assert len(srv.files()) == 1
