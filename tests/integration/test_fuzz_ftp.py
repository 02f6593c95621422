"""FTP command fuzzing over a raw socket (contract 4: "Anything else gets a permission error ...
never a crash, and the connection stays usable"; pyftpdlib itself raises on a NUL byte).

Seeded and bounded in time: `ALLMYSMS_FUZZ_SECONDS` (default 5) and `ALLMYSMS_FUZZ_SEED`.
After every case: each command got a whole reply, NOOP still answers 200, nothing was logged at
error level, and nothing outside the login's tree changed.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import ErrorRecords, FtpHarness, outside_snapshot
from tests.support.waiting import wait_until

FUZZ_SECONDS = float(os.environ.get("ALLMYSMS_FUZZ_SECONDS", "5"))
SEED = int(os.environ.get("ALLMYSMS_FUZZ_SEED", "20240501"))
MAX_CASES = 200_000
REPLY_TIMEOUT = 10.0

# A command whose reply the fuzzer never produces (HELP NOOP is excluded from the cases): the
# replies before it belong to the case and to the NOOP that follows it.
SENTINEL = b"HELP NOOP"
SENTINEL_REPLY = "214 Syntax: NOOP (just do nothing)."

# Commands that change the session's shape are left out of the logged-in cases: data-channel
# set-up (PASV/PORT: a later transfer command would wait for a connection that never comes;
# tested in test_limits), and logging out (QUIT, USER, PASS, REIN: tested before login).
_DATA_SETUP = {"PASV", "EPSV", "PORT", "EPRT"}
_LOGGED_IN = sorted(
    {
        "ABOR", "ALLO", "APPE", "CDUP", "CWD", "DELE", "FEAT", "HELP", "LIST", "MDTM", "MFMT",
        "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS", "PWD", "REST", "RETR", "RMD",
        "RNFR", "RNTO", "SITE", "SITE CHMOD", "SITE HELP", "SIZE", "STAT", "STOR", "STOU",
        "STRU", "SYST", "TYPE", "XCUP", "XCWD", "XMKD", "XPWD", "XRMD",
        "AUTH", "PBSZ", "PROT", "CCC", "MLSX", "LPRT", "XYZZY",
    }
)  # fmt: skip
_ANONYMOUS = [*_LOGGED_IN, "USER", "PASS", "PASS", "REIN"]
_PARTS = [
    "", ".", "..", "...", "/", "//", "SEND_SMS", "ARCHIVES", "PROCESSING", "INVALIDS", "alice",
    "alice2", "x.csv", "a.tmp", "Camp_20300101120000_HQ.csv", "*", "?", "-la", "~", "%2e%2e",
    "..\\..", "\\", "C:", "/etc/passwd", "/proc/self", "é", "名前", "\U0001f600",
]  # fmt: skip
_SPECIAL_BYTES = [b"\x00", b"\x01", b"\x07", b"\x1b[31m", b"\x7f", b"\r", b"\n", b"\xff", b"\xc3("]


def _path(rng: random.Random) -> bytes:
    parts = [rng.choice(_PARTS) for _ in range(rng.randint(1, 5))]
    text = ("/" if rng.random() < 0.5 else "") + "/".join(parts)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.2:
        at = rng.randint(0, len(data))
        data = data[:at] + rng.choice(_SPECIAL_BYTES) + data[at:]
    return data


def _utf8_text(rng: random.Random) -> bytes:
    chars = []
    for _ in range(rng.randint(1, 40)):
        code = rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0xD7FF), rng.randint(0, 31)])
        chars.append(chr(code))
    return "".join(chars).encode("utf-8")


def _arg(rng: random.Random) -> bytes:
    kind = rng.randrange(9)
    if kind == 0:
        return b""
    if kind <= 3:
        return _path(rng)
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    if kind == 5:
        return _utf8_text(rng)
    if kind == 6:
        # Overlong: pyftpdlib answers 500 per 2 KB chunk, then judges the rest.
        return rng.choice([b"A", b"../", b"\x00", "é".encode()]) * rng.randint(700, 6000)
    if kind == 7:
        numbers = [0, 1, -1, 2**31, 2**63, 10**30, 8_000_000, 7_999_999]
        return str(rng.choice(numbers)).encode()
    return rng.choice(
        [b"777 SEND_SMS/x.csv", b"20300101120000 SEND_SMS/a.tmp", b"99999999999999 /", b"I",
         b"A N", b"E", b"L 8", b"S", b"F", b"utf8 on", b"MLST type;size;", b"HELP"]
    )  # fmt: skip


def fuzz_line(rng: random.Random, commands: list[str]) -> bytes:
    if rng.random() < 0.05:
        word = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(1, 6)))
    else:
        word = rng.choice(commands)
    if rng.random() < 0.3:
        word = "".join(c.lower() if rng.random() < 0.5 else c for c in word)
    arg = _arg(rng)
    sep = rng.choice([b" ", b" ", b" ", b"  ", b"\t", b""])
    line = word.encode() + (sep + arg if arg or rng.random() < 0.1 else b"")
    # One command a case: CRLF ends the line (a lone CR or LF stays in it).
    line = line.replace(b"\r\n", b"\r")
    if line.strip().upper() == b"HELP NOOP":
        line += b"X"
    return line


class ServerClosed(Exception):
    pass


class RawSession:
    """A raw FTP control connection reading whole replies with a timeout."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.authenticated = False
        banner = self.reply()
        assert banner.startswith("220"), banner

    def reply(self) -> str:
        first = self._line()
        if first[3:4] == "-":
            code = first[:3]
            line = first
            for _ in range(100_000):
                line = self._line()
                if line[:3] == code and line[3:4] == " ":
                    break
            return line
        return first

    def _line(self) -> str:
        raw = self.file.readline()
        if not raw:
            raise ServerClosed
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def replies_until_sentinel(self) -> list[str]:
        replies: list[str] = []
        for _ in range(1000):
            reply = self.reply()
            if reply == SENTINEL_REPLY:
                return replies
            replies.append(reply)
        raise AssertionError(f"no sentinel reply after {replies[-5:]}")

    def login(self) -> None:
        self.sock.sendall(b"USER alice\r\n")
        assert self.reply().startswith("331")
        self.sock.sendall(b"PASS pw-alice\r\n")
        assert self.reply().startswith("230")
        self.authenticated = True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def error_records() -> Iterator[ErrorRecords]:
    """Error-level records of the mock (and of pyftpdlib, which logs uncaught exceptions)."""
    handler = ErrorRecords()
    loggers = [logging.getLogger("mockserver"), logging.getLogger("pyftpdlib")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def assert_tree_shape(harness: FtpHarness) -> None:
    """Contract 4: never a new folder, link or symlink in the login's tree."""
    root = harness.root()
    assert sorted(p.name for p in root.iterdir()) == [
        "ARCHIVES",
        "INVALIDS",
        "PROCESSING",
        "SEND_SMS",
    ]
    for folder in root.iterdir():
        assert folder.is_dir()
        assert not folder.is_symlink()
        for entry in folder.iterdir():
            assert entry.is_file(), entry
            assert not entry.is_symlink(), entry


def test_ftp_command_fuzzing(tmp_path: Path, error_records: ErrorRecords) -> None:
    """Contract 4: "never a crash, and the connection stays usable": random commands and
    arguments (NUL and control bytes, overlong lines, random and invalid UTF-8), logged in and
    not, each answered, NOOP answered after each, no error logged, nothing changed outside."""
    harness = FtpHarness(
        tmp_path,
        **{
            "limits.login_lockout_failures": 0,  # the fuzzer fails logins on purpose
            "limits.max_file_bytes": 10_000,
        },
    )
    rng = random.Random(SEED)
    sessions: dict[str, RawSession] = {}
    before = outside_snapshot(harness)
    cases = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < FUZZ_SECONDS and cases < MAX_CASES:
            who = "anonymous" if rng.random() < 0.2 else "alice"
            session = sessions.get(who)
            if session is None:
                session = sessions[who] = RawSession(harness.port)
                if who == "alice":
                    session.login()
            line = fuzz_line(rng, _ANONYMOUS if who == "anonymous" else _LOGGED_IN)
            case = f"case {cases} (seed {SEED}, {who}): {line[:200]!r}"
            session.sock.sendall(line + b"\r\nNOOP\r\n" + SENTINEL + b"\r\n")
            try:
                replies = session.replies_until_sentinel()
            except ServerClosed:
                # Only a third failed login may end the connection (max_login_attempts).
                session.close()
                del sessions[who]
                assert who == "anonymous", f"{case}: the server closed the connection"
                continue
            except TimeoutError:
                pytest.fail(f"{case}: no reply within {REPLY_TIMEOUT} s")
            assert len(replies) >= 2, f"{case}: a command got no reply: {replies}"
            assert replies[-1].startswith("200"), f"{case}: NOOP answered {replies[-1]!r}"
            for reply in replies:
                assert reply[:3].isdigit(), f"{case}: {reply!r}"
            assert not error_records.records, f"{case}: {error_records.records[0].getMessage()}"
            assert outside_snapshot(harness) == before, f"{case}: changed outside the tree"
            if who == "alice" and cases % 50 == 0:
                assert_tree_shape(harness)
            cases += 1
    finally:
        for session in sessions.values():
            session.close()
        elapsed = time.monotonic() - started
        print(
            f"\nFTP fuzz: {cases} cases in {elapsed:.1f} s ({cases / elapsed:.0f}/s), seed {SEED}"
        )
    assert cases >= 20
    assert_tree_shape(harness)
    # Every upload a case left waiting is closed with its session (none stays "being written").
    try:
        wait_until(lambda: not harness.open_writes.snapshot(), what="no upload left open")
    finally:
        harness.close()
    assert not error_records.records
    assert harness.canary.read_bytes().startswith(b"canary")


# -- regressions the fuzzer found ---------------------------------------------------------------


@pytest.fixture
def ftp_env(tmp_path: Path) -> Iterator[FtpHarness]:
    harness = FtpHarness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


def test_a_reply_never_splits_on_the_clients_control_characters(ftp_env: FtpHarness) -> None:
    """pyftpdlib echoes an unknown command in its 500 reply: a LF the client put in it must
    not start a second reply line (the client would read it as the next reply)."""
    session = RawSession(ftp_env.port)
    try:
        session.sock.sendall(b"RETR\tx\ny\x00z\rw\r\nNOOP\r\n")
        assert session.reply() == '500 Command "RETR?X?Y?Z?W" not understood.'
        assert session.reply().startswith("200")
    finally:
        session.close()


def test_pipelined_commands_after_a_failed_login_are_answered_in_order(
    ftp_env: FtpHarness,
) -> None:
    """RFC 959 replies come in command order: a failed PASS is answered after its delay, and
    the commands sent behind it wait for that 530 instead of overtaking it."""
    session = RawSession(ftp_env.port)
    try:
        session.sock.sendall(
            b"USER alice\r\nPASS wrong\r\nNOOP\r\nUSER alice\r\nPASS bad\r\nSYST\r\n"
            b"USER alice\r\nPASS pw-alice\r\nPWD\r\n"
        )
        codes = [session.reply()[:3] for _ in range(9)]
        assert codes == ["331", "530", "200", "331", "530", "215", "331", "230", "257"]
    finally:
        session.close()
