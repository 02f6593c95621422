"""A Hypothesis state machine over the whole platform (MockServer + ftplib): random valid and
invalid drops, same-name drops, credit changes and resets; after every step nothing is lost,
nothing is in two places, credits are never negative and every charge is an archived file's.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from mockserver.app import MockServer
from tests.support.billing import DEMO_CREDITS, SMS_CREDITS
from tests.support.serve import (
    DEMO_LOGIN,
    campaign,
    csv_rows,
    entries,
    ftp_drop,
    ftp_list,
    http_json,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

INVALID_BODIES = {
    # contract 5.4: each reason, with a file that triggers it
    "Empty_File": b"",
    "No_valid_TPOA": b'"0612345678";"Bonjour STOP au 36180";"9Bad"\n',
}


class ResetFailed(AssertionError):
    """`POST /api/reset` or `MockServer.reset()` did not complete."""


class Platform(RuleBasedStateMachine):
    """The model: the verdict each drop must get and the credits the account must hold."""

    names = Bundle("names")

    def __init__(self) -> None:
        super().__init__()
        self.srv = MockServer().start()
        self.credits = DEMO_CREDITS
        self.expected: list[dict[str, Any]] = []  # one per drop, in drop order
        self.counter = 0

    def teardown(self) -> None:
        self.srv.stop()

    # -- helpers -------------------------------------------------------------------------

    def _drop(self, name: str, body: bytes) -> dict[str, Any]:
        """Manual 4.2 recipe over FTP, then wait for this drop's verdict."""
        before = len(self.srv.files(name=name))
        ftp_drop(self.srv.ftp_port, name, body)
        wait_until(lambda: len(self.srv.files(name=name)) > before, 15, what=f"verdict {name}")
        record: dict[str, Any] = self.srv.files(name=name)[-1]
        return record

    def _fresh_name(self, tag: str, *, bad: bool = False) -> str:
        self.counter += 1
        if bad:
            return f"{tag}-{self.counter}_20300716120000_HQ.csv"  # Incorrect_FileName
        return campaign(f"{tag}{self.counter}")

    def _copies(self, name: str) -> int:
        return sum(1 for e in self.expected if e["name"] == name)

    def _final(self, name: str, prefix: str) -> str:
        """Contract 5.3: the n-th copy of a name gets `-n` before `.csv` (n >= 2)."""
        copies = sum(1 for e in self.expected if e["name"] == name and e["prefix"] == prefix)
        stem, dot, ext = name.rpartition(".")
        suffix = f"-{copies + 1}" if copies else ""
        return f"{prefix}{stem}{suffix}{dot}{ext}" if dot else f"{prefix}{name}{suffix}"

    def _check(self, record: dict[str, Any], name: str, sms: int, reason: str | None) -> None:
        prefix = "TreatedByMSI_" + (f"{reason}_" if reason else "")
        want_final = self._final(name, prefix)
        assert record["status"] == ("invalid" if reason else "archived")
        assert record["reason"] == reason
        assert record["final_name"] == want_final
        assert record["sms_count"] == (0 if reason else sms)
        self.expected.append(
            {"name": name, "prefix": prefix, "final": want_final, "sms": 0 if reason else sms}
        )

    # -- rules ---------------------------------------------------------------------------

    @rule(target=names, sms=st.integers(1, 4))
    def drop_valid(self, sms: int) -> str:
        """Contract 5.4.4: archived and charged when the credits cover the SMS count."""
        name = self._fresh_name("Ok")
        self._drop_valid(name, sms)
        return name

    @rule(name=names, sms=st.integers(1, 4))
    def drop_same_name_again(self, name: str, sms: int) -> None:
        """Contract 5.3: a name already used gets `-2`, `-3`…: nothing is overwritten."""
        self._drop_valid(name, sms)

    def _drop_valid(self, name: str, sms: int) -> None:
        record = self._drop(name, csv_rows(sms, start=10 * self.counter))
        cost = sms * SMS_CREDITS  # contract 3 `[pricing]`
        enough = self.credits >= cost
        self._check(record, name, sms, None if enough else "Not_enough_credits")
        if enough:
            self.credits -= cost

    @rule(reason=st.sampled_from(sorted(INVALID_BODIES)))
    def drop_invalid_content(self, reason: str) -> None:
        """Contract 5.4: an invalid file "sends nothing and costs nothing"."""
        name = self._fresh_name("Bad")
        self._check(self._drop(name, INVALID_BODIES[reason]), name, 0, reason)

    @rule()
    def drop_bad_name(self) -> None:
        """Contract 5.4.1: a name off the pattern is `Incorrect_FileName`."""
        name = self._fresh_name("Bad", bad=True)
        self._check(self._drop(name, csv_rows(1)), name, 0, "Incorrect_FileName")

    @rule(credits=st.integers(0, 12 * SMS_CREDITS))
    def set_credits(self, credits: int) -> None:
        status, body = http_json(
            f"{self.srv.http_url}/api/accounts/{DEMO_LOGIN}", "PATCH", {"credits": credits}
        )
        assert status == 200, body
        self.credits = credits

    @rule()
    def reset(self) -> None:
        """Contract 6 `POST /api/reset`: "empties files, SMS and mail; restores configured
        accounts and credits"."""
        try:
            self.srv.reset()
        except Exception as exc:
            raise ResetFailed(f"MockServer.reset() raised {exc!r}") from exc
        self.credits = DEMO_CREDITS
        self.expected.clear()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def nothing_lost_nothing_twice(self) -> None:
        """Every drop is in exactly one of ARCHIVES/INVALIDS under its final name; nothing
        stays in SEND_SMS or PROCESSING (manual 4.3)."""
        archives = entries(self.srv.folder(DEMO_LOGIN, "ARCHIVES"))
        invalids = entries(self.srv.folder(DEMO_LOGIN, "INVALIDS"))
        assert not set(archives) & set(invalids)
        want_archives = sorted(e["final"] for e in self.expected if e["prefix"] == "TreatedByMSI_")
        want_invalids = sorted(e["final"] for e in self.expected if e["prefix"] != "TreatedByMSI_")
        assert archives == want_archives
        assert invalids == want_invalids
        assert entries(self.srv.folder(DEMO_LOGIN, "SEND_SMS")) == []
        assert entries(self.srv.folder(DEMO_LOGIN, "PROCESSING")) == []
        assert len(self.srv.files()) == len(self.expected)

    @invariant()
    def credits_match_the_archived_sms(self) -> None:
        """Credits never negative; each charge is one archived file's SMS count."""
        account = self.srv.account(DEMO_LOGIN)
        assert account is not None
        assert account["credits"] == self.credits >= 0
        archived_sms = sum(e["sms"] for e in self.expected)
        assert self.srv.store.total_charged(DEMO_LOGIN) == archived_sms * SMS_CREDITS
        assert len(self.srv.messages(login=DEMO_LOGIN)) == archived_sms


def test_platform_state_machine() -> None:
    """Random drops, collisions, credit changes and resets keep the invariants above."""
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        Platform,
        settings=settings(
            max_examples=10,
            stateful_step_count=8,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_reset_over_http_restores_a_clean_platform(srv: MockServer) -> None:
    """Contract 6: `POST /api/reset` "empties files, SMS and mail; restores configured
    accounts and credits"; accounts made at run time are gone, demo logs in with its
    configured password again."""
    ftp_drop(srv.ftp_port, campaign("Before"), csv_rows(3))
    srv.wait_for_file(campaign("Before"), timeout=15)
    status, _ = http_json(
        f"{srv.http_url}/api/accounts",
        "POST",
        {"login": "extra", "password": "pw-extra", "credits": 5},
    )
    assert status == 201
    status, _ = http_json(
        f"{srv.http_url}/api/accounts/{DEMO_LOGIN}", "PATCH", {"credits": 7, "password": "new"}
    )
    assert status == 200

    status, body = http_json(f"{srv.http_url}/api/reset", "POST")
    if status != 200:
        raise ResetFailed(f"POST /api/reset answered {status}: {body}")

    assert srv.files() == []
    assert srv.messages() == []
    assert srv.mail() == []
    account = srv.account(DEMO_LOGIN)
    assert account is not None
    assert account["credits"] == DEMO_CREDITS
    assert srv.account("extra") is None
    for folder in ("SEND_SMS", "PROCESSING", "ARCHIVES", "INVALIDS"):
        assert ftp_list(srv.ftp_port, folder) == ""
    ftp_drop(srv.ftp_port, campaign("After"), csv_rows(2))
    assert srv.wait_for_file(campaign("After"), timeout=15)["status"] == "archived"
