"""The end-to-end tests' helpers: the real `allmysms-mock serve` process, the HTTP control API
over urllib, the manual's upload recipe (`.tmp` then rename) over FTP and SFTP.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import paramiko

from tests.support.tools import client_env
from tests.support.waiting import wait_until

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
DEMO_LOGIN = "demo"
DEMO_PASSWORD = "demo"
SEND_AT = "20300716120000"
READY_RE = re.compile(r"^READY ftp=(\d+) sftp=(\d+) http=(\d+)$")
LOG_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")
FOLDERS = ("SEND_SMS", "PROCESSING", "ARCHIVES", "INVALIDS")


# -- waiting ------------------------------------------------------------------------------------


# -- drop files ---------------------------------------------------------------------------------


def campaign(tag: str, *, mult: bool = False) -> str:
    """A valid drop-file name (contract 5.4.1) for the campaign `tag`."""
    return f"{tag}_{SEND_AT}_HQ{'_MULT' if mult else ''}.csv"


def mobile(i: int) -> str:
    """The i-th distinct French mobile number, in the manual's `06xxxxxxxx` form."""
    return f"06{i:08d}"


def stored(number: str) -> str:
    """`06xxxxxxxx` as the platform stores it (contract 5.6: `33` + 9 digits)."""
    return "33" + number[1:]


def csv_rows(count: int, start: int = 0, text: str = "Bonjour") -> bytes:
    """`count` valid rows to distinct mobiles, quoted and `;`-separated (manual 4.2)."""
    lines = [f'"{mobile(start + i)}";"{text} {start + i}"' for i in range(count)]
    return ("\r\n".join(lines) + "\r\n").encode()


# -- the HTTP control API -----------------------------------------------------------------------


def http_json(
    url: str, method: str = "GET", body: Any = None, timeout: float = 30.0
) -> tuple[int, Any]:
    """(status, decoded JSON) of one call; 4xx/5xx are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


def api_verdict(
    http_url: str, name: str, wait: float = 10.0, *, after_id: int | None = None
) -> dict[str, Any]:
    """The verdict of `name` through `GET /api/files?name=&wait=` (contract 6: "answers as
    soon as that file has a verdict"); with `after_id` (a `last_id` read before the drop),
    the verdict of a file recorded after it, never an earlier drop of that name."""
    params = {"name": name, "wait": f"{wait:g}"}
    if after_id is not None:
        params["after_id"] = str(after_id)
    query = urllib.parse.urlencode(params)
    status, data = http_json(f"{http_url}/api/files?{query}", timeout=wait + 20)
    assert status == 200, f"no verdict for {name}: {status} {data}"
    files: list[dict[str, Any]] = data["files"]
    assert files, data
    return files[-1]


def api_last_id(http_url: str) -> int:
    """`last_id` of `GET /api/files`: the highest file id on the platform (contract 6)."""
    last_id: int = api_get(http_url, "/api/files", limit="1")["last_id"]
    return last_id


def api_get(http_url: str, path: str, **query: str) -> Any:
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    status, data = http_json(f"{http_url}{path}{suffix}")
    assert status == 200, f"GET {path}{suffix}: {status} {data}"
    return data


# -- the manual's recipe: upload `<name>.tmp` into SEND_SMS, then rename it -----------------------


def ftp_drop(
    port: int,
    name: str,
    data: bytes,
    login: str = DEMO_LOGIN,
    password: str = DEMO_PASSWORD,
    *,
    rename: bool = True,
    timeout: float = 15.0,
) -> None:
    """Manual 4.2: "uploader des fichiers temporaires, avec extension .tmp ... remplacer
    l'extension .tmp par .csv afin que le traitement démarre" (over FTP, ftplib)."""
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", port, timeout=timeout)
        ftp.login(login, password)
        ftp.storbinary(f"STOR /SEND_SMS/{name}.tmp", io.BytesIO(data))
        if rename:
            ftp.rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}")
        with contextlib.suppress(OSError, EOFError, ftplib.Error):
            ftp.quit()


def sftp_drop(
    port: int,
    name: str,
    data: bytes,
    login: str = DEMO_LOGIN,
    password: str = DEMO_PASSWORD,
    *,
    rename: bool = True,
    timeout: float = 15.0,
) -> None:
    """The same recipe over SFTP (paramiko: `put` of the `.tmp`, then SFTP `rename`)."""
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.banner_timeout = timeout
        transport.connect(username=login, password=password)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        try:
            channel = client.get_channel()
            if channel is not None:
                channel.settimeout(timeout)
            client.putfo(io.BytesIO(data), f"/SEND_SMS/{name}.tmp", confirm=True)
            if rename:
                client.rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}")
        finally:
            client.close()
    finally:
        transport.close()


def drop(protocol: str, port_ftp: int, port_sftp: int, name: str, data: bytes) -> None:
    if protocol == "ftp":
        ftp_drop(port_ftp, name, data)
    else:
        sftp_drop(port_sftp, name, data)


def ftp_list(port: int, folder: str, login: str = DEMO_LOGIN, password: str = DEMO_PASSWORD) -> str:
    """The raw `LIST` of a folder, as a client sees it."""
    lines: list[str] = []
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", port, timeout=10)
        ftp.login(login, password)
        ftp.retrlines(f"LIST /{folder}", lines.append)
        with contextlib.suppress(OSError, EOFError, ftplib.Error):
            ftp.quit()
    return "\n".join(lines)


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- command-line clients -------------------------------------------------------------------------


def run_client(
    args: list[str], home: Path, extra_env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a client to completion (bounded), in its own HOME, without a terminal."""
    return subprocess.run(
        args,
        env=client_env(home, extra_env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# -- the real `allmysms-mock serve` ---------------------------------------------------------------


def serve_command() -> list[str]:
    """The installed console script (next to this interpreter, else on PATH), else
    `python -m mockserver`."""
    beside = Path(sys.executable).with_name("allmysms-mock")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("allmysms-mock")
    return [found] if found else [sys.executable, "-m", "mockserver"]


def serve_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any ALLMYSMS_MOCK_* variable, plus `extra`."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLMYSMS_MOCK_")}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


class ServeExited(AssertionError):
    """`serve` ended before printing READY (a start-up error)."""


class Serve:
    """One `allmysms-mock serve` child: stdout and stderr go to files (read by polling, no
    pipe to fill), ports are taken from the READY line (contract 2)."""

    def __init__(
        self,
        workdir: Path,
        data_dir: Path,
        *,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        ports: tuple[int, int, int] = (0, 0, 0),
        open_files: int | None = None,
    ) -> None:
        """`open_files`: the child's soft and hard RLIMIT_NOFILE (`ulimit -n`), else the
        caller's."""
        self.workdir = workdir
        self.open_files = open_files
        self.data_dir = data_dir
        self.args = [
            "serve",
            "--ftp-port",
            str(ports[0]),
            "--sftp-port",
            str(ports[1]),
            "--http-port",
            str(ports[2]),
            "--data-dir",
            str(data_dir),
            *args,
        ]
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.ftp_port = self.sftp_port = self.http_port = 0
        workdir.mkdir(parents=True, exist_ok=True)
        self._runs = 0
        self.stdout_path = workdir / "serve-0.out"
        self.stderr_path = workdir / "serve-0.err"

    # -- lifecycle ------------------------------------------------------------------------

    def spawn(self) -> Serve:
        """Start the child (do not wait for READY)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._runs += 1
        self.stdout_path = self.workdir / f"serve-{self._runs}.out"
        self.stderr_path = self.workdir / f"serve-{self._runs}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*serve_command(), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.workdir,
                env=serve_env(self.workdir / "home", self.extra_env),
                preexec_fn=None if self.open_files is None else self._limit_open_files,
            )
        return self

    def _limit_open_files(self) -> None:
        # In the child, between fork and exec: both limits, so `serve` cannot raise its own.
        import resource

        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def open_descriptors(self) -> int:
        """The descriptors the running child holds (Linux: /proc/<pid>/fd)."""
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def start(self, timeout: float = 30.0) -> Serve:
        """Start and wait for the READY line; on failure the child is killed."""
        self.spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def wait_ready(self, timeout: float = 30.0) -> tuple[int, int, int]:
        proc = self.proc
        assert proc is not None

        def ready() -> re.Match[str] | None:
            for line in self.stdout().splitlines():
                match = READY_RE.match(line)
                if match:
                    return match
            if proc.poll() is not None:
                raise ServeExited(
                    f"serve exited with {proc.returncode} before READY:\n{self.stderr()}"
                )
            return None

        match = wait_until(ready, timeout, what="the READY line of serve")
        assert match is not None
        self.ftp_port, self.sftp_port, self.http_port = (int(g) for g in match.groups())
        return self.ftp_port, self.sftp_port, self.http_port

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send `sig` and return the exit code; killed (and AssertionError) if it hangs."""
        proc = self.proc
        assert proc is not None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"serve did not exit within {timeout} s of signal {sig}:\n{self.stderr()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the child if it still runs, and reap it (idempotent)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def wait_exit(self, timeout: float = 30.0) -> int:
        proc = self.proc
        assert proc is not None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"serve still running after {timeout} s") from None

    # -- what it said -----------------------------------------------------------------------

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def folder(self, name: str, login: str = DEMO_LOGIN) -> Path:
        return self.data_dir / "accounts" / login / name

    def account(self, login: str = DEMO_LOGIN) -> dict[str, Any]:
        data: dict[str, Any] = api_get(self.http_url, f"/api/accounts/{login}")
        return data


def error_lines(stderr: str) -> list[str]:
    """The stderr lines that are not timestamped log records: what a user reads as errors."""
    return [line for line in stderr.splitlines() if line.strip() and not LOG_LINE_RE.match(line)]
