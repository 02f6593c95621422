"""`allmysms-mock watch`'s line per event (`format_event`, pure): one test per contract 9.1 type,
the two notices, colours, and a name that cannot drive the terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest

from mockserver.commands.watch import events_target, format_event, parse_stream, use_colour

T = "2030-07-16T14:03:22.250000+00:00"


def line(kind: str, login: str | None = "demo", **fields: Any) -> str:
    return format_event(kind, {"id": 7, "type": kind, "time": T, "login": login, **fields})


CASES: list[tuple[str, str | None, dict[str, Any], str]] = [
    (
        "session.login",
        "demo",
        {"protocol": "ftp", "address": "127.0.0.1:5555"},
        "ftp 127.0.0.1:5555",
    ),
    (
        "session.login_failed",
        "demo",
        {"protocol": "sftp", "address": "127.0.0.1:5555", "reason": "locked_out"},
        "sftp 127.0.0.1:5555 refused: locked_out",
    ),
    (
        "upload.closed",
        "demo",
        {"protocol": "ftp", "name": "/SEND_SMS/x.tmp", "bytes": 120},
        "ftp /SEND_SMS/x.tmp 120 bytes",
    ),
    (
        "upload.refused",
        "demo",
        {"protocol": "ftp", "name": "/SEND_SMS/x.tmp", "reason": "too_large"},
        "ftp /SEND_SMS/x.tmp refused: too_large",
    ),
    (
        "file.renamed",
        "demo",
        {"protocol": "sftp", "name": "/SEND_SMS/x.tmp", "new_name": "/SEND_SMS/x.csv"},
        "sftp /SEND_SMS/x.tmp → /SEND_SMS/x.csv",
    ),
    ("file.deleted", "demo", {"protocol": "ftp", "name": "/ARCHIVES/x.csv"}, "ftp /ARCHIVES/x.csv"),
    (
        "file.claimed",
        "demo",
        {"name": "Promo_20301231120000_HQ.csv"},
        "Promo_20301231120000_HQ.csv",
    ),
    ("mail.written", "demo", {"file_id": 3, "message_id": "<a@b>"}, "file 3, <a@b>"),
    (
        "file.finished",
        "demo",
        {
            "name": "Promo_1_HQ.csv",
            "file_id": 1,
            "final_name": "TreatedByMSI_Promo_1_HQ.csv",
            "folder": "ARCHIVES",
            "status": "archived",
            "reason": None,
            "sms_count": 2,
            "cost": 30,
        },
        "Promo_1_HQ.csv → ARCHIVES/TreatedByMSI_Promo_1_HQ.csv archived, 2 SMS, 30 credits",
    ),
    (
        "account.changed",
        "demo",
        {"change": "charged", "credits": 14970},
        "charged, 14970 credits",
    ),
    ("account.changed", "demo", {"change": "removed", "credits": None}, "removed"),
    (
        "sms.sent",
        "demo",
        {"file_id": 4, "campaign": "Promo", "sms_count": 2},
        "file 4, campaign Promo, 2 SMS",
    ),
    (
        "fault.fired",
        "demo",
        {
            "rule_id": 2,
            "on": "upload",
            "action": "disconnect",
            "protocol": "ftp",
            "name": "/SEND_SMS/a",
        },
        "rule 2: disconnect on upload (ftp /SEND_SMS/a)",
    ),
    (
        "clock.changed",
        None,
        {"now": "2030-07-16T14:03:22+00:00", "frozen": True},
        "now 2030-07-16T14:03:22+00:00, frozen",
    ),
    ("reset", None, {}, "the platform was reset"),
]


@pytest.mark.parametrize(("kind", "login", "fields", "details"), CASES, ids=[c[0] for c in CASES])
def test_each_event_type_is_one_readable_line(
    kind: str, login: str | None, fields: dict[str, Any], details: str
) -> None:
    text = line(kind, login, **fields)
    assert "\n" not in text
    assert "\033" not in text
    clock, shown_kind, rest = text[:8], text[10:30].strip(), text[32:]
    assert clock == "14:03:22"
    assert shown_kind == kind
    who, _, shown = rest.partition("  ")
    assert who == ("-" if login is None else login)
    assert shown == details


def test_an_invalid_file_shows_its_reason() -> None:
    text = line(
        "file.finished",
        name="Bad.csv",
        final_name="Bad.csv",
        folder="INVALIDS",
        status="invalid",
        reason="Incorrect_FileName",
        sms_count=0,
        cost=None,
    )
    assert text.endswith("Bad.csv → INVALIDS/Bad.csv invalid (Incorrect_FileName), 0 SMS")


def test_the_lost_and_overflow_notices() -> None:
    lost = format_event("lost", {"type": "lost", "after": 5, "oldest": 12})
    assert lost.startswith("--:--:--  lost")
    assert "events after 5 are no longer retained: resuming at 12" in lost
    overflow = format_event("overflow", {"type": "overflow", "last_id": 40})
    assert "fell behind after event 40: reconnecting" in overflow


def test_an_unknown_type_shows_its_fields() -> None:
    assert line("new.kind", extra=1).endswith("demo  extra=1")


def test_a_name_cannot_drive_the_terminal() -> None:
    text = line("file.claimed", name="a\x1b[2Jb\rc\u202ed\n.csv")
    assert "\x1b" not in text
    assert "\r" not in text
    assert "\n" not in text
    assert "\u202e" not in text
    assert text.endswith("a\\x1b[2Jb\\x0dc\\u202ed\\x0a.csv")


def test_colours_only_on_a_terminal_without_no_color() -> None:
    coloured = format_event("file.claimed", {"time": T, "login": "demo", "name": "a.csv"}, True)
    assert "\033[" in coloured
    assert "a.csv" in coloured

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_colour(Tty(), {}) is True
    assert use_colour(Tty(), {"NO_COLOR": "1"}) is False
    assert use_colour(io.StringIO(), {}) is False


def test_the_url_becomes_the_events_request() -> None:
    t = events_target("http://127.0.0.1:8021", "demo", 4)
    assert (t.host, t.port, t.https, t.path) == (
        "127.0.0.1",
        8021,
        False,
        "/api/events?login=demo&after=4",
    )
    assert events_target("http://[::1]:9/api/events/", None, None).path == "/api/events"
    with pytest.raises(ValueError, match="http"):
        events_target("ftp://x", None, None)


def test_server_sent_events_are_parsed() -> None:
    text = ': hello\n\nid: 3\nevent: reset\ndata: {}\n\nevent: lost\ndata: {"a":1}\n\n'
    assert list(parse_stream(iter(text.splitlines(keepends=True)))) == [
        ("3", "reset", "{}"),
        (None, "lost", '{"a":1}'),
    ]
