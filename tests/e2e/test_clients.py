"""Every real client against one `allmysms-mock serve`: each does the manual's procedure
(upload `<name>.tmp` into SEND_SMS, rename it to its final `.csv` name) and the file must be
archived, its SMS recorded, and the file found in `<data_dir>/accounts/demo/ARCHIVES/`.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.support.serve import (
    DEMO_LOGIN,
    DEMO_PASSWORD,
    Serve,
    api_get,
    api_verdict,
    campaign,
    csv_rows,
    entries,
    ftp_drop,
    mobile,
    run_client,
    sftp_drop,
    stored,
)
from tests.support.tools import require_tool

pytestmark = [pytest.mark.clients, pytest.mark.timeout(120)]

SMS_PER_FILE = 2
OPENSSH = [
    "-F",
    "/dev/null",
    "-oStrictHostKeyChecking=no",
    "-oUserKnownHostsFile=/dev/null",
    "-oPreferredAuthentications=password",
    "-oPubkeyAuthentication=no",
    "-oLogLevel=ERROR",
]
# Each client its own numbers, so its SMS are told apart from every other client's.
STARTS = {
    "LftpFtp": 100,
    "LftpSftp": 200,
    "CurlFtp": 300,
    "CurlSftp": 400,
    "OpensshSftp": 500,
    "RcloneFtp": 600,
    "RcloneSftp": 700,
    "Ftplib": 800,
    "Paramiko": 900,
    "Asyncssh": 1000,
}


def local_file(tmp_path: Path, tag: str) -> tuple[str, Path, bytes]:
    """(final name, local path, bytes) of the campaign `tag` (a distinct name per client)."""
    body = csv_rows(SMS_PER_FILE, STARTS[tag], text=f"Bonjour de {tag}")
    path = tmp_path / "upload" / f"{tag.lower()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return campaign(tag), path, body


def ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{done.args[0]} exited {done.returncode}:\n{done.stderr}"


def assert_archived(serve: Serve, tag: str, name: str, body: bytes) -> None:
    """Manual 4.3: "l'API déplacera les fichiers ... vers le répertoire ARCHIVES si
    l'exécution du fichier s'est bien déroulée"; final name `TreatedByMSI_<name>`
    (contract 5.3); its SMS recorded with normalised numbers (contract 5.6)."""
    verdict = api_verdict(serve.http_url, name, wait=10)
    assert verdict["status"] == "archived", verdict
    assert verdict["reason"] is None
    assert verdict["final_name"] == f"TreatedByMSI_{name}"
    assert verdict["sms_count"] == SMS_PER_FILE
    messages = api_get(serve.http_url, "/api/messages", file=name)["messages"]
    want = [stored(mobile(STARTS[tag] + i)) for i in range(SMS_PER_FILE)]
    assert sorted(m["phone"] for m in messages) == want
    assert {m["message"] for m in messages} == {
        f"Bonjour de {tag} {STARTS[tag] + i}" for i in range(SMS_PER_FILE)
    }
    archived = serve.data_dir / "accounts" / DEMO_LOGIN / "ARCHIVES" / f"TreatedByMSI_{name}"
    assert archived.read_bytes() == body
    for folder in ("SEND_SMS", "PROCESSING"):
        left = [n for n in entries(serve.folder(folder)) if n.startswith(tag + "_")]
        assert left == [], f"{folder} still holds {left}"


def test_lftp_ftp(module_serve: Serve, tmp_path: Path) -> None:
    """lftp over FTP: `put -o NAME.tmp` then `mv` (manual 4.2 recipe)."""
    lftp = require_tool("lftp")
    name, path, body = local_file(tmp_path, "LftpFtp")
    script = "; ".join(
        [
            "set ftp:ssl-allow no",
            "set net:max-retries 1",
            "set net:timeout 10",
            f"open -u {DEMO_LOGIN},{DEMO_PASSWORD} ftp://127.0.0.1:{module_serve.ftp_port}",
            f"put {shlex.quote(str(path))} -o /SEND_SMS/{name}.tmp",
            f"mv /SEND_SMS/{name}.tmp /SEND_SMS/{name}",
        ]
    )
    ok(run_client([lftp, "-c", script], tmp_path / "home"))
    assert_archived(module_serve, "LftpFtp", name, body)


def test_lftp_sftp(module_serve: Serve, tmp_path: Path) -> None:
    """lftp over sftp:// (through OpenSSH): `put -o NAME.tmp` then `mv`."""
    lftp = require_tool("lftp")
    require_tool("ssh")
    name, path, body = local_file(tmp_path, "LftpSftp")
    script = "; ".join(
        [
            "set sftp:auto-confirm yes",
            "set net:max-retries 1",
            "set net:timeout 10",
            f'set sftp:connect-program "ssh -a -x {" ".join(OPENSSH)}"',
            f"open -u {DEMO_LOGIN},{DEMO_PASSWORD} sftp://127.0.0.1:{module_serve.sftp_port}",
            f"put {shlex.quote(str(path))} -o /SEND_SMS/{name}.tmp",
            f"mv /SEND_SMS/{name}.tmp /SEND_SMS/{name}",
        ]
    )
    ok(run_client([lftp, "-c", script], tmp_path / "home"))
    assert_archived(module_serve, "LftpSftp", name, body)


def test_curl_ftp(module_serve: Serve, tmp_path: Path) -> None:
    """curl over FTP: `-T` uploads the `.tmp`, post-transfer quotes RNFR/RNTO rename it."""
    curl = require_tool("curl")
    name, path, body = local_file(tmp_path, "CurlFtp")
    base = f"ftp://127.0.0.1:{module_serve.ftp_port}"
    done = run_client(
        [
            curl,
            "-sS",
            "--max-time",
            "30",
            "--user",
            f"{DEMO_LOGIN}:{DEMO_PASSWORD}",
            "-T",
            str(path),
            f"{base}/SEND_SMS/{name}.tmp",
            "-Q",
            f"-RNFR /SEND_SMS/{name}.tmp",
            "-Q",
            f"-RNTO /SEND_SMS/{name}",
        ],
        tmp_path / "home",
    )
    ok(done)
    assert_archived(module_serve, "CurlFtp", name, body)


def test_curl_sftp(module_serve: Serve, tmp_path: Path) -> None:
    """curl over SFTP (`-k`: no known_hosts): `-T` then the post-transfer `rename` quote."""
    curl = require_tool("curl")
    version = run_client([curl, "-V"], tmp_path / "home").stdout
    if "sftp" not in version.split("Protocols:")[-1].split():
        pytest.skip("this curl is built without SFTP (curl -V lists no sftp)")
    name, path, body = local_file(tmp_path, "CurlSftp")
    base = f"sftp://127.0.0.1:{module_serve.sftp_port}"
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
            str(path),
            f"{base}/SEND_SMS/{name}.tmp",
            "-Q",
            f"-rename /SEND_SMS/{name}.tmp /SEND_SMS/{name}",
        ],
        tmp_path / "home",
    )
    ok(done)
    assert_archived(module_serve, "CurlSftp", name, body)


def test_openssh_sftp_with_sshpass(module_serve: Serve, tmp_path: Path) -> None:
    """OpenSSH `sftp -b batch` (password through sshpass): `put` then `rename`, which
    OpenSSH sends as `posix-rename` (contract 4: "SFTP supports both")."""
    sshpass = require_tool("sshpass")
    sftp = require_tool("sftp")
    name, path, body = local_file(tmp_path, "OpensshSftp")
    batch = tmp_path / "batch"
    batch.write_text(
        f"put {path} /SEND_SMS/{name}.tmp\nrename /SEND_SMS/{name}.tmp /SEND_SMS/{name}\n"
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
            str(module_serve.sftp_port),
            "-b",
            str(batch),
            f"{DEMO_LOGIN}@127.0.0.1",
        ],
        tmp_path / "home",
    )
    ok(done)
    assert_archived(module_serve, "OpensshSftp", name, body)


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


@pytest.fixture(scope="module")
def rclone_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """rclone's server-side move renames, then stats the destination at once: it needs the
    file to stay in SEND_SMS a moment (processing.pickup_delay_seconds, docs/spec.md)."""
    base = tmp_path_factory.mktemp("rclone-serve")
    child = Serve(
        base / "run", base / "data", env={"ALLMYSMS_MOCK_PROCESSING_PICKUP_DELAY_SECONDS": "1"}
    )
    try:
        child.start()
        yield child
        if child.proc is not None and child.proc.poll() is None:
            assert child.stop(signal.SIGTERM) == 0, child.stderr()
    finally:
        child.kill()


@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
def test_rclone(rclone_serve: Serve, tmp_path: Path, protocol: str) -> None:
    """rclone over FTP and SFTP: `copyto` the `.tmp`, then a server-side `moveto`."""
    module_serve = rclone_serve
    rclone = require_tool("rclone")
    tag = "RcloneFtp" if protocol == "ftp" else "RcloneSftp"
    name, path, body = local_file(tmp_path, tag)
    home = tmp_path / "home"
    home.mkdir()
    if protocol == "ftp":
        settings = {"TYPE": "ftp", "PORT": str(module_serve.ftp_port)}
    else:
        # shell_type none: rclone would otherwise try remote commands (refused) for hashes.
        settings = {
            "TYPE": "sftp",
            "PORT": str(module_serve.sftp_port),
            "SHELL_TYPE": "none",
            "DISABLE_HASHCHECK": "true",
        }
    env = rclone_env(rclone, home, "MOCK", settings)
    ok(
        run_client(
            [rclone, *RCLONE_FLAGS, "copyto", str(path), f"mock:SEND_SMS/{name}.tmp"], home, env
        )
    )
    move = run_client(
        [rclone, *RCLONE_FLAGS, "moveto", f"mock:SEND_SMS/{name}.tmp", f"mock:SEND_SMS/{name}"],
        home,
        env,
    )
    assert move.returncode == 0, f"rclone moveto exited {move.returncode}:\n{move.stderr}"
    assert_archived(module_serve, tag, name, body)


def test_python_ftplib(module_serve: Serve, tmp_path: Path) -> None:
    """Python's ftplib: `STOR NAME.tmp`, then RNFR/RNTO."""
    name, _path, body = local_file(tmp_path, "Ftplib")
    ftp_drop(module_serve.ftp_port, name, body)
    assert_archived(module_serve, "Ftplib", name, body)


def test_paramiko(module_serve: Serve, tmp_path: Path) -> None:
    """paramiko's SFTPClient: `putfo` of the `.tmp`, then SFTP `rename`."""
    name, _path, body = local_file(tmp_path, "Paramiko")
    sftp_drop(module_serve.sftp_port, name, body)
    assert_archived(module_serve, "Paramiko", name, body)


def test_asyncssh(module_serve: Serve, tmp_path: Path) -> None:
    """asyncssh's SFTP client: write the `.tmp`, then `posix_rename` to the final name."""
    name, path, body = local_file(tmp_path, "Asyncssh")

    async def upload() -> None:
        async with (
            asyncssh.connect(
                "127.0.0.1",
                module_serve.sftp_port,
                username=DEMO_LOGIN,
                password=DEMO_PASSWORD,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
                connect_timeout=10,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.put(str(path), f"/SEND_SMS/{name}.tmp")
            await sftp.posix_rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}")

    asyncio.run(asyncio.wait_for(upload(), 30))
    assert_archived(module_serve, "Asyncssh", name, body)
