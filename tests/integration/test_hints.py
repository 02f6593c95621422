"""Hints on processed files (contract 5.12): "a file whose bytes equal a file this login had
processed in the last 10 minutes (`duplicate_of`: a client that re-uploads after the platform
moved its file, as rclone does without `.tmp`, pays twice)"; the API and the recap name them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mockserver.config import AccountConfig
from mockserver.core.models import HintCode
from mockserver.core.recap import HINTS_FR
from tests.support.billing import SMS_CREDITS
from tests.support.platform import NAME, ROWS, ROWS_COST, Platform, make_config


class SetClock:
    """The Backend's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def accounts() -> tuple[AccountConfig, ...]:
    return tuple(
        AccountConfig(login=login, password="pw", credits=1000, email=f"{login}@example.com")
        for login in ("alice", "bob")
    )


def test_the_same_bytes_again_within_10_minutes_is_a_duplicate_and_still_charged(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """The same bytes dropped again under the same name (rclone re-uploading after the file was
    moved) are processed and charged again, as the platform would, and the second record
    carries `duplicate_of` = the first file's id and final name, with a hint in the recap. A
    third drop 10 minutes after the second (the Backend's clock) is no duplicate, nor is the
    same file from another login."""
    clock = SetClock()
    p = platform_factory(make_config(tmp_path / "data", accounts=accounts()), clock=clock)

    p.drop(NAME, ROWS)
    first = p.wait_file(NAME)
    assert first["duplicate_of"] is None
    assert first["hints"] == []

    clock.now += timedelta(minutes=9)
    p.drop(NAME, ROWS)
    second = p.wait_file(NAME, after_id=first["id"])
    assert second["status"] == "archived"
    assert second["cost"] == ROWS_COST
    assert second["duplicate_of"] == {"id": first["id"], "final_name": first["final_name"]}
    (hint,) = second["hints"]
    assert hint["code"] == HintCode.DUPLICATE_OF.value
    assert hint["file_id"] == first["id"]
    assert p.account("alice")["credits"] == 1000 - 2 * ROWS_COST
    (_, recap) = p.mailbox.messages()
    assert HINTS_FR[HintCode.DUPLICATE_OF] in recap["body"]
    assert f"n° {first['id']}, '{first['final_name']}'" in recap["body"]

    clock.now += timedelta(minutes=10, seconds=1)
    p.drop(NAME, ROWS)
    third = p.wait_file(NAME, after_id=second["id"])
    assert third["duplicate_of"] is None
    assert third["hints"] == []

    p.drop(NAME, ROWS, login="bob")
    other = p.wait_file(NAME, login="bob")
    assert other["duplicate_of"] is None
    assert p.account("bob")["credits"] == 1000 - 3 * SMS_CREDITS


def test_content_hints_are_recorded_listed_and_mailed_in_french(
    platform: Platform,
) -> None:
    """GET /api/files (the file view) lists a file's content hints; the recap names them in
    French. The verdict is the rules' one: `612345678` is archived and sent as +61…"""
    platform.drop(NAME, b"612345678;Bonjour\n0612345678;Salut\n")
    done = platform.wait_file(NAME)
    assert done["status"] == "archived"
    assert done["sms_count"] == 2
    (hint,) = done["hints"]
    assert (hint["code"], hint["count"], hint["lines"]) == ("leading_zero_dropped", 1, [1])
    assert [m["phone"] for m in platform.messages()] == ["612345678", "33612345678"]
    (recap,) = platform.mailbox.messages()
    assert f"{HINTS_FR[HintCode.LEADING_ZERO_DROPPED]} (ligne 1)" in recap["body"]
