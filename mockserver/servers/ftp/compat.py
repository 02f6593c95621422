"""Every pyftpdlib name the FTP server uses, and the only place touching pyftpdlib's private
attributes (under public names here), with `verify`: the check, at server start, that the
installed pyftpdlib still has each of them.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any

with warnings.catch_warnings():
    # On Python 3.11 pyftpdlib imports the stdlib asyncore/asynchat, which warn that they are
    # deprecated (3.12+ gets pyftpdlib's own copy); nothing for our users to act on.
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*asyn(core|chat)")
    import pyftpdlib
    import pyftpdlib.ioloop
    from pyftpdlib.authorizers import AuthenticationFailed, AuthorizerError
    from pyftpdlib.exceptions import FilesystemError
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

__all__ = [
    "PRIVATE",
    "AbstractedFS",
    "AuthenticationFailed",
    "AuthorizerError",
    "DTPHandler",
    "DataChannelBase",
    "FTPHandler",
    "FTPServer",
    "FilesystemError",
    "HandlerBase",
    "IOLoop",
    "IncompatiblePyftpdlib",
    "ListenerBase",
    "NoPassivePort",
    "PassiveDTP",
    "missing",
    "verify",
]

log = logging.getLogger("mockserver.ftp")

SUPPORTED = "pyftpdlib>=2.0,<3"


class _Absent:
    """Stands for a pyftpdlib class that is gone: every attribute asked of it is missing."""


# The scheduled call of pyftpdlib's loop, which takes the private `_errback` keyword.
_CallLater: type[Any] = getattr(pyftpdlib.ioloop, "_CallLater", None) or type(
    "_CallLater", (_Absent,), {}
)

# Every private attribute or method of pyftpdlib used below: (class, name).
PRIVATE: tuple[tuple[type[Any], str], ...] = (
    (FTPHandler, "_closed"),
    (FTPHandler, "_closing"),
    (FTPHandler, "_rnfr"),
    (FTPHandler, "_in_dtp_queue"),
    (FTPHandler, "_out_dtp_queue"),
    (FTPHandler, "_in_buffer"),
    (FTPHandler, "_in_buffer_len"),
    (FTPHandler, "_dtp_acceptor"),
    (FTPHandler, "_make_epasv"),
    (DTPHandler, "_resp"),
    (_CallLater, "_errback"),
)

# Where the class lives moved between pyftpdlib versions; the handler attribute did not.
PassiveDTP: type[Any] = FTPHandler.passive_dtp


# RFC 959 lets a server answer 500 to a line it will not read; pyftpdlib's own limit is 2,048
# bytes but it then reads the rest of the line as a second command (two replies, issue 16).
MAX_COMMAND_BYTES = 2048
# What an over-long line is kept as until its end: longer than the limit, so no line read
# whole can equal it.
_OVERLONG = b"\x00" * (MAX_COMMAND_BYTES + 1)


class IncompatiblePyftpdlib(RuntimeError):
    """The installed pyftpdlib lacks a private attribute this server relies on."""


class NoPassivePort(Exception):
    """Every port of the passive range is taken."""


@functools.cache
def _init_source(klass: type[Any]) -> str | None:
    """The source of `klass`'s own `__init__` ("" if it has none), None if unreadable: read
    once per class (issue 15: `inspect.getsource` was most of this check's start-up cost)."""
    init = vars(klass).get("__init__")
    if init is None or klass is object:
        return ""
    try:
        return inspect.getsource(init)
    except (OSError, TypeError):
        return None


def _assigned_in_init(cls: type[Any], name: str) -> bool | None:
    """Whether some `__init__` of `cls`'s classes sets `self.<name>`; None if no source."""
    pattern = re.compile(rf"\bself\.{re.escape(name)}\s*(:[^=\n]*)?=(?!=)")
    for klass in cls.__mro__:
        source = _init_source(klass)
        if source is None:
            return None
        if pattern.search(source):
            return True
    return False


def missing(required: Iterable[tuple[type[Any], str]] | None = None) -> list[str]:
    """`Class.attribute` for each required attribute (default: `PRIVATE`) the classes do not
    have (an instance attribute counts when an `__init__` of the class sets it)."""
    absent = []
    for cls, name in PRIVATE if required is None else required:
        if hasattr(cls, name) or _assigned_in_init(cls, name) is not False:
            continue
        absent.append(f"{cls.__name__}.{name}")
    return absent


@functools.cache
def verify() -> None:
    """Raise IncompatiblePyftpdlib, one line naming what is missing, on an unsupported
    pyftpdlib (checked once per process)."""
    absent = missing()
    if absent:
        version = getattr(pyftpdlib, "__ver__", "?")
        raise IncompatiblePyftpdlib(
            f"pyftpdlib {version} is not supported (it lacks {', '.join(absent)});"
            f" install {SUPPORTED}"
        )


class HandlerBase(FTPHandler):  # type: ignore[misc]
    """pyftpdlib's control connection, with the private state the session reads or replaces
    under public names, and the passive-range exhaustion turned into a hook."""

    # Set by pyftpdlib's __init__ (annotations only: nothing here shadows them).
    _closed: bool
    _closing: bool
    _rnfr: str | None  # the pending RNFR source (a real path)
    _in_dtp_queue: Any  # the upload waiting for its data connection: (file, cmd)
    _out_dtp_queue: Any  # the download waiting for it: (data, producer?, file, cmd)
    _in_buffer: list[bytes]
    _in_buffer_len: int
    _dtp_acceptor: Any
    # pyftpdlib's documented setting (a class attribute of the server's handler class); a
    # session on the server's own network replaces it for itself (servers.ftp.nat).
    masquerade_address: str | None

    _overlong = False  # reading the rest of a line over MAX_COMMAND_BYTES, to drop it

    def collect_incoming_data(self, data: bytes) -> None:
        """Buffer a command line; one over MAX_COMMAND_BYTES is dropped to its end, then
        answered once (`found_terminator`), whatever its length."""
        if self._overlong:
            return
        if self._in_buffer_len + len(data) > MAX_COMMAND_BYTES:
            self._overlong = True
            self._in_buffer = [_OVERLONG]
            self._in_buffer_len = len(_OVERLONG)
            return
        self._in_buffer.append(data)
        self._in_buffer_len += len(data)

    def found_terminator(self) -> None:
        self._overlong = False
        if self._in_buffer_len == len(_OVERLONG) and b"".join(self._in_buffer) == _OVERLONG:
            self._in_buffer = []
            self._in_buffer_len = 0
            self.respond_w_warning("500 Command too long.")
            return
        super().found_terminator()

    @property
    def is_closed(self) -> bool:
        return bool(self._closed)

    @property
    def is_closing(self) -> bool:
        return bool(self._closing)

    def call_later_guarded(self, seconds: float, target: Callable[[], None]) -> Any:
        """Schedule `target` on the loop, an error in it going to `handle_error`. Unlike the
        handler's own `call_later`, the handler keeps no reference to it (a client sending REIN
        again and again must not grow a list): the caller cancels it."""
        return self.ioloop.call_later(seconds, target, _errback=self.handle_error)

    def take_rename_source(self) -> str | None:
        """The pending RNFR source (a real path), now consumed."""
        source = self._rnfr
        self._rnfr = None
        return source

    def put_rename_source(self, source: str | None) -> None:
        self._rnfr = source

    def take_waiting_upload(self) -> Any:
        """The upload waiting for its data connection, `(file, cmd)`, now forgotten, or None."""
        upload = getattr(self, "_in_dtp_queue", None)
        if upload is not None:
            self._in_dtp_queue = None
        return upload

    def take_waiting_download(self) -> Any:
        """The download waiting for it, `(data, producer?, file, cmd)`, now forgotten, or None."""
        download = self._out_dtp_queue
        self._out_dtp_queue = None
        return download

    def take_line(self) -> bytes:
        """The command line read so far (the one `found_terminator` would run), now consumed."""
        line = b"".join(self._in_buffer)
        self._in_buffer = []
        self._in_buffer_len = 0
        self._overlong = False  # the line ended: the next one is read again
        return line

    def run_line(self, line: bytes) -> None:
        """Run a command line taken earlier, as if it had just been read."""
        self._in_buffer = [line]
        self._in_buffer_len = len(line)
        self.found_terminator()

    def _make_epasv(self, extmode: bool = False) -> None:
        try:
            super()._make_epasv(extmode)
        except NoPassivePort:
            self._dtp_acceptor = None
            self.passive_range_exhausted()

    def passive_range_exhausted(self) -> None:
        """PASV or EPSV found no free port of `passive_ports` (the listener raised
        NoPassivePort); the subclass replies."""


class DataChannelBase(DTPHandler):  # type: ignore[misc]
    """pyftpdlib's data connection, with the reply it sends when it closes settable."""

    _resp: tuple[str, Callable[[str], None]] | tuple[()]

    def set_closing_reply(self, reply: str, logfun: Callable[[str], None]) -> None:
        """The reply the control connection gets when this transfer closes."""
        self._resp = (reply, logfun)


class ListenerBase(FTPServer):  # type: ignore[misc]
    """pyftpdlib's listener, which never dies of a failed accept: pyftpdlib re-raises any
    error but ECONNABORTED and its `handle_error` then closes the listener for good (out of
    descriptors, FTP was gone until a restart: issue 16). Here a failed accept pauses the
    listener for `accept_pause` seconds (the connection waits in the backlog) and tells
    `accept_failed`; the next accept that works tells `accept_worked`."""

    accept_pause = 1.0
    _retry: Any = None

    def handle_accept(self) -> None:
        try:
            pair = self.accept()  # None: nothing to accept after all (EAGAIN, ECONNABORTED)
        except OSError as exc:
            if exc.errno == errno.ECONNABORTED:
                return
            self._pause()
            self.accept_failed(exc)
            return
        if pair is None:
            return
        sock, addr = pair
        self.accept_worked()
        if addr is not None:
            self.handle_accepted(sock, addr)

    def _pause(self) -> None:
        if self._retry is not None:
            return
        self.del_channel()
        self._retry = self.ioloop.call_later(
            self.accept_pause, self._resume, _errback=self._resume_failed
        )

    def _resume(self) -> None:
        self._retry = None
        if self.socket is not None:
            self.add_channel()

    def _resume_failed(self) -> None:
        self._retry = None
        log.exception("cannot resume accepting FTP connections")

    @property
    def paused(self) -> bool:
        """Off the loop's map until the retry: the loop's `close` would not close it."""
        return self._retry is not None

    def close(self) -> None:
        retry, self._retry = self._retry, None
        if retry is not None:
            retry.cancel()
        super().close()

    def accept_failed(self, exc: OSError) -> None:
        """An accept failed (the listener is paused, then retried)."""

    def accept_worked(self) -> None:
        """An accept worked."""
