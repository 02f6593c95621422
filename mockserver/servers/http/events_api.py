"""`GET /api/events` (contract 9.1): the event bus as `text/event-stream`.

Each event is `id: N`, `event: <type>`, `data: <one JSON object>` (`views.event_view`) and a
blank line. `?login=` keeps that login's events and the platform's (`login` null); `?after=N`
or the `Last-Event-ID` header (which wins: a browser's reconnect) replays the retained events
after N, then streams live ones (`event_feed.Feed`: no gap, no duplicate). Two notices carry no
`id:` line, so they never move a client's Last-Event-ID:

- `event: lost` first, when events after N are no longer retained (or N is an id of an earlier
  run of the server): `{"type": "lost", "after": N, "oldest": <first id that follows>}`;
- `event: overflow` last, when the reader fell `QUEUE_EVENTS` events behind: the stream ends;
  reconnect with `Last-Event-ID` to replay what followed from the retained events.

A comment line (`: keep-alive`) is written after `KEEPALIVE_SECONDS` without anything to send.
The platform never waits for a reader: events reach a stream through a bounded queue; a
reader that stops reading is dropped once that queue is full (told if it still reads, else
disconnected after `GRACE_SECONDS`). At most `MAX_STREAMS` streams are open (503 beyond), and
every stream ends at once when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

from aiohttp import web

from mockserver import views
from mockserver.event_feed import Feed
from mockserver.events import EventBus
from mockserver.servers.http.validation import BadRequest, error_reply, parse_query, text_param

log = logging.getLogger("mockserver.http")

LIVENESS_SECONDS = 0.5  # how soon a stream whose reader left gives its slot back
KEEPALIVE_SECONDS = 15.0  # contract 9.1: "A comment line every 15 s keeps proxies open"
QUEUE_EVENTS = 1000  # events a stream may fall behind before it is dropped
MAX_STREAMS = 64  # open streams; one more is a 503
GRACE_SECONDS = 2.0  # how long a write may wait for a reader that was dropped or at stop
_ID = re.compile(r"[0-9]{1,18}")


def frame(event_id: int | None, kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event. JSON never holds a raw newline, so `data:` is one line."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {kind}\ndata: {text}\n\n".encode()


def _after(request: web.Request, query: dict[str, str]) -> int | None:
    """The id to replay after: the `Last-Event-ID` header (a browser's reconnect) wins over
    `after=`; each one given must be an id (a 400 otherwise, even the one that loses)."""
    after = _event_id(query.get("after"), "after")
    header = _event_id(request.headers.get("Last-Event-ID"), "the Last-Event-ID header")
    return after if header is None else header


def _event_id(raw: str | None, what: str) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not _ID.fullmatch(raw):
        raise BadRequest(f"{what} must be an event id: a whole number >= 0, got {raw!r}")
    return int(raw)


class EventStreams:
    """The open event streams of one HTTP API over one bus."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._alarms: set[asyncio.Event] = set()  # one per open stream: set at stop
        self._closing = False

    @property
    def open(self) -> int:
        return len(self._alarms)

    def close(self) -> None:
        """The server stops: every stream ends now, and no new one opens."""
        self._closing = True
        for alarm in list(self._alarms):
            alarm.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = parse_query(request, ("login", "after"))
        login = text_param(query, "login")
        after = _after(request, query)
        if self._closing:
            return error_reply("the server is stopping", 503)
        if len(self._alarms) >= MAX_STREAMS:
            return error_reply(f"too many event streams open (at most {MAX_STREAMS})", 503)
        self._alarms.add(alarm := asyncio.Event())
        try:
            stream = _Stream(request, alarm)
            with Feed(
                self._bus,
                after=after,
                login=login,
                maxlen=QUEUE_EVENTS,
                on_offer=stream.on_offer,
            ) as feed:
                stream.feed = feed
                return await stream.run(after)
        finally:
            self._alarms.discard(alarm)


class _Stream:
    """One open stream: the feed's events written to one response."""

    def __init__(self, request: web.Request, alarm: asyncio.Event) -> None:
        self.request = request
        self.loop = asyncio.get_running_loop()
        self.feed: Feed | None = None
        self.ready = asyncio.Event()  # the feed has something (set from the publisher's thread)
        self.alarm = alarm  # stop, or the feed was dropped: stop waiting for the reader
        self._scheduled = False  # a wake-up is on its way: one call_soon_threadsafe per batch
        self.response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            }
        )
        self.response.force_close()  # a stream ends its connection: no keep-alive after it

    def on_offer(self) -> None:
        """The publisher's thread offered the feed an event: wake the loop, once per batch."""
        if not self._scheduled:
            self._scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: at stop
                self.loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._scheduled = False
        self.ready.set()
        if self.feed is not None and self.feed.dropped:
            self.alarm.set()  # a write stuck on a reader that does not read gives up

    async def run(self, after: int | None) -> web.StreamResponse:
        response = self.response
        assert self.feed is not None
        await response.prepare(self.request)
        ok = await self.send(b": allmysms-mockserver events\n\n")
        if ok and self.feed.lost:
            notice = {"type": "lost", "after": after, "oldest": self.feed.oldest}
            ok = await self.send(frame(None, "lost", notice))
        while ok and not self.alarm.is_set():
            ok = await self.pump()
        if ok and self.feed.dropped:
            log.info("an event stream fell %d events behind: dropped", QUEUE_EVENTS)
            notice = {"type": "overflow", "last_id": self.feed.last_id}
            ok = await self.send(frame(None, "overflow", notice), GRACE_SECONDS)
        if ok:
            ok = await self.finish()
        if not ok:
            self.abort()
        return response

    async def pump(self) -> bool:
        """Send what the feed holds, else wait for more (a keep-alive after the interval)."""
        assert self.feed is not None
        transport = self.request.transport
        if transport is None or transport.is_closing():
            return False  # the reader is gone
        self.ready.clear()
        event = self.feed.get(0)
        if event is not None:
            data = views.event_view(event)
            return await self.send(frame(event.id, event.type, data))
        if self.feed.overflowed or self.feed.closed:
            self.alarm.set()
            return True
        waits = [asyncio.ensure_future(self.ready.wait()), asyncio.ensure_future(self.alarm.wait())]
        quiet_until = self.loop.time() + KEEPALIVE_SECONDS
        try:
            while True:
                # Look at the connection every LIVENESS_SECONDS: a reader that went away frees
                # its stream slot within that time, not at the next keep-alive.
                timeout = min(LIVENESS_SECONDS, quiet_until - self.loop.time())
                done, _ = await asyncio.wait(
                    waits, timeout=max(timeout, 0), return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    return True
                transport = self.request.transport
                if transport is None or transport.is_closing():
                    return False
                if self.loop.time() >= quiet_until:
                    return await self.send(b": keep-alive\n\n")
        finally:
            for wait in waits:
                wait.cancel()

    async def send(self, data: bytes, grace: float | None = None) -> bool:
        """Write `data`; False when the reader is gone, or still not reading `grace` seconds
        after the alarm (stop, overflow): never wait on a reader for longer."""
        write = asyncio.ensure_future(self.response.write(data))
        alarm = asyncio.ensure_future(self.alarm.wait())
        try:
            if grace is None:
                await asyncio.wait({write, alarm}, return_when=asyncio.FIRST_COMPLETED)
            if not write.done():
                await asyncio.wait({write}, timeout=GRACE_SECONDS if grace is None else grace)
            if not write.done():
                write.cancel()
                return False
            return write.exception() is None
        finally:
            alarm.cancel()

    async def finish(self) -> bool:
        write = asyncio.ensure_future(self.response.write_eof())
        await asyncio.wait({write}, timeout=GRACE_SECONDS)
        if not write.done():
            write.cancel()
            return False
        return write.exception() is None

    def abort(self) -> None:
        """A reader that is gone or does not read: the connection is closed under it."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()
