"""A Hypothesis state machine over the whole pipeline: random valid and invalid drops, name
collisions, credit changes and restarts on one data dir. Whatever the order, nothing is lost,
nothing is in two places, credits never go negative and every credit spent is an SMS sent
(contract 5.2, 5.3, 5.4; docs/spec.md 5.2.4)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mockserver.tree import Folder
from tests.support.billing import SMS_CREDITS
from tests.support.platform import Platform, make_config

CREDITS = 12 * SMS_CREDITS  # a dozen SMS: the state machine also runs out of credits

# (suffix of the name, content): valid files of 1-4 SMS and each kind of invalid file.
ROW = '"06123456{:02d}";"Message {}"\n'
KINDS = {
    "valid": None,
    "bad_name": "bad name.csv",
    "empty": b"\n",
    "bad_sender": b'"0612345678";"Hi";"1x"\n',
}


class Pipeline(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="allmysms-stateful-"))
        self.config = make_config(self.dir / "data", credits=CREDITS, rescan_seconds=0.5)
        self.platform = Platform.start(self.config, settle_seconds=0.0)
        self.dropped = 0
        self.credits_given = CREDITS
        self.seq = 0

    def teardown(self) -> None:
        try:
            self.check_everything()
        finally:
            self.platform.processor.stop(10)
            self.platform.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(
        campaign=st.sampled_from(["A", "B", "C"]),
        kind=st.sampled_from(sorted(KINDS)),
        rows=st.integers(min_value=1, max_value=4),
    )
    def drop(self, campaign: str, kind: str, rows: int) -> None:
        name = f"{campaign}_20300716120000_HQ.csv"
        if kind == "bad_name":
            name = f"{campaign} bad.csv"
        content = KINDS[kind]
        data = (
            "".join(ROW.format(i, i) for i in range(rows)).encode()
            if content is None or isinstance(content, str)
            else content
        )
        send = self.platform.folder(Folder.SEND_SMS)
        self.seq += 1
        tmp = send / f"upload{self.seq}.tmp"
        tmp.write_bytes(data)
        # A rename never overwrites (contract 4): wait until the name is free in SEND_SMS.
        if (send / name).exists():
            assert self.platform.processor.drain(20)
        os.rename(tmp, send / name)
        self.dropped += 1

    @rule(extra=st.integers(min_value=0, max_value=6 * SMS_CREDITS))
    def add_credits(self, extra: int) -> None:
        acc = self.platform.account("alice")
        assert acc is not None
        # Read-modify-write races with the processor's debits: do it while paused.
        with self.platform.processor.paused():
            acc = self.platform.account("alice")
            assert acc is not None
            self.platform.store.update_account("alice", credits=acc["credits"] + extra)
        self.credits_given += extra

    @rule()
    def restart(self) -> None:
        self.platform.processor.stop(10)
        self.platform.store.close()
        self.platform = Platform.start(self.config, settle_seconds=0.0)

    @rule()
    def settle(self) -> None:
        self.check_everything()

    @invariant()
    def credits_never_negative(self) -> None:
        acc = self.platform.account("alice")
        assert acc is not None
        assert acc["credits"] >= 0

    def check_everything(self) -> None:
        p = self.platform
        assert p.processor.drain(30)
        assert p.names(Folder.SEND_SMS) == []
        assert p.names(Folder.PROCESSING) == []
        archives, invalids = p.names(Folder.ARCHIVES), p.names(Folder.INVALIDS)
        files = p.files()
        assert p.store.unfinished() == []
        # Nothing lost, nothing in two places.
        assert len(files) == self.dropped
        assert len(archives) + len(invalids) == self.dropped
        assert sorted(f["final_name"] for f in files if f["status"] == "archived") == archives
        assert sorted(f["final_name"] for f in files if f["status"] == "invalid") == invalids
        # Every credit spent is the price of an SMS of an archived file (contract 3
        # `[pricing]`: 15 credits a French SMS, the only kind these files hold).
        sent = sum(f["sms_count"] for f in files if f["status"] == "archived")
        charged = sum(f["cost"] for f in files if f["status"] == "archived")
        assert charged == SMS_CREDITS * sent
        assert p.store.total_charged() == charged
        assert p.store.count_messages() == sent
        acc = p.account("alice")
        assert acc is not None
        assert acc["credits"] == self.credits_given - charged
        assert len(p.mailbox.messages()) == self.dropped


Pipeline.TestCase.settings = settings(
    max_examples=int(os.environ.get("ALLMYSMS_STATEFUL_EXAMPLES", "25")),
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPipeline = Pipeline.TestCase
