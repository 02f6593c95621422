"""`allmysms-mock watch`: the event stream (`GET /api/events`, contract 9.1) in a terminal.

One line per event (`format_event`, a pure function: time, type, login, the fields that
matter), in colour when stdout is a terminal and `$NO_COLOR` is unset or empty. The address and
the token come from the same configuration as `serve` and `healthcheck` (`--config`,
`$ALLMYSMS_MOCK_CONFIG`, the `ALLMYSMS_MOCK_*` variables); `--url`/`--token` override them.
When the stream drops, it reconnects with `Last-Event-ID` after a bounded back-off. Exit 0 on
Ctrl-C, 1 when the server cannot be reached at start (or refuses the request), 2 on usage.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import sys
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

ENV_TOKEN = "ALLMYSMS_MOCK_SERVER_API_TOKEN"
READ_TIMEOUT = 45.0  # the server writes a keep-alive every 15 s: silence this long is a drop
CONNECT_TIMEOUT = 5.0
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between reconnections; the last one repeats
TYPE_WIDTH = len("session.login_failed")

_RESET = "\033[0m"
_DIM = "\033[2m"
_BOLD = "\033[1m"
_COLOURS = {
    "session.login": "\033[36m",
    "session.login_failed": "\033[31m",
    "upload.closed": "\033[34m",
    "upload.refused": "\033[31m",
    "file.renamed": "\033[34m",
    "file.deleted": "\033[35m",
    "file.claimed": "\033[33m",
    "mail.written": "\033[36m",
    "account.changed": "\033[35m",
    "sms.sent": "\033[32m",
    "fault.fired": "\033[31m",
    "clock.changed": "\033[35m",
    "reset": "\033[1;35m",
    "lost": "\033[1;31m",
    "overflow": "\033[1;31m",
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "watch",
        help="print the event stream of a running mock, one line per event",
        description="Follow GET /api/events of a running mock and print one line per event "
        "(colours on a terminal unless $NO_COLOR is set). The address and token come from the "
        "same --config file, $ALLMYSMS_MOCK_CONFIG and ALLMYSMS_MOCK_* variables as serve. "
        "Reconnects with Last-Event-ID when the stream drops. Exit 0 on Ctrl-C, 1 if the "
        "server cannot be reached at start, 2 on a usage error.",
    )
    p.add_argument("--config", type=Path, help="TOML configuration file (or $ALLMYSMS_MOCK_CONFIG)")
    p.add_argument("--url", help="the mock's HTTP address (http://127.0.0.1:8021)")
    p.add_argument("--login", help="only this login's events (and the platform's)")
    p.add_argument("--after", type=_event_id, help="replay the retained events after this id")
    p.add_argument("--token", help=f"API token (or ${ENV_TOKEN}): Authorization: Bearer")
    p.set_defaults(run=run)


def _event_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"an event id is a whole number >= 0, got {text!r}")
    return int(text)


# -- formatting (pure) --------------------------------------------------------------------------


def _clean(value: object) -> str:
    """A value as text, control and format characters escaped: a file name cannot drive the
    terminal (an ESC sequence, a carriage return, a bidi override)."""
    text = str(value)
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _clock(value: object) -> str:
    if not isinstance(value, str):
        return "--:--:--"
    try:
        return datetime.fromisoformat(value).strftime("%H:%M:%S")
    except ValueError:
        return _clean(value)[:8].ljust(8)


def _count(value: object, unit: str) -> str | None:
    return None if value is None else f"{_clean(value)} {unit}"


def _details(kind: str, d: Mapping[str, Any]) -> str:
    def g(key: str) -> str:
        return _clean(d.get(key, ""))

    proto = g("protocol")
    if kind == "session.login":
        return f"{proto} {g('address')}"
    if kind == "session.login_failed":
        return f"{proto} {g('address')} refused: {g('reason')}"
    if kind == "upload.closed":
        return f"{proto} {g('name')} {g('bytes')} bytes"
    if kind == "upload.refused":
        return f"{proto} {g('name')} refused: {g('reason')}"
    if kind == "file.renamed":
        return f"{proto} {g('name')} → {g('new_name')}"
    if kind == "file.deleted":
        return f"{proto} {g('name')}"
    if kind == "file.claimed":
        return g("name")
    if kind == "mail.written":
        return f"file {g('file_id')}, {g('message_id')}"
    if kind == "file.finished":
        status = g("status")
        if d.get("reason"):
            status += f" ({g('reason')})"
        parts = [
            f"{g('name')} → {g('folder')}/{g('final_name')} {status}",
            _count(d.get("sms_count"), "SMS"),
            _count(d.get("cost"), "credits"),
        ]
        return ", ".join(p for p in parts if p)
    if kind == "account.changed":
        credits = d.get("credits")
        return g("change") + ("" if credits is None else f", {_clean(credits)} credits")
    if kind == "sms.sent":
        return f"file {g('file_id')}, campaign {g('campaign')}, {g('sms_count')} SMS"
    if kind == "fault.fired":
        where = " ".join(x for x in (proto, g("name")) if x and x != "None")
        return f"rule {g('rule_id')}: {g('action')} on {g('on')}" + (f" ({where})" if where else "")
    if kind == "clock.changed":
        return f"now {g('now')}, " + ("frozen" if d.get("frozen") else "running")
    if kind == "reset":
        return "the platform was reset"
    if kind == "lost":
        return (
            f"events after {g('after')} are no longer retained: resuming at {g('oldest')} "
            "(refetch the state)"
        )
    if kind == "overflow":
        return f"this reader fell behind after event {g('last_id')}: reconnecting"
    skip = {"id", "type", "time", "login"}
    return " ".join(f"{_clean(k)}={_clean(v)}" for k, v in d.items() if k not in skip)


def format_event(kind: str, data: Mapping[str, Any], colour: bool = False) -> str:
    """One event (its `event:` type and `data:` object) as one line:
    `HH:MM:SS  type  login  details`. No newline in it, whatever the data holds."""
    clock = _clock(data.get("time"))
    login = data.get("login")
    who = "-" if login is None else _clean(login)
    kind_text = _clean(kind).ljust(TYPE_WIDTH)
    details = _details(kind, data)
    if colour:
        tint = _COLOURS.get(kind, "")
        if kind == "file.finished":
            tint = "\033[32m" if data.get("status") == "archived" else "\033[33m"
        clock = f"{_DIM}{clock}{_RESET}"
        kind_text = f"{tint}{kind_text}{_RESET}" if tint else kind_text
        who = f"{_BOLD}{who}{_RESET}"
    return f"{clock}  {kind_text}  {who}  {details}".rstrip()


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colours on a terminal, unless `NO_COLOR` is set to something (no-color.org)."""
    if environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the stream ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    https: bool
    path: str  # /api/events?...


class Refused(Exception):
    """The server answered, but not with a stream (401, 400, 404...): retrying will not help."""


def events_target(url: str, login: str | None, after: int | None) -> Target:
    """`--url` (the mock's address, or its `/api/events` URL) as a request target; raises
    ValueError for what is not an http(s) URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--url must be an http:// or https:// address, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValueError(f"--url has a bad port: {url!r}") from exc
    path = parts.path.rstrip("/")
    if not path.endswith("/api/events"):
        path += "/api/events"
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("login", "after")]
    if login is not None:
        query.append(("login", login))
    if after is not None:
        query.append(("after", str(after)))
    if query:
        path += "?" + urllib.parse.urlencode(query)
    return Target(parts.hostname, port, parts.scheme == "https", path)


def parse_stream(lines: Iterator[str]) -> Iterator[tuple[str | None, str, str]]:
    """Server-sent events from decoded lines: `(id or None, event type, data)` per event."""
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield event_id, kind, "\n".join(data)
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)


class Watcher:
    def __init__(
        self,
        url: str,
        login: str | None,
        after: int | None,
        token: str,
        out: TextIO,
        err: TextIO,
        colour: bool,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url, self.login, self.token = url, login, token
        self.last_id = after
        self.out, self.err, self.colour, self.sleep = out, err, colour, sleep

    def _open(self) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        target = events_target(self.url, self.login, None)
        cls = http.client.HTTPSConnection if target.https else http.client.HTTPConnection
        conn = cls(target.host, target.port, timeout=CONNECT_TIMEOUT)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        try:
            conn.request("GET", target.path, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status != 200:
            body = resp.read(500).decode("utf-8", "replace").strip()
            conn.close()
            with_error = body
            with contextlib.suppress(ValueError, AttributeError):
                with_error = str(json.loads(body).get("error", body))
            message = f"HTTP {resp.status} {resp.reason}: {_clean(with_error)}"
            if resp.status >= 500:
                raise OSError(message)
            raise Refused(message)
        if conn.sock is not None:
            conn.sock.settimeout(READ_TIMEOUT)
        return conn, resp

    def _lines(self, resp: http.client.HTTPResponse) -> Iterator[str]:
        while True:
            raw = resp.readline(1 << 20)
            if not raw:
                return
            yield raw.decode("utf-8", "replace")

    def _print(self, kind: str, data: str) -> None:
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            obj = {"data": data}
        print(format_event(kind, obj, self.colour), file=self.out, flush=True)

    def _stream(self, resp: http.client.HTTPResponse) -> None:
        for event_id, kind, data in parse_stream(self._lines(resp)):
            self._print(kind, data)
            if event_id is not None and event_id.isdigit():
                self.last_id = int(event_id)

    def run(self) -> int:
        shown = self.url
        try:
            conn, resp = self._open()
        except Refused as exc:
            print(f"watch: {shown}: {exc}", file=self.err)
            return 1
        except (OSError, http.client.HTTPException) as exc:
            print(f"watch: cannot reach {shown}: {_reason(exc)}", file=self.err)
            return 1
        print(f"watch: following {shown} (Ctrl-C to stop)", file=self.err, flush=True)
        attempt = 0
        while True:
            try:
                self._stream(resp)
                reason = "the stream ended"
            except (OSError, http.client.HTTPException) as exc:
                reason = _reason(exc)
            finally:
                conn.close()
            while True:
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                attempt += 1
                since = "" if self.last_id is None else f" after event {self.last_id}"
                print(
                    f"watch: {reason}; reconnecting{since} in {delay:g} s",
                    file=self.err,
                    flush=True,
                )
                self.sleep(delay)
                try:
                    conn, resp = self._open()
                except Refused as exc:
                    print(f"watch: {shown}: {exc}", file=self.err)
                    return 1
                except (OSError, http.client.HTTPException) as exc:
                    reason = _reason(exc)
                    continue
                print("watch: reconnected", file=self.err, flush=True)
                attempt = 0
                break


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _clean(text)


def run(args: argparse.Namespace) -> int:
    from mockserver.commands.healthcheck import configured_http
    from mockserver.config import ConfigError

    environ = dict(os.environ)
    url: str | None = args.url
    token: str = args.token or environ.get(ENV_TOKEN, "")
    if url is None or args.config is not None:
        try:
            base, configured_token = configured_http(args.config, environ)
        except ConfigError as exc:
            print(f"watch: {exc}", file=sys.stderr)
            return 2
        url = url or base
        token = token or configured_token
    try:
        events_target(url, args.login, args.after)
    except ValueError as exc:
        print(f"watch: {exc}", file=sys.stderr)
        return 2
    watcher = Watcher(
        url,
        args.login,
        args.after,
        token,
        sys.stdout,
        sys.stderr,
        use_colour(sys.stdout, environ),
    )
    try:
        return watcher.run()
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `watch | head`: the reader left
        # Point stdout at /dev/null so the interpreter's last flush does not fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 0
