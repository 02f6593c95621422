"""Issue 16 (finding 7): an existing but empty `mailbox/` folder made every recap fail and
`GET /api/mail` and `POST /api/reset` answer 500 for good: the Maildir is repaired."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.platform import Platform, make_config

NAME = "Promo_20300716120000_HQ.csv"


def test_an_empty_mailbox_folder_is_repaired_at_start(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """The finding as reported: `mailbox/` exists but is empty; recaps are delivered and the
    listing answers."""
    data = tmp_path / "d"
    (data / "mailbox").mkdir(parents=True)
    p = platform_factory(make_config(data))
    p.drop(NAME)
    p.wait_file(NAME)
    record = p.store.file_record(p.store.last_file_id())
    assert record is not None
    assert record.mail == "sent"
    assert [m["file"] for m in p.backend.mail(None, None)] == [NAME]


def test_a_maildir_emptied_while_running_still_lists_resets_and_delivers(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    p = platform_factory(make_config(tmp_path / "d"))
    for sub in ("tmp", "new", "cur"):
        (p.mailbox.path / sub).rmdir()
    assert p.backend.mail(None, None) == []  # GET /api/mail
    p.backend.reset()  # POST /api/reset
    p.drop(NAME)
    p.wait_file(NAME)
    assert [m["file"] for m in p.backend.mail(None, None)] == [NAME]
