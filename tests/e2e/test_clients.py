"""Every real client against one `allmysms-mock serve`, at realistic sizes: each does the
manual's procedure (upload `<name>.tmp` into SEND_SMS, rename it to its final `.csv` name) with
files of 1 KB, 100 KB and 5 MB (under the 8,000,000-byte limit), and each file must be archived
intact in `<data_dir>/accounts/demo/ARCHIVES/`, with its exact SMS count, its SMS recorded in
line order and its cost debited.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from tests.support.billing import SMS_CREDITS
from tests.support.serve import (
    DEMO_LOGIN,
    DEMO_PASSWORD,
    Serve,
    api_get,
    api_verdict,
    campaign,
    entries,
    ftp_drop,
    http_json,
    mobile,
    run_client,
    sftp_drop,
    stored,
)
from tests.support.tools import require_tool

pytestmark = [pytest.mark.clients, pytest.mark.timeout(120)]

OPENSSH = [
    "-F",
    "/dev/null",
    "-oStrictHostKeyChecking=no",
    "-oUserKnownHostsFile=/dev/null",
    "-oPreferredAuthentications=password",
    "-oPubkeyAuthentication=no",
    "-oLogLevel=ERROR",
]

# Target sizes in bytes ("8 Mo" is 8,000,000 bytes: docs/spec.md 4.5); a file is as many
# whole rows as fit, so it is within one row (under 100 bytes) of its target.
SIZES = {"1KB": 1_000, "100KB": 100_000, "1MB": 1_000_000, "5MB": 5_000_000}
sized = pytest.mark.parametrize("size", ["1KB", "100KB", "5MB"])  # every client
CLIENTS = (
    "LftpFtp",
    "LftpSftp",
    "CurlFtp",
    "CurlSftp",
    "OpensshSftp",
    "RcloneFtp",
    "RcloneSftp",
    "Ftplib",
    "Paramiko",
    "Asyncssh",
)
NUMBERS_PER_DROP = 100_000  # more than the rows of a 5 MB file
TEXT = "Bonjour, ceci est un SMS de test de la plateforme"
# The demo account pays for every file of a module (a 5 MB file is about 60,000 SMS).
FUNDS = 10**10


@dataclass(frozen=True)
class Drop:
    """One upload: `rows` rows of the same width to distinct mobiles, from number `start`."""

    tag: str
    name: str
    path: Path
    body: bytes
    start: int
    rows: int

    def phone(self, row: int) -> str:
        return stored(mobile(self.start + row))

    def text(self, row: int) -> str:
        return f"{self.tag} SMS {row:06d} {TEXT}"


def make_drop(tmp_path: Path, client: str, size: str) -> Drop:
    """The local file of `client`'s upload at `size`, its numbers its own (distinct from every
    other client's and size's), so its SMS are told apart."""
    tag = f"{client}{size}"
    start = (CLIENTS.index(client) * len(SIZES) + list(SIZES).index(size) + 1) * NUMBERS_PER_DROP

    def row(i: int) -> bytes:
        return f'"{mobile(start + i)}";"{tag} SMS {i:06d} {TEXT}"\r\n'.encode()

    rows = max(1, SIZES[size] // len(row(0)))
    assert rows <= NUMBERS_PER_DROP
    body = b"".join(row(i) for i in range(rows))
    path = tmp_path / "upload" / f"{tag.lower()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return Drop(tag, campaign(tag), path, body, start, rows)


def fund(serve: Serve) -> Serve:
    """Credits for every file the module uploads (15 a French SMS, tests/support/billing.py)."""
    status, account = http_json(
        f"{serve.http_url}/api/accounts/{DEMO_LOGIN}", "PATCH", {"credits": FUNDS}
    )
    assert status == 200, account
    return serve


def serve_for_module(base: Path, env: dict[str, str] | None = None) -> Iterator[Serve]:
    child = Serve(base / "run", base / "data", env=env)
    try:
        fund(child.start())
        yield child
        if child.proc is not None and child.proc.poll() is None:
            assert child.stop(signal.SIGTERM) == 0, child.stderr()
    finally:
        child.kill()


@pytest.fixture(scope="module")
def funded_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One `serve` for the module's clients, its demo account funded for every size."""
    yield from serve_for_module(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def rclone_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """rclone's server-side move renames, then stats the destination at once: it needs the
    file to stay in SEND_SMS a moment (processing.pickup_delay_seconds, docs/spec.md)."""
    yield from serve_for_module(
        tmp_path_factory.mktemp("rclone-serve"),
        {"ALLMYSMS_MOCK_PROCESSING_PICKUP_DELAY_SECONDS": "1"},
    )


def credits(serve: Serve) -> int:
    return int(serve.account()["credits"])


def ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{done.args[0]} exited {done.returncode}:\n{done.stderr}"


def assert_archived(serve: Serve, drop: Drop, credits_before: int) -> None:
    """Manual 4.3: "l'API déplacera les fichiers ... vers le répertoire ARCHIVES si
    l'exécution du fichier s'est bien déroulée"; final name `TreatedByMSI_<name>` (contract
    5.3), the bytes as sent, one SMS a row with normalised numbers (contract 5.6), in line
    order, and their cost debited (15 credits each)."""
    verdict = api_verdict(serve.http_url, drop.name, wait=30)
    assert verdict["status"] == "archived", verdict
    assert verdict["reason"] is None
    assert verdict["final_name"] == f"TreatedByMSI_{drop.name}"
    assert verdict["sms_count"] == drop.rows
    archived = serve.folder("ARCHIVES") / f"TreatedByMSI_{drop.name}"
    assert archived.read_bytes() == drop.body
    # The first and the last page of its SMS (all of them up to 1,000 rows).
    pages = {0, max(0, drop.rows - 1000)}
    for offset in sorted(pages):
        page = api_get(
            serve.http_url, "/api/messages", file=drop.name, limit="1000", offset=str(offset)
        )["messages"]
        rows = range(offset, min(drop.rows, offset + 1000))
        assert [m["phone"] for m in page] == [drop.phone(i) for i in rows]
        assert [m["message"] for m in page] == [drop.text(i) for i in rows]
    assert credits(serve) == credits_before - drop.rows * SMS_CREDITS
    for folder in ("SEND_SMS", "PROCESSING"):
        left = [n for n in entries(serve.folder(folder)) if n.startswith(drop.tag + "_")]
        assert left == [], f"{folder} still holds {left}"


@sized
def test_lftp_ftp(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """lftp over FTP: `put -o NAME.tmp` then `mv` (manual 4.2 recipe)."""
    lftp = require_tool("lftp")
    drop, before = make_drop(tmp_path, "LftpFtp", size), credits(funded_serve)
    script = "; ".join(
        [
            "set ftp:ssl-allow no",
            "set net:max-retries 1",
            "set net:timeout 10",
            f"open -u {DEMO_LOGIN},{DEMO_PASSWORD} ftp://127.0.0.1:{funded_serve.ftp_port}",
            f"put {shlex.quote(str(drop.path))} -o /SEND_SMS/{drop.name}.tmp",
            f"mv /SEND_SMS/{drop.name}.tmp /SEND_SMS/{drop.name}",
        ]
    )
    ok(run_client([lftp, "-c", script], tmp_path / "home"))
    assert_archived(funded_serve, drop, before)


@sized
def test_lftp_sftp(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """lftp over sftp:// (through OpenSSH): `put -o NAME.tmp` then `mv`."""
    lftp = require_tool("lftp")
    require_tool("ssh")
    drop, before = make_drop(tmp_path, "LftpSftp", size), credits(funded_serve)
    script = "; ".join(
        [
            "set sftp:auto-confirm yes",
            "set net:max-retries 1",
            "set net:timeout 10",
            f'set sftp:connect-program "ssh -a -x {" ".join(OPENSSH)}"',
            f"open -u {DEMO_LOGIN},{DEMO_PASSWORD} sftp://127.0.0.1:{funded_serve.sftp_port}",
            f"put {shlex.quote(str(drop.path))} -o /SEND_SMS/{drop.name}.tmp",
            f"mv /SEND_SMS/{drop.name}.tmp /SEND_SMS/{drop.name}",
        ]
    )
    ok(run_client([lftp, "-c", script], tmp_path / "home"))
    assert_archived(funded_serve, drop, before)


@sized
def test_curl_ftp(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """curl over FTP: `-T` uploads the `.tmp`, post-transfer quotes RNFR/RNTO rename it."""
    curl = require_tool("curl")
    drop, before = make_drop(tmp_path, "CurlFtp", size), credits(funded_serve)
    base = f"ftp://127.0.0.1:{funded_serve.ftp_port}"
    done = run_client(
        [
            curl,
            "-sS",
            "--max-time",
            "30",
            "--user",
            f"{DEMO_LOGIN}:{DEMO_PASSWORD}",
            "-T",
            str(drop.path),
            f"{base}/SEND_SMS/{drop.name}.tmp",
            "-Q",
            f"-RNFR /SEND_SMS/{drop.name}.tmp",
            "-Q",
            f"-RNTO /SEND_SMS/{drop.name}",
        ],
        tmp_path / "home",
    )
    ok(done)
    assert_archived(funded_serve, drop, before)


@sized
def test_curl_sftp(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """curl over SFTP (`-k`: no known_hosts): `-T` then the post-transfer `rename` quote."""
    curl = require_tool("curl")
    version = run_client([curl, "-V"], tmp_path / "home").stdout
    if "sftp" not in version.split("Protocols:")[-1].split():
        pytest.skip("this curl is built without SFTP (curl -V lists no sftp)")
    drop, before = make_drop(tmp_path, "CurlSftp", size), credits(funded_serve)
    base = f"sftp://127.0.0.1:{funded_serve.sftp_port}"
    done = run_client(
        [
            curl,
            "-sS",
            "-k",
            "--max-time",
            "30",
            "--user",
            f"{DEMO_LOGIN}:{DEMO_PASSWORD}",
            "-T",
            str(drop.path),
            f"{base}/SEND_SMS/{drop.name}.tmp",
            "-Q",
            f"-rename /SEND_SMS/{drop.name}.tmp /SEND_SMS/{drop.name}",
        ],
        tmp_path / "home",
    )
    ok(done)
    assert_archived(funded_serve, drop, before)


@sized
def test_openssh_sftp_with_sshpass(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """OpenSSH `sftp -b batch` (password through sshpass): `put` then `rename`, which
    OpenSSH sends as `posix-rename` (contract 4: "SFTP supports both")."""
    sshpass = require_tool("sshpass")
    sftp = require_tool("sftp")
    drop, before = make_drop(tmp_path, "OpensshSftp", size), credits(funded_serve)
    batch = tmp_path / "batch"
    batch.write_text(
        f"put {drop.path} /SEND_SMS/{drop.name}.tmp\n"
        f"rename /SEND_SMS/{drop.name}.tmp /SEND_SMS/{drop.name}\n"
    )
    done = run_client(
        [
            sshpass,
            "-p",
            DEMO_PASSWORD,
            sftp,
            *OPENSSH,
            "-oBatchMode=no",
            "-oConnectTimeout=10",
            "-P",
            str(funded_serve.sftp_port),
            "-b",
            str(batch),
            f"{DEMO_LOGIN}@127.0.0.1",
        ],
        tmp_path / "home",
    )
    ok(done)
    assert_archived(funded_serve, drop, before)


def rclone_env(rclone: str, home: Path, remote: str, settings: dict[str, str]) -> dict[str, str]:
    """An rclone remote from `RCLONE_CONFIG_<NAME>_*` variables; the password obscured by
    `rclone obscure`, as rclone requires."""
    obscured = run_client([rclone, "obscure", DEMO_PASSWORD], home)
    ok(obscured)
    env = {
        "RCLONE_CONFIG": str(home / "rclone.conf"),
        f"RCLONE_CONFIG_{remote}_HOST": "127.0.0.1",
        f"RCLONE_CONFIG_{remote}_USER": DEMO_LOGIN,
        f"RCLONE_CONFIG_{remote}_PASS": obscured.stdout.strip(),
    }
    env.update({f"RCLONE_CONFIG_{remote}_{k}": v for k, v in settings.items()})
    return env


RCLONE_FLAGS = ["--retries", "1", "--low-level-retries", "1", "--contimeout", "10s"]


def rclone_upload(serve: Serve, tmp_path: Path, protocol: str, drop: Drop) -> None:
    """rclone `copyto` of the `.tmp`, then a server-side `moveto` to the final name."""
    rclone = require_tool("rclone")
    home = tmp_path / "home"
    home.mkdir()
    if protocol == "ftp":
        settings = {"TYPE": "ftp", "PORT": str(serve.ftp_port)}
    else:
        # shell_type none: rclone would otherwise try remote commands (refused) for hashes.
        settings = {
            "TYPE": "sftp",
            "PORT": str(serve.sftp_port),
            "SHELL_TYPE": "none",
            "DISABLE_HASHCHECK": "true",
        }
    env = rclone_env(rclone, home, "MOCK", settings)
    tmp, final = f"mock:SEND_SMS/{drop.name}.tmp", f"mock:SEND_SMS/{drop.name}"
    ok(run_client([rclone, *RCLONE_FLAGS, "copyto", str(drop.path), tmp], home, env))
    move = run_client([rclone, *RCLONE_FLAGS, "moveto", tmp, final], home, env)
    assert move.returncode == 0, f"rclone moveto exited {move.returncode}:\n{move.stderr}"


@sized
@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
def test_rclone(rclone_serve: Serve, tmp_path: Path, protocol: str, size: str) -> None:
    """rclone over FTP and SFTP: `copyto` the `.tmp`, then a server-side `moveto`."""
    client = "RcloneFtp" if protocol == "ftp" else "RcloneSftp"
    drop, before = make_drop(tmp_path, client, size), credits(rclone_serve)
    rclone_upload(rclone_serve, tmp_path, protocol, drop)
    assert_archived(rclone_serve, drop, before)


def test_rclone_sftp_uploads_a_file_over_32_kib(rclone_serve: Serve, tmp_path: Path) -> None:
    """Debian 12's rclone 1.60 (pkg/sftp before v1.13.6) sends each write of a file over
    32 KiB with the rest of its buffer after the data field; asyncssh answered those
    `SSH_FX_BAD_MESSAGE "Unexpected data at end of packet"`, then the retry "being uploaded by
    another session". A 1 MB file is archived whole, with one SMS a row."""
    drop = make_drop(tmp_path, "RcloneSftp", "1MB")
    assert 999_900 < len(drop.body) <= 1_000_000
    before = credits(rclone_serve)
    rclone_upload(rclone_serve, tmp_path, "sftp", drop)
    assert_archived(rclone_serve, drop, before)


@sized
def test_python_ftplib(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """Python's ftplib: `STOR NAME.tmp`, then RNFR/RNTO."""
    drop, before = make_drop(tmp_path, "Ftplib", size), credits(funded_serve)
    ftp_drop(funded_serve.ftp_port, drop.name, drop.body)
    assert_archived(funded_serve, drop, before)


@sized
def test_paramiko(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """paramiko's SFTPClient: `putfo` of the `.tmp`, then SFTP `rename`."""
    drop, before = make_drop(tmp_path, "Paramiko", size), credits(funded_serve)
    sftp_drop(funded_serve.sftp_port, drop.name, drop.body)
    assert_archived(funded_serve, drop, before)


@sized
def test_asyncssh(funded_serve: Serve, tmp_path: Path, size: str) -> None:
    """asyncssh's SFTP client: write the `.tmp`, then `posix_rename` to the final name."""
    drop, before = make_drop(tmp_path, "Asyncssh", size), credits(funded_serve)

    async def upload() -> None:
        async with (
            asyncssh.connect(
                "127.0.0.1",
                funded_serve.sftp_port,
                username=DEMO_LOGIN,
                password=DEMO_PASSWORD,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
                connect_timeout=10,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.put(str(drop.path), f"/SEND_SMS/{drop.name}.tmp")
            await sftp.posix_rename(f"/SEND_SMS/{drop.name}.tmp", f"/SEND_SMS/{drop.name}")

    asyncio.run(asyncio.wait_for(upload(), 30))
    assert_archived(funded_serve, drop, before)
