"""What the FTP and SFTP servers share when a fault rule of contract 9.2 fires on a protocol
operation (`login`, `list`, `upload`, `rename`, `delete`, `download`): the words of an injected
error and of the log line. Each server acts on the rule in its own protocol
(`servers.ftp.faults`, `servers.sftp_faults`); `mockserver.faults.Faults.fire` counts it,
publishes `fault.fired` and logs that it fired.
"""

from __future__ import annotations

import logging

from mockserver.core.faults import FaultRule
from mockserver.faults import Faults


def fire(faults: Faults, on: str, protocol: str, login: str, name: str = "") -> FaultRule | None:
    """The rule that fires on operation `on` of `login` on `name` (the path in the login's tree,
    `/SEND_SMS/x.csv`; a rule's `name` glob matches its base name, see
    `FaultRule.matches`), or None at once when no rule is set."""
    if not len(faults):
        return None
    return faults.fire(on, protocol=protocol, login=login or None, name=name)


def error_text(rule: FaultRule, on: str) -> str:
    """The text the client gets for an `error` rule: its `message`, else one saying that the
    failure was injected (so nobody hunts for a real bug)."""
    return rule.message or f"Injected fault (rule {rule.id}): the {on} failed"


def log_action(log: logging.Logger, protocol: str, login: str, on: str, rule: FaultRule) -> None:
    """One line in the server's own log: what the client got."""
    done = {
        "error": "failed",
        "disconnect": "connection closed",
        "delay": f"delayed {rule.seconds:g} s",
        "truncate": f"cut after {rule.bytes} bytes",
    }.get(rule.action, rule.action)
    log.info("login=%s %s %s: injected fault %d: %s", login or "?", protocol, on, rule.id, done)
