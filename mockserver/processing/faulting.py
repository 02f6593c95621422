"""Fault rules on processing steps (contract 9.2: `on` = `claim`, `judge`, `move`, `mail`).

Each step of a file meets the rules once, at the start of the step (`claim`: as soon as the
file is in PROCESSING), and never again for that file, not even when it is resumed after a
stall or recovered after a crash (docs/spec.md 9.2). What each action does:

- `stall`: the pipeline raises `Stalled`; the processor puts the file back in its timed queue
  for `seconds` (no worker thread waits) and resumes it at the step the store says.
- `crash`: the step's effect is done (the file in PROCESSING, placed in its folder, the recap
  in the Maildir), its bookkeeping is not, and the pipeline raises `Crashed`: the processor
  forgets the file as a killed process would and recovers it as at a restart.
- `verdict` (judge): the file is judged, then gets the rule's reason.
- `fail` (mail): the recap is written to the Maildir and its SMTP forward fails.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime

from mockserver.core.faults import FaultRule
from mockserver.core.models import Reason, Verdict
from mockserver.core.rejections import invalid
from mockserver.core.text import printable_name
from mockserver.events import Event, EventBus
from mockserver.faults import Faults

MAX_REMEMBERED = 100_000  # files whose steps already met the rules (bounded whatever happens)


class StepFault(Exception):
    """A fault rule took the file out of its normal course at a step."""

    def __init__(self, rule: FaultRule) -> None:
        super().__init__(f"fault {rule.id}: {rule.on} {rule.action}")
        self.rule = rule


class Stalled(StepFault):
    """The file waits `rule.seconds` before this step; resume it then."""


class Crashed(StepFault):
    """The file's processing is abandoned here, as `kill -9` would leave it; recover it."""


class StepFaults:
    """Fires the step rules of `faults`, at most once per file and step. Thread-safe."""

    def __init__(self, faults: Faults | None, bus: EventBus | None = None) -> None:
        self.faults = faults
        self._lock = threading.Lock()
        self._met: dict[tuple[str, str], None] = {}  # (file's claim key, step), oldest first
        if bus is not None:
            bus.subscribe(self._on_event)

    def fire(self, step: str, login: str, name: str, key: str) -> FaultRule | None:
        """The rule that fires on `step` of this file (claim key `key`), or None: none
        matches, or this file already met this step's rules."""
        if self.faults is None or not len(self.faults):
            return None
        with self._lock:
            if (key, step) in self._met:
                return None
            self._met[(key, step)] = None
            while len(self._met) > MAX_REMEMBERED:
                del self._met[next(iter(self._met))]
        return self.faults.fire(step, login=login, name=printable_name(name))

    def done(self, key: str) -> None:
        """The file is finished: forget it."""
        with self._lock:
            for step in ("claim", "judge", "move", "mail"):
                self._met.pop((key, step), None)

    def _on_event(self, event: Event) -> None:
        if event.type == "reset":
            with self._lock:
                self._met.clear()


def forced(verdict: Verdict, rule: FaultRule, now: datetime) -> Verdict:
    """Contract 9.2 `verdict`: the file gets `rule.reason` whatever its content: invalid,
    nothing sent or charged; its rows, rejected rows and hints stay as read."""
    assert rule.reason is not None  # parse_rule requires it for a verdict
    reason = Reason(rule.reason)
    made = invalid(
        verdict.original_name,
        reason,
        verdict.campaign,
        verdict.rejected,
        verdict.rows,
        f"Forced by fault rule {rule.id} (action verdict, reason {reason.value}).",
        now,
        verdict.rejected_more,
    )
    return dataclasses.replace(made, hints=verdict.hints)
