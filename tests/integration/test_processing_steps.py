"""The pipeline's named steps, the hook after each one, the events it publishes, recovery as
"resume at a step", and the scheduler of plain callables (docs/design.md)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mockserver.events import AccountChanged, EventBus, FileClaimed, FileFinished, MailWritten
from mockserver.processing import FileContext, Step, resume_at
from mockserver.processing.scheduler import Scheduler
from mockserver.spool import FileKey
from mockserver.tree import Folder
from tests.support.platform import NAME, ROWS_COST, Platform, make_config
from tests.support.waiting import wait_until


def test_the_hook_sees_every_step_in_order_with_its_context(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    seen: list[tuple[Step, str, str, bool, bool]] = []

    def hook(step: Step, ctx: FileContext) -> None:
        seen.append((step, ctx.login, ctx.name, ctx.claim is not None, ctx.record is not None))

    bus = EventBus()
    with bus.subscription() as sub:
        p = platform_factory(make_config(tmp_path / "d"), bus=bus)
        remove = p.processor.add_hook(hook)
        p.drop()
        p.wait_file(NAME)
        assert p.processor.wait_idle(10)
        remove()
        events = []
        while (event := sub.get(0)) is not None:
            events.append(event)
    assert [s[0] for s in seen] == list(Step)
    assert all(s[1:4] == ("alice", NAME, True) for s in seen)
    assert [s[4] for s in seen] == [False, False, False, True, True, True]
    claimed, charged, mailed, finished = events
    assert isinstance(claimed, FileClaimed)
    # Recorded and debited: contract 9.1's account.changed, "credits included".
    assert isinstance(charged, AccountChanged)
    assert (charged.login, charged.change) == ("alice", "charged")
    assert charged.credits == p.backend.account("alice").credits
    assert (claimed.login, claimed.name) == ("alice", NAME)
    assert isinstance(finished, FileFinished)
    assert (finished.status, finished.final_name) == ("archived", "TreatedByMSI_" + NAME)
    assert (finished.folder, finished.sms_count, finished.cost) == ("ARCHIVES", 3, ROWS_COST)
    assert isinstance(mailed, MailWritten)
    assert mailed.file_id == finished.file_id
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_a_failing_hook_leaves_the_file_where_it_is(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """A hook that raises after RECORD is a failure of that step: recorded, not moved, listed
    as retrying (issue 16); after its back-off it resumes at MOVE, charged once."""
    p = platform_factory(make_config(tmp_path / "d", rescan_seconds=3600.0))
    fail = threading.Event()
    fail.set()

    def hook(step: Step, ctx: FileContext) -> None:
        if step is Step.RECORD and fail.is_set():
            fail.clear()
            raise RuntimeError("injected")

    p.processor.add_hook(hook)
    p.drop()
    (record,) = wait_until(p.store.unfinished, what="the file recorded")
    (retry,) = wait_until(p.processor.retrying.files, what="the file listed as retrying")
    assert (retry.login, retry.name, retry.step) == ("alice", NAME, "record")
    assert (retry.attempts, retry.cause) == (1, "injected")
    assert p.names(Folder.PROCESSING) == [NAME]
    assert resume_at(record) is Step.MOVE
    p.wait_file(NAME)  # after its 1 s back-off
    wait_until(lambda: p.processor.retrying.files() == [], what="no longer listed")
    assert p.names(Folder.ARCHIVES) == ["TreatedByMSI_" + NAME]
    assert p.account("alice")["credits"] == 100 - ROWS_COST
    assert len(p.mailbox.messages()) == 1


@pytest.mark.parametrize("failing", [Step.RECORD, Step.MOVE, Step.MAIL])
def test_a_step_that_fails_is_resumed_after_its_back_off_exactly_once(
    platform_factory: Callable[..., Platform], tmp_path: Path, failing: Step
) -> None:
    """docs/design.md, "Processing": an exception from a hook is a failure of that step; the
    file stays where the step left it and is resumed after its back-off (issue 16), while the
    platform runs: moved once, charged once, mailed once, one `file.finished`. After RECORD
    the file is still in PROCESSING; after MOVE or MAIL only its record is left unfinished."""
    bus = EventBus()
    p = platform_factory(make_config(tmp_path / "d", rescan_seconds=3600.0), bus=bus)
    failed = threading.Event()

    def hook(step: Step, ctx: FileContext) -> None:
        if step is failing and not failed.is_set():
            failed.set()
            raise RuntimeError("injected")

    p.processor.add_hook(hook)
    with bus.subscription() as sub:
        p.drop()
        assert failed.wait(10), f"the {failing.name} hook never ran"
        (retry,) = wait_until(p.processor.retrying.files, what="the file listed as retrying")
        assert retry.step == failing.value
        (stranded,) = p.store.unfinished()
        assert p.files() == []  # not done: nobody may see a verdict yet
        p.wait_file(NAME)  # after its back-off
        assert p.processor.wait_idle(10)
        events = []
        while (event := sub.get(0)) is not None:
            events.append(event)
    assert p.store.unfinished() == []
    (done,) = p.files()
    assert done["id"] == stranded.id
    assert p.names(Folder.PROCESSING) == []
    assert p.names(Folder.ARCHIVES) == ["TreatedByMSI_" + NAME]
    assert p.account("alice")["credits"] == 100 - ROWS_COST
    assert len(p.mailbox.messages()) == 1
    finished = [e for e in events if isinstance(e, FileFinished)]
    assert [e.file_id for e in finished] == [stranded.id]


def test_resume_at_reads_the_record() -> None:
    class Rec:
        def __init__(self, stored_name: str | None, mail: str) -> None:
            self.stored_name, self.mail = stored_name, mail

    assert resume_at(None) is Step.READ
    assert resume_at(Rec(None, "pending")) is Step.MOVE  # type: ignore[arg-type]
    assert resume_at(Rec("x", "pending")) is Step.MAIL  # type: ignore[arg-type]
    assert resume_at(Rec("x", "sent")) is None  # type: ignore[arg-type]


def test_scheduler_stop_finishes_only_what_must_be_finished() -> None:
    ran: list[str] = []
    s = Scheduler(2, name="test-scheduler")
    s.start()
    later = time.monotonic() + 3600
    assert s.schedule(later, lambda: ran.append("finish"), finish_on_stop=True)
    assert s.schedule(later, lambda: ran.append("dropped"))
    assert s.schedule(later, lambda: ran.append("keyed"), key="k") is True
    assert s.schedule(later, lambda: ran.append("keyed twice"), key="k") is False  # one waits
    assert s.wait_idle(0.05) is False  # three jobs wait an hour
    s.stop()
    assert not s.schedule(None, lambda: ran.append("refused"))
    assert s.join(time.monotonic() + 5)
    assert "finish" in ran
    assert "dropped" not in ran
    assert "keyed" not in ran  # not finish_on_stop: dropped at stop like any other
    assert "refused" not in ran


def test_scheduler_paused_holds_every_job() -> None:
    ran = threading.Event()
    s = Scheduler(1, name="test-scheduler")
    s.start()
    try:
        with s.paused():
            s.schedule(None, ran.set)
            assert not ran.wait(0.1)
        assert ran.wait(5)
        assert s.wait_idle(5)
    finally:
        s.stop()
        assert s.join(time.monotonic() + 5)


def test_scheduler_key_refuses_a_duplicate_while_it_waits() -> None:
    s = Scheduler(1, name="test-scheduler")
    calls: list[Any] = []
    later = time.monotonic() + 3600
    assert s.schedule(later, lambda: calls.append(1), key=("settle", "/x"))
    assert not s.schedule(later, lambda: calls.append(2), key=("settle", "/x"))
    assert s.waiting(finish_on_stop=False) == 1


@pytest.mark.parametrize("background", [True, False])
def test_wait_idle_ignores_background_jobs(background: bool) -> None:
    s = Scheduler(1, name="test-scheduler")
    s.schedule(time.monotonic() + 3600, lambda: None, background=background)
    assert s.wait_idle(0.05) is background


def test_a_reset_from_a_worker_is_refused_not_a_deadlock(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """`Backend.reset()` pauses the processor; from a step hook (a worker) that would wait for
    itself forever: it is refused with an error, and the file is still processed once."""
    p = platform_factory(make_config(tmp_path / "d", rescan_seconds=3600.0))
    errors: list[BaseException] = []

    def hook(step: Step, ctx: FileContext) -> None:
        if step is Step.MAIL and not errors:
            try:
                p.backend.reset()
            except RuntimeError as exc:
                errors.append(exc)

    p.processor.add_hook(hook)
    p.drop()
    p.wait_file(NAME)
    assert [str(e) for e in errors] == ["cannot pause the processor from one of its own workers"]
    assert p.account("alice")["credits"] == 100 - ROWS_COST


def _fail_once_at(
    step_to_fail: Step,
) -> tuple[threading.Event, Callable[[Step, FileContext], None]]:
    failed = threading.Event()

    def hook(step: Step, ctx: FileContext) -> None:
        if step is step_to_fail and not failed.is_set():
            failed.set()
            raise RuntimeError("injected")

    return failed, hook


def test_a_resume_job_holding_the_record_never_strands_the_adopted_file(
    platform_factory: Callable[..., Platform], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adopt job of a file left in PROCESSING and the resume job of its record run in the
    same scan. When the resume job holds the record as the adopt job begins, the adopt job
    comes back later instead of giving up with the file's name still taken."""
    from mockserver.processing import Processor
    from mockserver.processing.stranded import Stranded

    p = platform_factory(make_config(tmp_path / "d", rescan_seconds=3600.0))
    failed, hook = _fail_once_at(Step.RECORD)
    p.processor.add_hook(hook)
    # The claim let go after the failure, as a stop does (issue 16: while running, the
    # worker keeps it and retries after a back-off): the scans find the file and its record.
    monkeypatch.setattr(p.processor, "_retry_later", lambda ctx, claim, exc: False)
    p.drop()
    assert failed.wait(10)
    assert p.processor.wait_idle(10)
    assert p.names(Folder.PROCESSING) == [NAME]

    resume_holds = threading.Event()
    adopt_tried = threading.Event()
    real_in_processing = Stranded._in_processing
    real_process = Processor._process

    def resume_waits_for_the_adopt_job(self: Stranded, login: str, key: Any) -> bool:
        resume_holds.set()
        adopt_tried.wait(5)
        return real_in_processing(self, login, key)

    def adopt_job_begins_while_held(self: Processor, ctx: FileContext) -> None:
        resume_holds.wait(5)
        try:
            real_process(self, ctx)
        finally:
            adopt_tried.set()

    monkeypatch.setattr(Stranded, "_in_processing", resume_waits_for_the_adopt_job)
    monkeypatch.setattr(Processor, "_process", adopt_job_begins_while_held)
    assert p.processor.drain(20)
    monkeypatch.undo()
    assert resume_holds.is_set()
    assert adopt_tried.is_set()
    wait_until(lambda: p.files(), what="the file done")
    assert p.names(Folder.PROCESSING) == []
    assert p.names(Folder.ARCHIVES) == ["TreatedByMSI_" + NAME]
    assert p.store.unfinished() == []
    assert p.account("alice")["credits"] == 100 - ROWS_COST


def test_a_stale_resume_job_never_finishes_another_file_with_the_same_id(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """A resume job read before a reset must not finish a file recorded after it, or that file
    would be moved and mailed twice. File ids are never reused, not even after a reset
    (contract 6); should a stale record still carry the id of another file (a database of an
    earlier version, which reused them), the job checks the claim key and leaves it alone."""
    bus = EventBus()
    p = platform_factory(make_config(tmp_path / "d", rescan_seconds=3600.0), bus=bus)
    failed, fail_move = _fail_once_at(Step.MOVE)
    remove = p.processor.add_hook(fail_move)
    p.drop()
    assert failed.wait(10)
    assert p.processor.wait_idle(10)
    (old,) = p.store.unfinished()  # what a scan handed to its resume job
    old_key = FileKey.parse(old.claim_key)
    assert old_key is not None
    remove()
    p.backend.reset()
    stale_ran = threading.Event()

    def stale_resume_between_record_and_move(step: Step, ctx: FileContext) -> None:
        if step is Step.RECORD and not stale_ran.is_set():
            assert ctx.record is not None
            assert ctx.record.id > old.id  # never reused, not even after a reset
            # The worst case all the same: a stale record naming the new file's id.
            p.processor.stranded.finish(dataclasses.replace(old, id=ctx.record.id), old_key)
            stale_ran.set()

    p.processor.add_hook(stale_resume_between_record_and_move)
    with bus.subscription() as sub:
        p.drop(data=b'"0612345678";"Bonjour"\n')
        assert stale_ran.wait(10)
        new = p.wait_file(NAME)
        assert p.processor.wait_idle(10)
        events = []
        while (event := sub.get(0)) is not None:
            events.append(event)
    assert [e.file_id for e in events if isinstance(e, FileFinished)] == [new["id"]]
    assert len(p.mailbox.messages()) == 1
    assert p.names(Folder.ARCHIVES) == ["TreatedByMSI_" + NAME]


def test_a_record_that_keeps_failing_is_retried_with_a_pause_not_every_scan(
    platform_factory: Callable[..., Platform], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails every time is retried after a growing pause (issue 16): scans in
    between do not try it again (bounded work and log lines, new uploads not held back)."""
    from mockserver.processing import retries

    monkeypatch.setattr(retries, "FIRST_RETRY_SECONDS", 3600.0)
    p = platform_factory(make_config(tmp_path / "d", rescan_seconds=3600.0))
    attempts: list[int] = []

    def always_fail_move(step: Step, ctx: FileContext) -> None:
        if step is Step.MOVE:
            attempts.append(1)
            raise RuntimeError("injected")

    p.processor.add_hook(always_fail_move)
    p.drop()
    wait_until(lambda: attempts, what="the first failure")
    assert p.processor.wait_idle(10)
    for _ in range(5):
        assert p.processor.drain(10)
    assert len(attempts) == 1  # the pipeline's own; then the pause
    assert len(p.store.unfinished()) == 1
    (retry,) = p.processor.retrying.files()
    assert (retry.step, retry.attempts, retry.cause) == ("move", 1, "injected")


def test_a_reset_from_an_event_callback_is_refused_not_a_deadlock(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """A reset pauses the processor, whose workers may wait to publish on the delivery the
    callback is part of: refused with an error instead."""
    p = platform_factory(make_config(tmp_path / "d", rescan_seconds=3600.0))
    errors: list[str] = []

    def on_event(event: Any) -> None:
        if event.type == "account.changed" and not errors:
            try:
                p.backend.reset()
            except RuntimeError as exc:
                errors.append(str(exc))

    p.backend.bus.subscribe(on_event)
    done = threading.Event()
    threading.Thread(
        target=lambda: (p.backend.update_account("alice", credits=5), done.set()), daemon=True
    ).start()
    assert done.wait(10), "the reset from the callback hung"
    assert errors == ["cannot reset the platform from an event callback"]
