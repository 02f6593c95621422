"""Every documented case, end to end over FTP and SFTP through the in-process `MockServer`:
the drop (`.tmp` then rename), the folder and exact final name on disk, credits, the recorded
SMS and the recap e-mail; plus `.tmp` files, name collisions, the PROCESSING delay, `_MULT`.
"""

from __future__ import annotations

import email
import email.policy
import json
import time
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mockserver.app import MockServer
from tests.support.billing import DEMO_CREDITS
from tests.support.serve import (
    DEMO_LOGIN,
    FIXTURES,
    api_get,
    campaign,
    csv_rows,
    drop,
    entries,
    ftp_drop,
    ftp_list,
    http_json,
    sftp_drop,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

PROTOCOLS = ["ftp", "sftp"]
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def case_id(case: dict[str, Any]) -> str:
    args = "".join(a.strip("-") for a in case["args"])
    return f"{case['kind']}{'-' + args if args else ''}"


CASES = [pytest.param(c, id=case_id(c)) for c in EXPECTED["cases"]]


def account_args(args: list[str]) -> tuple[int, bool]:
    """(credits, subscription) for a case's `check` options (`--credits N`, `--subscription`)."""
    credits, subscription = DEMO_CREDITS, False
    for i, arg in enumerate(args):
        if arg == "--credits":
            credits = int(args[i + 1])
        elif arg == "--subscription":
            subscription = True
    return credits, subscription


def raw_recaps(srv: MockServer) -> list[EmailMessage]:
    """The recap files as they sit in the Maildir (`<data_dir>/mailbox/new` or `cur`)."""
    found: list[EmailMessage] = []
    for sub in ("new", "cur"):
        for path in sorted((srv.data_dir / "mailbox" / sub).iterdir()):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            found.append(msg)
    return found


def recap_of(srv: MockServer, name: str) -> tuple[dict[str, Any], EmailMessage]:
    """The one recap about `name`, through `srv.mail()` and as a raw Maildir file."""
    mails = [m for m in srv.mail() if m["file"] == name]
    assert len(mails) == 1, [m["subject"] for m in srv.mail()]
    raws = [m for m in raw_recaps(srv) if m["X-AllMySMS-File"] == name]
    assert len(raws) == 1
    return mails[0], raws[0]


def body_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content


def verdicts(srv: MockServer, name: str, count: int) -> list[dict[str, Any]]:
    """Wait until `count` drops named `name` have their verdict."""

    def done() -> list[dict[str, Any]]:
        found = srv.files(name=name)
        return found if len(found) >= count else []

    return wait_until(done, 15, what=f"{count} verdicts for {name}")


def assert_only_in(srv: MockServer, folder: str, names: list[str]) -> None:
    """`names` are exactly what `folder` holds; SEND_SMS and PROCESSING are empty and the
    other result folder holds nothing either."""
    other = "INVALIDS" if folder == "ARCHIVES" else "ARCHIVES"
    assert entries(srv.folder(DEMO_LOGIN, folder)) == sorted(names)
    assert entries(srv.folder(DEMO_LOGIN, other)) == []
    assert entries(srv.folder(DEMO_LOGIN, "SEND_SMS")) == []
    assert entries(srv.folder(DEMO_LOGIN, "PROCESSING")) == []


# -- every documented case ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", CASES)
def test_documented_case(srv: MockServer, case: dict[str, Any], protocol: str) -> None:
    """Manual 4.3: "Après traitement, l'API déplacera les fichiers du répertoire PROCESSING
    vers le répertoire ARCHIVES si l'exécution du fichier s'est bien déroulée ou vers le
    répertoire INVALIDS si une erreur est survenue"; contract 5.3 (final names), 5.4
    (verdicts; "An invalid file sends nothing and costs nothing"), 5.5-5.9 (SMS), 5.11 (recap:
    "file name, verdict (and reason), SMS count"). Expected values: fixtures/expected.json."""
    name: str = case["file"]
    data = (FIXTURES / name).read_bytes()
    credits, subscription = account_args(case["args"])
    if case["args"]:
        status, account = http_json(
            f"{srv.http_url}/api/accounts/{DEMO_LOGIN}",
            "PATCH",
            {"credits": credits, "subscription": subscription},
        )
        assert status == 200, account
    archived = case["status"] == "archived"

    drop(protocol, srv.ftp_port, srv.sftp_port, name, data)
    record = srv.wait_for_file(name, timeout=15)

    # The verdict (contract 5.4) and the exact final name (contract 5.3).
    assert record["status"] == case["status"]
    assert record["reason"] == case["reason"]
    assert record["final_name"] == case["final_name"]
    assert record["sms_count"] == case["sms_count"]
    if "rows" in case:
        assert record["rows"] == case["rows"]
    if "rejected" in case:
        got = [(r["line"], r["error"]) for r in record["rejected"]]
        assert got == [(r["line"], r["error"]) for r in case["rejected"]]

    # On disk: only the final name, in the right folder, with the uploaded bytes.
    folder = "ARCHIVES" if archived else "INVALIDS"
    assert_only_in(srv, folder, [case["final_name"]])
    assert (srv.folder(DEMO_LOGIN, folder) / case["final_name"]).read_bytes() == data

    # Credits: the file's cost (15 a French SMS by default), none for an invalid file or a
    # subscription (contract 5.4.4).
    account_now = srv.account(DEMO_LOGIN)
    assert account_now is not None
    assert record["cost"] == (case["cost"] if archived else 0)
    charged = case["cost"] if archived and not subscription else 0
    assert account_now["credits"] == credits - charged

    # The SMS recorded (contract 5.5-5.9), also through `GET /api/messages`.
    messages = srv.messages(file=name)
    keys = ("line", "phone", "message", "sender_asked", "sender_applied", "septets", "warnings")
    assert [{k: m[k] for k in keys} for m in messages] == [
        {k: s[k] for k in keys} for s in case.get("sms", [])
    ]
    assert len(messages) == case["sms_count"]
    api = api_get(srv.http_url, "/api/messages", file=name)
    assert api["count"] == case["sms_count"]
    if archived:
        assert all(m["scheduled_at"].startswith("2030-07-10T14:30:00") for m in messages)
        assert all(m["status"] == "scheduled" for m in messages)

    # The recap (contract 5.11; manual 4.4 "le nombre de SMS envoyés ... les raisons d'échec").
    mail, raw = recap_of(srv, name)
    assert mail["to"] == "demo@example.com"
    assert name in mail["subject"]
    assert name in str(raw["Subject"])
    for body in (mail["body"], body_of(raw)):
        # Contract 5.11: "programmés" while the send date (10 July 2030) is ahead.
        state = "programmés" if archived else "envoyés"
        assert f"Nombre de SMS {state} : {case['sms_count']}" in body
        assert case["final_name"] in body
        if archived:
            assert "archivé" in body
        else:
            assert case["reason"] in body
            assert case["reason"] in mail["subject"]


# -- the rules around the drop ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_tmp_file_is_never_touched(srv: MockServer, protocol: str) -> None:
    """Contract 5.1: "A file in SEND_SMS whose name ends in .tmp is never touched"; manual
    4.2: "il est conseillé d'uploader des fichiers temporaires, avec extension .tmp, jusqu'à
    ce que le fichier soit uploadé". Still there, intact, after another file was processed."""
    pending, other = campaign("Pending"), campaign("Other")
    pending_data, other_data = csv_rows(2), csv_rows(3, start=10)
    if protocol == "ftp":
        ftp_drop(srv.ftp_port, pending, pending_data, rename=False)
    else:
        sftp_drop(srv.sftp_port, pending, pending_data, rename=False)
    drop(protocol, srv.ftp_port, srv.sftp_port, other, other_data)
    srv.wait_for_file(other, timeout=15)
    srv.processor.drain(10)  # and a full scan of SEND_SMS on top

    send = srv.folder(DEMO_LOGIN, "SEND_SMS")
    assert entries(send) == [f"{pending}.tmp"]
    assert (send / f"{pending}.tmp").read_bytes() == pending_data
    assert srv.files(name=f"{pending}.tmp") == []
    assert srv.files(name=pending) == []
    assert [f["original_name"] for f in srv.files()] == [other]
    assert entries(srv.folder(DEMO_LOGIN, "ARCHIVES")) == [f"TreatedByMSI_{other}"]


@pytest.mark.parametrize(
    ("body", "folder", "prefix"),
    [
        pytest.param(csv_rows(2), "ARCHIVES", "TreatedByMSI_", id="archived"),
        pytest.param(b"", "INVALIDS", "TreatedByMSI_Empty_File_", id="invalid"),
    ],
)
def test_a_name_collision_gets_a_suffix_and_overwrites_nothing(
    srv: MockServer, body: bytes, folder: str, prefix: str
) -> None:
    """Contract 5.3: "If that name exists, a suffix `-2`, `-3`, … goes before `.csv`:
    nothing is ever overwritten". The same name dropped three times."""
    name = campaign("Again")
    stem = name.removesuffix(".csv")
    versions = [body + b"\n" * i for i in range(3)]  # tell the copies apart by their bytes
    for i, data in enumerate(versions):
        drop("ftp" if i % 2 == 0 else "sftp", srv.ftp_port, srv.sftp_port, name, data)
        verdicts(srv, name, i + 1)
    finals = [f["final_name"] for f in srv.files(name=name)]
    want = [f"{prefix}{name}", f"{prefix}{stem}-2.csv", f"{prefix}{stem}-3.csv"]
    assert finals == want
    assert_only_in(srv, folder, want)
    for final, data in zip(want, versions, strict=True):
        assert (srv.folder(DEMO_LOGIN, folder) / final).read_bytes() == data
    cost = 2 * 15 if folder == "ARCHIVES" else 0  # two French SMS at 15 credits
    account = srv.account(DEMO_LOGIN)
    assert account is not None
    assert account["credits"] == DEMO_CREDITS - 3 * cost


def test_delay_keeps_the_file_visible_in_processing_over_ftp() -> None:
    """Contract 3: `delay_seconds` is the "time a file stays in PROCESSING (emulates platform
    latency)"; manual 4.3: "Un fichier en cours de traitement ... sera déplacé du dossier
    SEND_SMS vers le dossier PROCESSING". A client's `LIST /PROCESSING` shows it meanwhile."""
    delay = 1.5
    with MockServer(delay_seconds=delay) as srv:
        name = campaign("Slow")
        ftp_drop(srv.ftp_port, name, csv_rows(2))
        wait_until(lambda: name in ftp_list(srv.ftp_port, "PROCESSING"), 10, what="PROCESSING")
        seen = time.monotonic()
        assert name not in ftp_list(srv.ftp_port, "SEND_SMS")
        assert srv.files(name=name) == []  # no verdict while it waits
        wait_until(
            lambda: name not in ftp_list(srv.ftp_port, "PROCESSING"), 10, what="leaving PROCESSING"
        )
        visible = time.monotonic() - seen
        record = srv.wait_for_file(name, timeout=10)
        assert record["status"] == "archived"
        assert f"TreatedByMSI_{name}" in ftp_list(srv.ftp_port, "ARCHIVES")
        waited = datetime.fromisoformat(record["processed_at"]) - datetime.fromisoformat(
            record["received_at"]
        )
        assert waited.total_seconds() >= delay - 0.05
        assert visible >= delay - 0.6  # seen within a poll of its arrival


def test_mult_sends_every_row_and_without_it_the_last_row_wins(srv: MockServer) -> None:
    """Contract 5.8: "without `_MULT` one SMS per normalised number, the last row's message
    wins; with `_MULT` every row is an SMS"; manual 4.2: "Le système supprimera
    automatiquement les doublons et enverra le dernier message associé au numéro dupliqué"."""
    rows = (
        '"0612345678";"Premier"\n'
        '"33612345678";"Deuxième"\n'
        '"+33 6 12 34 56 78";"Troisième"\n'
        '"0712345678";"Autre numéro"\n'
    ).encode()
    single, mult = campaign("Dedup"), campaign("Every", mult=True)
    ftp_drop(srv.ftp_port, single, rows)
    first = srv.wait_for_file(single, timeout=15)
    drop("sftp", srv.ftp_port, srv.sftp_port, mult, rows)
    second = srv.wait_for_file(mult, timeout=15)

    assert first["status"] == second["status"] == "archived"
    assert [(r["line"], r["error"]) for r in first["rejected"]] == [
        (1, "duplicate_number"),
        (2, "duplicate_number"),
    ]
    assert [(m["phone"], m["message"]) for m in srv.messages(file=single)] == [
        ("33612345678", "Troisième"),
        ("33712345678", "Autre numéro"),
    ]
    assert second["rejected"] == []
    assert [(m["phone"], m["message"]) for m in srv.messages(file=mult)] == [
        ("33612345678", "Premier"),
        ("33612345678", "Deuxième"),
        ("33612345678", "Troisième"),
        ("33712345678", "Autre numéro"),
    ]
    account = srv.account(DEMO_LOGIN)
    assert account is not None
    assert account["credits"] == DEMO_CREDITS - (2 + 4) * 15  # six French SMS at 15 credits
    assert_only_in(srv, "ARCHIVES", [f"TreatedByMSI_{single}", f"TreatedByMSI_{mult}"])


def test_fixture_files_exist_for_every_case() -> None:
    """Every case of fixtures/expected.json has its file (the matrix above is complete)."""
    missing = [c["file"] for c in EXPECTED["cases"] if not Path(FIXTURES / c["file"]).exists()]
    assert missing == []
