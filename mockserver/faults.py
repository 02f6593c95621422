"""The fault rules in force (contract 9.2): added from the API, the config file or
`srv.faults`; fired by the protocol adapters and the pipeline through `fire`, which counts
each firing exactly, draws seeded probabilities, publishes `fault.fired` and logs one line.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver.core.faults import FaultRule, parse_rule
from mockserver.events import EventBus, FaultFired

log = logging.getLogger("mockserver.faults")

MAX_RULES = 1000  # answers and memory stay bounded whatever a script adds


class TooManyRules(Exception):
    """More than MAX_RULES rules at once."""


@dataclass
class _Entry:
    rule: FaultRule
    fired: int = 0
    draws: random.Random | None = field(default=None, repr=False)

    def live(self) -> bool:
        r = self.rule
        return r.probability is not None or r.times == 0 or self.fired < r.times


def _entry(rule: FaultRule) -> _Entry:
    """A fresh count, and a generator of its own for a rule with a probability (test faults,
    not secrets: `random` is the right tool)."""
    draws = random.Random(rule.seed) if rule.probability is not None else None
    return _Entry(rule, 0, draws)


class Faults:
    """Thread-safe. `fire` picks the first live rule (in the order they were added) that
    matches; a rule with `probability` draws once per matching operation from its own seeded
    generator, so the same seed gives the same sequence."""

    def __init__(self, bus: EventBus | None = None, rules: Iterable[FaultRule] = ()) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._ids = 0
        # The start-up rules (config file, environment, constructor) with their ids: a reset
        # brings them back even after `clear` or `remove` took them away.
        self._startup = [self.add(rule) for rule in rules]

    def add(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        """Add a rule (a `FaultRule` or its JSON object: FaultError when it is wrong); it gets
        the next id."""
        if not isinstance(rule, FaultRule):
            rule = parse_rule(rule)
        with self._lock:
            if len(self._entries) >= MAX_RULES:
                raise TooManyRules(f"at most {MAX_RULES} fault rules at once")
            self._ids += 1
            rule = dataclasses.replace(rule, id=self._ids)
            self._entries.append(_entry(rule))
        return rule

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            kept = [e for e in self._entries if e.rule.id != rule_id]
            found = len(kept) != len(self._entries)
            self._entries = kept
        return found

    def clear(self) -> int:
        """Remove every rule (those of the config file too); how many were removed."""
        with self._lock:
            count = len(self._entries)
            self._entries = []
        return count

    def reset(self) -> None:
        """Contract 9.2: "A reset removes every rule added at run time"; the config file's
        rules are back (also if `clear` or `remove` took them away), counted and drawn
        afresh."""
        with self._lock:
            self._entries = [_entry(rule) for rule in self._startup]

    def rules(self) -> list[dict[str, Any]]:
        """Every rule as `GET /api/faults` lists it, with its `fired` count."""
        with self._lock:
            return [e.rule.view(e.fired) for e in self._entries]

    def get(self, rule_id: int) -> dict[str, Any] | None:
        with self._lock:
            for e in self._entries:
                if e.rule.id == rule_id:
                    return e.rule.view(e.fired)
        return None

    def __len__(self) -> int:
        return len(self._entries)

    def fire(
        self, on: str, *, protocol: str | None = None, login: str | None = None, name: str = ""
    ) -> FaultRule | None:
        """The rule that fires on this operation or step, if any (counted, published as
        `fault.fired`, logged). Cheap when no rule is set: one length check."""
        if not self._entries:
            return None
        fired: FaultRule | None = None
        with self._lock:
            for entry in self._entries:
                rule = entry.rule
                if not entry.live() or not rule.matches(
                    on, protocol=protocol, login=login, name=name
                ):
                    continue
                draws, probability = entry.draws, rule.probability
                if draws is not None and probability is not None and draws.random() >= probability:
                    continue
                entry.fired += 1
                fired = rule
                break
        if fired is not None:
            log.info(
                "fault %d fired: %s %s%s%s",
                fired.id,
                on,
                fired.action,
                f" login={login}" if login else "",
                f" name={name}" if name else "",
            )
            if self._bus is not None:
                self._bus.publish(
                    FaultFired(
                        login=login,
                        rule_id=fired.id,
                        on=on,
                        action=fired.action,
                        protocol=protocol,
                        name=name or None,
                    )
                )
        return fired


class FaultControl:
    """`srv.faults` (contract 7): the fault rules of a `MockServer`, as `/api/faults` shows
    them. `add(on="claim", action="stall", seconds=5)` returns the rule with its `id`
    (`FaultError`, a ValueError naming the field, when it is wrong)."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults

    def add(self, **rule: Any) -> dict[str, Any]:
        added = self._faults.add(rule)
        return self._faults.get(added.id) or added.view(0)

    def remove(self, rule_id: int) -> bool:
        """False when no rule has this id."""
        return self._faults.remove(rule_id)

    def clear(self) -> int:
        """Remove every rule (the config file's too, until the next reset); how many."""
        return self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        """Every rule in force with its `fired` count, as `GET /api/faults` lists them."""
        return self._faults.rules()
