"""Contract 9.1's session and upload events, as FTP and SFTP publish them: one method per event,
called where the server logs the same thing, so both protocols publish the same events with
the same fields for the same client actions (tests/integration/test_events.py)."""

from __future__ import annotations

from mockserver.events import (
    FileDeleted,
    FileRenamed,
    SessionLogin,
    SessionLoginFailed,
    UploadClosed,
    UploadRefused,
)
from mockserver.servers.dropbox import Publish, no_events

# `upload.refused`'s reasons, from the words of the log lines ("too large; partial file removed").
REFUSED_REASONS = {"too large": "too_large", "failed": "failed", "interrupted": "cut"}
REFUSED_CODES = frozenset({"permission", "busy", "too_large", "failed", "cut"})


def refused_reason(text: str) -> str:
    """The event's `reason`, always one of `REFUSED_CODES` (docs/api.md): a log's words are
    mapped, a cut upload's sentence ("cut after N bytes by an injected fault") is `cut`,
    anything else `failed`."""
    reason = REFUSED_REASONS.get(text, text)
    if reason in REFUSED_CODES:
        return reason
    return "cut" if reason.startswith("cut") else "failed"


class Announce:
    """Publishes one protocol's events (`protocol`: "ftp" or "sftp"). `name` is the path in the
    login's tree as the logs show it (`/SEND_SMS/x.tmp`); `address` is `host:port`."""

    def __init__(self, publish: Publish = no_events, protocol: str = "ftp") -> None:
        self.publish = publish
        self.protocol = protocol

    def login(self, login: str, address: str) -> None:
        self.publish(SessionLogin(login=login, protocol=self.protocol, address=address))

    def login_failed(self, login: str, address: str, reason: str) -> None:
        """`reason`: "credentials" (wrong login or password) or "locked_out" (refused by the
        lockout of the address, before any password check)."""
        failed = SessionLoginFailed(
            login=login[:64], protocol=self.protocol, address=address, reason=reason
        )
        self.publish(failed)

    def upload_closed(self, login: str, name: str, size: int) -> None:
        self.publish(UploadClosed(login=login, protocol=self.protocol, name=name, bytes=size))

    def upload_refused(self, login: str, name: str, reason: str) -> None:
        """`reason`: "permission" (not where uploads go), "busy" (being uploaded by another
        session), "too_large", "failed" (a write failed: disk full), "cut" (the upload ended
        before it was complete); or one of the log's words, mapped by `REFUSED_REASONS`."""
        reason = refused_reason(reason)
        self.publish(UploadRefused(login=login, protocol=self.protocol, name=name, reason=reason))

    def renamed(self, login: str, name: str, new_name: str) -> None:
        renamed = FileRenamed(login=login, protocol=self.protocol, name=name, new_name=new_name)
        self.publish(renamed)

    def deleted(self, login: str, name: str) -> None:
        self.publish(FileDeleted(login=login, protocol=self.protocol, name=name))
