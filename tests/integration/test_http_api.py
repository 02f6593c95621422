"""The HTTP control API (contract 6) against a real `MockServer`: every endpoint with good and
bad input, the long-poll wait, reset and check; errors are JSON 4xx, never a 500."""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mockserver.app import MockServer
from mockserver.config import load_config
from tests.support.harness import running_mock_server
from tests.support.http import call
from tests.support.waiting import wait_until

MAX_BYTES = 200_000
GOOD = "Promo_20300716120000_HQ.csv"  # send date in the future: SMS "scheduled"
PAST = "Old_20200102030405_HQ.csv"  # send date passed: SMS "sent"
GOOD_ROWS = (
    b'"0612345678";"Bonjour STOP au 36180";"MaBoutique"\n'
    b'"+33 7 11 22 33 44";"Salut"\n'
    b'"447911123456";"Hello"\n'
)

ACCOUNTS = [
    {"login": "demo", "password": "demo", "credits": 100, "email": "demo@example.com"},
    {"login": "poor", "password": "pw-poor", "credits": 0, "email": "poor@example.com"},
    {"login": "sub", "password": "pw-sub", "credits": 0, "subscription": True},
]


def drop(srv: MockServer, name: str, data: bytes, login: str = "demo") -> None:
    """Put a file in SEND_SMS on disk the way a careful client does (`.tmp`, then rename) and
    tell the processor, as the FTP/SFTP upload hook does after a rename."""
    folder = srv.folder(login, "SEND_SMS")
    tmp = folder / f"{name}.tmp"
    tmp.write_bytes(data)
    os.rename(tmp, folder / name)
    srv.processor.submit(login, folder / name)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    data_dir = tmp_path_factory.mktemp("http-api")
    with running_mock_server(data_dir, ACCOUNTS, {"limits.max_file_bytes": MAX_BYTES}) as srv:
        yield srv


@pytest.fixture
def srv(server: MockServer) -> MockServer:
    server.reset()
    return server


def processed(srv: MockServer, name: str, data: bytes, login: str = "demo") -> dict[str, Any]:
    drop(srv, name, data, login)
    return srv.wait_for_file(name, 15, login=login)


# -- health ---------------------------------------------------------------------------------------


def test_health_reports_every_port(srv: MockServer) -> None:
    """Contract 6: `GET /health` -> `{"status":"ok","ftp_port":…,"sftp_port":…,"http_port":…}`."""
    reply = call(srv, "GET", "/health")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json == {
        "status": "ok",
        "ftp_port": srv.ftp_port,
        "sftp_port": srv.sftp_port,
        "http_port": srv.http_port,
    }


# -- accounts -------------------------------------------------------------------------------------


def test_accounts_list_and_get_never_show_passwords(srv: MockServer) -> None:
    """Contract 6: accounts give login, credits, subscription, email (never a password)."""
    reply = call(srv, "GET", "/api/accounts")
    assert reply.status == 200
    accounts = {a["login"]: a for a in reply.json["accounts"]}
    assert set(accounts) == {"demo", "poor", "sub"}
    assert accounts["demo"]["credits"] == 100
    assert accounts["sub"]["subscription"] is True
    one = call(srv, "GET", "/api/accounts/poor").json
    assert one == accounts["poor"]
    assert one["email"] == "poor@example.com"
    for account in [*accounts.values(), one]:
        assert not {k for k in account if "pass" in k or "hash" in k}
    assert b"pw-poor" not in reply.body


@pytest.mark.parametrize("login", ["nobody", "..", "a%2Fb", "x" * 200])
def test_get_unknown_account_is_404(srv: MockServer, login: str) -> None:
    """Contract 6: "unknown login → 404"."""
    reply = call(srv, "GET", f"/api/accounts/{login}")
    assert reply.status == 404
    assert "error" in reply.json


def test_create_account_makes_its_tree_and_it_can_log_in(srv: MockServer) -> None:
    """Contract 6: `POST /api/accounts` create `{login,password,credits,subscription,email}`;
    "its tree is made"."""
    import ftplib

    body = {
        "login": "newbie",
        "password": "s3cret",
        "credits": 7,
        "subscription": False,
        "email": "newbie@example.org",
    }
    reply = call(srv, "POST", "/api/accounts", body)
    assert reply.status == 201, reply.body
    assert reply.json == {
        "login": "newbie",
        "credits": 7,
        "subscription": False,
        "email": "newbie@example.org",
        "configured": False,
    }
    for folder in ("SEND_SMS", "PROCESSING", "ARCHIVES", "INVALIDS"):
        assert srv.folder("newbie", folder).is_dir()
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login("newbie", "s3cret")
        assert sorted(n.rsplit("/", 1)[-1] for n in ftp.nlst("/")) == [
            "ARCHIVES",
            "INVALIDS",
            "PROCESSING",
            "SEND_SMS",
        ]
    assert call(srv, "GET", "/api/accounts/newbie").json["credits"] == 7


def test_create_account_defaults(srv: MockServer) -> None:
    """Only login and password are required: 100 credits, no subscription, login@example.com."""
    reply = call(srv, "POST", "/api/accounts", {"login": "lean", "password": "pw"})
    assert reply.status == 201
    assert reply.json["credits"] == 100
    assert reply.json["subscription"] is False
    assert reply.json["email"] == "lean@example.com"


def test_create_existing_account_is_409(srv: MockServer) -> None:
    """An existing login (configured or created) cannot be created again."""
    assert call(srv, "POST", "/api/accounts", {"login": "demo", "password": "x"}).status == 409
    assert call(srv, "POST", "/api/accounts", {"login": "twice", "password": "x"}).status == 201
    reply = call(srv, "POST", "/api/accounts", {"login": "twice", "password": "x"})
    assert reply.status == 409
    assert "already exists" in reply.json["error"]


BAD_ACCOUNT_BODIES: list[Any] = [
    b"",
    b"not json",
    b"\xff\xfe",
    b"[1, 2]",
    b'"a string"',
    b"null",
    b"[" * 50_000,  # nesting deep enough to exhaust a recursive parser
    b'{"login": "ok1", "password": "x", "credits": 1' + b"0" * 5000 + b"}",
    {"password": "x"},
    {"login": "nopass"},
    {"login": "", "password": "x"},
    {"login": "../etc", "password": "x"},
    {"login": "a b", "password": "x"},
    {"login": 12, "password": "x"},
    {"login": "ok1", "password": ""},
    {"login": "ok1", "password": 5},
    {"login": "ok1", "password": "x", "credits": -1},
    {"login": "ok1", "password": "x", "credits": "10"},
    {"login": "ok1", "password": "x", "credits": 1.5},
    {"login": "ok1", "password": "x", "credits": True},
    {"login": "ok1", "password": "x", "credits": 2**64},
    {"login": "ok1", "password": "x", "subscription": "yes"},
    {"login": "ok1", "password": "x", "subscription": 1},
    {"login": "ok1", "password": "x", "email": "not an address"},
    {"login": "ok1", "password": "x", "email": "a@b.c\r\nBcc: x@y.z"},
    {"login": "ok1", "password": "x", "email": None},
    {"login": "ok1", "password": "x", "colour": "blue"},
]


@pytest.mark.parametrize("body", BAD_ACCOUNT_BODIES)
def test_create_account_bad_body_is_400(srv: MockServer, body: Any) -> None:
    """Contract 6: "bad body → 400" with `{"error": ...}`; nothing is created."""
    reply = call(srv, "POST", "/api/accounts", body)
    assert reply.status == 400, reply.body
    assert reply.json["error"]
    assert call(srv, "GET", "/api/accounts/ok1").status == 404


def test_credits_may_be_a_whole_number_written_with_a_point(srv: MockServer) -> None:
    """docs/spec.md 6 (issue 17, found by Schemathesis): the OpenAPI document's `credits` is a
    JSON Schema integer, and `282.0` is one: 282 credits (`1.5` and `true` stay 400s)."""
    body = {"login": "dotted", "password": "x", "credits": 282.0}
    created = call(srv, "POST", "/api/accounts", body)
    assert created.status == 201, created.body
    assert b'"credits":282,' in created.body
    patched = call(srv, "PATCH", "/api/accounts/dotted", {"credits": 5.0})
    assert patched.status == 200, patched.body
    assert b'"credits":5,' in patched.body


def test_json_body_over_its_cap_is_413(srv: MockServer) -> None:
    """A JSON body is a few hundred bytes; a huge one is refused, not read into memory."""
    body = json.dumps({"login": "big", "password": "x" * 100_000}).encode()
    assert call(srv, "POST", "/api/accounts", body).status == 413
    chunks = iter([b'{"login": "big", "password": "', b"x" * 70_000, b'"}'])
    assert call(srv, "POST", "/api/accounts", chunks, chunked=True).status == 413


def test_patch_account_fields(srv: MockServer) -> None:
    """Contract 6: `PATCH /api/accounts/{login}` sets credits, subscription, password, email."""
    reply = call(
        srv,
        "PATCH",
        "/api/accounts/poor",
        {"credits": 3, "subscription": True, "email": "finance@example.com"},
    )
    assert reply.status == 200
    assert reply.json == {
        "login": "poor",
        "credits": 3,
        "subscription": True,
        "email": "finance@example.com",
        "configured": True,
    }
    assert srv.account("poor")["credits"] == 3  # type: ignore[index]


def test_patch_password_applies_to_the_next_login(srv: MockServer) -> None:
    """The servers ask the authenticator on every login: a new password works at once and the
    old one no longer does."""
    import ftplib

    assert call(srv, "PATCH", "/api/accounts/demo", {"password": "changed"}).status == 200
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        with pytest.raises(ftplib.error_perm):
            ftp.login("demo", "demo")
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login("demo", "changed")


def test_patch_unknown_login_is_404(srv: MockServer) -> None:
    """Contract 6: "unknown login → 404"."""
    reply = call(srv, "PATCH", "/api/accounts/nobody", {"credits": 1})
    assert reply.status == 404
    assert "nobody" in reply.json["error"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        b"nope",
        b"[]",
        {"credits": -5},
        {"credits": "5"},
        {"credits": None},
        {"credits": False},
        {"subscription": "true"},
        {"password": ""},
        {"password": None},
        {"email": "x"},
        {"email": "\ud800@example.com"},  # a lone surrogate: JSON can carry it, SQLite cannot
        {"password": "\udcff"},
        {"login": "renamed"},
        {"credits": 5, "unknown": 1},
    ],
)
def test_patch_bad_body_is_400_and_changes_nothing(srv: MockServer, body: Any) -> None:
    """Contract 6: "bad body → 400"; a partly valid body changes nothing."""
    reply = call(srv, "PATCH", "/api/accounts/demo", body)
    assert reply.status == 400, reply.body
    assert reply.json["error"]
    assert srv.account("demo")["credits"] == 100  # type: ignore[index]


# -- files ----------------------------------------------------------------------------------------


def test_files_lists_processed_files_with_filters(srv: MockServer) -> None:
    """Contract 6: `GET /api/files?login=&status=&name=`: original name, final name, status,
    reason, sms count, rejected rows, times."""
    processed(srv, GOOD, GOOD_ROWS + b'"0123456789";"fixe"\n')
    processed(srv, "bad name.csv", GOOD_ROWS)
    processed(srv, GOOD, GOOD_ROWS, login="poor")

    everything = call(srv, "GET", "/api/files").json["files"]
    assert len(everything) == 3
    archived = call(srv, "GET", "/api/files?login=demo&status=archived").json["files"]
    assert [f["original_name"] for f in archived] == [GOOD]
    one = archived[0]
    assert one["final_name"] == f"TreatedByMSI_{GOOD}"
    assert one["sms_count"] == 3
    # Issue 12: `cost` in credits, 15 an SMS (contract 3 `[pricing]`), charged to the account.
    assert one["cost"] == 45
    assert srv.account("demo")["credits"] == 100 - 45  # type: ignore[index]
    assert one["reason"] is None
    assert one["rejected"] == [
        {
            "line": 4,
            "error": "landline_or_malformed_french_number",
            "detail": one["rejected"][0]["detail"],
            "value": "0123456789",  # the offending value, as `POST /api/check` gives it
        }
    ]
    assert one["received_at"]
    assert one["processed_at"]

    invalid = call(srv, "GET", "/api/files?status=invalid").json["files"]
    assert {(f["login"], f["reason"]) for f in invalid} == {
        ("demo", "Incorrect_FileName"),
        ("poor", "Not_enough_credits"),
    }
    by_final = call(
        srv, "GET", "/api/files?name=" + quote("TreatedByMSI_Incorrect_FileName_bad name.csv")
    )
    assert [f["original_name"] for f in by_final.json["files"]] == ["bad name.csv"]
    paged = call(srv, "GET", "/api/files?limit=1&offset=1").json["files"]
    assert paged == [everything[1]]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("status=sent", 400),
        ("status=", 400),
        ("status=ARCHIVED", 400),
        ("login=nobody", 404),
        ("login=", 400),
        ("wait=5", 400),  # wait without name
        ("name=x.csv&wait=abc", 400),
        ("name=x.csv&wait=-1", 400),
        ("name=x.csv&wait=nan", 400),
        ("name=x.csv&wait=inf", 400),
        ("limit=0", 400),
        ("limit=-1", 400),
        ("limit=ten", 400),
        ("offset=-3", 400),
        ("nmae=x.csv", 400),  # a typo is an error, not "everything"
        ("name=a&name=b", 400),
        ("name=%00", 400),
    ],
)
def test_files_bad_query(srv: MockServer, query: str, status: int) -> None:
    """Contract 6: a bad query is a 4xx with `{"error": ...}`."""
    reply = call(srv, "GET", f"/api/files?{query}")
    assert reply.status == status, reply.body
    assert reply.json["error"]


def test_wait_answers_as_soon_as_the_file_has_a_verdict(srv: MockServer) -> None:
    """Contract 6: "with name= it answers as soon as that file has a verdict"."""
    answer: dict[str, Any] = {}

    def ask() -> None:
        answer["reply"] = call(srv, "GET", f"/api/files?name={GOOD}&wait=60")
        answer["at"] = time.monotonic()

    listeners = srv.backend.bus.subscribers
    thread = threading.Thread(target=ask)
    thread.start()
    try:
        # The long poll is registered with the store (its wake-up) before the file is dropped.
        wait_until(lambda: srv.backend.bus.subscribers > listeners, what="the long poll")
        # The loop is shared with SFTP: a pending long poll must not block other requests.
        assert call(srv, "GET", "/health").status == 200
        dropped = time.monotonic()
        drop(srv, GOOD, GOOD_ROWS)
    finally:
        thread.join(60)
    reply = answer["reply"]
    assert reply.status == 200
    assert [f["original_name"] for f in reply.json["files"]] == [GOOD]
    assert answer["at"] - dropped < 5
    assert srv.backend.bus.subscribers == listeners


def test_wait_answers_at_once_when_the_verdict_exists(srv: MockServer) -> None:
    """A file already processed is returned without waiting."""
    processed(srv, GOOD, GOOD_ROWS)
    started = time.monotonic()
    reply = call(srv, "GET", f"/api/files?name={GOOD}&wait=30")
    assert reply.status == 200
    assert time.monotonic() - started < 5


def test_wait_is_404_when_the_time_runs_out(srv: MockServer) -> None:
    """Contract 6: "(or 404 when the time runs out)"."""
    started = time.monotonic()
    reply = call(srv, "GET", "/api/files?name=Never_20300101120000_HQ.csv&wait=0.3")
    elapsed = time.monotonic() - started
    assert reply.status == 404
    assert "Never_20300101120000_HQ.csv" in reply.json["error"]
    assert 0.3 <= elapsed < 10


def test_wait_with_a_status_waits_for_that_status(srv: MockServer) -> None:
    """`status=` narrows the wait: an archived file does not answer a wait for `invalid`."""
    processed(srv, GOOD, GOOD_ROWS)
    reply = call(srv, "GET", f"/api/files?name={GOOD}&status=invalid&wait=0.2")
    assert reply.status == 404


# -- reused names: last_id and after_id ----------------------------------------------------------

EMPTY_ROWS = b'"12";"pas un numero"\n'  # no valid row: Empty_File


def wait_in_background(srv: MockServer, path: str) -> tuple[threading.Thread, dict[str, Any]]:
    """`GET path` (a long poll) on a thread; returns once the request waits on the bus."""
    answer: dict[str, Any] = {}
    listeners = srv.backend.bus.subscribers

    def ask() -> None:
        answer["reply"] = call(srv, "GET", path)

    thread = threading.Thread(target=ask)
    thread.start()
    wait_until(lambda: srv.backend.bus.subscribers > listeners, what="the long poll")
    return thread, answer


def test_a_reused_name_waits_for_the_new_verdict_with_after_id(srv: MockServer) -> None:
    """Contract 6: "read last_id, drop a file whose name was used before, wait with after_id
    and get the new verdict, never the old one": the earlier verdict of that name exists all
    along, and the wait answers only with the file recorded after `last_id`."""
    drop(srv, GOOD, GOOD_ROWS)
    first = call(srv, "GET", f"/api/files?name={GOOD}&wait=15").json
    (old,) = first["files"]
    assert old["status"] == "archived"
    last_id = call(srv, "GET", "/api/files").json["last_id"]
    assert last_id == old["id"] == first["last_id"]

    thread, answer = wait_in_background(srv, f"/api/files?name={GOOD}&after_id={last_id}&wait=30")
    try:
        assert thread.is_alive()  # the old verdict does not answer it
        drop(srv, GOOD, EMPTY_ROWS)
    finally:
        thread.join(60)
    reply = answer["reply"]
    assert reply.status == 200, reply.body
    (new,) = reply.json["files"]
    assert new["id"] > last_id
    assert (new["original_name"], new["status"], new["reason"]) == (GOOD, "invalid", "Empty_File")
    assert reply.json["last_id"] == new["id"]
    # Without after_id, the name lists both drops, oldest first.
    both = call(srv, "GET", f"/api/files?name={GOOD}&wait=1").json["files"]
    assert [f["id"] for f in both] == [old["id"], new["id"]]


def test_after_id_filters_without_wait(srv: MockServer) -> None:
    """`after_id=N` keeps only the files with `id > N`; `last_id` is the highest id."""
    one = processed(srv, GOOD, GOOD_ROWS)
    two = processed(srv, PAST, GOOD_ROWS)
    assert two["id"] > one["id"]

    def ids(query: str) -> tuple[list[int], int]:
        reply = call(srv, "GET", f"/api/files?{query}")
        assert reply.status == 200, reply.body
        return [f["id"] for f in reply.json["files"]], reply.json["last_id"]

    assert ids("after_id=0") == ([one["id"], two["id"]], two["id"])
    assert ids(f"after_id={one['id']}") == ([two["id"]], two["id"])
    assert ids(f"after_id={two['id']}") == ([], two["id"])
    assert ids(f"name={GOOD}&after_id={one['id']}") == ([], two["id"])
    # A wait with after_id runs out like any other, and still gives last_id.
    late = call(srv, "GET", f"/api/files?name={GOOD}&after_id={one['id']}&wait=0.2")
    assert late.status == 404
    assert late.json["last_id"] == two["id"]
    assert f"after file id {one['id']}" in late.json["error"]


def test_last_id_is_0_on_an_empty_platform(srv: MockServer) -> None:
    """Contract 6: every `GET /api/files` answer carries `"last_id"`, 0 when there is none."""
    assert call(srv, "GET", "/api/files").json == {"files": [], "last_id": 0}
    late = call(srv, "GET", f"/api/files?name={GOOD}&wait=0.1")
    assert (late.status, late.json["last_id"]) == (404, 0)
    assert srv.last_file_id == 0


def test_last_id_is_platform_wide_whatever_the_filters(srv: MockServer) -> None:
    """docs/spec.md 6: `last_id` is the highest file id on the platform, not of the answer's
    filters or page: whoever reads it, a file recorded later has a higher id."""
    mine = processed(srv, GOOD, GOOD_ROWS, login="sub")
    other = processed(srv, "bad name.csv", GOOD_ROWS)
    for query in ("login=sub", "status=archived", f"name={GOOD}", "limit=1", "after_id=0"):
        reply = call(srv, "GET", f"/api/files?{query}").json
        assert reply["last_id"] == other["id"] > mine["id"], query
    assert srv.last_file_id == other["id"]


def test_file_ids_are_never_reused_after_a_reset(srv: MockServer) -> None:
    """Contract 6: "every file has an increasing id": a reset empties the files (`last_id`
    0) but the next file's id is above every id given before, so an `after_id` read before
    the reset still finds the files after it."""
    before = processed(srv, GOOD, GOOD_ROWS)
    assert call(srv, "POST", "/api/reset").status == 200
    assert call(srv, "GET", "/api/files").json["last_id"] == 0
    drop(srv, GOOD, GOOD_ROWS)
    reply = call(srv, "GET", f"/api/files?name={GOOD}&after_id={before['id']}&wait=15")
    assert reply.status == 200, reply.body
    (after,) = reply.json["files"]
    assert after["id"] > before["id"]


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "+3", "1e3", "9" * 19, "%00"])
def test_a_bad_after_id_is_400(srv: MockServer, value: str) -> None:
    """`after_id` is a file id: a whole number >= 0; anything else is a 400 naming it."""
    reply = call(srv, "GET", f"/api/files?after_id={value}")
    assert reply.status == 400, reply.body
    assert reply.json["error"].startswith("after_id must be a file id: a whole number >= 0")
    wait = call(srv, "GET", f"/api/files?name={GOOD}&after_id={value}&wait=5")
    assert wait.status == 400, wait.body


# -- messages -------------------------------------------------------------------------------------


def test_messages_fields_and_filters(srv: MockServer) -> None:
    """Contract 6: SMS: phone (normalised), message, sender asked/applied, campaign, file,
    scheduled_at, status, warnings."""
    processed(srv, GOOD, GOOD_ROWS)
    processed(srv, PAST, b'"0699999999";"Vieux"\n')
    processed(srv, GOOD, b'"0655555555";"Autre compte"\n', login="sub")

    reply = call(srv, "GET", "/api/messages?login=demo&campaign=Promo")
    assert reply.status == 200
    messages = reply.json["messages"]
    assert [m["phone"] for m in messages] == ["33612345678", "33711223344", "447911123456"]
    first = messages[0]
    assert first["message"] == "Bonjour STOP au 36180"
    assert first["sender_asked"] == "MaBoutique"
    assert first["sender_applied"] == "MaBoutique"
    assert first["campaign"] == "Promo"
    assert first["file"] == GOOD
    assert first["scheduled_at"].startswith("2030-07-16T12:00:00")
    assert first["status"] == "scheduled"
    assert first["warnings"] == []
    # Issue 12: the price applied to each SMS, in credits (contract 3 `[pricing]`).
    assert [m["price"] for m in messages] == [15, 15, 15]
    assert reply.json["count"] == 3

    old = call(srv, "GET", f"/api/messages?file={PAST}").json["messages"]
    assert [(m["phone"], m["status"]) for m in old] == [("33699999999", "sent")]
    assert len(call(srv, "GET", "/api/messages?status=sent").json["messages"]) == 1
    assert len(call(srv, "GET", "/api/messages").json["messages"]) == 5
    assert [m["login"] for m in call(srv, "GET", "/api/messages?login=sub").json["messages"]] == [
        "sub"
    ]


@pytest.mark.parametrize(
    "spelling", ["0612345678", "+33612345678", "33 6 12 34 56 78", "33612345678"]
)
def test_messages_phone_in_any_accepted_format(srv: MockServer, spelling: str) -> None:
    """Contract 5.6: numbers are stored as `33` + 9 digits; the phone filter takes any
    accepted spelling of the same number."""
    processed(srv, GOOD, GOOD_ROWS)
    reply = call(srv, "GET", "/api/messages?phone=" + quote(spelling))
    assert reply.status == 200
    assert [m["phone"] for m in reply.json["messages"]] == ["33612345678"]


def test_messages_limit_and_offset(srv: MockServer) -> None:
    """Lists are paged: `limit` and `offset`."""
    rows = "".join(f'"+4479111234{i:02d}";"m{i}"\n' for i in range(12)).encode()
    processed(srv, GOOD, rows, login="sub")  # 12 SMS: 180 credits, a subscription pays
    page = call(srv, "GET", "/api/messages?limit=5&offset=10").json
    assert [m["message"] for m in page["messages"]] == ["m10", "m11"]
    assert (page["limit"], page["offset"], page["count"]) == (5, 10, 2)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("phone=12", 400),
        ("phone=0123456789", 400),  # a landline is never an SMS recipient
        ("phone=abc", 400),
        ("status=pending", 400),
        ("login=ghost", 404),
        ("limit=0", 400),
        ("limit=1000001", 400),
        ("offset=x", 400),
        ("campagne=Promo", 400),
        ("campaign=", 400),
    ],
)
def test_messages_bad_query(srv: MockServer, query: str, status: int) -> None:
    """Contract 6: bad query → 4xx JSON; unknown login → 404."""
    reply = call(srv, "GET", f"/api/messages?{query}")
    assert reply.status == status, reply.body
    assert reply.json["error"]


@pytest.mark.parametrize("spelling", ["12", "0123456789", "abc"])
def test_messages_phone_rule_is_the_libraries(srv: MockServer, spelling: str) -> None:
    """Contract 7 `srv.messages(phone=…)` "normalising the number like the API": one rule
    and one sentence, the API's 400 being the library's ValueError."""
    reply = call(srv, "GET", "/api/messages?phone=" + quote(spelling))
    assert reply.status == 400
    with pytest.raises(ValueError, match="is not a number the platform accepts") as raised:
        srv.messages(phone=spelling)
    assert reply.json == {"error": str(raised.value)}


@pytest.mark.parametrize("other", ["login=ghost", "limit=0", "status=pending"])
def test_a_bad_phone_is_reported_before_the_other_parameters(srv: MockServer, other: str) -> None:
    """The phone is checked first, as it always was: the answer names it."""
    reply = call(srv, "GET", f"/api/messages?phone=12&{other}")
    assert reply.status == 400, reply.body
    assert "phone '12' is not a number the platform accepts" in reply.json["error"]


# -- mail -----------------------------------------------------------------------------------------


def test_mail_lists_recaps(srv: MockServer) -> None:
    """Contract 6: `GET /api/mail`: recap e-mails: to, subject, date, body (manual 4.4)."""
    processed(srv, GOOD, GOOD_ROWS)
    processed(srv, GOOD, GOOD_ROWS, login="poor")
    mail = call(srv, "GET", "/api/mail").json["mail"]
    assert len(mail) == 2
    assert {m["to"] for m in mail} == {"demo@example.com", "poor@example.com"}
    for m in mail:
        assert m["subject"]
        assert m["date"]
        assert GOOD in m["body"]
    poor = call(srv, "GET", "/api/mail?login=poor").json["mail"]
    assert len(poor) == 1
    assert "Not_enough_credits" in poor[0]["body"]
    assert call(srv, "GET", "/api/mail?login=ghost").status == 404
    assert call(srv, "GET", "/api/mail?page=2").status == 400


# -- reset ----------------------------------------------------------------------------------------


def test_reset_gives_a_clean_platform(srv: MockServer) -> None:
    """Contract 6: `POST /api/reset` "empties files, SMS and mail; restores configured accounts
    and credits"; accounts created at run time are gone."""
    processed(srv, GOOD, GOOD_ROWS)
    assert call(srv, "POST", "/api/accounts", {"login": "temp", "password": "x"}).status == 201
    assert call(srv, "PATCH", "/api/accounts/sub", {"credits": 42}).status == 200
    drop(srv, "waiting.tmp", b"partial")

    reply = call(srv, "POST", "/api/reset")
    assert reply.status == 200
    assert reply.json["status"] == "reset"
    assert call(srv, "GET", "/api/files").json["files"] == []
    assert call(srv, "GET", "/api/messages").json["messages"] == []
    assert call(srv, "GET", "/api/mail").json["mail"] == []
    accounts = {a["login"]: a for a in call(srv, "GET", "/api/accounts").json["accounts"]}
    assert set(accounts) == {"demo", "poor", "sub"}
    assert (accounts["demo"]["credits"], accounts["sub"]["credits"]) == (100, 0)
    assert call(srv, "GET", "/api/accounts/temp").status == 404
    for folder in ("SEND_SMS", "PROCESSING", "ARCHIVES", "INVALIDS"):
        assert list(srv.folder("demo", folder).iterdir()) == []


def test_reset_restores_a_changed_password(srv: MockServer) -> None:
    """A configured account gets its configured password back on reset."""
    import ftplib

    assert call(srv, "PATCH", "/api/accounts/demo", {"password": "other"}).status == 200
    assert call(srv, "POST", "/api/reset").status == 200
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login("demo", "demo")


# -- check ----------------------------------------------------------------------------------------


def test_check_gives_the_verdict_and_records_nothing(srv: MockServer) -> None:
    """Contract 6: `POST /api/check?name=` "the verdict check would print, as JSON; nothing is
    recorded"."""
    reply = call(srv, "POST", f"/api/check?name={GOOD}", GOOD_ROWS)
    assert reply.status == 200
    verdict = reply.json
    assert verdict["status"] == "archived"
    assert verdict["final_name"] == f"TreatedByMSI_{GOOD}"
    assert verdict["sms_count"] == 3
    assert [s["phone"] for s in verdict["sms"]] == ["33612345678", "33711223344", "447911123456"]
    assert verdict["bytes"] == len(GOOD_ROWS)
    # Issue 12: the cost and the price applied to each SMS (contract 3 `[pricing]`).
    assert verdict["cost"] == 45
    assert [s["price"] for s in verdict["sms"]] == [15, 15, 15]
    assert call(srv, "GET", "/api/files").json["files"] == []
    assert call(srv, "GET", "/api/messages").json["messages"] == []
    assert call(srv, "GET", "/api/mail").json["mail"] == []
    assert srv.account("demo")["credits"] == 100  # type: ignore[index]
    assert list(srv.folder("demo", "SEND_SMS").iterdir()) == []


def test_check_names_the_hints(srv: MockServer) -> None:
    """Contract 5.12: `POST /api/check` names the likely cause of a common mistake (here a `,`
    separator) beside the rules' verdict; a good file has none."""
    comma = b'"0612345678","Bonjour"\n"0711223344","Salut"\n'
    verdict = call(srv, "POST", f"/api/check?name={GOOD}", comma).json
    assert verdict["reason"] == "Empty_File"
    assert [(h["code"], h["lines"]) for h in verdict["hints"]] == [("separator_comma", [1, 2])]
    assert call(srv, "POST", f"/api/check?name={GOOD}", GOOD_ROWS).json["hints"] == []


def test_check_uses_the_accounts_current_credits(srv: MockServer) -> None:
    """Contract 5.4.4 through `login=`: `Not_enough_credits` when credits < the file's cost
    (3 SMS at 15 credits, contract 3) and no subscription; a subscription account is never
    short."""
    poor = call(srv, "POST", f"/api/check?name={GOOD}&login=poor", GOOD_ROWS).json
    assert (poor["status"], poor["reason"]) == ("invalid", "Not_enough_credits")
    assert poor["final_name"] == f"TreatedByMSI_Not_enough_credits_{GOOD}"
    assert call(srv, "POST", f"/api/check?name={GOOD}&login=sub", GOOD_ROWS).json["status"] == (
        "archived"
    )
    call(srv, "PATCH", "/api/accounts/poor", {"credits": 44})
    assert call(srv, "POST", f"/api/check?name={GOOD}&login=poor", GOOD_ROWS).json["reason"] == (
        "Not_enough_credits"
    )
    call(srv, "PATCH", "/api/accounts/poor", {"credits": 45})
    assert call(srv, "POST", f"/api/check?name={GOOD}&login=poor", GOOD_ROWS).json["status"] == (
        "archived"
    )


def test_check_invalid_files_are_verdicts_not_errors(srv: MockServer) -> None:
    """A bad file is a 200 with an invalid verdict (contract 5.4), whatever its bytes."""
    cases = {
        "bad name.csv": GOOD_ROWS,
        GOOD: b"",
        PAST: bytes(range(256)) * 10,
    }
    for name, data in cases.items():
        reply = call(srv, "POST", "/api/check?name=" + quote(name), data)
        assert reply.status == 200
        assert reply.json["status"] == "invalid"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("name=", 400),
        ("name=a%2Fb.csv", 400),
        ("name=" + "x" * 300, 400),
        (f"name={GOOD}&login=ghost", 404),
        (f"name={GOOD}&login=..", 404),
        (f"name={GOOD}&credits=5", 400),
    ],
)
def test_check_bad_query(srv: MockServer, query: str, status: int) -> None:
    """Contract 6: a missing or bad file name is 400; an unknown login 404."""
    reply = call(srv, "POST", f"/api/check?{query}", GOOD_ROWS)
    assert reply.status == status, reply.body
    assert reply.json["error"]


def test_check_body_over_the_size_limit_is_413(srv: MockServer) -> None:
    """Contract 3: `limits.max_file_bytes`; a larger body is refused (413), a body of exactly
    the limit is judged."""
    at_limit = b'"0612345678";"x"\n' + b"\n" * (MAX_BYTES - 17)
    assert len(at_limit) == MAX_BYTES
    assert call(srv, "POST", f"/api/check?name={GOOD}", at_limit).status == 200
    reply = call(srv, "POST", f"/api/check?name={GOOD}", at_limit + b"\n")
    assert reply.status == 413
    assert "error" in reply.json
    chunks = iter([b"\n" * 100_000] * 3)
    assert call(srv, "POST", f"/api/check?name={GOOD}", chunks, chunked=True).status == 413


# -- routing and robustness -----------------------------------------------------------------------


def test_unknown_route_is_404_json(srv: MockServer) -> None:
    """Contract 6: errors are JSON `{"error": "..."}` with 4xx codes."""
    for path in ("/api", "/api/nothing", "/api/accounts/demo/extra", "/health/x", "/ui/"):
        reply = call(srv, "GET", path)
        assert reply.status == 404, path
        assert reply.headers["content-type"].startswith("application/json")
        assert reply.json["error"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/health", None, 200),
        ("GET", "/api/files", None, 200),
        ("GET", f"/api/files?name={GOOD}&wait=0.1", None, 404),  # the wait ran out
        ("GET", "/api/messages?phone=12", None, 400),
        ("GET", "/api/accounts/demo", None, 200),
        ("POST", "/api/accounts", {"login": "fresh", "password": "pw"}, 201),
        ("POST", "/api/accounts", {"login": "demo", "password": "pw"}, 409),
        ("POST", f"/api/check?name={GOOD}", GOOD_ROWS, 200),
        ("POST", "/api/check?name=promo.tmp", GOOD_ROWS, 200),
        ("GET", "/api/nothing", None, 404),
        ("DELETE", "/api/accounts/demo", None, 405),
        ("POST", "/api/reset", None, 200),
    ],
)
def test_every_json_answer_ends_with_a_newline(
    srv: MockServer, method: str, path: str, body: Any, status: int
) -> None:
    """Contract 6: "Every JSON answer ends with a newline", errors included: one line of
    JSON, then `\\n` (a `curl` in a terminal or a line-based reader gets a whole line)."""
    reply = call(srv, method, path, body)
    assert reply.status == status, reply.body
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.body.endswith(b"\n"), reply.body[-40:]
    assert reply.body.count(b"\n") == 1
    assert int(reply.headers["content-length"]) == len(reply.body)
    json.loads(reply.body)


def test_wrong_method_is_405_json(srv: MockServer) -> None:
    """A known route with another method is a 405 JSON naming the allowed methods."""
    for method, path in (
        ("DELETE", "/api/accounts/demo"),
        ("GET", "/api/reset"),
        ("GET", "/api/check"),
        ("POST", "/health"),
        ("PUT", "/api/files"),
    ):
        reply = call(srv, method, path)
        assert reply.status == 405, (method, path)
        assert reply.json["error"]
        assert reply.headers.get("allow")


GARBAGE_PATHS = [
    "/api/accounts/%00",
    "/api/accounts/%ff%fe",
    "/api/files?login=%ff",
    "/api/files?status=%00",
    "/api/messages?phone=%ff%ff",
    "/api/messages?limit=99999999999999999999",
    "/api/messages?offset=1e400",
    "/api/files?name=x&wait=1e400",
    "/api/files?name=x&wait=0x10",
    "/api/mail?to=%00",
    "/api/check?name=%ff.csv",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/api/accounts/" + "a" * 5000,
]


def test_no_garbage_gets_a_500(srv: MockServer) -> None:
    """The brief's rule: "never a 500 with a traceback" for garbage input."""
    rng = random.Random(1234)
    requests: list[tuple[str, str, bytes | None]] = []
    for path in GARBAGE_PATHS:
        for method in ("GET", "POST", "PATCH"):
            requests.append((method, path, None))
    for _ in range(60):
        blob = rng.randbytes(rng.randrange(0, 300))
        method, path = rng.choice(
            [
                ("POST", "/api/accounts"),
                ("PATCH", "/api/accounts/demo"),
                ("POST", f"/api/check?name={GOOD}"),
                ("POST", "/api/check?name=x.csv&login=demo"),
                ("POST", "/api/reset"),
            ]
        )
        requests.append((method, path, blob))
    for _ in range(30):
        value = quote(rng.randbytes(rng.randrange(1, 20)))
        key = rng.choice(["login", "status", "name", "wait", "limit", "offset", "phone", "x"])
        requests.append(
            ("GET", f"/api/{rng.choice(['files', 'messages', 'mail'])}?{key}={value}", None)
        )
    for method, path, body in requests:
        reply = call(srv, method, path, body, {"Content-Type": "application/json"})
        assert reply.status < 500, (method, path, body, reply.body)
        assert reply.headers["content-type"].startswith("application/json"), (method, path)
        assert reply.body.endswith(b"\n"), (method, path)  # contract 6, errors included
        if reply.status >= 400:
            assert reply.json["error"], (method, path)


def test_health_is_503_until_everything_is_up(tmp_path: Any) -> None:
    """Contract 6: `/health` is ok "once all is up"; before that 503 `{"status": "starting"}`
    (what compose health checks and CI wait loops poll)."""
    import aiohttp

    from mockserver.backend import Backend
    from mockserver.servers.http import HttpApi

    config = load_config(
        None, env={}, overrides={"server.http_port": 0, "server.data_dir": str(tmp_path)}
    )
    # The platform's other parts are not up: the app says so by giving no ports yet.
    ports: dict[str, Any] = {"now": None}

    async def scenario() -> tuple[int, Any, int, Any]:
        api = HttpApi(Backend(config), lambda: ports["now"])
        await api.start()
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{api.port}/health"
                async with session.get(url) as resp:
                    starting = (resp.status, await resp.json())
                ports["now"] = {"ftp_port": 2121, "sftp_port": 61022}
                async with session.get(url) as resp:
                    ready = (resp.status, await resp.json())
        finally:
            await api.stop()
        return (*starting, *ready)

    status, body, status2, body2 = asyncio.run(scenario())
    assert (status, body) == (503, {"status": "starting"})
    assert status2 == 200
    assert body2["status"] == "ok"
    assert (body2["ftp_port"], body2["sftp_port"]) == (2121, 61022)
    assert body2["http_port"] > 0


def test_check_reports_a_tmp_name_as_ignored(srv: MockServer) -> None:
    """Contract 5.1: "A file in `SEND_SMS` whose name ends in `.tmp` is never touched (`check`
    reports such a name as `ignored`, not invalid)", over HTTP as on the command line."""
    reply = call(srv, "POST", "/api/check?name=Promo.tmp", GOOD_ROWS)
    assert reply.status == 200, reply.body
    verdict = reply.json
    assert verdict["status"] == "ignored"
    assert (verdict["reason"], verdict["final_name"], verdict["cost"]) == (None, None, 0)
    assert (verdict["sms"], verdict["rejected"]) == ([], [])
    assert verdict["bytes"] == len(GOOD_ROWS)
    assert srv.files() == []


def test_connections_past_the_cap_get_503_and_idle_ones_are_closed(tmp_path: Path) -> None:
    """Issue 16: the API's connections are capped (`limits.max_http_connections`): one more
    is answered 503 naming the limit and closed; a connection that sends no request within
    `login_timeout_seconds` is closed (aiohttp alone kept both forever)."""
    import socket

    settings = {"limits.max_http_connections": 8, "limits.login_timeout_seconds": 1.0}
    with MockServer(data_dir=tmp_path / "d", **settings) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.http_port), 10) for _ in range(8)]
        try:
            assert srv._http is not None
            wait_until(
                lambda: (
                    srv._http is not None
                    and srv._http.gate is not None
                    and srv._http.gate.open == 8
                ),
                what="8 connections counted",
            )
            with socket.create_connection(("127.0.0.1", srv.http_port), 10) as extra:
                extra.settimeout(10)
                answer = extra.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503")
            assert b"too many HTTP connections (limit 8)" in answer
            for sock in idle:  # closed by the server after the first-request time
                sock.settimeout(10)
                assert sock.recv(4096) == b""
            assert call(srv, "GET", "/health").status == 200
        finally:
            for sock in idle:
                sock.close()


def test_data_dir_replaced_while_running_is_degraded_and_refuses_uploads(tmp_path: Path) -> None:
    """Issue 16, finding 8: the database replaced under the running mock (its inode changed):
    `/health` answers 503 `degraded` naming the data dir, FTP uploads get 451 "platform
    storage unavailable" (whatever lands now would be lost at restart), logged once."""
    import ftplib
    import io
    import shutil

    with MockServer(data_dir=tmp_path / "d") as srv:
        db = srv.data_dir / "state.sqlite3"
        shutil.copy(db, tmp_path / "copy")
        os.replace(tmp_path / "copy", db)  # same name, another inode
        wait_until(lambda: call(srv, "GET", "/health").status == 503, what="health 503")
        body = call(srv, "GET", "/health").json
        assert body["status"] == "degraded"
        assert "replaced while running; restart the mock" in body["problems"]["data_dir"]
        with ftplib.FTP() as ftp:
            ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
            ftp.login("demo", "demo")
            with pytest.raises(ftplib.error_temp) as exc:
                ftp.storbinary("STOR /SEND_SMS/a.tmp", io.BytesIO(b"x"))
            assert str(exc.value) == "451 Platform storage unavailable."


def test_long_polls_past_the_cap_get_503() -> None:
    """Issue 16: long polls are capped (`MAX_LONG_POLLS`); one more is refused at once."""
    from mockserver.events import EventBus
    from mockserver.servers.http.connections import LongPolls, TooManyWaiters

    async def main() -> None:
        polls = LongPolls(EventBus(), cap=2)
        with polls.waiter("a"), polls.waiter("b"):
            assert polls.waiting == 2
            with pytest.raises(TooManyWaiters), polls.waiter("c"):
                pass
        assert polls.waiting == 0

    asyncio.run(main())


def test_the_api_answers_503_once_the_data_dir_is_gone(tmp_path: Path) -> None:
    """Issue 16, finding 8: the data dir removed while running: every `/api/` call answers 503
    naming the cause (an adversarial pass got 500s with a traceback each, and the mock rebuilt
    an empty tree under a 0-byte database), `/health` stays 503 `degraded`."""
    import shutil

    with MockServer(data_dir=tmp_path / "d") as srv:
        shutil.rmtree(srv.data_dir)
        wait_until(lambda: call(srv, "GET", "/health").status == 503, what="health 503")
        for method, path in (
            ("GET", "/api/files"),
            ("GET", "/api/accounts"),
            ("GET", "/api/mail"),
            ("POST", "/api/reset"),
        ):
            reply = call(srv, method, path)
            assert reply.status == 503, (method, path, reply.status)
            assert "platform storage unavailable" in reply.json["error"]
        assert not (tmp_path / "d" / "state.sqlite3").exists()  # nothing made anew
