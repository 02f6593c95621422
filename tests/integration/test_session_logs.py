"""What the FTP and SFTP servers log of a session: the same events, at the same levels, in the
same words (docs/design.md, "Logs"). Each scenario is a real client session (ftplib, paramiko)
against a running mock; the records are captured from the `mockserver` loggers."""

from __future__ import annotations

import contextlib
import ftplib
import io
import logging
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from mockserver.app import MockServer
from tests.support.harness import running_mock_server
from tests.support.waiting import wait_until

LIMIT = 1000
SETTINGS = {
    "limits.max_file_bytes": LIMIT,
    "limits.login_failure_delay_seconds": 0,
    "limits.login_lockout_failures": 3,
    "limits.login_lockout_seconds": 600,
}
ACCOUNTS = [{"login": "demo", "password": "demo"}]
SMALL = b'"0612345678";"Bonjour"\n' * 4  # 92 bytes
LARGE = b"x" * (2 * LIMIT)


def _ftp(port: int, password: str = "demo") -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=15)
    try:
        ftp.login("demo", password)
    except BaseException:
        ftp.close()
        raise
    return ftp


def _ftp_bad_login(port: int) -> None:
    with contextlib.suppress(ftplib.Error, OSError, EOFError):
        _ftp(port, "wrong").close()


def ftp_scenario(srv: MockServer) -> None:
    port = srv.ftp_port
    _ftp_bad_login(port)
    ftp = _ftp(port)
    ftp.storbinary("STOR /SEND_SMS/a.tmp", io.BytesIO(SMALL))
    ftp.rename("/SEND_SMS/a.tmp", "/SEND_SMS/b.tmp")
    ftp.delete("/SEND_SMS/b.tmp")
    with pytest.raises(ftplib.error_perm):
        ftp.mkd("/SEND_SMS/sub")
    with contextlib.suppress(ftplib.Error, OSError):
        ftp.storbinary("STOR /SEND_SMS/big.tmp", io.BytesIO(LARGE))
    ftp.quit()
    for _ in range(3):  # the third failure in a row locks the address out, the last is refused
        _ftp_bad_login(port)


def _sftp(port: int, password: str = "demo") -> paramiko.Transport:
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.banner_timeout = 15
    try:
        transport.connect(username="demo", password=password)
    except BaseException:
        transport.close()
        raise
    return transport


def _sftp_bad_login(port: int) -> None:
    with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
        _sftp(port, "wrong").close()


def sftp_scenario(srv: MockServer) -> None:
    port = srv.sftp_port
    _sftp_bad_login(port)
    transport = _sftp(port)
    sftp = paramiko.SFTPClient.from_transport(transport)
    assert sftp is not None
    sftp.putfo(io.BytesIO(SMALL), "/SEND_SMS/a.tmp")
    sftp.rename("/SEND_SMS/a.tmp", "/SEND_SMS/b.tmp")
    sftp.remove("/SEND_SMS/b.tmp")
    with pytest.raises(PermissionError, match="cannot create folders"):
        sftp.mkdir("/SEND_SMS/sub")
    with contextlib.suppress(OSError):
        sftp.putfo(io.BytesIO(LARGE), "/SEND_SMS/big.tmp")
    sftp.close()
    transport.close()
    for _ in range(3):
        _sftp_bad_login(port)


SCENARIOS: dict[str, Callable[[MockServer], None]] = {"ftp": ftp_scenario, "sftp": sftp_scenario}


def session_records(
    protocol: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    """The records the `protocol` server logs over the scenario: a failed login, a login, an
    upload, a rename, a delete, a refused mkdir, an upload over the size limit, a logout, then
    failed logins up to the lockout and one login refused by it."""
    caplog.set_level(logging.DEBUG, logger="mockserver")
    # `setup_logging` (run by an earlier in-process `serve`) stops propagation to the root
    # logger, where caplog listens.
    caplog.handler.setLevel(logging.DEBUG)
    mock_logger = logging.getLogger("mockserver")
    propagate = mock_logger.propagate
    mock_logger.propagate = True
    name = f"mockserver.{protocol}"
    try:
        with running_mock_server(tmp_path / protocol, ACCOUNTS, SETTINGS) as srv:
            started = len(caplog.records)  # the start-up lines (listening, host key) aside
            SCENARIOS[protocol](srv)

            def mine() -> list[logging.LogRecord]:
                return [r for r in caplog.records[started:] if r.name == name]

            def finished() -> bool:
                messages = [r.getMessage() for r in mine()]
                return any("disconnected" in m for m in messages) and any(
                    " locked out for " in m for m in messages
                )

            wait_until(finished, timeout=15, what=f"the {protocol} session's last lines")
            return mine()
    finally:
        mock_logger.propagate = propagate


def lines(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in records]


def test_ftp_logs_every_event_of_a_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """FTP logs a session as SFTP does: login ok / failed / locked out, upload started and
    closed with its size, upload refused with the reason, rename, delete, a refused operation
    with the policy's reason, disconnect; pyftpdlib's own INFO lines are not printed too."""
    got = lines(session_records("ftp", tmp_path, caplog))

    def one(level: str, start: str, end: str = "", times: int = 1) -> None:
        found = [m for lv, m in got if lv == level and m.startswith(start) and m.endswith(end)]
        assert len(found) == times, (level, start, end, got)

    # One failure on each of three connections (each its first), the third locking out.
    one("WARNING", "FTP login failed for 'demo' from 127.0.0.1:", " (1)", times=3)
    one("INFO", "login=demo FTP login from 127.0.0.1:")
    one("DEBUG", "login=demo FTP upload started /SEND_SMS/a.tmp")
    one("INFO", f"login=demo FTP upload complete /SEND_SMS/a.tmp ({len(SMALL)} bytes)")
    one("INFO", "login=demo FTP rename /SEND_SMS/a.tmp -> /SEND_SMS/b.tmp")
    one("INFO", "login=demo FTP deleted /SEND_SMS/b.tmp")
    one("INFO", "login=demo FTP refused mkdir /SEND_SMS/sub: cannot create folders")
    one("WARNING", f"login=demo FTP upload /SEND_SMS/big.tmp refused: over {LIMIT} bytes")
    one("INFO", "login=demo FTP upload /SEND_SMS/big.tmp too large; partial file removed")
    one("INFO", "login=demo FTP disconnected from 127.0.0.1:")
    one("WARNING", "FTP logins from 127.0.0.1 (or for 'demo') locked out after repeated failures")
    one("INFO", "FTP login from 127.0.0.1:", " refused: address locked out for 600 s")
    assert not [r for r in caplog.records if r.name == "pyftpdlib" and r.levelno < logging.WARNING]


def shape(record: logging.LogRecord) -> tuple[str, str]:
    """A record's event kind: its level and its message template, the protocol's name
    written `P` (`login=%s P upload complete %s (%d bytes)`)."""
    template = str(record.msg).replace("SFTP", "P").replace("FTP", "P")
    return record.levelname, template


def test_ftp_and_sftp_log_the_same_events_in_the_same_words(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same session over FTP and over SFTP logs the same kinds of events (level and
    wording, the protocol's name aside): an operator reads one log whichever protocol a
    client uses."""
    kinds = {}
    for protocol in ("ftp", "sftp"):
        records = session_records(protocol, tmp_path, caplog)
        kinds[protocol] = {shape(r) for r in records}
        assert not [r for r in records if "None" in r.getMessage()], "a peer lost on the way"
        caplog.clear()
    assert kinds["ftp"] == kinds["sftp"]
    assert len(kinds["ftp"]) >= 12
