"""The SQLite store: accounts, the exactly-once ledger, read filters, reset (contract 5, 6)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mockserver.config import AccountConfig, verify_password
from mockserver.core.models import PREFIX, Campaign, Reason, RejectedRow, Sms, Status, Verdict
from mockserver.store import (
    SCHEMA_VERSION,
    AccountExists,
    AccountRow,
    InsufficientCredits,
    Store,
    UnknownAccount,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def verdict(
    name: str = "Camp_20300101120000_HQ.csv",
    n: int = 3,
    *,
    reason: Reason | None = None,
    send_at: datetime | None = None,
    phone_base: int = 33612345000,
    price: int = 1,
) -> Verdict:
    """A verdict as the judge gives it; `price` is each SMS's (the store charges `cost`, the
    sum, whatever the prices: these tests use 1 to keep the figures small)."""
    when = send_at or datetime(2030, 1, 1, 12, 0, tzinfo=PARIS)
    camp = (
        Campaign(name.split("_")[0], when, False)
        if reason is not Reason.INCORRECT_FILENAME
        else None
    )
    if reason is not None:
        return Verdict(
            original_name=name,
            status=Status.INVALID,
            reason=reason,
            final_name=f"{PREFIX}{reason.value}_{name}",
            campaign=camp,
            rejected=(RejectedRow(2, "bad_number", "12 is not a phone number"),),
            detail="explained",
        )
    sms = tuple(
        Sms(i + 1, str(phone_base + i), f"message {i}", None, "36180", 9, (), price)
        for i in range(n)
    )
    return Verdict(
        original_name=name,
        status=Status.ARCHIVED,
        reason=None,
        final_name=f"{PREFIX}{name}",
        campaign=camp,
        sms=sms,
        cost=n * price,
        rows=n,
    )


def acc(login: str = "alice", credits: int = 10, **kw: object) -> AccountConfig:
    return AccountConfig(login=login, password="pw", credits=credits, email=f"{login}@x.test", **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "state.sqlite3")
    s.seed_accounts([acc("alice", 10), acc("bob", 5, subscription=True)])
    yield s
    s.close()


def test_record_archived_writes_file_sms_and_debit_together(store: Store) -> None:
    """Contract 5.4: archived -> SMS recorded, "credits drop by the SMS count"."""
    rec = store.record("alice", "k1", verdict(n=3), NOW, NOW, 1.5)
    assert rec.status is Status.ARCHIVED
    assert rec.debited == rec.cost
    assert rec.sms_count == 3
    assert rec.cost == 3
    assert store.account("alice").credits == 7
    msgs = store.messages(login="alice")
    assert [m.phone for m in msgs] == ["33612345000", "33612345001", "33612345002"]
    assert msgs[0].campaign == "Camp"
    assert msgs[0].file == "Camp_20300101120000_HQ.csv"
    assert msgs[0].warnings == ()


def test_each_sms_keeps_its_price_and_the_file_its_cost(store: Store) -> None:
    """Contract 3 `[pricing]`, issue 12: the account drops by the file's cost (the sum of its
    SMS's prices), and each SMS is read back with the price it was charged."""
    store.seed_accounts([acc("rich", 100)])
    rec = store.record("rich", "k1", verdict(n=3, price=15), NOW, NOW)
    assert (rec.sms_count, rec.cost) == (3, 45)
    assert store.account("rich").credits == 55
    assert [m.price for m in store.messages(login="rich")] == [15, 15, 15]
    with pytest.raises(InsufficientCredits):
        store.record("rich", "k2", verdict(n=4, price=15), NOW, NOW)
    assert store.account("rich").credits == 55


def test_record_is_idempotent_on_the_claim_key(store: Store) -> None:
    """docs/design.md, exactly once: a second record of the same claim charges nothing."""
    first = store.record("alice", "k1", verdict(n=4), NOW, NOW)
    again = store.record("alice", "k1", verdict(n=4), NOW, NOW)
    assert again.id == first.id
    assert store.account("alice").credits == 6
    assert store.count_messages("alice") == 4


def test_same_key_after_move_is_a_new_file(store: Store) -> None:
    """A finished record does not capture a later file that reuses the inode key."""
    first = store.record("alice", "k1", verdict(n=1), NOW, NOW)
    store.mark_moved(first.id, first.final_name)
    second = store.record("alice", "k1", verdict(n=1), NOW, NOW)
    assert second.id != first.id
    assert store.account("alice").credits == 8


def test_insufficient_credits_writes_nothing(store: Store) -> None:
    """Contract 5.4.4: credits never negative; the caller must judge again."""
    with pytest.raises(InsufficientCredits):
        store.record("alice", "k1", verdict(n=11), NOW, NOW)
    assert store.account("alice").credits == 10
    assert store.files(include_pending=True) == []
    assert store.count_messages() == 0


def test_subscription_is_not_debited(store: Store) -> None:
    """Contract 3: `subscription = true`: "billed at month end, never Not_enough_credits"."""
    rec = store.record("bob", "k1", verdict(n=50), NOW, NOW)
    assert rec.cost == 50
    assert rec.debited == 0  # what the recap calls the month-end invoice's
    assert store.account("bob").credits == 5


def test_invalid_records_rejected_rows_and_costs_nothing(store: Store) -> None:
    """Contract 5.4: "An invalid file sends nothing and costs nothing"."""
    rec = store.record("alice", "k1", verdict(reason=Reason.EMPTY_FILE), NOW, NOW)
    store.mark_moved(rec.id, rec.final_name)
    store.mark_mailed(rec.id)
    (f,) = store.files(login="alice", status="invalid")
    assert f.reason == "Empty_File"
    assert f.rejected == (RejectedRow(2, "bad_number", "12 is not a phone number"),)
    assert f.sms_count == 0
    assert store.account("alice").credits == 10


def test_concurrent_records_never_overdraw(store: Store) -> None:
    """Credits never negative under concurrent writers: exactly 10 one-SMS files pass."""
    results: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            store.record("alice", f"k{i}", verdict(n=1, phone_base=33600000000 + i), NOW, NOW)
            outcome = "ok"
        except InsufficientCredits:
            outcome = "short"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 10
    assert store.account("alice").credits == 0
    assert store.total_charged("alice") == 10


def test_files_filters_and_pending_hidden(store: Store) -> None:
    """Contract 6: `GET /api/files?login=&status=&name=`; name matches original or final."""
    a = store.record("alice", "k1", verdict("A_20300101120000_HQ.csv", 1), NOW, NOW)
    b = store.record(
        "bob", "k2", verdict("B_20300101120000_HQ.csv", reason=Reason.NO_VALID_TPOA), NOW, NOW
    )
    assert store.files() == []  # not finished yet
    assert len(store.files(include_pending=True)) == 2
    for r, stored in (
        (a, a.final_name),
        (b, "TreatedByMSI_No_valid_TPOA_B_20300101120000_HQ-2.csv"),
    ):
        store.mark_moved(r.id, stored)
        store.mark_mailed(r.id)
    assert [f.login for f in store.files(login="bob")] == ["bob"]
    assert [f.status for f in store.files(status="archived")] == [Status.ARCHIVED]
    assert store.files(name="A_20300101120000_HQ.csv")[0].final_name == a.final_name
    hit = store.files(name="TreatedByMSI_No_valid_TPOA_B_20300101120000_HQ-2.csv")
    assert hit[0].original_name == "B_20300101120000_HQ.csv"
    assert store.files(name="nothing.csv") == []


def test_messages_filters_and_status_computed_at_read_time(store: Store) -> None:
    """Contract 5.10: "An SMS is `scheduled` until then, `sent` after"."""
    past = datetime(2020, 1, 1, 9, 0, tzinfo=PARIS)
    store.record("alice", "k1", verdict("Old_20200101090000_HQ.csv", 2, send_at=past), NOW, NOW)
    store.record(
        "alice", "k2", verdict("New_20300101120000_HQ.csv", 1, phone_base=33700000000), NOW, NOW
    )
    now = NOW.timestamp()
    assert [m.campaign for m in store.messages(sent_by=now)] == ["Old", "Old"]
    assert [m.campaign for m in store.messages(scheduled_after=now)] == ["New"]
    later = datetime(2031, 1, 1, tzinfo=UTC).timestamp()
    assert [m.campaign for m in store.messages(sent_by=later)] == ["Old", "Old", "New"]
    assert len(store.messages(phone="33700000000")) == 1
    assert len(store.messages(file="Old_20200101090000_HQ.csv")) == 2
    assert len(store.messages(file="TreatedByMSI_Old_20200101090000_HQ.csv")) == 2
    assert len(store.messages(limit=2, offset=1)) == 2
    assert store.messages(login="bob") == []
    assert store.messages()[0].send_at == past.isoformat()


def test_accounts_seed_keeps_balance_across_restart(tmp_path: Path) -> None:
    """A restart keeps the credits left; settings follow the config; new accounts added."""
    path = tmp_path / "s.sqlite3"
    with Store(path) as s:
        s.seed_accounts([acc("alice", 10)])
        s.record("alice", "k", verdict(n=4), NOW, NOW)
    with Store(path) as s:
        s.seed_accounts([acc("alice", 10, subscription=True), acc("carol", 3)])
        alice = s.account("alice")
        assert alice.credits == 6
        assert alice.subscription is True
        assert s.account("carol").credits == 3


def test_add_update_and_runtime_accounts(store: Store) -> None:
    """Contract 6: POST and PATCH /api/accounts; run-time accounts keep a password hash."""
    created = store.add_account(acc("dave", 7))
    assert created == AccountRow(
        login="dave", credits=7, subscription=False, email="dave@x.test", configured=False
    )
    with pytest.raises(AccountExists):
        store.add_account(acc("dave", 1))
    updated = store.update_account("dave", credits=2, subscription=True, email="d@y.test")
    assert (updated.credits, updated.subscription, updated.email) == (2, True, "d@y.test")
    store.update_account("dave", password="new secret")
    (runtime,) = store.runtime_accounts()
    assert runtime.login == "dave"
    assert runtime.password_hash is not None
    assert verify_password("new secret", runtime.password_hash)
    with pytest.raises(UnknownAccount):
        store.update_account("nobody", credits=1)
    with pytest.raises(ValueError, match=">= 0"):
        store.update_account("dave", credits=-1)
    assert [a.login for a in store.accounts()] == ["alice", "bob", "dave"]


def test_reset_restores_configured_and_removes_runtime(store: Store) -> None:
    """Contract 6, POST /api/reset: "empties files, SMS …; restores configured accounts and
    credits"; accounts created at run time are removed."""
    store.add_account(acc("dave", 7))
    store.record("alice", "k", verdict(n=4), NOW, NOW)
    removed = store.reset([acc("alice", 10), acc("bob", 5, subscription=True)])
    assert removed == ["dave"]
    assert store.account("alice").credits == 10
    assert store.files(include_pending=True) == []
    assert store.count_messages() == 0
    assert store.account("dave") is None


def test_file_ids_increase_and_are_never_reused(tmp_path: Path) -> None:
    """Contract 6: "every file has an increasing id", `last_id` 0 when none: not even a reset
    (which SQLite alone would let start again from 1), twice, or a restart brings an id
    back; `after_id` keeps the files above it."""
    store = Store(tmp_path / "state.sqlite3")
    store.seed_accounts([acc("alice", 1000)])
    assert store.last_file_id() == 0
    first = store.record("alice", "k1", verdict(n=1), NOW, NOW)
    second = store.record("alice", "k2", verdict(n=1), NOW, NOW)
    assert 0 < first.id < second.id == store.last_file_id()  # files being finished count
    assert [f.id for f in store.files(after_id=first.id, include_pending=True)] == [second.id]
    store.reset([acc("alice", 1000)])
    assert store.last_file_id() == 0
    store.reset([acc("alice", 1000)])
    third = store.record("alice", "k3", verdict(n=1), NOW, NOW)
    assert third.id > second.id
    store.reset([acc("alice", 1000)])
    store.close()
    store = Store(tmp_path / "state.sqlite3")
    try:
        assert store.record("alice", "k4", verdict(n=1), NOW, NOW).id > third.id
    finally:
        store.close()


def test_mark_mailed_returns_the_done_record(store: Store) -> None:
    """The pipeline publishes `file.finished` from what `mark_mailed` returns."""
    rec = store.record("alice", "k", verdict("W_20300101120000_HQ.csv", 1), NOW, NOW)
    store.mark_moved(rec.id, rec.final_name)
    done = store.mark_mailed(rec.id)
    assert done is not None
    assert (done.id, done.done, done.mail) == (rec.id, True, "sent")
    assert store.mark_mailed(rec.id + 1000) is None


def test_unfinished_lists_what_recovery_must_finish(store: Store) -> None:
    """Contract 5.2: a crash between record and move is finished at the next start."""
    rec = store.record("alice", "k", verdict(n=1), NOW, NOW)
    assert [r.id for r in store.unfinished()] == [rec.id]
    store.mark_moved(rec.id, rec.final_name)
    assert store.open_claim("alice", "k") is None
    assert [r.id for r in store.unfinished()] == [rec.id]
    store.mark_mailed(rec.id, "skipped")
    assert store.unfinished() == []
    with pytest.raises(ValueError, match="mail state"):
        store.mark_mailed(rec.id, "lost")


def test_reads_from_another_thread_while_writing(store: Store) -> None:
    """The HTTP API reads from its own thread (its own connection under WAL)."""
    store.record("alice", "k", verdict(n=2), NOW - timedelta(days=1), NOW)
    out: list[int] = []
    t = threading.Thread(target=lambda: out.append(len(store.messages())))
    t.start()
    t.join()
    assert out == [2]


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="aware"):
        store.record("alice", "k", verdict(n=1), datetime(2024, 1, 1), NOW)


# The schema of version 1 (commit 5cecdc7, `mockserver/store.py`), before SMS had a price: the
# tables the migration touches or reads.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts (
    login TEXT PRIMARY KEY,
    credits INTEGER NOT NULL CHECK (credits >= 0),
    subscription INTEGER NOT NULL DEFAULT 0,
    email TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    configured INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL,
    claim_key TEXT NOT NULL,
    original_name TEXT NOT NULL,
    final_name TEXT NOT NULL,
    stored_name TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    campaign TEXT,
    send_at TEXT,
    send_ts REAL,
    mult INTEGER NOT NULL DEFAULT 0,
    rows INTEGER NOT NULL DEFAULT 0,
    sms_count INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    rejected TEXT NOT NULL DEFAULT '[]',
    received_at TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    processing_ms REAL NOT NULL DEFAULT 0,
    mail TEXT NOT NULL DEFAULT 'pending',
    done INTEGER NOT NULL DEFAULT 0,
    sms_first INTEGER,
    sms_last INTEGER
);
CREATE TABLE sms (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL,
    line INTEGER NOT NULL,
    phone TEXT NOT NULL,
    message TEXT NOT NULL,
    sender_asked TEXT,
    sender_applied TEXT NOT NULL,
    septets INTEGER NOT NULL,
    warnings TEXT NOT NULL DEFAULT ''
);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO accounts VALUES ('alice', 8, 0, 'alice@x.test', NULL, 1, '2024-05-01T10:00:00+00:00');
INSERT INTO files (id, login, claim_key, original_name, final_name, stored_name, status,
    campaign, send_at, send_ts, sms_count, cost, rejected, received_at, processed_at, mail,
    done, sms_first, sms_last)
VALUES (1, 'alice', 'k0', 'Old_20300101120000_HQ.csv', 'TreatedByMSI_Old_20300101120000_HQ.csv',
    'TreatedByMSI_Old_20300101120000_HQ.csv', 'archived', 'Old', '2030-01-01T12:00:00+01:00',
    1893495600.0, 2, 2, '[[3, "bad_number", "12 is not a phone number"]]',
    '2024-05-01T10:00:00+00:00', '2024-05-01T10:00:00+00:00', 'sent', 1, 1, 2);
INSERT INTO sms VALUES (1, 1, 1, '33611111111', 'un', NULL, '36180', 2, '');
INSERT INTO sms VALUES (2, 1, 2, '33622222222', 'deux', NULL, '36180', 4, '');
"""


def test_a_schema_1_database_is_migrated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Schema 2 (issue 12) keeps each SMS's price: a database of version 1 opens, its SMS read
    with the 1 credit they were charged, and new SMS are recorded with their own price. The
    upgrade says, once, that balances are kept and how to restore the configured credits."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_V1)
    conn.close()
    with caplog.at_level("WARNING", logger="mockserver.store"), Store(path) as s:
        assert "balances are kept" in caplog.text
        assert "POST /api/reset" in caplog.text
        (done,) = s.files(login="alice")
        assert done.debited is None  # recorded before the ledger kept what it took
        s.seed_accounts([acc("alice", 10)])
        assert s.account("alice").credits == 8  # the balance left is kept
        (old,) = s.files(login="alice")
        assert (old.sms_count, old.cost, old.rejected[0].value) == (2, 2, "")
        assert [(m.phone, m.price) for m in s.messages(login="alice")] == [
            ("33611111111", 1),
            ("33622222222", 1),
        ]
        s.record("alice", "k1", verdict(n=1, price=5, phone_base=33633333333), NOW, NOW)
        assert [m.price for m in s.messages(login="alice")] == [1, 1, 5]
        assert s.account("alice").credits == 3
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
            str(SCHEMA_VERSION),
        )
    conn.close()
    caplog.clear()
    with caplog.at_level("WARNING", logger="mockserver.store"), Store(path) as s:
        # Opening a migrated database again changes nothing and says nothing.
        assert [m.price for m in s.messages(login="alice")] == [1, 1, 5]
    assert "upgraded" not in caplog.text


def test_sms_warnings_count_warnings_not_sms(store: Store) -> None:
    """The recap lists at most `limit` warnings and says how many there are in all (contract
    5.11): an SMS with two warnings counts two."""
    both = ("non_gsm_characters", "sender_not_applied_no_stop_mention")
    sms = tuple(
        Sms(i + 1, str(33612345000 + i), f"m {i}", "Shop", "36180", 3, both, 1) for i in range(60)
    )
    base = verdict(n=1)
    rec = store.record("bob", "k", replace(base, sms=sms, cost=60), NOW, NOW)  # subscription
    pairs, total = store.sms_warnings(rec.id, 100)
    assert total == 120
    assert len(pairs) == 100
    assert pairs[:2] == [(1, both[0]), (1, both[1])]
    assert store.sms_warnings(rec.id + 99, 100) == ([], 0)
