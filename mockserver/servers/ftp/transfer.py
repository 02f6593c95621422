"""The FTP data connections: the replies of a failed upload (size limit, full disk, file error),
and passive listeners kept inside the configured port range.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

from mockserver.servers import faulting
from mockserver.servers.dropbox import FileTooLarge
from mockserver.servers.ftp.compat import DataChannelBase, NoPassivePort, PassiveDTP
from mockserver.servers.ftp.fs import UploadCut

log = logging.getLogger("mockserver.ftp")


class DataChannel(DataChannelBase):
    """Answers 552 (RFC 959: "exceeded storage allocation") when an upload passes the limit,
    452 ("insufficient storage space in system") when the disk is full, 426 with the reason on
    another file error; the handler's on_incomplete_file_received then removes the partial file.
    """

    def handle_error(self) -> None:
        exc = sys.exc_info()[1]
        cause = getattr(exc, "__cause__", None)
        session = self.cmd_channel
        if isinstance(cause, UploadCut):  # contract 9.2 `truncate`
            rule = cause.rule
            faulting.log_action(log, "FTP", session.username, "upload", rule)
            session.upload_failure = f"cut after {rule.bytes} bytes by an injected fault"
            text = rule.message or f"Injected fault (rule {rule.id}): connection cut"
            reply = f"426 {text}; transfer aborted."
            self.set_closing_reply(reply, logging.getLogger("pyftpdlib").info)
            self.close()
            return
        if isinstance(exc, FileTooLarge) or isinstance(cause, FileTooLarge):
            limit = session.ctx.max_file_bytes
            login, virtual = session.username, session.virtual_of(self.file_name)
            log.warning("login=%s FTP upload %s refused: over %d bytes", login, virtual, limit)
            session.upload_failure = "too large"
            self.set_closing_reply(
                f"552 File exceeds the size limit of {limit} bytes; transfer aborted.",
                logging.getLogger("pyftpdlib").info,
            )
            self.close()
            return
        # pyftpdlib wraps a file error without its errno ("426 None; transfer aborted.").
        error = cause if isinstance(cause, OSError) else exc
        if isinstance(error, OSError) and error.errno is not None:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                reply = "452 Insufficient storage space; transfer aborted."
            else:
                reply = f"426 {os.strerror(error.errno)}; transfer aborted."
            login, virtual = session.username, session.virtual_of(self.file_name)
            why = os.strerror(error.errno)
            if self.receive:
                log.warning("login=%s FTP upload %s failed: %s", login, virtual, why)
                session.upload_failure = "failed"
            else:
                log.warning("login=%s FTP download %s failed: %s", login, virtual, why)
            self.set_closing_reply(reply, logging.getLogger("pyftpdlib").info)
            self.close()
            return
        super().handle_error()

    @property
    def file_name(self) -> str | None:
        name = getattr(self.file_obj, "name", None)
        return name if isinstance(name, str) else None


class PassiveListener(PassiveDTP):  # type: ignore[misc]
    """A passive data listener that stays inside `server.passive_ports`: when the range is
    exhausted pyftpdlib falls back to a kernel-chosen port (which Docker or a firewall would
    not let through); here the client gets 425 instead and may retry."""

    def bind(self, addr: tuple[str, int]) -> None:
        if addr[1] == 0 and self.cmd_channel.passive_ports:
            self.close()
            raise NoPassivePort
        super().bind(addr)

    def listen(self, num: int) -> None:
        ports = self.cmd_channel.passive_ports
        if ports and not ports[0] <= self.socket.getsockname()[1] <= ports[-1]:
            self.close()  # not bound in the range (a bind error skipped every port)
            raise NoPassivePort
        super().listen(num)
