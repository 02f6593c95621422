"""Limits of file names (contract 4 and 5.3): what the servers refuse up front (names that are
not UTF-8, hold a line break, or are too long for their final name), and the text and short
forms the platform uses for names that reach the disk anyway."""

from __future__ import annotations

import email.policy
import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mockserver.core.models import Status
from mockserver.core.text import printable_name
from mockserver.mailbox import RecapContext, compose
from mockserver.servers import policy
from mockserver.spool import FileKey, Spool, short_name
from mockserver.store import FileRecord
from mockserver.tree import Folder

LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
BAD = [*LINE_BREAKS, "\udcff", "\udc80", "\ud800", "\x9b"]


BREAKING = [*LINE_BREAKS, "\x9b"]
NOT_UTF8 = ["\udcff", "\udc80", "\ud800"]


@pytest.mark.parametrize("ch", BREAKING, ids=[f"U+{ord(c):04X}" for c in BREAKING])
def test_names_that_break_a_line_are_refused(ch: str) -> None:
    """Contract 4: "Anything else gets a permission error …, never a crash": a name no header
    or log line can carry is refused by the policy, for every operation."""
    path = f"/SEND_SMS/camp{ch}x.csv"
    assert policy.normalise(path) is None
    assert not policy.may_write(path, "flat", "alice")
    assert not policy.may_rename("/SEND_SMS/a.tmp", path, "flat", "alice")
    assert not policy.may_list(path, "flat", "alice")
    assert policy.normalise(f"/SEND_SMS/{ch}") is None


@pytest.mark.parametrize("ch", NOT_UTF8, ids=[f"U+{ord(c):04X}" for c in NOT_UTF8])
def test_names_that_are_not_utf8_cannot_be_created(ch: str) -> None:
    """Contract 4 (a permission error, never a crash): an upload or rename may not create a
    name that is not UTF-8; one put straight on disk can still be read and deleted."""
    path = f"/SEND_SMS/camp{ch}x.csv"
    decision = policy.may_write(path, "flat", "alice")
    assert not decision
    assert decision.reason == "invalid name: not UTF-8"
    assert not policy.may_write(path + ".tmp", "flat", "alice")
    assert not policy.may_rename("/SEND_SMS/a.tmp", path, "flat", "alice")
    assert policy.may_read(f"/INVALIDS/camp{ch}x.csv", "flat", "alice")
    assert policy.may_delete(f"/INVALIDS/camp{ch}x.csv", "flat", "alice")


def test_ordinary_unicode_names_stay_allowed() -> None:
    """Accents, emoji and non-breaking spaces are ordinary characters (judged by the name
    rule, contract 5.4.1, not refused by the server)."""
    for name in ("café.csv", "a\u00a0b.csv", "😀.csv", "名前.csv"):
        assert policy.may_write(f"/SEND_SMS/{name}", "flat", "alice")


def test_upload_names_leave_room_for_the_final_name() -> None:
    """Contract 5.3: the final name adds up to 32 characters (`TreatedByMSI_Not_enough_credits_`)
    and a `-N` suffix; with 255 bytes a name, an upload name is at most 219 bytes (UTF-8)."""
    assert policy.MAX_NAME_BYTES == 219
    assert len("TreatedByMSI_Not_enough_credits_") == policy.FINAL_PREFIX_MAX
    ok = "a" * 215 + ".csv"
    too_long = "a" * 216 + ".csv"
    assert policy.may_write(f"/SEND_SMS/{ok}", "flat", "alice")
    decision = policy.may_write(f"/SEND_SMS/{too_long}", "flat", "alice")
    assert not decision
    assert decision.reason == ("name too long: at most 219 bytes so the platform's final name fits")
    # Bytes, not characters: "é" is two bytes in UTF-8.
    assert not policy.may_write("/SEND_SMS/" + "é" * 108 + ".csv", "flat", "alice")
    # A `.tmp` upload (contract 5.1, never processed) may carry its 4 extra characters; the
    # rename to the final name is what is checked.
    assert policy.may_write(f"/SEND_SMS/{ok}.tmp", "flat", "alice")
    assert policy.may_rename(f"/SEND_SMS/{ok}.tmp", f"/SEND_SMS/{ok}", "flat", "alice")
    refused = policy.may_rename("/SEND_SMS/a.tmp", f"/SEND_SMS/{too_long}", "flat", "alice")
    assert refused.reason.startswith("name too long")


def test_printable_name() -> None:
    """The text form recorded and mailed: raw bytes as \\xNN, line breaks escaped, anything
    else (all names the servers accept) unchanged."""
    assert printable_name("Promo_20300716120000_HQ.csv") == "Promo_20300716120000_HQ.csv"
    assert printable_name("café 😀.csv") == "café 😀.csv"
    raw = os.fsdecode(b"bad\xff.csv")
    assert printable_name(raw) == (b"bad\xff.csv".decode("utf-8", "backslashreplace"))
    assert printable_name("a\u2028b\nc\x85") == "a\\u2028b\\x0ac\\x85"
    for ch in BAD:
        assert printable_name(ch).splitlines() == [printable_name(ch)]
        printable_name(ch).encode("utf-8")  # storable


def test_short_name_keeps_prefix_extension_and_stays_distinct() -> None:
    """Contract 5.3's name when the file system cannot hold it: `TreatedByMSI_<Reason>_`,
    the `.csv` extension, a hash telling two long names apart, room for a `-N` suffix."""
    long_a = "TreatedByMSI_Incorrect_FileName_" + "a" * 240 + "1.csv"
    long_b = "TreatedByMSI_Incorrect_FileName_" + "a" * 240 + "2.csv"
    short_a, short_b = short_name(long_a), short_name(long_b)
    assert short_a != short_b
    assert short_a == short_name(long_a)  # deterministic: recovery finds it again
    for short in (short_a, short_b):
        assert short.startswith("TreatedByMSI_Incorrect_FileName_aaa")
        assert short.endswith(".csv")
        assert len(os.fsencode(short)) <= 255 - 10
    multi = "TreatedByMSI_Empty_File_" + "é" * 150 + os.fsdecode(b"\xff") + "z.csv"
    assert len(os.fsencode(short_name(multi))) <= 245
    os.fsencode(short_name(multi)).decode("utf-8", "surrogateescape")


def test_finish_shortens_a_final_name_the_file_system_refuses(tmp_path: Path) -> None:
    """Contract 5.3 "nothing is ever overwritten" and the standard "every file … ends in
    exactly one of ARCHIVES or INVALIDS": ENAMETOOLONG falls back to `short_name`."""
    spool = Spool(tmp_path)
    spool.ensure("alice")
    name = "b" * 250 + ".csv"
    final = "TreatedByMSI_Incorrect_FileName_" + name
    with pytest.raises(OSError, match="too long") as caught:
        os.open(spool.target("alice", Status.INVALID) / final, os.O_CREAT | os.O_WRONLY)
    assert caught.value.errno == errno.ENAMETOOLONG
    places = []
    for _ in range(2):
        claimed = spool.folder("alice", Folder.PROCESSING) / name
        claimed.write_bytes(b"x")
        places.append(spool.finish("alice", claimed, final, Status.INVALID))
    assert places[0].name == short_name(final)
    assert places[1].name == short_name(final).removesuffix(".csv") + "-2.csv"
    key_of = os.lstat(places[1])
    found = spool.find_placed("alice", Status.INVALID, final, FileKey.of(key_of))
    assert found == places[1]


@pytest.mark.parametrize("ch", BAD, ids=[f"U+{ord(c):04X}" for c in BAD])
def test_a_recap_header_never_holds_a_line_break(ch: str) -> None:
    """Contract 5.11: a recap after each processed file, whatever its name; `email` refuses
    a header holding any character `str.splitlines()` breaks on."""
    record = FileRecord(
        id=1,
        login="alice",
        claim_key="1:2:3:4",
        original_name=f"camp{ch}x.csv",
        final_name=f"TreatedByMSI_Incorrect_FileName_camp{ch}x.csv",
        stored_name=None,
        status=Status.INVALID,
        reason="Incorrect_FileName",
        detail="",
        campaign=None,
        send_at=None,
        mult=False,
        rows=0,
        sms_count=0,
        cost=0,
        rejected=(),
        received_at="2030-01-01T00:00:00+00:00",
        processed_at="2030-01-01T00:00:00+00:00",
        processing_ms=0.0,
        mail="pending",
        done=False,
    )
    msg = compose(record, "alice@example.com", RecapContext(now=datetime(2030, 1, 1, tzinfo=UTC)))
    data = msg.as_bytes(policy=email.policy.SMTP)
    for key, value in msg.items():
        assert str(value).splitlines() == [str(value)], key
    assert b"camp\\" in data


# Issue 16, finding 9: invisible formatting characters (Unicode category Cf).
FORMAT_CHARS = ["\u202e", "\u202a", "\u200f", "\u200e", "\ufeff", "\u2066", "\u2069", "\u200d"]


@pytest.mark.parametrize("ch", FORMAT_CHARS, ids=[f"U+{ord(c):04X}" for c in FORMAT_CHARS])
def test_names_with_formatting_characters_cannot_be_created(ch: str) -> None:
    """Issue 16: a bidi override or a BOM makes a name read as another (`x\\u202evsc.tmp`
    shows as `xpmt.csv`): the shared policy refuses to create one, by upload or rename, and
    names the character; a file already on disk under such a name may still be listed,
    read and deleted (contract 4: never stuck)."""
    path = f"/SEND_SMS/camp{ch}vsc.tmp"
    decision = policy.may_write(path, "flat", "alice")
    assert not decision
    assert decision.reason == f"invalid name: invisible formatting character U+{ord(ch):04X}"
    assert not policy.may_rename("/SEND_SMS/a.tmp", path, "flat", "alice")
    assert policy.may_list(path, "flat", "alice")
    assert policy.may_read(path, "flat", "alice")
    assert policy.may_delete(path, "flat", "alice")


def test_a_name_with_a_formatting_character_planted_on_disk_is_incorrect() -> None:
    """Issue 16: the processor's side of a planted `…\\u202e…` name: it fails the name grammar
    (Incorrect_FileName) and its printable form spells the character out."""
    from mockserver.core.filename import check_filename

    name = "camp\u202e_20301231120000_HQ.csv"
    assert isinstance(check_filename(name), str)
    assert "\u202e" not in printable_name(name)
    assert "\\u202e" in printable_name(name)
