"""The model the steering state machine (tests/integration/test_steering_stateful.py) keeps of
one platform: each drop's fate, the fault rules with the firings they must have, the credits
and the virtual clock; and the clients it drops files with, retrying a refused operation as a
client would and counting the refusals."""

from __future__ import annotations

import ftplib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import paramiko

from mockserver.core.filename import PARIS
from tests.support.billing import SMS_CREDITS

LOGIN = "demo"
PASSWORD = "demo"
RETRIES = 6  # a client gives up after this many refusals of one operation


@dataclass
class Rule:
    """A fault rule as the model knows it: `times` None for a seeded probability."""

    id: int
    on: str
    action: str
    times: int | None
    protocol: str | None = None
    reason: str | None = None
    fired: int = 0

    def live(self) -> bool:
        return self.times is None or self.fired < self.times


@dataclass
class Drop:
    """One dropped file: `queued` in SEND_SMS (manual mode: its name is in PROCESSING),
    `held` in PROCESSING (manual mode), `done` in ARCHIVES or INVALIDS."""

    name: str
    body: str  # valid, empty, bad_sender
    rows: int
    send_at: datetime | None
    state: str = "queued"
    status: str = ""
    reason: str | None = None
    final: str = ""
    cost: int = 0
    mail: str = "sent"
    file_id: int | None = None
    sms_sent: bool = False
    met: set[str] = field(default_factory=set)  # steps whose rules it met (once a file)


@dataclass
class Model:
    credits: int
    now: datetime | None  # None: the real clock (years before every send date used here)
    drops: list[Drop] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    folders: dict[str, set[str]] = field(
        default_factory=lambda: {"ARCHIVES": set(), "INVALIDS": set()}
    )

    def held(self) -> list[Drop]:
        return [d for d in self.drops if d.state == "held"]

    def queued(self) -> list[Drop]:
        return [d for d in self.drops if d.state == "queued"]

    def done(self) -> list[Drop]:
        return [d for d in self.drops if d.state == "done"]

    def protocol_refusals(self, op: str, protocol: str) -> int:
        """How many times `op` over `protocol` is refused before it goes through: each live
        `error` rule on it fires once (`times` 1), in the order they were added."""
        count = 0
        for rule in self.rules:
            if rule.on == op and rule.protocol in (protocol, "any") and rule.live():
                rule.fired += 1
                count += 1
        return count

    def step(self, drop: Drop, on: str, seen: dict[tuple[str, str], list[int]]) -> Rule | None:
        """The rule `drop` meets at step `on`: the first live `times` rule, or a probability
        rule the platform says fired (`seen`: rule ids of its `fault.fired` events, by name
        and step), as long as no live `times` rule comes before it. A file meets the rules
        of a step once, not again when resumed after a stall or recovered after a crash."""
        observed = seen.pop((drop.name, on), [])
        if on in drop.met:
            assert observed == [], f"{drop.name} met the {on} rules again: {observed}"
            return None
        drop.met.add(on)
        expected: Rule | None = None
        for rule in self.rules:
            if rule.on != on or rule.protocol is not None:
                continue
            if rule.live() if rule.times is not None else rule.id in observed:
                expected = rule
                break
        want = [] if expected is None else [expected.id]
        assert observed == want, f"{drop.name} at {on}: rules {observed} fired, model {want}"
        if expected is not None:
            expected.fired += 1
        return expected

    def claim(self, drop: Drop, seen: dict[tuple[str, str], list[int]]) -> None:
        """Manual mode: claimed and held, whatever a claim rule does (crash: recovered and
        held again; stall: held, the advance goes on at once)."""
        self.step(drop, "claim", seen)
        drop.state = "held"

    def run(self, drop: Drop, seen: dict[tuple[str, str], list[int]], *, claim: bool) -> None:
        """The steps of `drop` from `claim` (auto) or from judge (manual, advanced). A crash
        at claim or judge is recovered as at a restart: in manual mode the file, never
        recorded, is held again (its rules are not met twice)."""
        rule = self.step(drop, "claim", seen) if claim else None
        rule = self.step(drop, "judge", seen)
        if rule is not None and rule.action == "crash" and not claim:
            drop.state = "held"
            return
        reason = self.verdict(drop)
        if rule is not None and rule.action == "verdict":
            reason = rule.reason
        if reason is None:
            drop.status, drop.cost = "archived", drop.rows * SMS_CREDITS
            self.credits -= drop.cost
        else:
            drop.status, drop.cost = "invalid", 0
        drop.reason = reason
        drop.final = self.place(drop)
        self.step(drop, "move", seen)
        rule = self.step(drop, "mail", seen)
        drop.mail = "forward_failed" if rule is not None and rule.action == "fail" else "sent"
        drop.state = "done"

    def verdict(self, drop: Drop) -> str | None:
        """Contract 5.4, in its order."""
        if drop.send_at is None:
            return "Incorrect_FileName"
        if drop.body == "bad_sender":
            return "No_valid_TPOA"
        if drop.body == "empty":
            return "Empty_File"
        if self.credits < drop.rows * SMS_CREDITS:
            return "Not_enough_credits"
        return None

    def place(self, drop: Drop) -> str:
        """Contract 5.3: the final name, `-2`, `-3`... before `.csv` when it is taken."""
        folder = self.folders["ARCHIVES" if drop.status == "archived" else "INVALIDS"]
        base = "TreatedByMSI_" + (f"{drop.reason}_" if drop.reason else "") + drop.name
        final, n = base, 1
        while final in folder:
            n += 1
            final = f"{base[: -len('.csv')]}-{n}.csv"
        folder.add(final)
        return final

    def release(self) -> None:
        """Contract 9.3: an archived file whose send date the clock passed is sent, once."""
        for drop in self.done():
            if drop.status == "archived" and self.now is not None and drop.send_at is not None:
                drop.sms_sent = drop.sms_sent or drop.send_at <= self.now

    def scheduled_and_sent(self) -> tuple[int, int]:
        """SMS counts `scheduled` and `sent` at the model's now (contract 5.10)."""
        scheduled = sent = 0
        for drop in self.done():
            if drop.status != "archived":
                continue
            if self.now is not None and drop.send_at is not None and drop.send_at <= self.now:
                sent += drop.rows
            else:
                scheduled += drop.rows
        return scheduled, sent


def send_date(name: str) -> datetime | None:
    """The send date of a valid name (`<campaign>_<14 digits>_HQ.csv`), None otherwise."""
    parts = name.split("_")
    if len(parts) != 3 or not parts[0].isalnum():
        return None
    return datetime.strptime(parts[1], "%Y%m%d%H%M%S").replace(tzinfo=PARIS)


def retried(
    call: Callable[[], Any], refused: type[BaseException] | tuple[type[BaseException], ...]
) -> int:
    """Run `call` until it goes through, as a client retries a refused operation; how many
    times it was refused."""
    for attempt in range(RETRIES):
        try:
            call()
        except refused:
            continue
        return attempt
    raise AssertionError(f"refused {RETRIES} times")


def ftp_drop(port: int, name: str, data: bytes) -> tuple[int, int]:
    """Manual 4.2 over FTP (ftplib): STOR `<name>.tmp`, then rename; (upload refusals,
    rename refusals)."""
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", port, timeout=15)
        ftp.login(LOGIN, PASSWORD)
        stored = retried(
            lambda: ftp.storbinary(f"STOR /SEND_SMS/{name}.tmp", io.BytesIO(data)),
            ftplib.error_temp,
        )
        renamed = retried(
            lambda: ftp.rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}"), ftplib.error_temp
        )
        ftp.quit()
    return stored, renamed


def sftp_drop(port: int, name: str, data: bytes) -> tuple[int, int]:
    """The same over SFTP (paramiko): `putfo` of the `.tmp`, then `rename`."""
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username=LOGIN, password=PASSWORD)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        with client:
            stored = retried(
                lambda: client.putfo(io.BytesIO(data), f"/SEND_SMS/{name}.tmp"), OSError
            )
            renamed = retried(
                lambda: client.rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}"), OSError
            )
    finally:
        transport.close()
    return stored, renamed
