"""The `[[faults]]` tables (contract 9.2): fault rules in force from start-up, kept by a reset.

Like `[[accounts]]`, the list is given whole: in the TOML file, in one JSON environment
variable (`ALLMYSMS_MOCK_FAULTS_JSON`, a JSON array of rules, for Docker and CI where the
environment is the config) or as one override (`MockServer(faults=[...])`); a later source
replaces the list. Each rule is read by `core.faults.parse_rule`, the same reader as
`POST /api/faults`; a bad one stops start-up with one line naming the key
(`faults[2].action: must be one of: ...`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mockserver.config.checks import config_error
from mockserver.core.faults import FaultError, FaultRule, parse_rule
from mockserver.core.text import quote_value as show
from mockserver.faults import MAX_RULES

ENV_FAULTS = "ALLMYSMS_MOCK_FAULTS_JSON"
_FIELDS = frozenset(
    [
        "on",
        "action",
        "protocol",
        "login",
        "name",
        "code",
        "message",
        "seconds",
        "bytes",
        "reason",
        "times",
        "probability",
        "seed",
    ]
)


def _rule(entry: Any, where: str) -> FaultRule:
    if isinstance(entry, FaultRule):  # given whole to MockServer: a start-up rule too
        return dataclasses.replace(entry, from_config=True)
    if not isinstance(entry, Mapping):
        raise config_error(where, f"must be a table of rule fields, got {show(entry)}")
    try:
        return parse_rule(entry, from_config=True)
    except FaultError as exc:
        message = str(exc)
        field, _, rest = message.partition(" ")
        if field in _FIELDS and rest:
            # "action must be one of: ..." -> "faults[2].action: must be one of: ..."
            raise config_error(f"{where}.{field}", rest) from None
        raise config_error(where, message) from None


def read_faults(entries: Any, where: str) -> tuple[FaultRule, ...]:
    """The rules of a `[[faults]]` array (or its JSON form); ConfigError naming the key."""
    if not isinstance(entries, list | tuple):
        problem = f"must be an array of rule tables ([[faults]]), got {show(entries)}"
        raise config_error(where, problem)
    if len(entries) > MAX_RULES:
        raise config_error(where, f"at most {MAX_RULES} rules, got {len(entries)}")
    return tuple(_rule(entry, f"{where}[{index}]") for index, entry in enumerate(entries))
