"""The SFTP server's host key (contract 4: `<data_dir>/ssh_host_ed25519_key`, made on first
start, reused after): created once with mode 0600, never silently replaced.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import asyncssh

from mockserver.core.text import one_line

log = logging.getLogger("mockserver.sftp")

HOST_KEY_NAME = "ssh_host_ed25519_key"


class HostKeyError(Exception):
    """The host key file cannot be read, parsed or created; the message is one line naming it."""


def host_key_path(data_dir: Path) -> Path:
    return data_dir / HOST_KEY_NAME


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The private key stored at `path`, made (ed25519, mode 0600) when the file does not exist.

    A file that exists but cannot be used stops start-up with `HostKeyError`: replacing it would
    change the fingerprint every client has pinned, so only the user may delete it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        raise HostKeyError(f"cannot read the SSH host key {path}: {exc.strerror or exc}") from None
    try:
        key = asyncssh.import_private_key(data)
    except (asyncssh.KeyImportError, ValueError, TypeError) as exc:
        reason = one_line(str(exc)) or "unreadable"
        raise HostKeyError(
            f"the SSH host key {path} is not a valid private key ({reason}); restore it, or "
            "delete it to make a new one (clients will then see a new fingerprint)"
        ) from None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0
    if mode & 0o077:
        log.warning("SSH host key %s is readable by others (mode %o); chmod 600 it", path, mode)
    return key


def _create(path: Path) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519", comment="allmysms-mock host key")
    data = key.export_private_key("openssh")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never replace a key another process wrote meanwhile; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return load_or_create_host_key(path)
    except OSError as exc:
        raise HostKeyError(
            f"cannot create the SSH host key {path}: {exc.strerror or exc}"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # whatever the umask
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise HostKeyError(f"cannot write the SSH host key {path}: {exc.strerror or exc}") from None
    log.info("created SSH host key %s (%s)", path, fingerprint_of(key))
    return key


def fingerprint_of(key: asyncssh.SSHKey) -> str:
    """`SHA256:...`, as OpenSSH's `ssh-keygen -lf` and its first-connection prompt show it."""
    return key.get_fingerprint("sha256")
