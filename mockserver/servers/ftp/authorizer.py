"""The FTP logins: pyftpdlib's authorizer interface over the Authenticator (asked on every login,
accounts change at run time), the login lockout, and the policy on every permission check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mockserver.servers import policy
from mockserver.servers.ftp.compat import AuthenticationFailed, AuthorizerError
from mockserver.servers.ftp.context import Context
from mockserver.tree import make_tree, valid_login

log = logging.getLogger("mockserver.ftp")

# The permissions pyftpdlib advertises in MLSD "perm" facts; what is really allowed is decided
# per path by `policy` (a client is refused with 550 rather than not trying).
_ADVERTISED_PERMS = "elradfwT"


class Authorizer:
    """pyftpdlib's authorizer interface, asking the Authenticator on every login (accounts change
    at run time) and the policy on every permission check (a second line behind the handler).
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        if not valid_login(username) or not self._ctx.auth.authenticate(username, password):
            address = str(getattr(handler, "remote_ip", ""))
            peer = f"{address}:{getattr(handler, 'remote_port', '?')}"
            # pyftpdlib counts this failure once it is answered: this is the next one.
            failures = int(getattr(handler, "attempted_logins", 0)) + 1
            log.warning("FTP login failed for %r from %s (%d)", username[:64], peer, failures)
            self._ctx.announce.login_failed(username, peer, "credentials")
            # Counted at once (not after the delay): parallel guessers are counted too.
            if self._ctx.guard.lockout.failed(address, username):
                log.warning(
                    "FTP logins from %s (or for %r) locked out after repeated failures",
                    address,
                    username[:64],
                )
            # An empty message lets pyftpdlib answer "Anonymous access not allowed." or
            # "Authentication failed." (530), after its failed-login delay.
            raise AuthenticationFailed("")

    def get_home_dir(self, username: str) -> str:
        try:
            # Idempotent: an account added at run time always finds its four folders.
            make_tree(self._ctx.data_dir, self._ctx.layout, username)
        except (OSError, ValueError) as exc:
            raise AuthorizerError(f"cannot open the home folder: {exc}") from None
        return self._ctx.root(username)

    def get_msg_login(self, username: str) -> str:
        return f"Welcome {username}: upload to SEND_SMS as .tmp, then rename to .csv."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        return None

    def terminate_impersonation(self, username: str) -> None:
        return None

    def get_perms(self, username: str) -> str:
        return _ADVERTISED_PERMS

    def has_user(self, username: str) -> bool:
        return self._ctx.auth.exists(username)

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        if not valid_login(username):
            return False
        confined = self._ctx.confined
        if confined.vouches(path, username):
            virtual = confined.virtual  # the session's check of this very command
        else:
            root = self._ctx.root(username)
            found = "/" if path is None else policy.to_virtual(root, path)
            if found is None or policy.confine(Path(root), found) is None:
                return False
            virtual = found
        layout = self._ctx.layout
        if perm in "elr":
            return bool(policy.may_read(virtual, layout, username))
        if perm in "waT":
            return bool(policy.may_write(virtual, layout, username))
        if perm == "d":
            return bool(policy.may_delete(virtual, layout, username))
        if perm == "f":
            return bool(policy.may_rename_from(virtual, layout, username))
        return False  # m (MKD), M (SITE CHMOD) and anything unknown
