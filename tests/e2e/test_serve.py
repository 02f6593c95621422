"""`allmysms-mock serve` as a user runs it: the READY line, the connection lines, `/health`,
clean exits on SIGINT/SIGTERM, one-line start-up errors, the persistent SSH host key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from tests.support.billing import DEMO_CREDITS, SMS_CREDITS
from tests.support.serve import (
    READY_RE,
    Serve,
    api_last_id,
    api_verdict,
    campaign,
    csv_rows,
    entries,
    error_lines,
    ftp_drop,
    run_client,
    serve_command,
    serve_env,
)
from tests.support.tools import require_tool
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

HOST_KEY = "ssh_host_ed25519_key"


def fingerprint_line(stdout: str) -> str:
    """The SHA256 fingerprint printed on the sftp:// connection line."""
    for line in stdout.splitlines():
        if "sftp://" in line:
            match = re.search(r"SHA256:[A-Za-z0-9+/]{43}", line)
            assert match, f"no host key fingerprint on {line!r}"
            return match.group(0)
    raise AssertionError(f"no sftp:// line in:\n{stdout}")


def served_fingerprint(port: int) -> str:
    """The fingerprint of the key the SFTP server really presents (OpenSSH's format)."""
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.start_client(timeout=10)
        key = transport.get_remote_server_key()
    finally:
        transport.close()
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def run_serve(
    tmp_path: Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A serve expected to stop by itself (a start-up error): bounded, never left running."""
    return subprocess.run(
        [*serve_command(), "serve", *args],
        cwd=tmp_path,
        env=serve_env(tmp_path / "home", env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit non-zero, no traceback, and exactly one line naming what is wrong."""
    assert done.returncode not in (0, None), done
    assert "Traceback" not in done.stderr, done.stderr
    assert "READY" not in done.stdout
    naming = [line for line in done.stderr.splitlines() if all(n in line for n in needles)]
    assert len(naming) == 1, f"want one line naming {needles}, got:\n{done.stderr}"
    return naming[0]


# -- a running serve ----------------------------------------------------------------------------


def test_ready_line_is_the_last_line_and_names_three_free_ports(module_serve: Serve) -> None:
    """Contract 2: "Port 0 means pick a free port. Once every listener is up it prints
    exactly one line `READY ftp=<port> sftp=<port> http=<port>` on stdout (flushed)"."""
    lines = module_serve.stdout().splitlines()
    ready = [line for line in lines if line.startswith("READY")]
    assert len(ready) == 1
    assert lines[-1] == ready[0]
    match = READY_RE.match(ready[0])
    assert match is not None
    ports = [int(p) for p in match.groups()]
    assert all(0 < p < 65536 for p in ports)
    assert len(set(ports)) == 3
    for port in ports:  # every listener is up when READY is printed
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_connection_lines_give_urls_and_the_host_key_fingerprint(module_serve: Serve) -> None:
    """Contract 2: "It prints the connection lines (ftp://, sftp:// with the host key
    fingerprint, http://) once every listener is up"; the fingerprint is the served key's."""
    out = module_serve.stdout()
    before_ready = out.split("READY", 1)[0]
    assert f"ftp://127.0.0.1:{module_serve.ftp_port}" in before_ready
    assert f"sftp://127.0.0.1:{module_serve.sftp_port}" in before_ready
    assert f"http://127.0.0.1:{module_serve.http_port}" in before_ready
    printed = fingerprint_line(before_ready)
    assert printed == served_fingerprint(module_serve.sftp_port)


def test_openssh_sees_the_printed_fingerprint(module_serve: Serve, tmp_path: Path) -> None:
    """Contract 2 (sftp:// line "with the host key fingerprint"): what `ssh-keyscan` +
    `ssh-keygen -l` compute from the wire is the printed fingerprint."""
    keyscan = require_tool("ssh-keyscan")
    keygen = require_tool("ssh-keygen")
    home = tmp_path / "kh"
    scan = run_client([keyscan, "-T", "10", "-p", str(module_serve.sftp_port), "127.0.0.1"], home)
    assert scan.returncode == 0, scan.stderr
    assert scan.stdout.strip(), scan.stderr
    (home / "scanned").write_text(scan.stdout)
    listing = run_client([keygen, "-l", "-f", str(home / "scanned")], home)
    assert listing.returncode == 0, listing.stderr
    assert fingerprint_line(module_serve.stdout()) in listing.stdout


def test_health_with_curl(module_serve: Serve, tmp_path: Path) -> None:
    """Contract 6: `GET /health` → `{"status":"ok","ftp_port":…,"sftp_port":…,"http_port":…}`
    once all is up."""
    curl = require_tool("curl")
    done = run_client(
        [curl, "-sS", "--fail", "--max-time", "10", f"{module_serve.http_url}/health"],
        tmp_path / "c",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "status": "ok",
        "ftp_port": module_serve.ftp_port,
        "sftp_port": module_serve.sftp_port,
        "http_port": module_serve.http_port,
    }


def test_a_reused_name_gets_its_new_verdict_from_a_long_running_serve(
    module_serve: Serve,
) -> None:
    """Contract 6, the long-running server's case: a name dropped again (a test suite run
    twice against one `serve`) is waited for with `after_id=<last_id read before the drop>`
    and gets the new verdict, never the one the name had before."""
    name = campaign("Reused")
    ftp_drop(module_serve.ftp_port, name, csv_rows(1))
    old = api_verdict(module_serve.http_url, name, wait=20)
    last_id = api_last_id(module_serve.http_url)
    assert last_id >= old["id"]
    ftp_drop(module_serve.ftp_port, name, csv_rows(3, start=10))
    new = api_verdict(module_serve.http_url, name, wait=20, after_id=last_id)
    assert new["id"] > last_id
    assert (old["sms_count"], new["sms_count"]) == (1, 3)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_exits_zero_and_closes_the_ports(
    spawn_serve: Callable[..., Serve], sig: signal.Signals
) -> None:
    """Contract 2: "SIGINT/SIGTERM: stops accepting, lets the file being processed finish,
    exits 0"."""
    child = spawn_serve().start()
    ports = (child.ftp_port, child.sftp_port, child.http_port)
    assert child.stop(sig, timeout=30) == 0, child.stderr()
    assert "Traceback" not in child.stderr()
    for port in ports:
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=5),
        ):
            pass


# -- start-up errors: one line, no traceback, nothing half-started --------------------------------


def test_second_serve_on_the_same_data_dir_is_refused(module_serve: Serve, tmp_path: Path) -> None:
    """One platform per data dir: a second `serve` on it exits non-zero with one clear line
    (brief: "infrastructure errors become one clear line"); the first keeps running."""
    busy = module_serve.data_dir
    done = run_serve(
        tmp_path,
        ["--ftp-port", "0", "--sftp-port", "0", "--http-port", "0", "--data-dir", str(busy)],
    )
    line = assert_one_line_error(done, str(busy))
    assert error_lines(done.stderr) == [line]
    assert module_serve.proc is not None
    assert module_serve.proc.poll() is None
    assert module_serve.account()["login"] == "demo"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("which", ["ftp", "sftp", "http"])
def test_a_taken_port_stops_start_up_with_one_line_naming_it(
    tmp_path: Path, taken_port: int, which: str
) -> None:
    """Contract 3: "A bad file or value stops start-up with one clear line"; a port in use
    is named (and its protocol), nothing keeps running."""
    ports = {"ftp": "0", "sftp": "0", "http": "0", which: str(taken_port)}
    done = run_serve(
        tmp_path,
        [
            *("--ftp-port", ports["ftp"], "--sftp-port", ports["sftp"]),
            *("--http-port", ports["http"], "--data-dir", str(tmp_path / "data")),
        ],
    )
    line = assert_one_line_error(done, str(taken_port))
    assert which.upper() in line


def test_env_variable_with_a_bad_value_names_the_key(tmp_path: Path) -> None:
    """Contract 3: environment variables `ALLMYSMS_MOCK_<SECTION>_<KEY>`; "A bad file or
    value stops start-up with one clear line naming the key; nothing starts half-way"."""
    data = tmp_path / "data"
    done = run_serve(
        tmp_path, ["--data-dir", str(data)], env={"ALLMYSMS_MOCK_SERVER_FTP_PORT": "abc"}
    )
    line = assert_one_line_error(done, "FTP_PORT")
    assert error_lines(done.stderr) == [line]
    assert not data.exists()


def test_config_file_with_an_unknown_key_names_it(tmp_path: Path) -> None:
    """Contract 3: a TOML file (`--config`); a bad file stops start-up with one clear line
    naming the key; nothing starts half-way."""
    config = tmp_path / "mock.toml"
    config.write_text('[server]\nhost = "127.0.0.1"\nftp_prot = 2121\n', encoding="utf-8")
    data = tmp_path / "data"
    done = run_serve(tmp_path, ["--config", str(config), "--data-dir", str(data)])
    line = assert_one_line_error(done, "ftp_prot")
    assert error_lines(done.stderr) == [line]
    assert not data.exists()


def test_a_data_dir_that_cannot_hold_the_state_stops_start_up_with_one_line(
    tmp_path: Path,
) -> None:
    """Contract 3: "nothing starts half-way"; a traceback shown to a user is a bug: a data dir
    that is a file, or a state database that is not SQLite, is one line naming it."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x", encoding="utf-8")
    done = run_serve(tmp_path, ["--data-dir", str(not_a_dir)])
    assert error_lines(done.stderr) == [assert_one_line_error(done, str(not_a_dir))]
    data = tmp_path / "data"
    data.mkdir()
    (data / "state.sqlite3").write_text("not a database", encoding="utf-8")
    done = run_serve(tmp_path, ["--data-dir", str(data)])
    assert error_lines(done.stderr) == [assert_one_line_error(done, "state.sqlite3")]


FOREIGN_DATABASES = {
    "another application": ("CREATE TABLE moz_places (id INTEGER, url TEXT);", "moz_places"),
    "our names, other columns": (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta VALUES ('schema', '4');"
        "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT);",
        "table files lacks",
    ),
    "a newer schema": (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta VALUES ('schema', '999');",
        "schema 999",
    ),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN_DATABASES))
def test_a_foreign_state_database_stops_start_up_with_one_line(tmp_path: Path, kind: str) -> None:
    """Issue 16 (finding 9): a `state.sqlite3` of another application, or of ours with other
    columns, or of a newer version, is one line naming the file and what is wrong; exit
    non-zero, no traceback, the file left as it was."""
    script, needle = FOREIGN_DATABASES[kind]
    data = tmp_path / "data"
    data.mkdir()
    state = data / "state.sqlite3"
    conn = sqlite3.connect(state)
    conn.executescript(script)
    conn.close()
    before = state.read_bytes()
    done = run_serve(tmp_path, ["--data-dir", str(data)])
    line = assert_one_line_error(done, "state.sqlite3", needle)
    assert error_lines(done.stderr) == [line]
    assert state.read_bytes() == before


# -- the SSH host key -----------------------------------------------------------------------------


def test_host_key_is_private_and_stable_across_restarts(
    spawn_serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """Contract 4: `<data_dir>/ssh_host_ed25519_key` is "made on first start, reused after";
    it is the server's secret (mode 0600) and clients pin its fingerprint."""
    data = tmp_path / "data"
    first = spawn_serve(data).start()
    printed_first = fingerprint_line(first.stdout())
    assert first.stop() == 0, first.stderr()
    key = data / HOST_KEY
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    content = key.read_bytes()

    second = spawn_serve(data).start()
    try:
        assert fingerprint_line(second.stdout()) == printed_first
        assert served_fingerprint(second.sftp_port) == printed_first
    finally:
        assert second.stop() == 0, second.stderr()
    assert key.read_bytes() == content
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_sigterm_lets_the_file_in_processing_finish(
    spawn_serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """Contract 2: "SIGINT/SIGTERM: stops accepting, lets the file being processed finish,
    exits 0": a file waiting out `processing.delay_seconds` in PROCESSING is placed in
    ARCHIVES and recorded before the process exits."""
    data = tmp_path / "data"
    child = spawn_serve(data, env={"ALLMYSMS_MOCK_PROCESSING_DELAY_SECONDS": "30"}).start()
    name = campaign("Stopping")
    body = csv_rows(2)
    ftp_drop(child.ftp_port, name, body)
    wait_until(lambda: entries(child.folder("PROCESSING")) == [name], 10, what="PROCESSING")
    assert child.stop(signal.SIGTERM, timeout=20) == 0, child.stderr()
    assert entries(child.folder("ARCHIVES")) == [f"TreatedByMSI_{name}"]
    assert entries(child.folder("PROCESSING")) == []

    again = spawn_serve(data).start()
    assert api_verdict(again.http_url, name, wait=0)["status"] == "archived"
    assert again.account()["credits"] == DEMO_CREDITS - 2 * SMS_CREDITS
    assert again.stop() == 0, again.stderr()
