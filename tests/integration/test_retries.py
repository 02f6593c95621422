"""Issue 16: a recap the Maildir refuses is owed, retried with back-off and delivered once
(never two recaps, across a failed mark and across a restart); the back-off's pauses."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mockserver.events import EventBus, MailWritten
from mockserver.processing import retries
from mockserver.processing.retries import pause_after
from tests.support.platform import NAME, ROWS_COST, Platform, make_config
from tests.support.waiting import wait_until


def break_maildir(p: Platform) -> None:
    """The Maildir's `new/` replaced by a file: every delivery fails with an OSError (root
    ignores permissions, so chmod cannot make it fail in CI)."""
    new = p.mailbox.path / "new"
    shutil.rmtree(new)
    new.write_bytes(b"")


def mend_maildir(p: Platform) -> None:
    (p.mailbox.path / "new").unlink()  # the next delivery makes the folder again (`repair`)


def mail_state(p: Platform) -> str:
    record = p.store.file_record(p.store.last_file_id())
    assert record is not None
    return record.mail


def test_pauses_double_from_one_second_up_to_a_minute() -> None:
    assert [pause_after(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert pause_after(10_000) == 60


def test_a_recap_the_maildir_refuses_is_retried_and_delivered_once(
    platform_factory: Callable[..., Platform],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The Maildir refuses the recap: the file is done all the same (listed, `mail` still
    `pending`), its recap listed as retrying at step `mail` with the cause; it is tried again
    after pauses that double. Once the Maildir is back, the delivery that lands in it but
    cannot be marked (a locked database) is found again by its Message-ID at the next
    attempt: one recap in the Maildir, one `mail.written`, `mail` = `sent`."""
    monkeypatch.setattr(retries, "FIRST_RETRY_SECONDS", 0.1)  # 0.1 s, 0.2 s, 0.4 s ...
    bus = EventBus()
    p = platform_factory(make_config(tmp_path / "d"), bus=bus)
    break_maildir(p)
    with bus.subscription() as sub, caplog.at_level(logging.INFO, logger="mockserver"):
        p.drop()
        done = p.wait_file(NAME)
        assert (done["status"], done["mail"], done["done"]) == ("archived", "pending", True)
        assert p.account("alice")["credits"] == 100 - ROWS_COST

        def retried_twice() -> Any:
            listed = p.processor.retrying.files()
            return listed if listed and listed[0].attempts >= 2 else None

        (retry,) = wait_until(retried_twice, what="the recap tried again")
        assert (retry.login, retry.name, retry.step) == ("alice", NAME, "mail")
        assert "unusable" in retry.cause
        assert mail_state(p) == "pending"

        real_mark = p.store.mark_mailed
        locked: list[int] = []

        def mark_locked_once(file_id: int, mail: str = "sent") -> Any:
            if not locked:
                locked.append(file_id)
                raise sqlite3.OperationalError("database is locked")
            return real_mark(file_id, mail)

        monkeypatch.setattr(p.store, "mark_mailed", mark_locked_once)
        mend_maildir(p)
        wait_until(lambda: mail_state(p) == "sent", what="the recap delivered")
        wait_until(lambda: p.processor.retrying.files() == [], what="no longer listed")
        events = []
        while (event := sub.get(0)) is not None:
            events.append(event)
    assert locked  # one delivery landed and could not be marked: found again, not re-sent
    assert [m["file"] for m in p.mailbox.messages()] == [NAME]
    assert [e.file_id for e in events if isinstance(e, MailWritten)] == [done["id"]]
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    pattern = re.compile(rf"^login=alice file={re.escape(NAME)} step=mail failed: (\S.*) \(")
    assert len(failures) >= 3  # twice the Maildir, once the database
    assert all(pattern.match(line) for line in failures), failures
    assert "database is locked" in failures[-1]


def test_an_owed_recap_is_delivered_after_a_restart(tmp_path: Path) -> None:
    """A recap still owed when the platform stops is delivered by the next start's recovery,
    once."""
    config = make_config(tmp_path / "d")
    first = Platform.start(config)
    try:
        break_maildir(first)
        first.drop()
        assert first.wait_file(NAME)["mail"] == "pending"
    finally:
        first.stop()
    (tmp_path / "d" / "mailbox" / "new").unlink()
    second = Platform.start(config)
    try:
        wait_until(lambda: mail_state(second) == "sent", what="the owed recap delivered")
        assert [m["file"] for m in second.mailbox.messages()] == [NAME]
        assert second.account("alice")["credits"] == 100 - ROWS_COST
        assert len(second.files()) == 1
    finally:
        second.stop()


def test_a_recap_that_fails_the_same_way_every_time_is_failed_not_retried(
    platform_factory: Callable[..., Platform], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure no retry can cure (a header `email` refuses: not the disk, the Maildir or
    the database) leaves the recap `failed`, nothing listed as retrying."""
    p = platform_factory(make_config(tmp_path / "d"))

    def refused(*args: Any, **kwargs: Any) -> str:
        raise ValueError("header refused")

    monkeypatch.setattr(p.mailbox, "send_recap", refused)
    p.drop()
    assert p.wait_file(NAME)["mail"] == "failed"
    assert p.processor.wait_idle(10)
    assert p.processor.retrying.files() == []


def test_a_stop_tries_a_retrying_file_once_more_then_leaves_it_for_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop finishes the files in PROCESSING: one waiting out its back-off is tried once
    more at once, and when that fails too it is left there (the stop does not loop on it)
    and finished by the next start, charged once."""
    from mockserver.processing import FileContext, Step
    from mockserver.tree import Folder

    config = make_config(tmp_path / "d")
    first = Platform.start(config)

    def judge_fails(step: Step, ctx: FileContext) -> None:
        if step is Step.JUDGE:
            raise RuntimeError("injected")

    first.processor.add_hook(judge_fails)
    processing = first.folder(Folder.PROCESSING)
    with caplog.at_level(logging.ERROR, logger="mockserver"):
        first.drop()
        wait_until(first.processor.retrying.files, what="the first failure")
        first.stop()  # asserts the processor stopped within 10 s
    last = [r.getMessage() for r in caplog.records if "step=judge failed" in r.getMessage()][-1]
    assert last.endswith("left for the next start)"), last
    assert os.listdir(processing) == [NAME]
    second = Platform.start(config)
    try:
        assert second.wait_file(NAME)["status"] == "archived"
        assert second.account("alice")["credits"] == 100 - ROWS_COST
        assert len(second.files()) == 1
        assert second.names(Folder.PROCESSING) == []
    finally:
        second.stop()
