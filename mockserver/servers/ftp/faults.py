"""Contract 9.2 faults on the FTP server's protocol operations: which commands are which
operation, and what the client then sees.

| operation | commands | `name` |
|---|---|---|
| `login` | `PASS` with the right password | - |
| `list` | `LIST`, `NLST`, `MLSD` | the folder listed |
| `upload` | `STOR`, `APPE`, `STOU` | the file written |
| `rename` | `RNTO` | the file renamed, by its name before (`RNFR`'s) |
| `delete` | `DELE` | the file deleted |
| `download` | `RETR` | the file read |

A rule fires when the command's path is well formed, before the platform's own checks (an
injected error replaces even a refusal), and acts:

- `error`: the reply is `code` (default 451) and `message` (a default one says the failure is
  injected); nothing is done and the control connection stays usable. At login, the client is
  not logged in and starts again from `USER`.
- `disconnect`: the control connection is closed at once, with no reply.
- `delay`: the command runs `seconds` later; meanwhile that session reads no further command
  (they wait, in order) and every other session goes on (a timer of pyftpdlib's loop, never a
  sleep in it, like the delay of a failed login).
- `truncate` (upload): the first `bytes` bytes are written, then the data connection is closed
  and the reply is 426; the partial file is removed and never judged. An upload no longer than
  `bytes` completes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mockserver.servers import faulting

if TYPE_CHECKING:
    from mockserver.servers.ftp.session import Session

log = logging.getLogger("mockserver.ftp")

OPERATIONS = {"STOR": "upload", "APPE": "upload", "STOU": "upload", "RETR": "download"}
OPERATIONS |= {"DELE": "delete", "RNTO": "rename", "LIST": "list", "NLST": "list", "MLSD": "list"}


def command_intercepted(
    session: Session, cmd: str, name: str | None, go: Callable[[], None]
) -> bool:
    """Fire the rule of command `cmd` on `name` (the path in the login's tree; None: no
    operation to fire on) and act on it; False: `go` (the command itself) is the caller's to
    run now. A `truncate` is left to the upload's file (`Session.upload_cut`)."""
    on = OPERATIONS.get(cmd)
    if on is None or name is None:
        return False
    rule = faulting.fire(session.ctx.faults, on, "ftp", session.username, name)
    if on == "upload":
        session.upload_cut = rule if rule is not None and rule.action == "truncate" else None
    if rule is None or rule.action == "truncate":
        return False
    faulting.log_action(log, "FTP", session.username, on, rule)
    if rule.action == "error":
        session.respond(f"{rule.code} {faulting.error_text(rule, on)}")
    elif rule.action == "disconnect":
        session.pause_commands()  # the lines already read are never run
        session.close()
    else:
        session.pause_commands()
        session.call_later_guarded(rule.seconds, lambda: _resume(session, go))
    return True


def _resume(session: Session, go: Callable[[], None]) -> None:
    if not session.is_closed:
        session.resume_commands(go)


def login_checked(
    session: Session, username: str, then: Callable[[object], None], error: object
) -> None:
    """The password check's answer `error` (None: the password is right; loop thread, the
    session's commands paused): a right password fires the `login` rule; `then` (the session's
    own handling of the answer) runs now, after a `delay`, or never (`error`, `disconnect`)."""
    if error is not None or session.is_closed:
        then(error)
        return
    rule = faulting.fire(session.ctx.faults, "login", "ftp", username)
    if rule is None or rule.action == "truncate":
        then(None)
        return
    faulting.log_action(log, "FTP", username, "login", rule)
    if rule.action == "delay":
        session.call_later_guarded(rule.seconds, lambda: then(None))
    elif rule.action == "error":
        session.username = ""  # as after a failed login: USER again
        text = faulting.error_text(rule, "login")
        session.resume_commands(lambda: session.respond(f"{rule.code} {text}"))
    else:
        session.close()
