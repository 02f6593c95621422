"""Issue 15: a file's SMS go into the store by runs that bind their shared columns once, and
the file keeps its warnings total (schema 5). Whatever the mix of senders, warnings and prices,
and wherever the runs cut, every SMS is stored exactly as judged, with consecutive ids in the
verdict's order, and the recap's total is what adding up the SMS gives."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.config import AccountConfig
from mockserver.core.models import Campaign, Sms, Status, Verdict
from mockserver.store import Store

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SHAPES = st.tuples(
    st.sampled_from((None, "Shop", "Ünïcode")),
    st.sampled_from(("36180", "Shop")),
    st.sampled_from(
        (
            (),
            ("non_gsm_characters",),
            ("non_gsm_characters", "sender_not_applied_no_stop_mention"),
        )
    ),
    st.sampled_from((15, 1, 40)),
)


def _verdict(sms: tuple[Sms, ...]) -> Verdict:
    return Verdict(
        original_name="Camp_20300101120000_HQ.csv",
        status=Status.ARCHIVED,
        reason=None,
        final_name="TreatedByMSI_Camp_20300101120000_HQ.csv",
        campaign=Campaign("Camp", datetime(2030, 1, 1, 11, tzinfo=UTC), False),
        sms=sms,
        cost=sum(s.price for s in sms),
        rows=len(sms),
    )


def _account(store: Store) -> None:
    store.seed_accounts(
        (AccountConfig(login="bob", password="pw", subscription=True, email="b@x.test"),)
    )


@settings(max_examples=40, deadline=None)
@given(
    runs=st.lists(st.tuples(SHAPES, st.integers(1, 260)), min_size=1, max_size=6),
    ahead=st.integers(0, 3),
)
def test_every_sms_stored_as_judged_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    runs: list[tuple[tuple[str | None, str, tuple[str, ...], int], int]],
    ahead: int,
) -> None:
    path = tmp_path_factory.mktemp("insert") / "state.sqlite3"
    sms: list[Sms] = []
    for (asked, applied, warnings, price), count in runs:
        for _ in range(count):
            n = len(sms)
            line, phone, message = 2 * n + 1, f"3361{n:07d}", f"message {n} ê"
            sms.append(Sms(line, phone, message, asked, applied, 10 + n % 150, warnings, price))
    with Store(path) as store:
        _account(store)
        for k in range(ahead):  # ids of earlier files' SMS come first
            store.record("bob", f"earlier{k}", _verdict(tuple(sms[:3])), NOW, NOW)
        rec = store.record("bob", "k", _verdict(tuple(sms)), NOW, NOW)
        pairs, total = store.sms_warnings(rec.id, 10**6)
    assert total == sum(len(s.warnings) for s in sms)
    assert pairs == [(s.line, w) for s in sms for w in s.warnings]
    with sqlite3.connect(path) as conn:
        span = conn.execute(
            "SELECT sms_first, sms_last FROM files WHERE id = ?", (rec.id,)
        ).fetchone()
        rows = conn.execute(
            "SELECT id, file_id, line, phone, message, sender_asked, sender_applied, septets,"
            " warnings, price FROM sms WHERE id BETWEEN ? AND ? ORDER BY id",
            span,
        ).fetchall()
        # A file recorded before schema 5 has no total: the recap adds up its SMS, the same.
        conn.execute("UPDATE files SET warnings_total = NULL WHERE id = ?", (rec.id,))
    conn.close()
    before = ahead * len(sms[:3])
    assert span == (before + 1, before + len(sms))
    assert rows == [
        (span[0] + i, rec.id, s.line, s.phone, s.message, s.sender_asked, s.sender_applied,
         s.septets, ",".join(s.warnings), s.price)
        for i, s in enumerate(sms)
    ]  # fmt: skip
    with Store(path) as store:
        assert store.sms_warnings(rec.id, 10**6) == (pairs, total)
