"""The per-login folder tree of the manual (section 4.2) and contract section 4.

<data_dir>/accounts/<login>/                      the login's root over FTP and SFTP
    flat:   SEND_SMS/ PROCESSING/ ARCHIVES/ INVALIDS/
    nested: <login>/{SEND_SMS,PROCESSING,ARCHIVES,INVALIDS}/
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Literal

Layout = Literal["flat", "nested"]

# Logins become folder names: a strict pattern keeps them inert on every file system.
LOGIN_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Folder(StrEnum):
    SEND_SMS = "SEND_SMS"
    PROCESSING = "PROCESSING"
    ARCHIVES = "ARCHIVES"
    INVALIDS = "INVALIDS"


FOLDERS: tuple[Folder, ...] = tuple(Folder)


def valid_login(login: str) -> bool:
    return bool(LOGIN_PATTERN.fullmatch(login)) and login not in {".", ".."} and ".." not in login


def accounts_dir(data_dir: Path) -> Path:
    return data_dir / "accounts"


def login_root(data_dir: Path, login: str) -> Path:
    """The directory a login sees as `/` over FTP and SFTP."""
    if not valid_login(login):
        raise ValueError(f"invalid login name: {login!r}")
    return accounts_dir(data_dir) / login


def folder_prefix(layout: Layout, login: str) -> tuple[str, ...]:
    """Virtual path parts between the login's root and the four folders."""
    return (login,) if layout == "nested" else ()


def folder_path(data_dir: Path, layout: Layout, login: str, folder: Folder) -> Path:
    return login_root(data_dir, login).joinpath(*folder_prefix(layout, login), folder.value)


def make_tree(data_dir: Path, layout: Layout, login: str) -> Path:
    """Create (idempotently) the login's four folders; return the login's root.

    A new tree is built aside in `<data_dir>/.staging` and renamed into `accounts/` in one
    step, so a file watcher on `accounts/` sees one new directory, never a tree half made
    (inotify would otherwise race to add watches for folders appearing one by one).
    """
    root = login_root(data_dir, login)
    if not root.exists():
        staging = data_dir / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        accounts_dir(data_dir).mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=f"{login}.", dir=staging))
        try:
            for folder in FOLDERS:
                aside.joinpath(*folder_prefix(layout, login), folder.value).mkdir(parents=True)
            os.rename(aside, root)
        except OSError:
            # Someone else made it first (rename onto a non-empty dir fails): use theirs.
            shutil.rmtree(aside, ignore_errors=True)
    for folder in FOLDERS:
        folder_path(data_dir, layout, login, folder).mkdir(parents=True, exist_ok=True)
    return root
