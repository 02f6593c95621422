"""The SFTP server driven by the command-line clients users have: OpenSSH `sftp`, curl, rclone
and lftp. Each uploads `x.tmp` and renames it to its final name (manual 4.2), and the upload
hook must see that final `.csv` path."""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import CSV, SftpHarness
from tests.support.tools import client_env, require_tool

pytestmark = pytest.mark.clients

OPENSSH_OPTIONS = [
    "-F",
    "/dev/null",
    "-oStrictHostKeyChecking=no",
    "-oUserKnownHostsFile=/dev/null",
    "-oPreferredAuthentications=password",
    "-oPubkeyAuthentication=no",
    "-oLogLevel=ERROR",
]


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpHarness]:
    harness = SftpHarness(tmp_path / "server")
    try:
        yield harness
    finally:
        harness.close()
    assert harness.pending_at_stop == []


@pytest.fixture
def local_csv(tmp_path: Path) -> Path:
    path = tmp_path / "local.csv"
    path.write_bytes(CSV)
    return path


def run_client(
    args: list[str], home: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        env=client_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def final_name(tag: str) -> str:
    return f"{tag}_20301231120000_HQ.csv"


def assert_landed(sftp: SftpHarness, name: str) -> None:
    path = sftp.folder("SEND_SMS") / name
    assert path.read_bytes() == CSV
    assert ("alice", path) in sftp.uploads, sftp.uploads
    assert not sftp.open_writes.snapshot()


def openssh_batch(
    sftp: SftpHarness, tmp_path: Path, lines: list[str]
) -> subprocess.CompletedProcess[str]:
    require_tool("sshpass")
    sftp_bin = require_tool("sftp")
    batch = tmp_path / "batch"
    batch.write_text("\n".join(lines) + "\n")
    return run_client(
        [
            "sshpass",
            "-p",
            "pw-alice",
            sftp_bin,
            *OPENSSH_OPTIONS,
            "-oBatchMode=no",
            "-P",
            str(sftp.port),
            "-b",
            str(batch),
            "alice@127.0.0.1",
        ],
        tmp_path / "home",
    )


def test_openssh_sftp_put_and_posix_rename(
    sftp: SftpHarness, tmp_path: Path, local_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Contract 4: "SFTP supports both `rename` and OpenSSH's `posix-rename`" — OpenSSH's
    `rename` uses posix-rename; `put -p` (which sends times and mode) does not fail."""
    caplog.set_level(logging.INFO, logger="mockserver.sftp")
    name = final_name("OpenSsh")
    result = openssh_batch(
        sftp,
        tmp_path,
        [
            f"put -p {shlex.quote(str(local_csv))} /SEND_SMS/x.tmp",
            f"rename /SEND_SMS/x.tmp /SEND_SMS/{name}",
            "ls /SEND_SMS",
        ],
    )
    assert result.returncode == 0, result.stderr
    assert name in result.stdout
    assert_landed(sftp, name)
    assert "posix-rename /SEND_SMS/x.tmp" in caplog.text


def test_openssh_sftp_refusals_keep_the_session(
    sftp: SftpHarness, tmp_path: Path, local_csv: Path
) -> None:
    """Contract 4: refused operations get an error "and the connection stays usable"; a
    rename never overwrites (`-` makes the batch go on after an error)."""
    name = final_name("Existing")
    (sftp.folder("SEND_SMS") / name).write_bytes(b"existing")
    result = openssh_batch(
        sftp,
        tmp_path,
        [
            f"put {shlex.quote(str(local_csv))} /SEND_SMS/y.tmp",
            f"-rename /SEND_SMS/y.tmp /SEND_SMS/{name}",
            "-mkdir /SEND_SMS/sub",
            "-rmdir /ARCHIVES",
            f"-put {shlex.quote(str(local_csv))} /ARCHIVES/z.csv",
            "-ln -s /etc/passwd /SEND_SMS/link.csv",
            "-chmod 777 /SEND_SMS/y.tmp",
            "-get /../../../../etc/passwd " + shlex.quote(str(tmp_path / "passwd")),
            "ls /",
        ],
    )
    assert result.returncode == 0, result.stderr
    for folder in ("ARCHIVES", "INVALIDS", "PROCESSING", "SEND_SMS"):
        assert folder in result.stdout
    assert (sftp.folder("SEND_SMS") / name).read_bytes() == b"existing"
    assert sorted(p.name for p in sftp.folder("SEND_SMS").iterdir()) == [name, "y.tmp"]
    assert not any(sftp.folder("ARCHIVES").iterdir())
    assert not (tmp_path / "passwd").exists()
    # Without `-` the refused rename fails the batch.
    strict = openssh_batch(sftp, tmp_path, [f"rename /SEND_SMS/y.tmp /SEND_SMS/{name}"])
    assert strict.returncode != 0


def test_openssh_ssh_shell_and_command_refused(sftp: SftpHarness, tmp_path: Path) -> None:
    """Brief: only the SFTP subsystem — `ssh host id` runs nothing."""
    require_tool("sshpass")
    ssh = require_tool("ssh")
    result = run_client(
        [
            "sshpass",
            "-p",
            "pw-alice",
            ssh,
            *OPENSSH_OPTIONS,
            "-T",
            "-p",
            str(sftp.port),
            "alice@127.0.0.1",
            "id",
        ],
        tmp_path / "home",
    )
    assert result.returncode != 0
    assert "uid=" not in result.stdout


def test_openssh_sees_the_advertised_fingerprint(sftp: SftpHarness, tmp_path: Path) -> None:
    """README "Connect over SFTP": `ssh-keyscan` + `ssh-keygen -lf` show the fingerprint the
    server prints at start (what a user compares on first connection)."""
    keyscan = require_tool("ssh-keyscan")
    keygen = require_tool("ssh-keygen")
    scan = run_client([keyscan, "-p", str(sftp.port), "-t", "ed25519", "127.0.0.1"], tmp_path)
    assert scan.returncode == 0, scan.stderr
    known = tmp_path / "known_hosts"
    known.write_text(scan.stdout)
    listing = run_client([keygen, "-lf", str(known)], tmp_path)
    assert sftp.server.fingerprint in listing.stdout


def test_curl_upload_and_rename(sftp: SftpHarness, tmp_path: Path, local_csv: Path) -> None:
    """curl's `-Q "-rename a b"` (after the transfer) uses SFTP `rename`."""
    curl = require_tool("curl")
    version = run_client([curl, "-V"], tmp_path).stdout
    if "sftp" not in version.split("Protocols:")[-1].split():
        pytest.skip("this curl is built without SFTP support (curl -V lists no sftp)")
    name = final_name("Curl")
    base = f"sftp://127.0.0.1:{sftp.port}"
    result = run_client(
        [
            curl,
            "-sS",
            "-k",
            "--user",
            "alice:pw-alice",
            "-T",
            str(local_csv),
            f"{base}/SEND_SMS/c.tmp",
            "-Q",
            f"-rename /SEND_SMS/c.tmp /SEND_SMS/{name}",
        ],
        tmp_path / "home",
    )
    assert result.returncode == 0, result.stderr
    assert_landed(sftp, name)
    again = run_client(
        [
            curl,
            "-sS",
            "-k",
            "--user",
            "alice:pw-alice",
            "-T",
            str(local_csv),
            f"{base}/SEND_SMS/d.tmp",
            "-Q",
            f"-rename /SEND_SMS/d.tmp /SEND_SMS/{name}",
        ],
        tmp_path / "home",
    )
    assert again.returncode != 0  # contract 4: "A rename never overwrites an existing file"


def rclone_remote(sftp: SftpHarness, tmp_path: Path) -> str:
    rclone = require_tool("rclone")
    obscured = run_client([rclone, "obscure", "pw-alice"], tmp_path / "home").stdout.strip()
    # shell_type=none: rclone would otherwise try remote commands (refused here) for hashes.
    return (
        f":sftp,host=127.0.0.1,port={sftp.port},user=alice,pass={obscured},"
        "shell_type=none,disable_hashcheck=true,known_hosts_file=:"
    )


def test_rclone_copyto_and_moveto(sftp: SftpHarness, tmp_path: Path, local_csv: Path) -> None:
    """rclone's sftp backend: upload (then setstat of the times), server-side move."""
    rclone = require_tool("rclone")
    remote = rclone_remote(sftp, tmp_path)
    name = final_name("Rclone")
    home = tmp_path / "home"
    upload = run_client(
        [rclone, "--config", "/dev/null", "copyto", str(local_csv), f"{remote}SEND_SMS/r.tmp"],
        home,
    )
    assert upload.returncode == 0, upload.stderr
    move = run_client(
        [
            rclone,
            "--config",
            "/dev/null",
            "moveto",
            f"{remote}SEND_SMS/r.tmp",
            f"{remote}SEND_SMS/{name}",
        ],
        home,
    )
    assert move.returncode == 0, move.stderr
    assert_landed(sftp, name)
    assert not (sftp.folder("SEND_SMS") / "r.tmp").exists()


def test_lftp_put_and_mv(sftp: SftpHarness, tmp_path: Path, local_csv: Path) -> None:
    """lftp's sftp:// (through ssh): `put` then `mv`."""
    lftp = require_tool("lftp")
    require_tool("ssh")
    name = final_name("Lftp")
    script = "; ".join(
        [
            "set sftp:auto-confirm yes",
            "set net:max-retries 1",
            'set sftp:connect-program "ssh -a -x -F /dev/null -oStrictHostKeyChecking=no '
            '-oUserKnownHostsFile=/dev/null -oLogLevel=ERROR"',
            f"open -u alice,pw-alice sftp://127.0.0.1:{sftp.port}",
            f"put {shlex.quote(str(local_csv))} -o /SEND_SMS/l.tmp",
            f"mv /SEND_SMS/l.tmp /SEND_SMS/{name}",
            "cls /SEND_SMS",
        ]
    )
    result = run_client([lftp, "-c", script], tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert name in result.stdout
    assert_landed(sftp, name)
