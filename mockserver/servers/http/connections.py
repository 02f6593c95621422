"""The HTTP API's own limits (issue 16): a cap on open connections (a new one past it is
answered 503 and closed), a time to send the first request, and cheap long polls
(`GET /api/files?name=&wait=`) with a cap of their own. aiohttp has none of these: 1,100 idle
connections used to exhaust the mock's descriptors and take FTP down with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from mockserver.events import Event, EventBus, FileFinished, PlatformReset
from mockserver.health import HTTP, Health

log = logging.getLogger("mockserver.http")

# After a response, a kept-alive connection with no new request is closed after this long
# (aiohttp's default is an hour).
KEEPALIVE_SECONDS = 15.0
# Long polls waiting at once; one more is answered 503 at once (docs/spec.md).
MAX_LONG_POLLS = 1000


def connection_cap(configured: int, open_files: int) -> int:
    """The HTTP connections allowed at once: `limits.max_http_connections`, but never more
    than a quarter of the descriptors the process may open (FTP, SFTP, the files being
    processed and the database need the rest)."""
    return max(8, min(configured, open_files // 4))


class _Refused(asyncio.Protocol):
    """A connection past the cap: one 503 and closed (never read)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self._body)}\r\nConnection: close\r\n\r\n"
        )
        transport.write(head.encode() + self._body)
        transport.close()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted by its `Gate` while open, and closed
    if no byte arrives within the gate's `first_request` seconds."""

    def __init__(self, inner: Any, gate: Gate) -> None:
        self._inner = inner
        self._gate = gate
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._gate.first_request, transport.close)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._gate.release()
        self._inner.connection_lost(exc)


class Gate:
    """Counts the API's open connections (loop thread only)."""

    def __init__(self, cap: int, first_request: float, health: Health) -> None:
        self.cap = cap
        self.first_request = first_request
        self.open = 0
        self._health = health
        self._warned = False
        body = {"error": f"too many HTTP connections (limit {cap}); try again later"}
        self._refusal = json.dumps(body).encode()

    def factory(self, make: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        def protocol() -> asyncio.Protocol:
            # A connection accepted: accepting works (again, after running out of descriptors).
            if self._health.problem(HTTP) is not None:
                self._health.clear(HTTP)
            if self.open >= self.cap:
                if not self._warned:  # once per crowd, not once per connection
                    self._warned = True
                    log.warning("HTTP connections refused: limit of %d reached", self.cap)
                return _Refused(self._refusal)
            self.open += 1
            return _Counted(make(), self)

        return protocol

    def release(self) -> None:
        self.open -= 1
        if self.open < self.cap // 2:
            self._warned = False


class CappedSite(web.TCPSite):
    """aiohttp's TCPSite, its connections going through a `Gate`."""

    def __init__(self, runner: web.AppRunner, gate: Gate, **kwargs: Any) -> None:
        super().__init__(runner, **kwargs)
        self._gate = gate

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._gate.factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )


# -- long polls ------------------------------------------------------------------------------


class TooManyWaiters(Exception):
    """MAX_LONG_POLLS are already waiting."""


class LongPolls:
    """The long polls waiting for a verdict, at most `cap` at once, indexed by the name they
    wait for. One subscription to the bus while any waits (the tests see it there), whose
    callback finds the waiters of a `file.finished` by a dict lookup: the processor's thread
    pays the same for 1 or 1,000 of them (before issue 16 each waiter ran a query on every
    verdict, and 1,000 of them made processing 13 times slower; one callback per waiter still
    cost the publisher 167 µs per event, now 10 µs)."""

    def __init__(self, bus: EventBus, cap: int = MAX_LONG_POLLS) -> None:
        self._bus = bus
        self._cap = cap
        self._lock = threading.Lock()  # the loop's thread and the publishers'
        self._by_name: dict[str, dict[asyncio.Event, asyncio.AbstractEventLoop]] = {}
        self._count = 0
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._count

    @contextlib.contextmanager
    def waiter(self, name: str) -> Iterator[asyncio.Event]:
        """An event set whenever a verdict of `name` (its original or final name, like the
        `name=` filter) or a reset may be there; raises TooManyWaiters past the cap."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            if self._count >= self._cap:
                raise TooManyWaiters(f"too many long polls waiting (limit {self._cap})")
            self._by_name.setdefault(name, {})[event] = loop
            self._count += 1
            subscribe = self._unsubscribe is None
            if subscribe:
                self._unsubscribe = lambda: None  # claimed; the real one just below
        if subscribe:
            unsubscribe = self._bus.subscribe(self._wake)
            with self._lock:
                self._unsubscribe = unsubscribe
        try:
            yield event
        finally:
            self._leave(name, event)

    def _leave(self, name: str, event: asyncio.Event) -> None:
        unsubscribe = None
        with self._lock:
            waiters = self._by_name.get(name)
            if waiters is not None:
                waiters.pop(event, None)
                if not waiters:
                    del self._by_name[name]
            self._count -= 1
            if self._count == 0:
                unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def _wake(self, published: Event) -> None:
        # On the publisher's thread (a processor worker): keep it cheap.
        if isinstance(published, FileFinished):
            with self._lock:
                woken = [
                    *self._by_name.get(published.name, {}).items(),
                    *self._by_name.get(published.final_name or "", {}).items(),
                ]
        elif isinstance(published, PlatformReset):
            with self._lock:
                woken = [item for waiters in self._by_name.values() for item in waiters.items()]
        else:
            return
        for event, loop in woken:
            with contextlib.suppress(RuntimeError):  # the loop closed after stop: harmless
                loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        """Wake every waiter (the server is stopping: they answer 503)."""
        with self._lock:
            events = [event for waiters in self._by_name.values() for event in waiters]
        for event in events:
            event.set()
