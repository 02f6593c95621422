"""The folder tree on disk as the processor moves files through it (manual 4.3):
SEND_SMS -> PROCESSING -> ARCHIVES | INVALIDS, by atomic moves that never overwrite
(contract 5.3, docs/spec.md 5.2.4) and never follow a link planted in the tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from mockserver.core.models import PREFIX, Reason, Status
from mockserver.core.text import printable_name
from mockserver.tree import FOLDERS, Folder, Layout, folder_path, login_root, make_tree
from mockserver.writes import Busy, OpenWrites

log = logging.getLogger("mockserver.spool")

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _load_renameat2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()
# Until a file system says otherwise; then fall back to link + unlink.
_noreplace_ok = _renameat2 is not None
_fallback_lock = threading.Lock()


def move_noreplace(src: Path, dst: Path) -> bool:
    """Move `src` to `dst` atomically unless `dst` exists: True when moved, False when `dst`
    exists. Raises FileNotFoundError when `src` is gone.

    Linux `renameat2(RENAME_NOREPLACE)` does it in one step. Elsewhere (or on a file system
    without it) `link` + `unlink`: `link` fails when the target exists, so nothing is ever
    overwritten either; the file is briefly under both names, which recovery tolerates.
    """
    global _noreplace_ok
    if _noreplace_ok and _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            return False
        if err == errno.ENOENT:
            raise FileNotFoundError(err, os.strerror(err), str(src))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(src))
        _noreplace_ok = False
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        return False
    except PermissionError:
        # No hard links here (some network or FUSE file systems): check, then rename, under
        # a lock; only this process moves files between the processor's folders.
        with _fallback_lock:
            if os.path.lexists(dst):
                return False
            os.rename(src, dst)
            return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(src)
    return True


# Contract 5.3 adds at most `TreatedByMSI_Not_enough_credits_` to a name (32 characters);
# a name this close to the file system's limit cannot get its final name as is.
_REASON_PREFIXES = tuple(sorted((f"{PREFIX}{r.value}_" for r in Reason), key=len, reverse=True))
# Room left in a shortened name for the collision suffix `-2`, `-3`, … (contract 5.3).
_SUFFIX_ROOM = 12
_HASH_CHARS = 10


def _fs_len(text: str) -> int:
    try:
        return len(os.fsencode(text))
    except UnicodeError:
        return len(text.encode("utf-8", "surrogatepass"))


def _cut(text: str, budget: int, *, from_end: bool = False) -> str:
    """The longest head (or tail) of `text` whose encoded form fits in `budget` bytes,
    cut between characters."""
    out: list[str] = []
    used = 0
    for ch in reversed(text) if from_end else text:
        size = _fs_len(ch)
        if used + size > budget:
            break
        out.append(ch)
        used += size
    return "".join(reversed(out)) if from_end else "".join(out)


def short_name(final_name: str, name_max: int = 255) -> str:
    """A final name that fits the file system when `final_name` does not (ENAMETOOLONG).

    Keeps the `TreatedByMSI_<Reason>_` prefix and the extension (`.csv`), cuts the middle of
    the user's name and puts a short hash of the whole `final_name` there, so two long names
    stay distinct and the same name always shortens the same way (recovery finds it again):
    `TreatedByMSI_Incorrect_FileName_<head>~<hash>~<tail>.csv`. Leaves room for a `-N` suffix.
    """
    prefix = next((p for p in _REASON_PREFIXES if final_name.startswith(p)), "")
    if not prefix and final_name.startswith(PREFIX):
        prefix = PREFIX
    rest = final_name[len(prefix) :]
    stem, ext = os.path.splitext(rest)
    if _fs_len(ext) > 16:
        stem, ext = rest, ""
    digest = hashlib.sha256(os.fsencode(final_name)).hexdigest()[:_HASH_CHARS]
    budget = name_max - _SUFFIX_ROOM - _fs_len(prefix) - _fs_len(ext) - _HASH_CHARS - 2
    budget = max(0, budget)
    head = _cut(stem, budget - budget // 3)
    tail = _cut(stem[len(head) :], budget - _fs_len(head), from_end=True)
    return f"{prefix}{head}~{digest}~{tail}{ext}"


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def numbered(name: str, n: int) -> str:
    """`name` with the collision suffix `-n` before its extension (contract 5.3:
    "a suffix -2, -3, … goes before .csv"); n = 1 is the name itself."""
    if n <= 1:
        return name
    stem, ext = os.path.splitext(name)
    return f"{stem}-{n}{ext}"


@dataclass(frozen=True, slots=True)
class FileKey:
    """Identity of a file on disk that survives a rename: the ledger's claim key
    (docs/spec.md 5.2.4): keyed on the claimed file, not on its name, so a crash between
    recorded and moved is finished at restart without charging again."""

    dev: int
    ino: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileKey:
        return cls(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def __str__(self) -> str:
        return f"{self.dev}:{self.ino}:{self.mtime_ns}:{self.size}"

    @classmethod
    def parse(cls, text: str) -> FileKey | None:
        """The key `str(key)` wrote, or None for anything else."""
        try:
            dev, ino, mtime, size = (int(x) for x in text.split(":"))
        except ValueError:
            return None
        return cls(dev, ino, mtime, size)

    def same_file(self, st: os.stat_result) -> bool:
        """Same inode, same content stamp: a rename or a link keeps all four, while a new
        file that reuses a freed inode gets another mtime."""
        return FileKey.of(st) == self


@dataclass(frozen=True, slots=True)
class Claim:
    """A file the processor moved into PROCESSING (it keeps its original name there)."""

    login: str
    name: str
    path: Path
    key: FileKey


class Spool:
    """The per-login folders under `<data_dir>/accounts` (contract 4)."""

    def __init__(
        self, data_dir: Path, layout: Layout = "flat", writes: OpenWrites | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.layout: Layout = layout
        # The servers' open uploads: CLAIM never moves a file a session is writing.
        self.writes = writes
        self.accounts_dir = self.data_dir / "accounts"

    # -- where things are ----------------------------------------------------------------

    def ensure(self, login: str) -> Path:
        """Create the login's four folders (idempotent); return its root."""
        return make_tree(self.data_dir, self.layout, login)

    def root(self, login: str) -> Path:
        return login_root(self.data_dir, login)

    def folder(self, login: str, folder: Folder) -> Path:
        return folder_path(self.data_dir, self.layout, login, folder)

    def locate(self, path: str | os.PathLike[str]) -> tuple[str, Folder, str] | None:
        """`(login, folder, name)` for a path directly inside one of the four folders,
        else None (sub-folders, the folders themselves, anything outside the tree)."""
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(self.accounts_dir))
        except ValueError:
            return None
        parts = rel.parts
        depth = 4 if self.layout == "nested" else 3
        if len(parts) != depth:
            return None
        login, folder, name = parts[0], parts[-2], parts[-1]
        if self.layout == "nested" and parts[1] != login:
            return None
        if folder not in Folder.__members__:
            return None
        return login, Folder(folder), name

    def entries(self, login: str, folder: Folder) -> list[str]:
        """Names of the regular files (never following links) in one folder, sorted."""
        names: list[str] = []
        try:
            with os.scandir(self.folder(login, folder)) as it:
                for entry in it:
                    with contextlib.suppress(FileNotFoundError):
                        if entry.is_file(follow_symlinks=False):
                            names.append(entry.name)
        except FileNotFoundError:
            pass
        return sorted(names)

    # -- the moves -----------------------------------------------------------------------

    def probe(self, path: Path) -> os.stat_result | None:
        """lstat a candidate: None when it is gone or is not a regular file (a directory,
        a symlink, a fifo planted on disk is never picked up, never followed)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        return st if stat.S_ISREG(st.st_mode) else None

    def claim(self, login: str, path: Path) -> Claim | None:
        """Move a file from SEND_SMS into PROCESSING under the same name (manual 4.3: "Un
        fichier en cours de traitement … sera déplacé du dossier SEND_SMS vers le dossier
        PROCESSING"). None when it is gone (another trigger claimed it: harmless), is not a
        regular file, is open for writing by an FTP or SFTP session (its close submits it
        again), or `PROCESSING/<name>` is taken (an earlier file of that name is still
        being processed: this one waits in SEND_SMS for its turn, so nothing is overwritten
        and the name in PROCESSING is always the user's own)."""
        name = path.name
        st = self.probe(path)
        if st is None:
            return None
        dst = self.folder(login, Folder.PROCESSING) / name
        try:
            if self.writes is None:
                moved_in = move_noreplace(path, dst)
            else:
                # Checked and moved in one step under the registry's lock: no upload can
                # open the name in between (docs/spec.md 5.2.1).
                moved_in = self.writes.unless_open(lambda: move_noreplace(path, dst), path)
        except (FileNotFoundError, Busy):
            return None
        if not moved_in:
            return None
        # The inode moved with the file; re-stat in case the source was swapped meanwhile.
        moved = os.lstat(dst)
        if not stat.S_ISREG(moved.st_mode):
            log.warning(
                "login=%s file=%s is not a regular file; left in PROCESSING",
                login,
                printable_name(name),
            )
            return None
        return Claim(login, name, dst, FileKey.of(moved))

    def claimed(self, login: str, name: str) -> Claim | None:
        """A file found in PROCESSING (at start-up recovery) as a Claim, or None."""
        path = self.folder(login, Folder.PROCESSING) / name
        st = self.probe(path)
        return None if st is None else Claim(login, name, path, FileKey.of(st))

    def drop_twin(self, claim: Claim) -> None:
        """A claim by link + unlink cut short leaves the same file in SEND_SMS too: drop that
        second name, or the file would be processed twice."""
        twin = self.folder(claim.login, Folder.SEND_SMS) / claim.name
        with contextlib.suppress(FileNotFoundError):
            if claim.key.same_file(os.lstat(twin)):
                os.unlink(twin)

    def read(self, claim: Claim) -> bytes | None:
        """The claimed file's bytes, never through a link (O_NOFOLLOW) and never blocking on
        a fifo (O_NONBLOCK); None when it vanished or is no longer the claimed file."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(claim.path, flags)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise
        # Check what was opened before wrapping it: `open()` refuses a directory planted
        # under the claimed name (IsADirectoryError) before any type check could run.
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if not stat.S_ISREG(st.st_mode) or not claim.key.same_file(st):
            os.close(fd)
            return None
        if st.st_nlink > 1:
            # A hard link planted on disk (no client can make one) may lead to a file outside
            # the login's tree: never read. The file is judged as holding nothing and goes to
            # INVALIDS, where no client can read it either (issue 16).
            os.close(fd)
            log.warning(
                "login=%s file=%s has other hard links (planted on disk): judged empty, unread",
                claim.login,
                printable_name(claim.name),
            )
            return b""
        with open(fd, "rb", closefd=True) as f:
            return f.read()

    def target(self, login: str, status: Status) -> Path:
        return self.folder(login, Folder.ARCHIVES if status is Status.ARCHIVED else Folder.INVALIDS)

    def finish(self, login: str, claimed: Path, final_name: str, status: Status) -> Path:
        """Move a processed file to ARCHIVES or INVALIDS under `final_name`, or `-2`, `-3`…
        when taken (contract 5.3: nothing is ever overwritten). Returns where it went.
        Raises FileNotFoundError when the claimed file is gone.

        A name the file system refuses as too long (ENAMETOOLONG: a name put straight on
        disk close to the 255-byte limit, plus up to 32 characters of prefix) goes under
        `short_name(final_name)` instead, never left stuck in PROCESSING; the caller
        records the name returned."""
        folder = self.target(login, status)
        name = final_name
        n = 1
        while True:
            dst = folder / numbered(name, n)
            try:
                moved = move_noreplace(claimed, dst)
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG or name != final_name:
                    raise
                name, n = short_name(final_name, _name_max(folder)), 1
                continue
            if moved:
                return dst
            n += 1

    def find_placed(self, login: str, status: Status, final_name: str, key: FileKey) -> Path | None:
        """Where a recorded file already sits in ARCHIVES/INVALIDS (`final_name` or a
        numbered variant, same inode), for recovery after a crash between move and mark."""
        folder = self.target(login, status)
        # Compared as text: a record keeps the printable form of a raw name (see
        # `printable_name`); the inode key then tells the very file.
        wanted = []
        for candidate in (final_name, short_name(final_name, _name_max(folder))):
            stem, ext = os.path.splitext(printable_name(candidate))
            wanted.append((stem + ext, stem + "-", ext))
        for name in self.entries_in(folder):
            text = printable_name(name)
            if not any(
                text == full or (text.startswith(stem) and text.endswith(ext))
                for full, stem, ext in wanted
            ):
                continue
            with contextlib.suppress(FileNotFoundError):
                if key.same_file(os.lstat(folder / name)):
                    return folder / name
        return None

    @staticmethod
    def entries_in(folder: Path) -> list[str]:
        try:
            return sorted(os.listdir(folder))
        except FileNotFoundError:
            return []

    def tree_logins(self) -> list[str]:
        """Logins that have a folder under `accounts/` (whatever the store knows)."""
        try:
            with os.scandir(self.accounts_dir) as it:
                return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def folders(self, login: str) -> dict[Folder, Path]:
        return {f: self.folder(login, f) for f in FOLDERS}
