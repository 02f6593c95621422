"""The pipeline of one file as named steps (claim, read, judge, record, move, mail), the hook
run after each step, and recovery as "resume at the step the store and the disk say".
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mockserver.core.faults import FaultRule
from mockserver.core.models import Account, Verdict
from mockserver.core.pricing import PriceTable
from mockserver.core.text import printable_name
from mockserver.events import EventBus, FileClaimed, FileFinished, MailWritten
from mockserver.faults import Faults
from mockserver.mailbox import Mailbox
from mockserver.processing.faulting import Crashed, Stalled, StepFaults, forced
from mockserver.processing.gcpause import GC_PAUSE, GC_PAUSE_BYTES
from mockserver.processing.notices import announce_charge
from mockserver.processing.recaps import RecapWriter
from mockserver.processing.retries import INFRASTRUCTURE
from mockserver.spool import Claim, FileKey, Spool
from mockserver.store import FileRecord, InsufficientCredits, Store

if TYPE_CHECKING:
    from mockserver.config import Config

log = logging.getLogger("mockserver.processor")


class JudgeFn(Protocol):
    """`core.judge.judge`, or a stand-in with its signature: the pipeline passes the
    configuration's `[pricing]` and `processing.qualities` (contract 3)."""

    def __call__(
        self,
        file_name: str,
        data: bytes,
        account: Account,
        now: datetime,
        /,
        *,
        prices: PriceTable,
        qualities: Collection[str],
    ) -> Verdict: ...


Clock = Callable[[], datetime]


def first_use_judge(*args: Any, **kwargs: Any) -> Verdict:
    """`core.judge.judge`, imported at the first file: its regular expressions take tens of
    milliseconds to compile, which `serve` no longer spends before READY (issue 15)."""
    from mockserver.core.judge import judge

    return judge(*args, **kwargs)


# Credits may change between JUDGE and RECORD (another file, the API): judge again, this often.
MAX_JUDGE_ATTEMPTS = 100


class Step(enum.Enum):
    """The steps of one file, in order. A hook runs after each one (see `Pipeline.add_hook`)."""

    CLAIM = "claim"  # moved from SEND_SMS into PROCESSING (spool.claim)
    READ = "read"  # its bytes read from PROCESSING
    JUDGE = "judge"  # a verdict from the rule engine (again if credits changed meanwhile)
    RECORD = "record"  # verdict, SMS and credits in one store transaction (store.record)
    MOVE = "move"  # moved to ARCHIVES/INVALIDS; the store marks it moved after the hook
    MAIL = "mail"  # recap delivered (or skipped/failed); the store marks it after the hook


@dataclass
class FileContext:
    """What the pipeline knows of one file; hooks read it (and must not change it)."""

    login: str
    name: str  # the name the file had in SEND_SMS (raw, as on disk)
    claim: Claim | None  # None when recovering a record whose file left PROCESSING
    received_at: datetime
    recovering: bool = False
    record: FileRecord | None = None  # once RECORD is done (or found at recovery)
    verdict: Verdict | None = None  # from JUDGE until RECORD is done (then the record)
    held: float = 0.0  # seconds a `stall` fault on CLAIM keeps it in PROCESSING (9.2)
    step: Step = Step.CLAIM  # the step under way (the one a failure names: issue 16)


Hook = Callable[[Step, FileContext], None]


def resume_at(record: FileRecord | None) -> Step | None:
    """The step a claimed file resumes at, from what the store says of it: not recorded ->
    READ; recorded, not moved -> MOVE; moved, recap pending -> MAIL; else nothing left."""
    if record is None:
        return Step.READ
    if record.stored_name is None:
        return Step.MOVE
    if record.mail == "pending":
        return Step.MAIL
    return None


class Pipeline:
    """Runs the steps of one file; thread-safe (one file per call, many files at once).
    The caller makes sure one file is in one `run` at a time."""

    def __init__(
        self,
        config: Config,
        store: Store,
        spool: Spool,
        mailbox: Mailbox,
        *,
        judge: JudgeFn,
        clock: Clock,
        bus: EventBus,
        faults: Faults | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.spool = spool
        self.mailbox = mailbox
        self.bus = bus
        self._judge = judge
        self._clock = clock
        self._hooks: list[Hook] = []
        self._hooks_lock = threading.Lock()
        self.step_faults = StepFaults(faults, bus)  # contract 9.2, `processing/faulting.py`
        # The GC is process-wide, so is its pause: shared by every pipeline of the process
        # (the pytest plugin runs several platforms in one), never re-enabled under another.
        self.gc_pause = GC_PAUSE
        self.recaps = RecapWriter(config, store, mailbox, clock)
        # A recap owed (its file done, `mail` pending): the processor retries it.
        self.recap_owed: Callable[[FileRecord, BaseException], None] = lambda record, exc: None

    # -- the hook ------------------------------------------------------------------------

    def add_hook(self, hook: Hook) -> Callable[[], None]:
        """Call `hook(step, ctx)` after each step of every file, on the worker's thread;
        returns the function that removes it. What it raises propagates like a failure of
        the step (the file stays where it is, retried at the next scan)."""
        with self._hooks_lock:
            self._hooks.append(hook)

        def remove() -> None:
            with self._hooks_lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

        return remove

    def _after(self, step: Step, ctx: FileContext) -> None:
        with self._hooks_lock:
            hooks = tuple(self._hooks)
        for hook in hooks:
            hook(step, ctx)

    # -- the steps -----------------------------------------------------------------------

    def now(self) -> datetime:
        """What time it is for the files of this pipeline (the Backend's clock, when given)."""
        return self._clock()

    def claim(self, login: str, path: Path) -> FileContext | None:
        """CLAIM: move `path` into PROCESSING; None when another trigger was first, or the
        file is gone or is not a regular file (`Spool.claim`)."""
        received_at = self._clock()
        claim = self.spool.claim(login, path)
        if claim is None:
            return None
        ctx = FileContext(login, claim.name, claim, received_at)
        self.bus.publish(FileClaimed(login=login, name=printable_name(claim.name)))
        self._after(Step.CLAIM, ctx)
        rule = self._fault(Step.CLAIM, ctx)
        if rule is not None and rule.action == "crash":
            raise Crashed(rule)
        ctx.held = rule.seconds if rule is not None and rule.action == "stall" else 0.0
        return ctx

    def _fault(self, step: Step, ctx: FileContext, *, stall: bool = False) -> FaultRule | None:
        """The fault rule `step` of this file meets (`processing/faulting.py`); with
        `stall`, a `stall` rule raises `Stalled` here."""
        record = ctx.record
        key = str(ctx.claim.key) if ctx.claim else record.claim_key if record else ctx.name
        rule = self.step_faults.fire(step.value, ctx.login, ctx.name, key)
        if stall and rule is not None and rule.action == "stall":
            raise Stalled(rule)
        return rule

    def resume(self, ctx: FileContext) -> None:
        """Go on with a file a `stall` fault put aside, at the step the store says."""
        if ctx.record is None:
            self.run(ctx)
            return
        ctx.record = self.store.file_record(ctx.record.id)
        if ctx.record is not None:  # else a reset removed it
            self.finish(ctx)

    def recovered(self, claim: Claim, received_at: datetime) -> FileContext:
        """The context of a file found in PROCESSING (a crash, or one no worker holds)."""
        return FileContext(claim.login, claim.name, claim, received_at, recovering=True)

    def run(self, ctx: FileContext) -> None:
        """Take a claimed file from the step the store says it reached to the end."""
        started = time.perf_counter()
        assert ctx.claim is not None
        ctx.step = Step.READ
        ctx.record = self.store.open_claim(ctx.login, str(ctx.claim.key))
        self.finish(ctx, started)

    def finish(self, ctx: FileContext, started: float | None = None) -> None:
        """Run the steps left from `resume_at(ctx.record)`; then log the file's line."""
        started = time.perf_counter() if started is None else started
        step = resume_at(ctx.record)
        if step is Step.READ:
            data = self._read(ctx)
            if data is None:
                return
            with self.gc_pause(len(data) >= GC_PAUSE_BYTES):
                self._judge_and_record(ctx, data, started)
            step = Step.MOVE
        record = ctx.record
        assert record is not None
        if step is Step.MOVE:
            self._move(ctx, record)
            step = Step.MAIL if record.mail == "pending" else None
        done = self._mail(ctx, record) if step is Step.MAIL else None
        if done is None:
            done = self.store.file_record(record.id)
        if done is not None:
            self.step_faults.done(done.claim_key)
            self._log_file(done)

    def _read(self, ctx: FileContext) -> bytes | None:
        assert ctx.claim is not None
        ctx.step = Step.READ
        data = self.spool.read(ctx.claim)
        if data is None:
            log.info(
                "login=%s file=%s vanished before processing",
                ctx.login,
                printable_name(ctx.name),
            )
            return None
        limit = self.config.limits.max_file_bytes
        if len(data) > limit:
            # Only a file put straight on disk gets here (the servers refuse larger
            # uploads): judge it anyway, as the platform would once it has it.
            log.warning(
                "login=%s file=%s is %d bytes, over max_file_bytes=%d; judged anyway",
                ctx.login,
                printable_name(ctx.name),
                len(data),
                limit,
            )
        self._after(Step.READ, ctx)
        return data

    def _judge_and_record(self, ctx: FileContext, data: bytes, started: float) -> None:
        """JUDGE then RECORD; JUDGE again when the credits changed in between."""
        claim = ctx.claim
        assert claim is not None
        ctx.step = Step.JUDGE
        now = self._clock()
        sender = self.config.processing.default_sender
        # Contract 5.12 `duplicate_of`: the store compares it with this login's recent files.
        sha256 = hashlib.sha256(data).hexdigest()
        rule = self._fault(Step.JUDGE, ctx, stall=True)
        if rule is not None and rule.action == "crash":
            raise Crashed(rule)  # judged or not, nothing is recorded: the same state
        for _ in range(MAX_JUDGE_ATTEMPTS):
            acc = self.store.account(ctx.login)
            if acc is None:
                raise RuntimeError(f"account {ctx.login!r} vanished")
            # A fresh snapshot each time: the verdict's Not_enough_credits (contract 5.4.4)
            # must reflect the credits at record time.
            account = Account(ctx.login, acc.credits, acc.subscription, sender)
            ctx.verdict = self._judge(
                claim.name,
                data,
                account,
                now,
                prices=self.config.pricing,
                qualities=self.config.processing.qualities,
            )
            if rule is not None and rule.action == "verdict":
                ctx.verdict = forced(ctx.verdict, rule, now)
            self._after(Step.JUDGE, ctx)
            elapsed = (time.perf_counter() - started) * 1000
            ctx.step = Step.RECORD
            try:
                ctx.record = self.store.record(
                    ctx.login,
                    str(claim.key),
                    ctx.verdict,
                    ctx.received_at,
                    self._clock(),
                    elapsed,
                    sha256=sha256,
                )
            except InsufficientCredits:
                ctx.step = Step.JUDGE
                continue
            self._after(Step.RECORD, ctx)
            announce_charge(self.store, self.bus, ctx.record)
            # The record holds what MOVE and MAIL need. Dropped here, still under the GC
            # pause, a 150k-SMS verdict is freed at once by reference counting; kept, the
            # collector's first pass after the pause walked all of it (30 ms on the 8 MB
            # file, issue 15).
            ctx.verdict = None
            return
        raise RuntimeError("credits keep changing; giving up on this file for now")

    def _move(self, ctx: FileContext, record: FileRecord) -> None:
        """MOVE, then the hook, then the store marks it moved (docs/spec.md 5.2.4: a crash in
        between is found again by `Spool.find_placed`, never moved twice).

        On disk the file keeps the user's raw name behind the prefix, even when the store
        holds its printable form (a name put on disk that is not UTF-8 or holds a line
        break, `core.text.printable_name`); a name too long for the file system is shortened
        (`spool.short_name`). The store records the name actually used."""
        ctx.step = Step.MOVE
        rule = self._fault(Step.MOVE, ctx, stall=True)
        login, claim = record.login, ctx.claim
        dest: Path | None = None
        final = _raw_final_name(record, claim)
        if ctx.recovering and claim is not None:
            # A link+unlink move cut short leaves the file in both places.
            dest = self.spool.find_placed(login, record.status, final, claim.key)
            if dest is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(claim.path)
        if dest is None and claim is not None:
            try:
                dest = self.spool.finish(login, claim.path, final, record.status)
            except FileNotFoundError:
                dest = None
        if dest is None and ctx.recovering and claim is None:
            key = FileKey.parse(record.claim_key)
            if key is not None:
                dest = self.spool.find_placed(login, record.status, record.final_name, key)
        if dest is None:
            log.warning(
                "login=%s file=%s recorded but no longer on disk; kept as %s",
                login,
                record.original_name,
                record.final_name,
            )
            stored = record.final_name
        else:
            stored = dest.name
        if rule is not None and rule.action == "crash":
            raise Crashed(rule)  # placed, not marked moved: what a kill -9 here leaves
        self._after(Step.MOVE, ctx)
        self.store.mark_moved(record.id, stored)

    def _mail(self, ctx: FileContext, record: FileRecord) -> FileRecord | None:
        """MAIL (docs/spec.md 5.11), then the hook, then the store marks the recap dealt with.
        A recap already in the Maildir (delivered before a crash) is not sent again; one
        that fails for a reason a retry can cure leaves the file done, its recap owed
        (`processing/recaps.py`). Returns the done record (None when a reset removed it)."""
        ctx.step = Step.MAIL
        rule = self._fault(Step.MAIL, ctx, stall=True)
        fail = rule is not None and rule.action == "fail"
        owed: BaseException | None = None
        try:
            outcome, msg_id = self.recaps.deliver(record, look_first=ctx.recovering, fail=fail)
        except INFRASTRUCTURE as exc:
            outcome, msg_id, owed = "pending", None, exc
        if outcome is None:
            return None
        if rule is not None and rule.action == "crash":
            raise Crashed(rule)  # in the Maildir, not marked mailed: what a kill -9 leaves
        self._after(Step.MAIL, ctx)
        done = self.store.mark_mailed(record.id, outcome)
        if msg_id is not None:
            self.bus.publish(MailWritten(login=record.login, file_id=record.id, message_id=msg_id))
        if done is not None:
            self.bus.publish(
                FileFinished(
                    login=done.login,
                    name=done.original_name,
                    file_id=done.id,
                    final_name=done.name,
                    folder=done.folder,
                    status=done.status.value,
                    reason=done.reason,
                    sms_count=done.sms_count,
                    cost=done.cost,
                )
            )
            if owed is not None:
                self.recap_owed(done, owed)
        return done

    def _log_file(self, record: FileRecord) -> None:
        """docs/spec.md 5.2.5: one log line per file."""
        fields: dict[str, Any] = {
            "login": record.login,
            "file": record.original_name,
            "verdict": record.status.value,
            "reason": record.reason or "-",
            "sms": record.sms_count,
            "ms": round(record.processing_ms, 1),
            "final": record.name,
        }
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        log.info(text, extra={"fields": fields})


def utc_now() -> datetime:
    return datetime.now(UTC)


def _raw_final_name(record: FileRecord, claim: Claim | None) -> str:
    """The final name to give on disk: the record's, with the printable form of the user's
    name swapped back for the raw one still in PROCESSING (they differ only for names put
    straight on disk that are not UTF-8 or hold a line break)."""
    final, original = record.final_name, record.original_name
    if claim is None or claim.name == original or not final.endswith(original):
        return final
    if printable_name(claim.name) != original:
        return final
    return final[: len(final) - len(original)] + claim.name
