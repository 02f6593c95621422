"""Names the servers refuse but a user can still put straight on disk: not UTF-8, holding a line
break, too long for the final name. The standard: "Every file dropped in SEND_SMS ends in exactly
one of ARCHIVES or INVALIDS, whatever its bytes; a crash is recovered at the next start"."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mockserver.app import MockServer
from mockserver.core.models import Account, Verdict
from mockserver.spool import Spool
from mockserver.tree import Folder
from tests.support.billing import DEMO_CREDITS
from tests.support.platform import ROWS, Platform, make_config
from tests.support.waiting import wait_until

PREFIX = "TreatedByMSI_Incorrect_FileName_"

# Every character `str.splitlines()` breaks on that a POSIX name may hold (not "/" nor NUL).
LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def raw_names(folder: Path) -> list[bytes]:
    return sorted(os.listdir(os.fsencode(folder)))


def put(folder: Path, raw: bytes, data: bytes = ROWS) -> None:
    """Write a file straight on disk under a raw byte name, as a user or a script would."""
    path = os.path.join(os.fsencode(folder), raw)
    with open(path, "wb") as f:
        f.write(data)
    old = os.stat(path).st_mtime - 60  # settled: picked up at once by a scan
    os.utime(path, (old, old))


def headers_are_one_line(platform: Platform) -> None:
    for path in (platform.mailbox.path / "new").iterdir():
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for key, value in msg.items():
            assert str(value).splitlines() == [str(value)], (key, value)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"bad\xff_20301231120000_HQ.csv", "bad\\xff_20301231120000_HQ.csv"),
        (b"caf\xc3_20301231120000_HQ.csv", "caf\\xc3_20301231120000_HQ.csv"),
    ],
)
def test_a_name_that_is_not_utf8_ends_in_invalids(
    platform_factory: Callable[..., Platform], tmp_path: Path, raw: bytes, text: str
) -> None:
    """Contract 5.4.1 (`Incorrect_FileName`) and the standard "whatever its bytes": the raw
    name is kept on disk; the store and the recap carry its printable form, the file is done."""
    p = platform_factory(make_config(tmp_path / "d"))
    put(p.folder(Folder.SEND_SMS), raw)
    p.processor.drain()
    f = p.wait_file(text)
    assert f["status"] == "invalid"
    assert f["reason"] == "Incorrect_FileName"
    assert f["original_name"] == text
    assert f["final_name"] == PREFIX + text
    assert raw_names(p.folder(Folder.INVALIDS)) == [PREFIX.encode() + raw]
    assert raw_names(p.folder(Folder.PROCESSING)) == []
    assert raw_names(p.folder(Folder.SEND_SMS)) == []
    (mail,) = p.mailbox.messages()
    assert mail["file"] == text
    # The caller may also ask with the name as Python sees it on disk.
    assert p.wait_file(os.fsdecode(raw), 1) is not None
    headers_are_one_line(p)


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
def test_a_name_holding_a_line_break_ends_in_invalids_and_is_mailed(
    platform_factory: Callable[..., Platform], tmp_path: Path, brk: str
) -> None:
    """The standard: a file whose name breaks a line (U+2028 …) ends in INVALIDS under its raw
    name, is done (visible to `files()`), and its recap's headers stay one line each."""
    p = platform_factory(make_config(tmp_path / "d"))
    name = f"camp{brk}x.csv"
    put(p.folder(Folder.SEND_SMS), os.fsencode(name))
    p.processor.drain()
    (f,) = wait_until(lambda: p.files(), what="the file done")
    assert f["status"] == "invalid"
    assert f["reason"] == "Incorrect_FileName"
    assert brk not in f["original_name"]
    assert "\\" in f["original_name"]
    assert os.listdir(p.folder(Folder.INVALIDS)) == [PREFIX + name]
    assert len(p.mailbox.messages()) == 1
    headers_are_one_line(p)


def test_bad_names_left_in_processing_are_recovered_at_start_up(tmp_path: Path) -> None:
    """Contract 5.2 "a file found in PROCESSING at start-up (a crash) is judged again" and the
    standard "a crash is recovered at the next start", whatever the names."""
    config = make_config(tmp_path / "d")
    spool = Spool(tmp_path / "d")
    spool.ensure("alice")
    processing = spool.folder("alice", Folder.PROCESSING)
    raws = [b"bad\xff.csv", "a\u2028b.csv".encode(), b"x" * 250 + b".csv"]
    for raw in raws:
        put(processing, raw)
    p = Platform.start(config)
    try:
        assert raw_names(p.folder(Folder.PROCESSING)) == []
        assert len(raw_names(p.folder(Folder.INVALIDS))) == 3
        assert [f["status"] for f in p.files()] == ["invalid"] * 3
        assert len(p.mailbox.messages()) == 3
    finally:
        p.stop()


def test_one_file_failing_recovery_never_blocks_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The standard "a crash is recovered at the next start": a file whose recovery fails is
    logged on one line and left in place; start-up goes on and the others are recovered."""
    from mockserver.core.judge import judge as real_judge

    def judge(name: str, data: bytes, account: Account, now: Any, **options: Any) -> Verdict:
        if name.startswith("Boom"):
            raise RuntimeError("judge exploded")
        return real_judge(name, data, account, now, **options)

    config = make_config(tmp_path / "d", rescan_seconds=3600.0)
    spool = Spool(tmp_path / "d")
    spool.ensure("alice")
    processing = spool.folder("alice", Folder.PROCESSING)
    (processing / "Boom_20300716120000_HQ.csv").write_bytes(ROWS)
    (processing / "Fine_20300716120000_HQ.csv").write_bytes(ROWS)
    with caplog.at_level(logging.ERROR, logger="mockserver"):
        p = Platform.start(config, judge=judge)
    try:
        assert [f["original_name"] for f in p.files()] == ["Fine_20300716120000_HQ.csv"]
        assert os.listdir(p.folder(Folder.PROCESSING)) == ["Boom_20300716120000_HQ.csv"]
        # Recovery logs Boom once; the start-up scan may retry it (and log again) at any time:
        # every error line is about Boom, and each is one line.
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors
        assert all("Boom_20300716120000_HQ.csv" in e and "\n" not in e for e in errors)
    finally:
        p.stop()


def test_a_recap_that_cannot_be_composed_still_finishes_the_file(
    platform_factory: Callable[..., Platform], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Contract 5.11 sends a recap "after each processed file"; a recap that fails (any
    error, not only OSError) is logged, recorded `failed`, and the file is still done."""
    p = platform_factory(make_config(tmp_path / "d"))

    def broken(record: Any, to: str) -> str:
        raise ValueError("header refused")

    monkeypatch.setattr(p.mailbox, "send_recap", broken)
    name = "Promo_20300716120000_HQ.csv"
    p.drop(name)
    f = p.wait_file(name)
    assert f["status"] == "archived"
    assert p.store.file_record(p.store.last_file_id()).mail == "failed"  # type: ignore[union-attr]


def test_a_name_too_long_for_its_final_name_is_shortened(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """Contract 5.3 (`TreatedByMSI_<Reason>_<name>`, nothing overwritten) meets the 255-byte
    limit: a long name put on disk gets a shortened final name (prefix, `.csv`, a hash),
    two long names stay distinct, and the store records the name actually used."""
    p = platform_factory(make_config(tmp_path / "d"))
    send = p.folder(Folder.SEND_SMS)
    first = "a" * 240 + "1.csv"
    second = "a" * 240 + "2.csv"
    for name in (first, second):
        put(send, name.encode())
    p.processor.drain()
    wait_until(lambda: len(p.files()) == 2, what="both files done")
    on_disk = sorted(os.listdir(p.folder(Folder.INVALIDS)))
    assert len(on_disk) == 2
    assert on_disk[0] != on_disk[1]
    for stored in on_disk:
        assert stored.startswith(PREFIX)
        assert stored.endswith(".csv")
        assert len(stored.encode()) <= 255
    assert sorted(f["final_name"] for f in p.files()) == on_disk
    assert os.listdir(p.folder(Folder.PROCESSING)) == []


def test_a_hard_link_planted_in_send_sms_is_never_read(tmp_path: Path) -> None:
    """Contract 4: a login never sees another login's files, "whatever … link it uses": a hard
    link planted on disk in SEND_SMS (no client can make one) to a file outside the tree is
    judged as empty, never read: its text reaches no SMS, no rejected row and no recap, and
    the outside file is unchanged (an adversarial pass saw its secret in GET /api/messages)."""
    outside = tmp_path / "secret.csv"
    outside.write_bytes(b'"0611885298";"SECRET-OUTSIDE-CONTENT"\n')
    outside.chmod(0o600)
    with MockServer(data_dir=tmp_path / "data") as srv:
        name = "Leak_20301231120000_HQ.csv"
        os.link(outside, srv.folder("demo", "SEND_SMS") / name)
        done = srv.wait_for_file(name, timeout=20)
        assert (done["status"], done["reason"]) == ("invalid", "Empty_File")
        assert srv.messages() == []
        assert "SECRET" not in json.dumps(done)
        assert all("SECRET" not in m["body"] for m in srv.mail())
        assert srv.account("demo")["credits"] == DEMO_CREDITS  # type: ignore[index]
    assert outside.read_bytes() == b'"0611885298";"SECRET-OUTSIDE-CONTENT"\n'
