"""The recap's policy (`mailbox.POLICY`, issue 15) remembers parsed and folded headers: the
bytes of every recap must be the very bytes `email.policy.SMTP` makes, whatever the names."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver import mailbox
from mockserver.core.models import Reason, RejectedRow, Status
from mockserver.mailbox import RecapContext, compose
from mockserver.store import FileRecord

NAMES = st.text(min_size=1, max_size=120).map(lambda s: s.replace("\x00", ""))
ADDRESSES = st.sampled_from(
    (
        "demo@example.com",
        "Jöns Åkerlund <jons@example.org>",
        "a.very.long.local.part.indeed.longer.than.most@sub.domain.example.com",
        "",
        "not an address",
    )
)


def _record(i: int, name: str, login: str, archived: bool) -> FileRecord:
    return FileRecord(
        id=i,
        login=login,
        claim_key=f"1:{i}:3:4",
        original_name=name,
        final_name=f"TreatedByMSI_{name}",
        stored_name=None,
        status=Status.ARCHIVED if archived else Status.INVALID,
        reason=None if archived else Reason.EMPTY_FILE.value,
        detail="",
        campaign="Promo",
        send_at="2030-07-16T12:00:00+02:00" if archived else None,
        mult=False,
        rows=3,
        sms_count=2 if archived else 0,
        cost=30 if archived else 0,
        rejected=(RejectedRow(2, "bad_number", "'12' is not a phone number", "12"),),
        received_at="2030-07-01T10:00:00+00:00",
        processed_at=f"2030-07-01T10:00:{i % 60:02d}+00:00",
        processing_ms=1.0,
        mail="pending",
        done=False,
        debited=30 if archived else 0,
    )


def _bytes(record: FileRecord, to: str, now: datetime, linesep: str) -> bytes:
    msg = compose(record, to, RecapContext(now=now))
    return msg.as_bytes(policy=msg.policy.clone(linesep=linesep))


@settings(max_examples=150, deadline=None)
@given(
    cases=st.lists(
        st.tuples(NAMES, ADDRESSES, st.sampled_from(("alice", "bob", "Émile")), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_recap_bytes_equal_the_standard_policy(cases: list[tuple[str, str, str, bool]]) -> None:
    """Each recap twice in a row (the second from the memo) and with both line ends: the
    same bytes as with `email.policy.SMTP`."""
    now = datetime(2030, 7, 1, 10, tzinfo=UTC)
    seen: list[tuple[Any, ...]] = []
    for i, (name, to, login, archived) in enumerate(cases):
        record = _record(i, name, login, archived)
        at = now + timedelta(seconds=i)
        for linesep in ("\n", "\r\n", "\n"):
            seen.append((record, to, at, linesep, _bytes(record, to, at, linesep)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mailbox, "POLICY", email.policy.SMTP)
        for record, to, at, linesep, ours in seen:
            assert ours == _bytes(record, to, at, linesep)


def test_memo_is_bounded() -> None:
    """The memo never holds more than its limit, however many accounts write."""
    now = datetime(2030, 7, 1, 10, tzinfo=UTC)
    for i in range(mailbox._MEMO_LIMIT + 50):
        _bytes(_record(i, "A_20300716120000_HQ.csv", "alice", True), f"u{i}@x.test", now, "\n")
    assert len(mailbox._RecapPolicy._parsed) <= mailbox._MEMO_LIMIT
    assert len(mailbox._RecapPolicy._folded) <= mailbox._MEMO_LIMIT
