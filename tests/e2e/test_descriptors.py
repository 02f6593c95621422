"""Issue 16, finding 2: running out of file descriptors no longer takes FTP down for good.

A real `serve` runs under a low `ulimit -n` (soft and hard: it cannot raise its own), then
is pressed by idle HTTP connections (capped: they never exhaust it) and by SFTP sessions
holding open files (they do): every listener is refused its accepts meanwhile, `/health`
says why (asked over a connection opened before), each part's trouble is logged once, never
a traceback, and once the files are closed FTP, SFTP and HTTP all accept again.
"""

from __future__ import annotations

import contextlib
import ftplib
import http.client
import json
import resource
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import paramiko
import pytest

from tests.support.serve import DEMO_LOGIN, DEMO_PASSWORD, Serve, http_json
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/fd"),
]

# The child's `ulimit -n`: it holds about 20 descriptors at rest (the database and its WAL,
# the lock, three listeners, the loops' epoll, inotify, a pipe, stdio), which the first test
# checks, so there is room for the HTTP cap (a quarter: 40) and still a few SFTP sessions.
OPEN_FILES = 160
RESTING_AT_MOST = OPEN_FILES // 4
HTTP_CAP = OPEN_FILES // 4  # servers.http.connections.connection_cap
HANDLES_PER_SESSION = 60  # under the per-session cap of 64 (servers.sftp_session.MAX_HANDLES)


def _room_for(count: int) -> None:
    """This test process holds `count` client sockets: raise its soft limit if need be."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count + 200:
        if hard != resource.RLIM_INFINITY and hard < count + 200:
            pytest.skip(f"needs {count + 200} open files in the test process (hard {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count + 200, hard))


@pytest.fixture
def limited(spawn_serve: Callable[..., Serve]) -> Iterator[Serve]:
    """A `serve` under `ulimit -n OPEN_FILES`, a first-request timeout of 5 s."""
    child = spawn_serve(
        open_files=OPEN_FILES, env={"ALLMYSMS_MOCK_LIMITS_LOGIN_TIMEOUT_SECONDS": "5"}
    ).start()
    yield child
    if child.proc is not None and child.proc.poll() is None:
        assert child.stop() == 0, child.stderr()


class Health:
    """`GET /health` over one kept-alive connection, opened while descriptors are plenty:
    it still answers when the listener cannot accept a new one."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self) -> tuple[int, dict[str, Any]]:
        self.conn.request("GET", "/health")
        response = self.conn.getresponse()
        return response.status, json.loads(response.read())

    def close(self) -> None:
        self.conn.close()


def ftp_login(port: int, timeout: float = 5.0) -> bool:
    ftp = ftplib.FTP()
    try:
        ftp.connect("127.0.0.1", port, timeout=timeout)
        ftp.login(DEMO_LOGIN, DEMO_PASSWORD)
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        return False
    finally:
        ftp.close()
    return True


def health_ok(serve: Serve) -> bool:
    try:
        status, body = http_json(f"{serve.http_url}/health", timeout=3)
    except OSError:
        return False
    return status == 200 and body.get("status") == "ok"


def pressure_lines(stderr: str) -> list[str]:
    """The log lines about the pressure: parts degraded and recovered, connections refused,
    asyncio's own report of a failed accept."""
    words = ("degraded", "recovered", "connections refused", "out of system resource")
    return [line for line in stderr.splitlines() if any(w in line for w in words)]


def test_idle_http_connections_are_capped_and_never_exhaust_descriptors(limited: Serve) -> None:
    """Before issue 16: about 1,100 idle connections (here: OPEN_FILES) exhausted the
    descriptors and FTP never accepted again. Now past the cap each one is answered 503 and
    closed, those within it are closed when they send nothing, FTP keeps serving."""
    resting = limited.open_descriptors()
    assert resting <= RESTING_AT_MOST, f"{resting} descriptors at rest"
    health = Health(limited.http_port)
    assert health.get()[0] == 200
    crowd = 3 * OPEN_FILES
    _room_for(crowd)
    idle: list[socket.socket] = []
    try:
        for _ in range(crowd):
            idle.append(socket.create_connection(("127.0.0.1", limited.http_port), timeout=10))
        wait_until(lambda: limited.open_descriptors() <= resting + HTTP_CAP + 2, timeout=10)
        assert ftp_login(limited.ftp_port), limited.stderr()
        status, body = health.get()
        assert (status, body["status"]) == (200, "ok"), body
        # Within the cap: closed by the server after the first-request timeout (5 s).
        refused = answered = 0
        for sock in idle:
            sock.settimeout(10)
            data = sock.recv(4096)
            if data.startswith(b"HTTP/1.1 503"):
                refused += 1
                assert b"too many HTTP connections" in data
            else:
                assert data == b"", data
                answered += 1
        assert answered == HTTP_CAP - 1, (answered, refused)  # the cap, less `health`'s own
        assert refused == crowd - answered
    finally:
        for sock in idle:
            sock.close()
        health.close()
    assert health_ok(limited)
    assert ftp_login(limited.ftp_port)
    assert limited.stop() == 0
    stderr = limited.stderr()
    assert "Traceback" not in stderr
    lines = pressure_lines(stderr)
    assert len(lines) == 1, lines
    assert "HTTP connections refused: limit of 40 reached" in lines[0]


@contextlib.contextmanager
def sessions_holding_every_descriptor(serve: Serve) -> Iterator[int]:
    """SFTP sessions, each holding HANDLES_PER_SESSION open uploads, until the server cannot
    open one more file: yields how many files are open."""
    transports: list[paramiko.Transport] = []
    files: list[Any] = []
    try:
        for session in range(OPEN_FILES // HANDLES_PER_SESSION + 2):
            transport = paramiko.Transport(("127.0.0.1", serve.sftp_port))
            transports.append(transport)
            transport.connect(username=DEMO_LOGIN, password=DEMO_PASSWORD)
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            for i in range(HANDLES_PER_SESSION):
                try:
                    files.append(client.open(f"/SEND_SMS/held-{session}-{i}.tmp", "w"))
                except OSError as exc:
                    refusal = str(exc)
                else:
                    continue
                assert "Too many open files" in refusal, refusal
                yield len(files)
                return
        raise AssertionError(f"{len(files)} files open and still no descriptor shortage")
    finally:
        for f in files:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                f.close()
        for transport in transports:
            transport.close()


def test_sftp_sessions_exhausting_descriptors_degrade_health_then_everything_recovers(
    limited: Serve,
) -> None:
    """Before issue 16: FTP's listener closed for good at the first failed accept, asyncio
    logged a traceback per failed accept (16,000 of them), `/health` still said ok."""
    health = Health(limited.http_port)
    assert health.get()[0] == 200
    knocks: list[socket.socket] = []
    try:
        with sessions_holding_every_descriptor(limited) as held:
            assert held >= OPEN_FILES - RESTING_AT_MOST - 10
            # One connection to each listener: it waits in the kernel's backlog, the server
            # cannot accept it.
            for port in (limited.ftp_port, limited.sftp_port, limited.http_port):
                knocks.append(socket.create_connection(("127.0.0.1", port), timeout=10))

            def degraded() -> dict[str, str] | None:
                status, body = health.get()
                problems: dict[str, str] = body.get("problems", {})
                return problems if status == 503 and len(problems) == 3 else None

            problems = wait_until(degraded, timeout=10, interval=0.2)
            assert body_status(health) == "degraded"
            assert set(problems) == {"ftp", "sftp", "http"}
            for reason in problems.values():
                assert reason == "cannot accept connections: too many open files; retrying"
            assert not ftp_login(limited.ftp_port, timeout=2)
        for knock in knocks:
            knock.close()
        # The files closed: each listener accepts again within its retry (1 s).
        wait_until(lambda: ftp_login(limited.ftp_port, timeout=3), timeout=10, interval=0.2)
        wait_until(lambda: health_ok(limited), timeout=10, interval=0.2)
        transport = paramiko.Transport(("127.0.0.1", limited.sftp_port))
        try:
            transport.connect(username=DEMO_LOGIN, password=DEMO_PASSWORD)
        finally:
            transport.close()
        assert health.get()[0] == 200
        assert body_status(health) == "ok"
    finally:
        for knock in knocks:
            knock.close()
        health.close()
    assert limited.stop() == 0
    stderr = limited.stderr()
    assert "Traceback" not in stderr
    lines = pressure_lines(stderr)
    assert "out of system resource" not in "\n".join(lines)
    for part in ("ftp", "sftp", "http"):
        assert sum(f"degraded: {part}:" in line for line in lines) == 1, lines
        assert sum(f"recovered: {part} " in line for line in lines) == 1, lines
    assert len(lines) <= 6, lines


def body_status(health: Health) -> str:
    status: str = health.get()[1]["status"]
    return status
