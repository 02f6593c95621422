"""Recap e-mails (manual 4.4, contract 5.11): French text, Maildir delivery, SMTP forward."""

from __future__ import annotations

import email
import email.policy
import mailbox as std_mailbox
import re
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.config import MailConfig
from mockserver.core.hints import duplicate_hint
from mockserver.core.models import Hint, HintCode, Reason, RejectedRow, RowError, Status, Warning_
from mockserver.core.recap import (
    HINTS_FR,
    MAX_ROWS,
    REASONS_FR,
    ROW_ERRORS_FR,
    WARNINGS_FR,
    SmsWarning,
    french_date,
)
from mockserver.mailbox import Mailbox, RecapContext, compose, message_id
from mockserver.store import FileRecord


def record(**kw: Any) -> FileRecord:
    base: dict[str, Any] = {
        "id": 7,
        "login": "alice",
        "claim_key": "1:2:3:4",
        "original_name": "Promo_20300716120000_HQ.csv",
        "final_name": "TreatedByMSI_Promo_20300716120000_HQ.csv",
        "stored_name": None,
        "status": Status.ARCHIVED,
        "reason": None,
        "detail": "",
        "campaign": "Promo",
        "send_at": "2030-07-16T12:00:00+02:00",
        "mult": False,
        "rows": 13,
        "sms_count": 12,
        "cost": 12,
        "rejected": (RejectedRow(4, "bad_number", "'12' is not a phone number"),),
        "received_at": "2030-07-01T10:00:00+00:00",
        "processed_at": "2030-07-01T10:00:00+00:00",
        "processing_ms": 1.0,
        "mail": "pending",
        "done": False,
    }
    base.update(kw)
    return FileRecord(**base)


def test_every_reason_and_row_error_has_a_french_label() -> None:
    """Manual 4.3/4.4: the recap gives "les raisons d'échec"; labels are keyed by the enums,
    so a reason or row error added to the engine without a French label fails here."""
    assert set(REASONS_FR) == set(Reason)
    assert set(ROW_ERRORS_FR) == set(RowError)


BEFORE = RecapContext(now=datetime(2030, 7, 1, 10, tzinfo=UTC))  # the send date is ahead
AFTER = RecapContext(now=datetime(2030, 7, 17, tzinfo=UTC))  # the send date has passed


def test_archived_recap_fields_and_french_body() -> None:
    """Manual 4.4: "… seront indiqués les fichiers traités, le nombre de SMS envoyés, la date
    d'envoi ainsi que les raisons d'échec …"."""
    rows = (RejectedRow(4, "bad_number", "'12' is not a phone number", "12"),)
    msg = compose(record(rejected=rows), "alice@example.com", BEFORE)
    assert msg["To"] == "alice@example.com"
    assert "noreply@allmysms.com" in msg["From"]
    assert msg["Subject"] == "[AllMySMS] Fichier traité : Promo_20300716120000_HQ.csv"
    assert msg["Date"] == "Mon, 01 Jul 2030 10:00:00 +0000"
    assert msg["Message-ID"] == message_id(record())
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert "Fichier traité : Promo_20300716120000_HQ.csv" in body
    assert "ARCHIVES/TreatedByMSI_Promo_20300716120000_HQ.csv" in body
    assert "Date d'envoi : mardi 16 juillet 2030 à 12:00:00 (heure de Paris)" in body
    assert "Coût : 12 crédits débités du compte" in body
    assert "ligne 4 : numéro invalide : '12'" in body


def test_sms_are_scheduled_until_the_send_date_then_sent() -> None:
    """Contract 5.11: SMS count "programmés" while the send date is ahead, "envoyés" after."""
    before = compose(record(), "a@b.test", BEFORE).get_content()
    after = compose(record(), "a@b.test", AFTER).get_content()
    assert "Nombre de SMS programmés : 12" in before
    assert "envoyés : 12" not in before
    assert "Nombre de SMS envoyés : 12" in after
    assert "programmés" not in after


def test_a_subscription_is_invoiced_at_month_end_not_debited() -> None:
    """Contract 5.11: the cost is "what was debited, or what the month-end invoice will carry
    for a subscription"; contract 3: `subscription = true`: "billed at month end". What the
    ledger recorded decides (`debited`), not the account's state when the recap is written."""
    body = compose(record(cost=180, debited=0), "a@b.test", BEFORE).get_content()
    assert "Coût : 180 crédits, facturés en fin de mois (compte en abonnement)" in body
    assert "débités" not in body
    debited = compose(record(cost=180, debited=180), "a@b.test", BEFORE).get_content()
    assert "Coût : 180 crédits débités du compte" in debited


def test_invalid_recap_names_the_reason_in_the_manuals_words() -> None:
    """Manual 4.3: "Not_enough_credits : Le compte n'est pas en abonnement et n'a pas
    suffisamment de crédits"."""
    rec = record(
        status=Status.INVALID,
        reason="Not_enough_credits",
        final_name="TreatedByMSI_Not_enough_credits_Promo_20300716120000_HQ.csv",
        cost=0,
        detail="The file would send 12 SMS costing 180 credits but account 'alice' has 10.",
    )
    msg = compose(rec, "alice@example.com", BEFORE)
    assert msg["Subject"] == (
        "[AllMySMS] Fichier invalide : Promo_20300716120000_HQ.csv (Not_enough_credits)"
    )
    body = msg.get_content()
    assert "raison : Not_enough_credits" in body
    assert "Le compte n'est pas en abonnement et n'a pas suffisamment de crédits" in body
    assert "Nombre de SMS envoyés : 0" in body
    assert "Coût : aucun crédit débité" in body
    assert "INVALIDS/TreatedByMSI_Not_enough_credits_" in body
    assert "would send" not in body  # the English detail is for check and the API


@pytest.mark.parametrize("reason", list(Reason))
def test_a_file_that_sends_nothing_has_no_send_date(reason: Reason) -> None:
    """Contract 5.11: "send date (archived files only)"."""
    rec = record(status=Status.INVALID, reason=reason.value, cost=0)
    body = compose(rec, "a@b.test", BEFORE).get_content()
    assert "Date d'envoi" not in body
    assert REASONS_FR[reason] in body


def test_warnings_are_listed_with_their_lines() -> None:
    """Contract 5.11: "rejected rows and warnings with their line numbers and reasons"."""
    warnings = tuple(SmsWarning(i, Warning_.SENDER_NOT_APPLIED.value) for i in range(1, 151))
    context = RecapContext(now=BEFORE.now, warnings=warnings[:MAX_ROWS], warnings_total=150)
    body = compose(record(rejected=()), "a@b.test", context).get_content()
    assert "Avertissements (SMS envoyés malgré tout) : 150" in body
    assert f"ligne 1 : {WARNINGS_FR[Warning_.SENDER_NOT_APPLIED]}" in body
    assert f"ligne {MAX_ROWS + 1} :" not in body
    assert f"… et {150 - MAX_ROWS} autres" in body


def test_every_warning_has_a_french_label() -> None:
    assert set(WARNINGS_FR) == set(Warning_)


# Words of the engine's English details (core/judge.py): none may reach a recap.
ENGLISH = re.compile(
    r"\b(the|is|not|number|numbers|row|rows|column|sender|file|would|send|"
    r"credits|allowed|characters|appears|again|instead|whose|empty|breaks|rules|"
    r"landline|malformed|accepts|digits|spaces|ignored|header|bytes|line)\b"
)


@settings(max_examples=200, deadline=None)
@given(
    error=st.sampled_from(list(RowError)),
    reason=st.sampled_from([None, *Reason]),
    value=st.text(alphabet="0123456789+ ", max_size=12),
    subscription=st.booleans(),
    scheduled=st.booleans(),
)
def test_the_recap_holds_no_english_sentence(
    error: RowError, reason: Reason | None, value: str, subscription: bool, scheduled: bool
) -> None:
    """Contract 5.11: the recap is "entirely in French", whatever the engine's (English)
    details say: the rows get French labels, the values are shown as they are."""
    detail = "the message (column 2) is empty; the row is not allowed: number, sender, file"
    rec = record(
        status=Status.ARCHIVED if reason is None else Status.INVALID,
        reason=None if reason is None else reason.value,
        detail=detail,
        rejected=(RejectedRow(3, error.value, detail, value),),
        original_name="Campagne_20300716120000_HQ.csv",
        final_name="TreatedByMSI_Campagne_20300716120000_HQ.csv",
        debited=0 if subscription else 12,
    )
    context = RecapContext(
        now=BEFORE.now if scheduled else AFTER.now,
        warnings=tuple(SmsWarning(5, w.value) for w in Warning_),
        warnings_total=len(Warning_),
    )
    msg = compose(rec, "a@b.test", context)
    found = ENGLISH.findall(msg.get_content())
    assert found == [], found


def test_every_hint_has_a_french_label() -> None:
    """Contract 5.12: the recap names the hints; labels are keyed by `HintCode`."""
    assert set(HINTS_FR) == set(HintCode)


def test_the_recap_names_the_hints_in_french() -> None:
    """Contract 5.12: "`check`, the API and the recap name the likely cause of common
    mistakes"; contract 5.11: the recap is entirely in French (the hints' English sentences
    never reach it), with the lines or the earlier file each hint names."""
    hints = (
        Hint(HintCode.SEPARATOR_COMMA.value, "12 rows hold no ; but split on a comma", 12,
             (1, 2, 3, 4, 5)),
        Hint(HintCode.LEADING_ZERO_DROPPED.value, "the number is sent abroad", 1, (7,)),
        duplicate_hint(3, "TreatedByMSI_Promo_20300716120000_HQ.csv"),
    )  # fmt: skip
    body = compose(record(hints=hints), "a@b.test", BEFORE).get_content()
    assert f"  - {HINTS_FR[HintCode.SEPARATOR_COMMA]} (12 lignes : 1, 2, 3, 4, 5 …)" in body
    assert f"  - {HINTS_FR[HintCode.LEADING_ZERO_DROPPED]} (ligne 7)" in body
    assert (
        f"  - {HINTS_FR[HintCode.DUPLICATE_OF]} ; fichier précédent : n° 3, "
        "'TreatedByMSI_Promo_20300716120000_HQ.csv'"
    ) in body
    assert ENGLISH.findall(body) == []


def test_rejected_rows_are_capped() -> None:
    rows = tuple(RejectedRow(i, "empty_message", "") for i in range(1, 251))
    body = compose(record(rejected=rows), "a@b.test", BEFORE).get_content()
    assert f"ligne {MAX_ROWS} : message vide" in body
    assert f"ligne {MAX_ROWS + 1} :" not in body
    assert f"… et {250 - MAX_ROWS} autres" in body


def test_french_date_is_paris_time() -> None:
    assert french_date(datetime(2013, 7, 16, 10, 0, tzinfo=UTC)) == (
        "mardi 16 juillet 2013 à 12:00:00 (heure de Paris)"
    )


def test_maildir_delivery_listing_has_and_clear(tmp_path: Path) -> None:
    """Contract 4: `<data_dir>/mailbox/` is a Maildir (cur/ new/ tmp/) of recap e-mails."""
    box = Mailbox(tmp_path / "mailbox")
    first = box.send_recap(record(), "alice@example.com")
    box.send_recap(
        record(
            id=8, original_name="B_20300716120000_HQ.csv", processed_at="2030-07-01T11:00:00+00:00"
        ),
        "alice@example.com",
    )
    assert {p.name for p in (tmp_path / "mailbox").iterdir()} == {"cur", "new", "tmp"}
    std = std_mailbox.Maildir(tmp_path / "mailbox", create=False)
    assert len(std) == 2
    listed = box.messages()
    assert [m["file"] for m in listed] == ["Promo_20300716120000_HQ.csv", "B_20300716120000_HQ.csv"]
    assert listed[0]["to"] == "alice@example.com"
    assert listed[0]["subject"].startswith("[AllMySMS] Fichier traité")
    assert "Nombre de SMS" in listed[0]["body"]
    assert "Coût : 12 crédits débités du compte" in listed[0]["body"]
    assert box.has(first)
    assert not box.has("<other@x>")
    box.clear()
    assert box.messages() == []
    assert len(box) == 0


@settings(max_examples=40, deadline=None)
@given(stem=st.text("ABCabc019", min_size=1, max_size=60), invalid=st.booleans())
def test_a_listed_subject_is_the_subject_written_whatever_its_length(
    tmp_path_factory: pytest.TempPathFactory, stem: str, invalid: bool
) -> None:
    """`GET /api/mail` lists the subject as written: a long one, folded in the file right
    after "Subject:", came back with a leading space (found by a new user's trial)."""
    name = f"{stem}_20300716120000_HQ.csv"
    kw: dict[str, Any] = {"original_name": name, "final_name": f"TreatedByMSI_{name}"}
    if invalid:
        kw.update(status=Status.INVALID, reason=Reason.EMPTY_FILE, sms_count=0, cost=0)
    rec = record(**kw)
    box = Mailbox(tmp_path_factory.mktemp("mail") / "mailbox")
    box.send_recap(rec, "alice@example.com")
    written = str(compose(rec, "alice@example.com")["Subject"])
    assert written.startswith("[AllMySMS] ")
    assert [m["subject"] for m in box.messages()] == [written]


class _SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message (aiosmtpd is not a dependency)."""

    def handle(self) -> None:
        server: Any = self.server
        self.wfile.write(b"220 sink ready\r\n")
        data: list[bytes] = []
        while line := self.rfile.readline():
            cmd = line.strip().upper()
            if cmd.startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250 sink\r\n")
            elif cmd == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                while (body := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(body)
                server.received.append(b"".join(data))
                self.wfile.write(b"250 queued\r\n")
            elif cmd == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_sink() -> Iterator[Any]:
    server: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSink)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_smtp_forward(tmp_path: Path, smtp_sink: Any) -> None:
    """`[mail] smtp_host` set: each recap is also forwarded over SMTP."""
    port = smtp_sink.server_address[1]
    box = Mailbox(tmp_path / "mailbox", MailConfig(smtp_host="127.0.0.1", smtp_port=port))
    box.send_recap(record(), "alice@example.com")
    assert len(smtp_sink.received) == 1
    msg = email.message_from_bytes(smtp_sink.received[0], policy=email.policy.default)
    assert msg["To"] == "alice@example.com"
    assert len(box.messages()) == 1


def test_smtp_failure_is_a_warning_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreachable SMTP server never breaks processing: the Maildir still gets it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nobody listens there
    box = Mailbox(tmp_path / "mailbox", MailConfig(smtp_host="127.0.0.1", smtp_port=port))
    box.send_recap(record(), "alice@example.com")
    assert len(box.messages()) == 1
    assert "recap not forwarded" in caplog.text


@pytest.mark.parametrize("made", ["empty", "without_tmp", "removed_while_running"])
def test_a_broken_maildir_is_repaired_and_recaps_are_delivered(tmp_path: Path, made: str) -> None:
    """Issue 16 (finding 7): an existing but empty `mailbox/` folder made every recap fail and
    the listing and the clearing raise for good; the Maildir's folders are made again."""
    path = tmp_path / "mailbox"
    if made == "empty":
        path.mkdir()
    elif made == "without_tmp":
        Mailbox(path)
        (path / "tmp").rmdir()
    box = Mailbox(path)
    if made == "removed_while_running":
        for sub in ("tmp", "new", "cur"):
            (path / sub).rmdir()
    assert box.messages() == []
    box.send_recap(record(), "alice@example.com")
    assert {p.name for p in path.iterdir()} == {"cur", "new", "tmp"}
    assert [m["file"] for m in box.messages()] == ["Promo_20300716120000_HQ.csv"]
    for sub in ("tmp", "new", "cur"):
        for f in (path / sub).iterdir():
            f.unlink()
        (path / sub).rmdir()
    box.clear()
    assert len(box) == 0


def test_a_maildir_path_that_cannot_be_a_folder_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "mailbox"
    path.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OSError, match=r"recap Maildir .*mailbox is unusable"):
        Mailbox(path)


def test_the_recap_counts_rows_the_record_only_counted() -> None:
    """Issue 16: a record keeps its first rejected rows and counts the others by error: the
    recap lists the kept ones and counts the rest in French."""
    kept = tuple(RejectedRow(n, "bad_number", "x", "x") for n in range(1, 101))
    msg = compose(
        record(rejected=kept, rejected_more=(("bad_number", 149_890), ("empty_number", 10))),
        "a@b.test",
    )
    body = msg.get_content()
    assert "Lignes rejetées : 150 000" in body
    assert "  … et 149 900 autres lignes rejetées : 149 890 numéro invalide, 10 numéro absent" in (
        body
    )
