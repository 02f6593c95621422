"""`allmysms-mock watch` (issue 17): the real command, in a subprocess, against a real mock and
against a stand-in stream that drops; its lines are read with a timeout, never slept for."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, ClassVar

import pytest

from mockserver.app import MockServer
from tests.support.harness import running_mock_server
from tests.support.serve import ftp_drop

ROOT = Path(__file__).resolve().parents[2]
NAME = "Promo_20300716120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour STOP au 36180";"MaBoutique"\n"+447911123456";"Hello"\n'


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ALLMYSMS_MOCK_")}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    out.pop("NO_COLOR", None)
    return out


class Lines:
    """A stream's lines, read on a thread: `until` waits for one with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for text in stream:
            self._queue.put(text.rstrip("\n"))
        self._queue.put(None)

    def until(self, needle: str, timeout: float = 20.0) -> str:
        for text in self.seen:
            if needle in text:
                return text
        while True:
            try:
                text = self._queue.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no line with {needle!r} in {timeout} s; seen: {self.seen}")
            if text is None:
                pytest.fail(f"the stream ended without {needle!r}; seen: {self.seen}")
            self.seen.append(text)
            if needle in text:
                return text


def watch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mockserver", "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    os.kill(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    accounts = [{"login": "demo", "password": "demo", "credits": 100}]
    with running_mock_server(tmp_path_factory.mktemp("watch"), accounts) as server:
        yield server


def test_watch_prints_an_uploaded_files_events_and_stops_on_ctrl_c(srv: MockServer) -> None:
    """One line per event (claimed, finished with its verdict, SMS and credits), plain in a
    pipe; SIGINT (Ctrl-C) ends it with exit 0 and no traceback."""
    mark = srv.last_event_id  # the replay from here closes any race with the connection
    proc = watch("--url", srv.http_url, "--login", "demo", "--after", str(mark))
    try:
        out = Lines(proc.stdout)  # type: ignore[arg-type]
        ftp_drop(srv.ftp_port, NAME, ROWS)
        out.until("session.login")
        claimed = out.until("file.claimed")
        assert claimed.split()[2:4] == ["demo", NAME]
        finished = out.until("file.finished")
        assert f"{NAME} → ARCHIVES/TreatedByMSI_{NAME} archived, 2 SMS" in finished
        assert "credits" in finished
        assert all("\033" not in text for text in out.seen)
    finally:
        code, err = interrupt(proc)
    assert code == 0, err
    assert "Traceback" not in err


def test_an_unreachable_server_is_one_line_and_exit_1() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "mockserver", "watch", "--url", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"watch: cannot reach http://127.0.0.1:{port}")


def test_a_usage_error_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mockserver", "watch", "--url", "ftp://x", "--after", "3"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


class _Dropping(BaseHTTPRequestHandler):
    """First request: one event then the stream ends; later ones: an overflow notice, then
    the stream stays open. Every request's headers are recorded."""

    requests: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.requests.append(dict(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if len(self.requests) == 1:
            self.wfile.write(
                b"id: 5\nevent: reset\n"
                b'data: {"id":5,"type":"reset","time":"2030-07-16T10:00:00+00:00","login":null}\n\n'
            )
            self.wfile.flush()
            return
        self.wfile.write(b'event: overflow\ndata: {"type":"overflow","last_id":5}\n\n')
        self.wfile.flush()
        self.server.done.wait(30)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_dropped_stream_is_resumed_with_last_event_id_and_the_token() -> None:
    _Dropping.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dropping)
    server.daemon_threads = True
    server.done = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    proc = watch("--url", url, "--token", "s3cret")
    try:
        out = Lines(proc.stdout)  # type: ignore[arg-type]
        assert "the platform was reset" in out.until("reset")
        assert "fell behind after event 5" in out.until("overflow")
    finally:
        code, err = interrupt(proc)
        server.done.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
    assert code == 0, err
    assert "Traceback" not in err
    first, second = _Dropping.requests[:2]
    assert "Last-Event-ID" not in first
    assert second["Last-Event-ID"] == "5"
    assert first["Authorization"] == second["Authorization"] == "Bearer s3cret"
    assert "reconnecting after event 5" in err
