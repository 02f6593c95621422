"""Fault rules (contract 9.2), pure: what a rule is, how one is read from JSON or the config
file, and whether it matches an operation. Firing (counts, seeded draws, events) is the state
layer's `mockserver.faults.Faults`; acting on a firing is each adapter's.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mockserver.core.jsonnum import whole_number
from mockserver.core.models import Reason

# Contract 9.2 `on`: protocol operations, then processing steps.
OPERATIONS = ("login", "list", "upload", "rename", "delete", "download")
STEPS = ("claim", "judge", "move", "mail")
PROTOCOLS = ("ftp", "sftp", "any")
# What each action may apply to: an operation, a step, or only some of them (the OpenAPI
# document, `servers.http.openapi_schemas`, says the same).
ACTION_TARGETS: dict[str, tuple[str, ...]] = {
    "error": OPERATIONS,
    "disconnect": OPERATIONS,
    "delay": OPERATIONS,
    "truncate": ("upload",),
    "verdict": ("judge",),
    "stall": STEPS,
    "crash": STEPS,
    "fail": ("mail",),
}
ACTIONS = tuple(ACTION_TARGETS)
DEFAULT_CODE = 451  # contract 9.2: "FTP reply `code` (default 451)"
MAX_SECONDS = 3600.0  # a delay or stall longer than an hour is a typo, not a test
MAX_BYTES = 2**40  # truncate's `bytes`
MAX_TIMES = 10**9
_FIELDS = frozenset(
    {"on", "action", "protocol", "login", "name", "code", "message", "seconds", "bytes"}
    | {"reason", "times", "probability", "seed"}
)


class FaultError(ValueError):
    """A rule that cannot be: the message names the field and says what it accepts."""


@dataclass(frozen=True)
class FaultRule:
    """One rule of contract 9.2. `id` is given when the rule is added; `times` 0 means until
    removed; with `probability` set, `times` is ignored and `seed` makes the draws repeatable.
    `from_config`: read from the config file (kept by a reset)."""

    on: str
    action: str
    protocol: str = "any"
    login: str | None = None
    name: str | None = None
    code: int = DEFAULT_CODE
    message: str = ""
    seconds: float = 0.0
    bytes: int = 0
    reason: str | None = None
    times: int = 1
    probability: float | None = None
    seed: int | None = None
    id: int = 0
    from_config: bool = False

    @property
    def is_step(self) -> bool:
        return self.on in STEPS

    def matches(
        self, on: str, *, protocol: str | None = None, login: str | None = None, name: str = ""
    ) -> bool:
        """Whether this rule applies to operation or step `on` of `login` on file `name` (the
        path in the login's tree, `/SEND_SMS/x.csv`, or a bare name). The glob is matched,
        case-sensitively as the platform's names are, against the base name (`x.csv`: what a
        user writes, `*.csv`), or against the whole path when the glob holds a `/`."""
        if on != self.on:
            return False
        if self.protocol != "any" and protocol is not None and protocol != self.protocol:
            return False
        if self.login is not None and login != self.login:
            return False
        if self.name is None:
            return True
        subject = name if "/" in self.name else name.rpartition("/")[2]
        return fnmatch.fnmatchcase(subject, self.name)

    def view(self, fired: int) -> dict[str, Any]:
        """The rule as `GET /api/faults` lists it."""
        shown: dict[str, Any] = {"id": self.id, "on": self.on, "action": self.action}
        if not self.is_step:
            shown["protocol"] = self.protocol
        for key in ("login", "name", "reason", "probability", "seed"):
            value = getattr(self, key)
            if value is not None:
                shown[key] = value
        if self.action == "error" and self.protocol != "sftp":
            shown["code"] = self.code  # the FTP reply's: SFTP answers SSH_FX_FAILURE
        if self.message:
            shown["message"] = self.message
        if self.action in ("delay", "stall"):
            shown["seconds"] = self.seconds
        if self.action == "truncate":
            shown["bytes"] = self.bytes
        if self.probability is None:
            shown["times"] = self.times
        shown["fired"] = fired
        shown["source"] = "config" if self.from_config else "api"
        return shown


def _text(data: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 200 or "\n" in value:
        raise FaultError(f"{key} must be a non-empty one-line text of at most 200 characters")
    return value


def _number(data: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultError(f"{key} must be a number from {low:g} to {high:g}")
    if not low <= value <= high:
        raise FaultError(f"{key} must be a number from {low:g} to {high:g}, not {value:g}")
    return float(value)


def _integer(data: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    number = whole_number(value)  # 5.0 is 5, as for the document's "integer"
    if number is None or not low <= number <= high:
        raise FaultError(f"{key} must be a whole number from {low} to {high}")
    return number


def parse_rule(data: Mapping[str, Any], *, from_config: bool = False) -> FaultRule:
    """A rule from its JSON object (`POST /api/faults`) or `[[faults]]` table; FaultError
    naming the first field that is wrong."""
    if not isinstance(data, Mapping):
        raise FaultError("a fault rule is an object with at least `on` and `action`")
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise FaultError(f"unknown field {unknown[0]!r}; a rule has: {', '.join(sorted(_FIELDS))}")
    nulls = sorted(str(k) for k, v in data.items() if v is None)
    if nulls:  # JSON null is no value: `"seed": null` must not pass for "no seed"
        raise FaultError(f"{nulls[0]} must not be null: leave it out for its default")
    on = data.get("on")
    if on not in OPERATIONS + STEPS:
        raise FaultError(f"on must be one of: {', '.join(OPERATIONS + STEPS)}")
    action = data.get("action")
    if not isinstance(action, str) or action not in ACTION_TARGETS:  # `{}` is unhashable
        raise FaultError(f"action must be one of: {', '.join(ACTIONS)}")
    if on not in ACTION_TARGETS[action]:
        raise FaultError(
            f"action {action!r} applies to: {', '.join(ACTION_TARGETS[action])}; not {on!r}"
        )
    protocol = _text(data, "protocol", "any")
    if protocol not in PROTOCOLS:
        raise FaultError(f"protocol must be one of: {', '.join(PROTOCOLS)}")
    if on in STEPS and protocol != "any":
        raise FaultError("protocol applies to protocol operations only, not to a step")
    seconds = _number(data, "seconds", 0.0, MAX_SECONDS)
    if action in ("delay", "stall") and seconds is None:
        raise FaultError(f"action {action!r} needs seconds (0 to {MAX_SECONDS:g})")
    if action not in ("delay", "stall") and seconds is not None:
        raise FaultError("seconds applies to actions 'delay' and 'stall' only")
    size = _integer(data, "bytes", 0, MAX_BYTES)
    if action == "truncate" and size is None:
        raise FaultError("action 'truncate' needs bytes: how many bytes arrive before the cut")
    if action != "truncate" and size is not None:
        raise FaultError("bytes applies to action 'truncate' only")
    if action != "error" and data.get("message") is not None:
        raise FaultError("message applies to action 'error' only")
    reason = _text(data, "reason")
    if action == "verdict":
        if reason not in {r.value for r in Reason}:
            raise FaultError(f"reason must be one of: {', '.join(r.value for r in Reason)}")
    elif reason is not None:
        raise FaultError("reason applies to action 'verdict' only")
    probability = _number(data, "probability", 0.0, 1.0)
    seed = _integer(data, "seed", -(2**63), 2**63 - 1)
    if seed is not None and probability is None:
        raise FaultError("seed goes with probability")
    if probability is not None and seed is None:
        seed = 0  # contract 9.2 faults are reproducible: no seed given is seed 0, not chance
    times = _integer(data, "times", 0, MAX_TIMES)
    if times is not None and probability is not None:
        raise FaultError("give times or probability, not both")
    code = _integer(data, "code", 400, 599)
    if code is not None and action != "error":
        raise FaultError("code applies to action 'error' only")
    return FaultRule(
        on=on,
        action=action,
        protocol=protocol,
        login=_text(data, "login"),
        name=_text(data, "name"),
        code=DEFAULT_CODE if code is None else code,
        message=_text(data, "message") or "",
        seconds=seconds or 0.0,
        bytes=size or 0,
        reason=reason,
        times=1 if times is None else times,
        probability=probability,
        seed=seed,
        from_config=from_config,
    )
