"""The `[limits]` of both servers (docs/security.md): configuration, per-address login lockout,
connection caps, login and idle timeouts, the FTP passive range and refused PORT bounces."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import io
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import paramiko
import pytest

from mockserver.app import MockServer
from mockserver.config import ConfigError, LimitsConfig, load_config
from mockserver.limits import ConnectionLimiter, LoginLockout, address_key, guard_for
from tests.support.harness import FtpHarness, SftpHarness, connect
from tests.support.waiting import wait_until

T = TypeVar("T")

# -- configuration -----------------------------------------------------------------------------


def test_limit_defaults_are_safe() -> None:
    """The issue's defaults: 200 connections, 50 per address, 5 min idle, 30 s to log in,
    3 attempts a connection, 10 failures a minute lock an address out for a minute."""
    limits = load_config(None, env={}).limits
    assert limits == LimitsConfig()
    assert (limits.max_connections, limits.max_connections_per_ip) == (200, 50)
    assert (limits.idle_timeout_seconds, limits.login_timeout_seconds) == (300.0, 30.0)
    assert (limits.max_login_attempts, limits.login_failure_delay_seconds) == (3, 1.0)
    assert (limits.login_lockout_failures, limits.login_lockout_seconds) == (10, 60.0)


def test_limits_from_toml_and_environment(tmp_path: Path) -> None:
    """Contract 3: a TOML file, then `ALLMYSMS_MOCK_<SECTION>_<KEY>`, later wins."""
    toml = tmp_path / "mock.toml"
    toml.write_text("[limits]\nmax_connections = 7\nidle_timeout_seconds = 0\n")
    env = {"ALLMYSMS_MOCK_LIMITS_LOGIN_LOCKOUT_FAILURES": "0"}
    limits = load_config(toml, env=env).limits
    assert limits.max_connections == 7
    assert limits.idle_timeout_seconds == 0.0  # 0: never
    assert limits.login_lockout_failures == 0  # 0: no lockout


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("limits.max_connections", 0),
        ("limits.max_connections", "many"),
        ("limits.max_connections_per_ip", 0),
        ("limits.idle_timeout_seconds", -1),
        ("limits.idle_timeout_seconds", 10**9),
        ("limits.login_timeout_seconds", 0),
        ("limits.login_timeout_seconds", float("nan")),
        ("limits.login_failure_delay_seconds", 61),
        ("limits.max_login_attempts", 0),
        ("limits.max_login_attempts", True),
        ("limits.login_lockout_failures", -1),
        ("limits.login_lockout_seconds", 0),
    ],
)
def test_bad_limit_names_the_key(key: str, value: object) -> None:
    """Contract 3: "A bad file or value stops start-up with one clear line naming the key"."""
    with pytest.raises(ConfigError) as excinfo:
        load_config(None, env={}, overrides={key: value})
    message = str(excinfo.value)
    assert key in message
    assert "\n" not in message


# -- the counters ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_after_failures_within_the_window_then_lifted() -> None:
    """Issue: `login_lockout_failures` within `login_lockout_seconds` -> further logins from
    that address refused for that window; other addresses are not affected."""
    clock = FakeClock()
    lockout = LoginLockout(3, 60.0, clock)
    assert not lockout.failed("10.0.0.1")
    clock.now += 30
    assert not lockout.failed("10.0.0.1")
    assert lockout.remaining("10.0.0.1") == 0.0
    assert lockout.failed("10.0.0.1")
    assert lockout.remaining("10.0.0.1") == pytest.approx(60.0)
    assert lockout.remaining("::ffff:10.0.0.1") == pytest.approx(60.0)  # same host
    assert lockout.remaining("10.0.0.2") == 0.0
    clock.now += 59
    assert lockout.remaining("10.0.0.1") == pytest.approx(1.0)
    clock.now += 1
    assert lockout.remaining("10.0.0.1") == 0.0
    # A fresh count after the lockout: one failure does not lock again.
    assert not lockout.failed("10.0.0.1")
    lockout.failed("10.0.0.1")
    lockout.failed("10.0.0.1")
    assert lockout.remaining("10.0.0.1") > 0
    lockout.clear()
    assert lockout.remaining("10.0.0.1") == 0.0


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = FakeClock()
    lockout = LoginLockout(3, 60.0, clock)
    for _ in range(10):
        assert not lockout.failed("10.0.0.1")
        assert not lockout.failed("10.0.0.1")
        clock.now += 61


def test_lockout_zero_is_off_and_tables_stay_bounded() -> None:
    off = LoginLockout(0, 60.0)
    assert not any(off.failed("10.0.0.1") for _ in range(100))
    assert off.remaining("10.0.0.1") == 0.0
    clock = FakeClock()
    lockout = LoginLockout(5, 60.0, clock)
    for i in range(12_000):
        lockout.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(lockout._addresses._recent) <= 10_000


def test_connection_limiter_counts_total_and_per_address() -> None:
    limiter = ConnectionLimiter(max_total=3, max_per_address=2)
    assert limiter.acquire("10.0.0.1") is None
    assert limiter.acquire("::ffff:10.0.0.1") is None
    assert "your address" in (limiter.acquire("10.0.0.1") or "")
    assert limiter.acquire("10.0.0.2") is None
    assert "limit 3" in (limiter.acquire("10.0.0.3") or "")
    limiter.release("10.0.0.1")
    assert limiter.acquire("10.0.0.3") is None
    assert limiter.total == 3
    limiter.release("10.0.0.9")  # never counted: ignored
    assert limiter.total == 3
    assert address_key("::1") == "::1"


def test_guard_is_shared_per_data_dir(tmp_path: Path) -> None:
    """The FTP and SFTP servers of one platform meet the same lockout; another platform does not."""
    limits = LimitsConfig()
    first = guard_for(tmp_path / "a", limits)
    assert guard_for(tmp_path / "a", limits) is first
    assert guard_for(tmp_path / "b", limits) is not first


# -- FTP ---------------------------------------------------------------------------------------


class RawFtp:
    """A line-level FTP client over a raw socket, to see exactly what the server answers."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.banner = self.reply()

    def reply(self) -> str:
        """One whole reply (the last line of a multi-line one); '' when the server closed."""
        first = self.file.readline().decode("utf-8", "replace")
        if len(first) >= 4 and first[3] == "-":
            code = first[:3]
            line = first
            while not (line[:3] == code and line[3:4] == " "):
                line = self.file.readline().decode("utf-8", "replace")
                if not line:
                    return ""
            return line.rstrip("\r\n")
        return first.rstrip("\r\n")

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def cmd(self, line: str) -> str:
        self.send(line)
        return self.reply()

    def closed_by_server(self) -> bool:
        try:
            return self.file.read() == b""
        except OSError:
            return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextlib.contextmanager
def ftp_harness(tmp_path: Path, **limits: object) -> Iterator[FtpHarness]:
    harness = FtpHarness(tmp_path, **{f"limits.{k}": v for k, v in limits.items()})
    try:
        yield harness
    finally:
        harness.close()


@contextlib.contextmanager
def raw_ftp(port: int, timeout: float = 10.0) -> Iterator[RawFtp]:
    client = RawFtp(port, timeout)
    try:
        yield client
    finally:
        client.close()


def test_ftp_address_locked_out_after_repeated_failures(tmp_path: Path) -> None:
    """Issue: `login_lockout_failures = N` within `login_lockout_seconds` -> further logins from
    that address are refused for that window, even with the right password (421, then the
    server closes the connection)."""
    with ftp_harness(tmp_path, login_lockout_failures=4, login_lockout_seconds=60) as ftp:
        with raw_ftp(ftp.port) as client:
            for _ in range(3):
                assert client.cmd("USER alice")[:3] == "331"
                assert client.cmd("PASS wrong")[:3] == "530"
            assert client.closed_by_server()  # max_login_attempts = 3 per connection
        with raw_ftp(ftp.port) as client:
            client.cmd("USER alice")
            assert client.cmd("PASS wrong")[:3] == "530"  # the 4th failure: locked now
        with raw_ftp(ftp.port) as client:
            answer = client.cmd("USER alice")
            assert answer.startswith("421 Too many failed logins from your address")
            assert client.closed_by_server()
        assert ftp.server.guard.lockout.remaining("127.0.0.1") > 50


def test_ftp_lockout_is_lifted_after_the_window(tmp_path: Path) -> None:
    """Issue: refused "for that window", then logins work again."""
    with ftp_harness(tmp_path, login_lockout_failures=1, login_lockout_seconds=0.5) as ftp:
        with raw_ftp(ftp.port) as client:
            client.cmd("USER alice")
            assert client.cmd("PASS wrong")[:3] == "530"

        def logs_in() -> bool:
            with raw_ftp(ftp.port) as client:
                if client.cmd("USER alice")[:3] != "331":
                    return False
                return client.cmd("PASS pw-alice")[:3] == "230"

        assert not logs_in()
        wait_until(logs_in, timeout=10, interval=0.1, what="the lockout to end")


def test_ftp_per_address_connection_cap(tmp_path: Path) -> None:
    """Issue: `max_connections_per_ip`: one more connection gets 421 and is closed; a slot
    freed by a client that leaves is usable again."""
    with ftp_harness(tmp_path, max_connections=10, max_connections_per_ip=2) as ftp:
        first, second = RawFtp(ftp.port), RawFtp(ftp.port)
        try:
            assert first.banner[:3] == second.banner[:3] == "220"
            with raw_ftp(ftp.port) as third:
                assert third.banner.startswith("421 Too many connections from your address")
                assert third.closed_by_server()
            first.cmd("QUIT")
            first.close()
            wait_until(lambda: ftp.server.guard.ftp_connections.total == 1, what="slot freed")
            with raw_ftp(ftp.port) as again:
                assert again.banner[:3] == "220"
                assert again.cmd("NOOP")[:3] == "200"
        finally:
            first.close()
            second.close()


def test_ftp_total_connection_cap(tmp_path: Path) -> None:
    """Issue: `max_connections`: the cap over every address."""
    with ftp_harness(tmp_path, max_connections=2, max_connections_per_ip=50) as ftp:
        with raw_ftp(ftp.port) as a, raw_ftp(ftp.port) as b:
            assert a.banner[:3] == b.banner[:3] == "220"
            with raw_ftp(ftp.port) as c:
                assert c.banner == "421 Too many connections (limit 2); try again later."
                assert c.closed_by_server()
        wait_until(lambda: ftp.server.guard.ftp_connections.total == 0, what="all released")


def test_ftp_login_timeout(tmp_path: Path) -> None:
    """Issue: `login_timeout_seconds`: a connection that does not log in in time is closed,
    even if it keeps sending commands."""
    with ftp_harness(tmp_path, login_timeout_seconds=0.5) as ftp, raw_ftp(ftp.port) as client:
        started = time.monotonic()
        replies = []
        while time.monotonic() - started < 10:
            replies.append(client.cmd("NOOP"))
            if not replies[-1].startswith("200"):
                break
        assert replies[-1] == "421 Login timed out."
        assert client.closed_by_server()
        assert time.monotonic() - started >= 0.4


def test_ftp_logged_in_session_outlives_the_login_timeout(tmp_path: Path) -> None:
    with ftp_harness(tmp_path, login_timeout_seconds=0.3) as ftp, raw_ftp(ftp.port) as client:
        client.cmd("USER alice")
        assert client.cmd("PASS pw-alice")[:3] == "230"
        started = time.monotonic()
        count = 0
        while time.monotonic() - started < 0.8 and count < 10_000:
            assert client.cmd("NOOP")[:3] == "200"
            count += 1


def test_ftp_idle_timeout(tmp_path: Path) -> None:
    """Issue: `idle_timeout_seconds`: a logged-in session with no command for that long gets
    421 and is closed (pyftpdlib's control timeout)."""
    with ftp_harness(tmp_path, idle_timeout_seconds=0.5) as ftp, raw_ftp(ftp.port) as client:
        client.cmd("USER alice")
        assert client.cmd("PASS pw-alice")[:3] == "230"
        started = time.monotonic()
        assert client.reply() == "421 Control connection timed out."
        assert time.monotonic() - started >= 0.4
        assert client.closed_by_server()


def _free_port_pair() -> tuple[int, int]:
    """Two consecutive ports free right now, for a 2-port passive range."""
    for _ in range(200):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if not 1024 <= port < 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port, port + 1
    raise AssertionError("no two consecutive free ports")


def _pasv_port(reply: str) -> int:
    numbers = reply.split("(")[1].split(")")[0].split(",")
    return int(numbers[4]) * 256 + int(numbers[5])


def test_ftp_passive_range_exhaustion_answers_425(tmp_path: Path) -> None:
    """Contract 3 `passive_ports` ("map it in Docker"): never a port outside the range; when
    every port is taken the client gets 425, and a freed port is handed out again."""
    lo, hi = _free_port_pair()
    harness = FtpHarness(tmp_path, **{"server.passive_ports": f"{lo}-{hi}"})
    clients: list[RawFtp] = []
    try:
        for _ in range(3):
            client = RawFtp(harness.port)
            clients.append(client)
            client.cmd("USER alice")
            assert client.cmd("PASS pw-alice")[:3] == "230"
        first, second = (_pasv_port(c.cmd("PASV")) for c in clients[:2])
        assert {first, second} == {lo, hi}
        assert clients[2].cmd("PASV") == "425 No free passive port; try again later."
        assert clients[2].cmd("EPSV") == "425 No free passive port; try again later."
        assert clients[2].cmd("NOOP")[:3] == "200"  # the session goes on
        clients[0].cmd("QUIT")
        clients[0].close()

        def pasv_again() -> int:
            reply = clients[2].cmd("PASV")
            return _pasv_port(reply) if reply.startswith("227") else 0

        assert wait_until(pasv_again, timeout=10, what="a freed passive port") == first
    finally:
        for client in clients:
            client.close()
        harness.close()


def test_ftp_transfer_still_works_in_a_tiny_range(tmp_path: Path) -> None:
    lo, hi = _free_port_pair()
    harness = FtpHarness(tmp_path, **{"server.passive_ports": f"{lo}-{hi}"})
    try:
        ftp = harness.login()
        for name in ("a.tmp", "b.tmp", "c.tmp"):  # more transfers than ports, one at a time
            ftp.storbinary(f"STOR SEND_SMS/{name}", io.BytesIO(b"hello"))
        assert ftp.nlst("SEND_SMS") == ["a.tmp", "b.tmp", "c.tmp"]
        _host, port = ftp.makepasv()
        assert lo <= port <= hi
    finally:
        harness.close()


def test_ftp_port_bounce_and_privileged_port_refused(tmp_path: Path) -> None:
    """RFC 2577 (FTP bounce): a PORT/EPRT to another address, or to a privileged port, is
    refused (pyftpdlib's `permit_foreign_addresses = False`, `permit_privileged_ports = False`)."""
    with ftp_harness(tmp_path) as ftp, raw_ftp(ftp.port) as client:
        client.cmd("USER alice")
        assert client.cmd("PASS pw-alice")[:3] == "230"
        assert client.cmd("PORT 10,0,0,1,200,10").startswith(
            "501 Rejected data connection to foreign address"
        )
        assert client.cmd("EPRT |1|10.0.0.1|51210|").startswith("501 Rejected data connection")
        assert (
            client.cmd("PORT 127,0,0,1,0,21")
            == '501 PORT against the privileged port "21" refused.'
        )
        assert client.cmd("EPRT |1|127.0.0.1|22|").startswith("501 PORT against the privileged")
        assert client.cmd("NOOP")[:3] == "200"
        handler = ftp.server._server.handler
        assert handler.permit_foreign_addresses is False
        assert handler.permit_privileged_ports is False


def test_ftp_replaced_waiting_upload_is_closed_and_removed(tmp_path: Path) -> None:
    """A STOR whose data connection never came, replaced by another transfer command or cut by
    QUIT: its file is closed (never left registered as being written, which would block its
    rename for good) and, being empty, removed (contract 5.2: only complete files are judged)."""
    with ftp_harness(tmp_path) as ftp, raw_ftp(ftp.port) as client:
        client.cmd("USER alice")
        client.cmd("PASS pw-alice")
        client.cmd("TYPE I")
        assert client.cmd("STOR SEND_SMS/a.csv")[:3] == "150"
        assert client.cmd("STOR SEND_SMS/b.tmp")[:3] == "150"
        send = ftp.folder("SEND_SMS")
        assert not (send / "a.csv").exists()
        assert ftp.open_writes.snapshot() == {send / "b.tmp"}
        assert client.cmd("RETR SEND_SMS/b.tmp")[:3] == "550"  # b.tmp dropped, then gone
        assert client.cmd("QUIT")[:3] == "221"
        wait_until(lambda: not ftp.open_writes.snapshot(), what="every upload closed")
        assert sorted(p.name for p in send.iterdir()) == []
        assert ftp.uploads == []


# -- SFTP --------------------------------------------------------------------------------------


@contextlib.contextmanager
def sftp_harness(tmp_path: Path, **limits: object) -> Iterator[SftpHarness]:
    harness = SftpHarness(tmp_path, **{f"limits.{k}": v for k, v in limits.items()})
    try:
        yield harness
    finally:
        harness.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def _sftp_login(port: int, password: str = "pw-alice", login: str = "alice") -> str:
    """'ok', or the reason of the disconnection."""
    try:
        async with connect(port, login, password):
            return "ok"
    except asyncssh.DisconnectError as exc:
        return exc.reason


def test_sftp_address_locked_out_after_repeated_failures(tmp_path: Path) -> None:
    """Issue: the per-address lockout on SFTP: once locked, even the right password is refused
    with a reason naming the lockout."""
    with sftp_harness(tmp_path, login_lockout_failures=2, login_lockout_seconds=60) as sftp:
        assert run(_sftp_login(sftp.port, "wrong")) != "ok"
        # The second failure locks the address: the server says so at once.
        assert run(_sftp_login(sftp.port, "wrong")).startswith("too many failed logins")
        reason = run(_sftp_login(sftp.port, "pw-alice"))
        assert reason.startswith("too many failed logins from your address; try again in")
        assert sftp.server.guard.lockout.remaining("127.0.0.1") > 50


def test_sftp_lockout_lifted_after_the_window(tmp_path: Path) -> None:
    with sftp_harness(tmp_path, login_lockout_failures=1, login_lockout_seconds=0.5) as sftp:
        assert run(_sftp_login(sftp.port, "wrong")) != "ok"
        wait_until(
            lambda: run(_sftp_login(sftp.port)) == "ok", timeout=10, interval=0.1, what="login"
        )


def test_failures_on_ftp_lock_sftp_out_too(tmp_path: Path) -> None:
    """The lockout is per address across both protocols of one platform (MockServer wiring)."""
    settings = {
        "limits.login_lockout_failures": 2,
        "limits.login_failure_delay_seconds": 0.01,
    }
    with MockServer(data_dir=tmp_path / "data", **settings) as srv:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        try:
            for _ in range(2):
                with pytest.raises(ftplib.error_perm):
                    ftp.login("demo", "wrong")
        finally:
            ftp.close()
        reason = run(_sftp_login(srv.sftp_port, "demo", login="demo"))
        assert reason.startswith("too many failed logins from your address")


def test_sftp_connection_caps(tmp_path: Path) -> None:
    """Issue: `max_connections` / `max_connections_per_ip` on SFTP: the connection over the cap
    is closed before authentication with SSH's "too many connections" reason."""

    async def main(port: int) -> tuple[str, str]:
        async with connect(port), connect(port):
            try:
                async with connect(port):
                    return "ok", ""
            except asyncssh.DisconnectError as exc:
                return str(exc.code), exc.reason

    with sftp_harness(tmp_path, max_connections=10, max_connections_per_ip=2) as sftp:
        code, reason = run(main(sftp.port))
        assert code == str(asyncssh.DISC_TOO_MANY_CONNECTIONS)
        assert reason.startswith("too many connections from your address (limit 2)")
        wait_until(lambda: sftp.server.guard.sftp_connections.total == 0, what="released")
        assert run(_sftp_login(sftp.port)) == "ok"
    with sftp_harness(tmp_path / "b", max_connections=2) as sftp:
        code, reason = run(main(sftp.port))
        assert reason.startswith("too many connections (limit 2)")


def test_sftp_login_timeout(tmp_path: Path) -> None:
    """Issue: `login_timeout_seconds` (asyncssh's login_timeout): no login, no connection."""
    with sftp_harness(tmp_path, login_timeout_seconds=0.5) as sftp:
        transport = paramiko.Transport(("127.0.0.1", sftp.port))
        try:
            transport.start_client(timeout=10)
            started = time.monotonic()
            wait_until(lambda: not transport.is_active(), timeout=10, what="server closed")
            assert time.monotonic() - started >= 0.3
        finally:
            transport.close()


def test_sftp_idle_timeout_and_activity(tmp_path: Path) -> None:
    """Issue: `idle_timeout_seconds` on SFTP (asyncssh has none: an inactivity timer reset by
    every SFTP request): a busy session stays, an idle one is closed."""

    async def main(port: int) -> float:
        async with connect(port) as conn, conn.start_sftp_client() as client:
            started = time.monotonic()
            for _ in range(10_000):
                if time.monotonic() - started > 1.0:
                    break
                await client.stat("/")
            idle_from = time.monotonic()
            await asyncio.wait_for(conn.wait_closed(), 10)
            return time.monotonic() - idle_from

    with sftp_harness(tmp_path, idle_timeout_seconds=0.4) as sftp:
        idle = run(main(sftp.port))
        assert 0.3 <= idle < 5


def test_ftp_password_check_does_not_freeze_other_sessions(tmp_path: Path) -> None:
    """A password check may cost one scrypt (`password_hash` accounts): it runs off the FTP
    loop, so a slow or hostile login cannot freeze every other session meanwhile; commands
    pipelined behind the PASS wait for its answer."""
    with ftp_harness(tmp_path) as ftp:
        real = ftp.auth.authenticate
        release = threading.Event()
        entered = threading.Event()

        def slow(login: str, password: str) -> bool:
            if login == "alice2":
                entered.set()
                release.wait(10)
            return real(login, password)

        ftp.auth.authenticate = slow  # type: ignore[method-assign]
        with raw_ftp(ftp.port) as busy, raw_ftp(ftp.port) as other:
            assert busy.cmd("USER alice2")[:3] == "331"
            busy.send("PASS pw-alice2")
            busy.send("PWD")
            assert entered.wait(10)
            other.cmd("USER alice")
            assert other.cmd("PASS pw-alice")[:3] == "230"  # answered while alice2 waits
            assert other.cmd("NOOP")[:3] == "200"
            release.set()
            assert busy.reply()[:3] == "230"
            assert busy.reply() == '257 "/" is the current directory.'


@pytest.mark.parametrize("size", [2049, 3000, 10_000, 100_000])
def test_ftp_overlong_line_gets_exactly_one_reply(tmp_path: Path, size: int) -> None:
    """Issue 16: a command line over 2,048 bytes is answered `500 Command too long.` once,
    whatever its length (pyftpdlib alone answered it, then ran its tail as a second command);
    the next command is answered in turn, also pipelined behind it."""
    with ftp_harness(tmp_path) as ftp, raw_ftp(ftp.port) as client:
        client.sock.sendall(b"NOOP " + b"x" * size + b"\r\nSYST\r\nNOOP\r\n")
        assert client.reply() == "500 Command too long."
        assert client.reply().startswith("215")  # SYST: the next line, not the tail
        assert client.reply().startswith("200")
        # Under the limit: read whole (NOOP takes no argument), and answered once.
        assert client.cmd("NOOP " + "y" * 2000).startswith("501")
        assert client.cmd("NOOP").startswith("200")


# -- issue 16: the lockout per login as well as per address --------------------------------------


def test_rotating_addresses_meets_the_per_login_lockout() -> None:
    """Issue 16: failures for one login count whatever address they come from (rotating
    127.0.0.x no longer gets around the lockout); the login is refused from every address,
    and other logins from those addresses are not."""
    clock = FakeClock()
    lockout = LoginLockout(3, 60.0, clock)
    assert not lockout.failed("127.0.0.2", "demo")
    assert not lockout.failed("127.0.0.3", "demo")
    assert lockout.failed("127.0.0.4", "demo")
    lock = lockout.refusal("127.0.0.9", "demo")
    assert lock is not None
    assert lock.scope == "login"
    assert lock.seconds == pytest.approx(60.0)
    assert lock.reason == "too many failed logins for this login; try again in 60 s"
    assert lockout.refusal("127.0.0.9", "alice") is None
    assert lockout.refusal("127.0.0.2", "alice") is None  # 1 failure from that address


def test_the_per_login_lockout_never_outlasts_its_window() -> None:
    """Issue 16 (documented rule): attempts during a lockout are refused but not counted, so
    a guesser never keeps the real user out longer than `login_lockout_seconds` after the
    lockout began; counting starts afresh after it."""
    clock = FakeClock()
    lockout = LoginLockout(2, 60.0, clock)
    lockout.failed("10.0.0.1", "demo")
    assert lockout.failed("10.0.0.2", "demo")
    for i in range(50):  # a guesser keeps trying during the lockout, from many addresses
        clock.now += 1.0
        assert lockout.failed(f"10.1.0.{i}", "demo")
    clock.now += 10.0  # 60 s after the lockout began
    assert lockout.refusal("10.9.9.9", "demo") is None
    assert not lockout.failed("10.0.0.3", "demo")  # a fresh count: one failure is not enough


def test_ftp_login_locked_out_from_another_address(tmp_path: Path) -> None:
    """Issue 16: failures for `alice` lock `alice` out on FTP, also for a client at another
    loopback address, with a reason naming the login, while `alice2` still logs in there."""
    with ftp_harness(tmp_path, login_lockout_failures=2, login_lockout_seconds=60) as ftp:
        ftp.server.guard.lockout.failed("127.0.0.5", "alice")
        ftp.server.guard.lockout.failed("127.0.0.6", "alice")
        with raw_ftp(ftp.port) as client:
            assert client.cmd("USER alice").startswith(
                "421 Too many failed logins for this login; try again in"
            )
        with raw_ftp(ftp.port) as client:
            assert client.cmd("USER alice2").startswith("331")
            assert client.cmd("PASS pw-alice2").startswith("230")


def test_sftp_login_locked_out_from_another_address(tmp_path: Path) -> None:
    """Issue 16: the per-login lockout on SFTP: even the right password is refused, with a
    reason naming the login; another login from the same address is not."""
    with sftp_harness(tmp_path, login_lockout_failures=2, login_lockout_seconds=60) as sftp:
        sftp.server.guard.lockout.failed("127.0.0.5", "alice")
        sftp.server.guard.lockout.failed("127.0.0.6", "alice")

        reason = run(_sftp_login(sftp.port, "pw-alice", "alice"))
        assert reason.startswith("too many failed logins for this login; try again in")
        assert run(_sftp_login(sftp.port, "pw-alice2", "alice2")) == "ok"
