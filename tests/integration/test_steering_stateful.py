"""A Hypothesis state machine over the steering features (contract 9.2 faults, 9.3 clock, 9.4
manual mode) on one in-process `MockServer` per example, with files dropped over FTP (ftplib)
and SFTP (paramiko): valid and invalid drops, names reused, step faults (crash, stall, verdict,
fail) with `times` or a seeded probability, protocol errors on upload and rename (the client
retries), the clock set, advanced and made real, credits topped up, resets, and in manual mode
advances of waiting files. After each step, once the platform is quiet, the state must be the
model's exactly: every drop in one place (contract 5.2, 5.3), credits = given - charged, each
file recorded, charged and mailed once, each rule's `fired` count, and one `sms.sent` per
archived file whose send date the clock passed (docs/testing.md, "Steering state machine").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from mockserver.app import MockServer
from mockserver.config import load_config
from mockserver.core.filename import PARIS
from tests.support.billing import SMS_CREDITS
from tests.support.serve import csv_rows
from tests.support.steering import (
    LOGIN,
    PASSWORD,
    Drop,
    Model,
    Rule,
    ftp_drop,
    send_date,
    sftp_drop,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

START = datetime(2030, 7, 16, 10, 0, tzinfo=PARIS)
DATES = ("20300716120000", "20300718120000")  # two hours after START, and two days
CREDITS = 8 * SMS_CREDITS  # the machine runs out of credits too
STALL = 0.2
STEPS = ("claim", "judge", "move", "mail")
BODIES = {
    "empty": b"",
    "bad_sender": b'"0612345678";"Bonjour STOP au 36180";"9Bad"\n',
}
STEP_FAULTS = [
    (on, action)
    for on in STEPS
    for action in ("crash", "stall", "verdict", "fail")
    if (action != "verdict" or on == "judge") and (action != "fail" or on == "mail")
]
REASONS = ("Incorrect_FileName", "No_valid_TPOA", "Empty_File", "Not_enough_credits")
MOMENTS = (
    START - timedelta(days=1),
    START,
    datetime(2030, 7, 16, 12, 0, tzinfo=PARIS),  # exactly the first send date
    datetime(2030, 7, 16, 13, 0, tzinfo=PARIS),
    datetime(2030, 7, 18, 13, 0, tzinfo=PARIS),
)
PROTOCOL_FAULTS = st.tuples(
    st.sampled_from(["upload", "rename"]), st.sampled_from(["ftp", "sftp", "any"])
)
DROP = {
    "kind": st.sampled_from(["ok", "ok", "ok", "bad_name"]),
    "body": st.sampled_from(["valid", "valid", "empty", "bad_sender"]),
    "rows": st.integers(1, 3),
    "date": st.sampled_from(DATES),
}

FAULT = {
    "times": st.integers(1, 2),
    "reason": st.sampled_from(REASONS),
    "seed": st.integers(0, 2**16),
}

FiredSeen = dict[tuple[str, str], list[int]]


class Steering(RuleBasedStateMachine):
    """`processing.mode` "auto": each drop is processed at once; `ManualSteering` holds them."""

    MODE = "auto"

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="allmysms-steering-"))
        account = {"login": LOGIN, "password": PASSWORD, "credits": CREDITS}
        config = load_config(
            None,
            env={},
            overrides={
                "server.ftp_port": 0,
                "server.sftp_port": 0,
                "server.http_port": 0,
                "server.data_dir": str(self.dir / "data"),
                "accounts": [{**account, "email": "demo@example.com"}],
                "processing.mode": self.MODE,
                "processing.clock": START.isoformat(),
            },
        )
        self.srv = MockServer(config).start()
        self.model = Model(CREDITS, START)
        self.names: list[str] = []
        self.seq = 0
        self.mark = self.since_reset = self.srv.last_event_id

    def teardown(self) -> None:
        try:
            self.srv.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- drops ---------------------------------------------------------------------------

    @rule(**DROP)
    def drop_ftp(self, kind: str, body: str, rows: int, date: str) -> None:
        self.drop("ftp", kind, body, rows, date, None)

    @rule(**DROP)
    def drop_sftp(self, kind: str, body: str, rows: int, date: str) -> None:
        self.drop("sftp", kind, body, rows, date, None)

    @rule(**DROP, protocol=st.sampled_from(["ftp", "sftp"]), reuse=st.integers(0, 9))
    def drop_name_again(
        self, protocol: str, kind: str, body: str, rows: int, date: str, reuse: int
    ) -> None:
        """A name used before (contract 5.3: `-2`, `-3`... in its folder)."""
        self.drop(protocol, kind, body, rows, date, reuse)

    def drop(
        self, protocol: str, kind: str, body: str, rows: int, date: str, reuse: int | None
    ) -> None:
        """Manual 4.2 (`.tmp`, then rename), retrying what a protocol fault refuses."""
        self.seq += 1
        name = f"C{self.seq}_{date}_HQ.csv" if kind == "ok" else f"Bad name {self.seq}.csv"
        if reuse is not None and self.names:
            name = self.names[reuse % len(self.names)]
        if any(d.name == name for d in self.model.queued()):
            # Its namesake waits in SEND_SMS and a rename never overwrites (contract 4).
            name = f"C{self.seq}_{date}_HQ.csv"
        if name not in self.names:
            self.names.append(name)
        data = csv_rows(rows, start=10 * self.seq) if body == "valid" else BODIES[body]
        m = self.model
        want = (m.protocol_refusals("upload", protocol), m.protocol_refusals("rename", protocol))
        got = (ftp_drop if protocol == "ftp" else sftp_drop)(
            self.srv.ftp_port if protocol == "ftp" else self.srv.sftp_port, name, data
        )
        assert got == want, f"refusals (upload, rename): {got}, model {want}"
        drop = Drop(name, body, rows, send_date(name))
        busy = any(d.name == name for d in m.held() + m.queued())
        m.drops.append(drop)
        self.settle(lambda seen: self.arrived(drop, seen, busy))

    def arrived(self, drop: Drop, seen: FiredSeen, busy: bool) -> None:
        if self.MODE == "auto":
            self.model.run(drop, seen, claim=True)
        elif not busy:
            self.model.claim(drop, seen)

    # -- faults --------------------------------------------------------------------------

    @initialize(fault=st.sampled_from(STEP_FAULTS) | st.just(("judge", "seeded")), **FAULT)
    def first_fault(self, fault: tuple[str, str], times: int, reason: str, seed: int) -> None:
        """Every example starts with a step rule, so that most drops meet one."""
        self.add_fault(fault, times + 1, reason, seed)

    @rule(
        fault=st.sampled_from(STEP_FAULTS) | st.just(("judge", "seeded")) | PROTOCOL_FAULTS,
        **FAULT,
    )
    def add_fault(self, fault: tuple[str, str], times: int, reason: str, seed: int) -> None:
        """A step rule (`times`, or a seeded probability 0.5 for a verdict), or an `error`
        on an upload or a rename over one protocol or any (`times` 1)."""
        on, action = fault
        if on in ("upload", "rename"):
            added = self.srv.faults.add(on=on, action="error", protocol=action, times=1)
            self.model.rules.append(Rule(added["id"], on, "error", 1, protocol=action))
            return
        extra: dict[str, object] = {"seconds": STALL} if action == "stall" else {}
        if action in ("verdict", "seeded"):
            extra["reason"] = reason
        if action == "seeded":
            added = self.srv.faults.add(
                on=on, action="verdict", probability=0.5, seed=seed, **extra
            )
            self.model.rules.append(Rule(added["id"], on, "verdict", None, reason=reason))
            return
        added = self.srv.faults.add(on=on, action=action, times=times, **extra)
        self.model.rules.append(
            Rule(added["id"], on, action, times, reason=reason if action == "verdict" else None)
        )

    # -- clock, credits, reset -----------------------------------------------------------

    @rule(change=st.sampled_from(MOMENTS) | st.sampled_from([1800, 7200, 2 * 86400]) | st.none())
    def clock(self, change: datetime | int | None) -> None:
        """Contract 9.3: set the clock (before, at and after the send dates), advance it, or
        make it real (years before every send date used here)."""
        if isinstance(change, datetime):
            self.srv.clock.set(change)
            self.model.now = change
        elif change is not None:
            self.srv.clock.advance(change)
            if self.model.now is not None:
                self.model.now += timedelta(seconds=change)
        else:
            self.srv.clock.real()
            self.model.now = None
        self.settle()

    @rule(extra=st.sampled_from([SMS_CREDITS, 3 * SMS_CREDITS]))
    def top_up(self, extra: int) -> None:
        self.srv.set_credits(LOGIN, self.model.credits + extra)
        self.model.credits += extra
        self.settle()

    @rule()
    def reset(self) -> None:
        self.srv.reset()
        self.model = Model(CREDITS, START)
        self.mark = self.since_reset = self.srv.last_event_id
        self.settle()

    # -- settling and checking -----------------------------------------------------------

    def entries(self, folder: str) -> list[str]:
        return sorted(os.listdir(self.srv.folder(LOGIN, folder)))

    def quiet(self) -> bool:
        """Every drop is done, held, or waits in SEND_SMS because its name is in
        PROCESSING (manual mode), and no work is queued (a stall's included)."""
        srv = self.srv
        send, processing = self.entries("SEND_SMS"), self.entries("PROCESSING")
        held = sorted(w["name"] for w in srv.waiting())
        done = sum(1 for f in srv.files() if f["done"])
        return (
            done + len(held) + len(send) == len(self.model.drops)
            and held == processing
            and all(name in processing for name in send)
            and srv.processor.wait_idle(0)
        )

    def fired_since(self) -> FiredSeen:
        """The step rules fired since the last look, by file name and step."""
        seen: FiredSeen = defaultdict(list)
        for event in self.srv.events(after=self.mark, timeout=0):
            self.mark = event["id"]
            if event["type"] == "fault.fired" and event["on"] in STEPS:
                seen[(event["name"], event["on"])].append(event["rule_id"])
        return seen

    def settle(self, simulate: Callable[[FiredSeen], None] | None = None) -> None:
        """Wait until the platform is quiet, let the model follow what was done (checking
        each firing it sees), then wait until the state is the model's: it must be."""
        wait_until(self.quiet, 20, what="the platform to settle")
        seen = self.fired_since()
        if simulate is not None:
            simulate(seen)
        assert not seen, f"rules fired that the model does not expect: {dict(seen)}"
        self.model.release()
        files = self.srv.files()
        taken = {d.file_id for d in self.model.drops}
        for drop in self.model.done():
            if drop.file_id is None:
                new = [
                    f["id"]
                    for f in files
                    if f["original_name"] == drop.name and f["id"] not in taken
                ]
                assert len(new) == 1, f"{drop.name}: new records {new}"
                drop.file_id = new[0]
        eventually(self.check)

    def check(self) -> None:
        m, srv = self.model, self.srv
        done = m.done()
        archived = [d for d in done if d.status == "archived"]
        # Nothing lost, nothing in two places (contract 5.2), nothing twice.
        assert self.entries("SEND_SMS") == sorted(d.name for d in m.queued())
        assert self.entries("PROCESSING") == sorted(d.name for d in m.held())
        assert self.entries("ARCHIVES") == sorted(m.folders["ARCHIVES"])
        assert self.entries("INVALIDS") == sorted(m.folders["INVALIDS"])
        assert sorted(w["name"] for w in srv.waiting()) == sorted(d.name for d in m.held())
        files = {f["id"]: f for f in srv.files()}
        assert sorted(files) == sorted(d.file_id for d in done)
        for d in done:
            f = files[d.file_id]
            sms = d.rows if d.status == "archived" else 0
            got = (f["status"], f["reason"], f["final_name"], f["sms_count"], f["cost"])
            assert got == (d.status, d.reason, d.final, sms, d.cost), d
            assert (f["mail"], f["done"]) == (d.mail, True), d
        # Credits exact, never negative, each charge an archived file's SMS (contract 5.4).
        account = srv.account(LOGIN)
        assert account is not None
        assert account["credits"] == m.credits >= 0
        assert srv.store.total_charged(LOGIN) == sum(d.cost for d in archived)
        messages = srv.messages(login=LOGIN)
        assert Counter(x["file_id"] for x in messages) == Counter(
            {d.file_id: d.rows for d in archived}
        )
        scheduled, sent = m.scheduled_and_sent()
        statuses = Counter(x["status"] for x in messages)
        assert (statuses["scheduled"], statuses["sent"]) == (scheduled, sent)
        # Mailed once per processed file (contract 5.11).
        assert Counter(x["file"] for x in srv.mail()) == Counter(d.name for d in done)
        # Each rule fired as often as the model says (contract 9.2).
        assert {r["id"]: r["fired"] for r in srv.faults.list()} == {r.id: r.fired for r in m.rules}
        # One `sms.sent` per archived file whose send date passed (contract 9.3).
        events = srv.events(after=self.since_reset, timeout=0)
        announced = Counter(e["file_id"] for e in events if e["type"] == "sms.sent")
        assert announced == Counter({d.file_id: 1 for d in archived if d.sms_sent})


class ManualSteering(Steering):
    """`processing.mode = "manual"` (contract 9.4): drops wait in PROCESSING until advanced."""

    MODE = "manual"

    @precondition(lambda self: bool(self.model.held()))
    @rule(pick=st.integers(0, 9))
    def advance_one(self, pick: int) -> None:
        held = self.model.held()
        drop = held[pick % len(held)]
        advanced = self.srv.advance(drop.name)
        assert [w["name"] for w in advanced] == [drop.name]
        self.settle(lambda seen: self.advanced([drop], seen))

    @precondition(
        lambda self: (
            not any(r.live() for r in self.model.rules if r.protocol is None)
            and self.model.credits
            >= sum(d.rows for d in self.model.held() if d.body == "valid") * SMS_CREDITS
        )
    )
    @rule()
    def advance_all(self) -> None:
        """Every waiting file at once: only with no step rule live and credits for all, so
        that the order they run in changes nothing the model predicts."""
        held = self.model.held()
        advanced = self.srv.advance()
        assert sorted(w["name"] for w in advanced) == sorted(d.name for d in held)
        self.settle(lambda seen: self.advanced(held, seen))

    def advanced(self, drops: list[Drop], seen: FiredSeen) -> None:
        for drop in drops:
            self.model.run(drop, seen, claim=False)
            if drop.state == "done":
                # Its name left PROCESSING: the next file of that name is claimed, held.
                namesake = [d for d in self.model.queued() if d.name == drop.name]
                if namesake:
                    self.model.claim(namesake[0], seen)


def eventually(check: Callable[[], None], timeout: float = 5.0) -> None:
    """`check()` passes within `timeout` (polled); its last failure otherwise."""
    failure: list[AssertionError] = []

    def passes() -> bool:
        try:
            check()
        except AssertionError as exc:
            failure[:] = [exc]
            return False
        return True

    try:
        wait_until(passes, timeout, interval=0.02, what="the state to match the model")
    except AssertionError:
        raise failure[0] from None


STATEFUL = settings(
    max_examples=int(os.environ.get("ALLMYSMS_STEERING_EXAMPLES", "20")),
    stateful_step_count=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
Steering.TestCase.settings = STATEFUL
ManualSteering.TestCase.settings = STATEFUL
TestAutoSteering = Steering.TestCase
TestManualSteering = ManualSteering.TestCase
