"""The one permission policy of FTP and SFTP (contract 4), over *virtual* paths: the path a client
sees, relative to its login root, always starting with `/`. Plus the final guard that maps a
virtual path to a real one and refuses anything reaching outside the root or through a link.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mockserver.core.text import LINE_BREAKS
from mockserver.tree import Folder, Layout, folder_prefix

_FOLDER_NAMES = frozenset(f.value for f in Folder)


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed or not, with a reason a client can read (used as the FTP/SFTP error text)."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


class Kind(Enum):
    ROOT = "root"  # "/"
    LOGIN_DIR = "login_dir"  # "/<login>" in the nested layout
    FOLDER = "folder"  # one of the four folders
    FILE = "file"  # a name directly inside one of the four folders
    OTHER = "other"  # anything else inside the tree (stray entries, deeper paths)


@dataclass(frozen=True, slots=True)
class Place:
    kind: Kind
    folder: Folder | None = None
    name: str | None = None  # the file name, for Kind.FILE


def _bad_char(ch: str) -> bool:
    """Control characters (C0, DEL, C1) and line breaks: no header or log line can carry them."""
    code = ord(ch)
    return code < 32 or 127 <= code < 160 or ch in LINE_BREAKS


# Every character `_bad_char` refuses, and the backslash: one regex search instead of a Python
# call per character (`normalise` runs several times on every FTP or SFTP request).
_UNUSABLE = re.compile(
    r"[\\\x00-\x1f\x7f-\x9f" + "".join(re.escape(c) for c in sorted(LINE_BREAKS)) + "]"
)


def _not_utf8(text: str) -> bool:
    """Lone surrogates: how Python shows bytes that are not UTF-8 (SFTP passes raw bytes)."""
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def normalise(virtual: str, cwd: str = "/") -> str | None:
    """The canonical virtual path of `virtual` (relative to `cwd`), or None when it is unusable.

    None for a NUL byte or any control character (C0, DEL, C1) or a character that breaks a line
    (U+2028, U+2029, …: none could be logged or mailed), and for a backslash: on a POSIX disk
    it would be
    an ordinary character, but clients (and users) mean a separator by it; refusing it is the
    only reading that cannot surprise anyone (contract 4: "whatever ... backslash ... it uses").
    `//` collapses, `.` goes, `..` resolves and never climbs above `/`.

    A name that is not UTF-8 (lone surrogates) normalises: a file put straight on disk under
    such a name can still be listed, downloaded and deleted; `may_write` and `may_rename`
    refuse to *create* one (`_creatable`).
    """
    if not isinstance(virtual, str) or not isinstance(cwd, str):
        return None
    if _UNUSABLE.search(virtual) or _UNUSABLE.search(cwd):
        return None
    joined = virtual if virtual.startswith("/") else f"{cwd}/{virtual}"
    parts: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def parts_of(virtual: str) -> tuple[str, ...]:
    """The components of a normalised virtual path."""
    return tuple(p for p in virtual.split("/") if p)


def classify(virtual: str, layout: Layout, login: str) -> Place:
    """Where a *normalised* virtual path sits in the login's tree."""
    parts = parts_of(virtual)
    prefix = folder_prefix(layout, login)
    if not parts:
        return Place(Kind.ROOT)
    if parts[: len(prefix)] != prefix:
        return Place(Kind.OTHER)
    rest = parts[len(prefix) :]
    if not rest:
        return Place(Kind.LOGIN_DIR)
    if rest[0] not in _FOLDER_NAMES:
        return Place(Kind.OTHER)
    folder = Folder(rest[0])
    if len(rest) == 1:
        return Place(Kind.FOLDER, folder)
    if len(rest) == 2:
        return Place(Kind.FILE, folder, rest[1])
    return Place(Kind.OTHER)


def _place(virtual: str, layout: Layout, login: str) -> Place | None:
    norm = normalise(virtual)
    return None if norm is None else classify(norm, layout, login)


_INVALID = _deny("invalid path")

# Contract 5.3: the final name adds up to 32 characters (`TreatedByMSI_Not_enough_credits_`),
# and a collision suffix `-2`…`-999` up to 4 more; most file systems stop at 255 bytes.
NAME_MAX_BYTES = 255
FINAL_PREFIX_MAX = 32
SUFFIX_MAX = 4
MAX_NAME_BYTES = NAME_MAX_BYTES - FINAL_PREFIX_MAX - SUFFIX_MAX  # 219
_TEMPORARY = ".tmp"  # contract 5.1; never processed, so it may be dropped on top of the limit
_TOO_LONG = _deny(
    f"name too long: at most {MAX_NAME_BYTES} bytes so the platform's final name fits"
)


_NOT_UTF8 = _deny("invalid name: not UTF-8")


def _format_char(name: str) -> str | None:
    """The first invisible formatting character of `name` (Unicode category Cf: bidi overrides
    and isolates U+202A-U+202E, U+2066-U+2069, marks U+200E/U+200F, U+FEFF, zero-width
    joiners...), or None. Such a name shows differently from what it is: `x\u202evsc.tmp`
    reads as `xpmt.csv` (issue 16)."""
    for ch in name:
        if unicodedata.category(ch) == "Cf":
            return ch
    return None


def _creatable(name: str) -> Decision:
    """Whether an upload or a rename may create `name` in SEND_SMS.

    It must be UTF-8 (the store, the recap and the logs carry it as text), hold no invisible
    formatting character (`_format_char`: a name must read as what it is), and the platform
    must be able to give it its final name (contract 5.3) on disk: at most 219 bytes in UTF-8;
    a `.tmp` name (never processed, contract 5.1) may add its 4 characters.
    """
    if _not_utf8(name):
        return _NOT_UTF8
    hidden = _format_char(name)
    if hidden is not None:
        return _deny(f"invalid name: invisible formatting character U+{ord(hidden):04X}")
    limit = MAX_NAME_BYTES + (len(_TEMPORARY) if name.endswith(_TEMPORARY) else 0)
    return ALLOW if len(name.encode("utf-8")) <= limit else _TOO_LONG


_STRUCTURE = "the folders SEND_SMS, PROCESSING, ARCHIVES and INVALIDS are fixed"


def may_list(virtual: str, layout: Layout, login: str) -> Decision:
    """Contract 4: "A login may list and download everywhere in its tree"."""
    return ALLOW if normalise(virtual) is not None else _INVALID


def may_read(virtual: str, layout: Layout, login: str) -> Decision:
    return may_list(virtual, layout, login)


def may_write(virtual: str, layout: Layout, login: str) -> Decision:
    """Create or overwrite (also append, resume) a file: only directly inside SEND_SMS.

    Overwriting an existing file of SEND_SMS is allowed, like any FTP server (a retried upload of
    `x.tmp`); the server refuses it while another session is writing that file (docs/design.md,
    "The open-writes registry": a half-written file is never renamed or judged).
    """
    place = _place(virtual, layout, login)
    if place is None:
        return _INVALID
    if place.kind is Kind.FILE and place.folder is Folder.SEND_SMS:
        assert place.name is not None
        return _creatable(place.name)
    if place.kind is Kind.FILE:
        return _deny(f"uploads are allowed only in SEND_SMS, not in {place.folder}")
    return _deny("uploads are allowed only as files directly in SEND_SMS")


def may_set_times(virtual: str, layout: Layout, login: str) -> Decision:
    """Changing a file's modification time (FTP MFMT, SFTP setstat of times): where writes are."""
    return may_write(virtual, layout, login)


def may_delete(virtual: str, layout: Layout, login: str) -> Decision:
    """Contract 4: delete in SEND_SMS, ARCHIVES and INVALIDS; PROCESSING belongs to the platform."""
    place = _place(virtual, layout, login)
    if place is None:
        return _INVALID
    if place.kind is Kind.FILE and place.folder in (
        Folder.SEND_SMS,
        Folder.ARCHIVES,
        Folder.INVALIDS,
    ):
        return ALLOW
    if place.kind is Kind.FILE:
        return _deny("files in PROCESSING are being processed and cannot be deleted")
    return _deny(f"cannot delete this: {_STRUCTURE}")


def may_rename_from(src: str, layout: Layout, login: str) -> Decision:
    """The source half of a rename (FTP RNFR): only a file directly in SEND_SMS."""
    source = _place(src, layout, login)
    if source is None:
        return _INVALID
    if source.kind is not Kind.FILE or source.folder is not Folder.SEND_SMS:
        return _deny("only files in SEND_SMS can be renamed")
    return ALLOW


def may_rename(src: str, dst: str, layout: Layout, login: str) -> Decision:
    """Contract 4: rename only within SEND_SMS; the caller also refuses an existing target
    ("A rename never overwrites an existing file") and a source still open for writing.
    """
    first = may_rename_from(src, layout, login)
    if not first:
        return first
    target = _place(dst, layout, login)
    if target is None:
        return _INVALID
    if target.kind is not Kind.FILE or target.folder is not Folder.SEND_SMS:
        return _deny("files can only be renamed within SEND_SMS")
    if normalise(src) == normalise(dst):
        return _deny("source and target are the same file")
    assert target.name is not None
    return _creatable(target.name)


def may_mkdir(virtual: str, layout: Layout, login: str) -> Decision:
    return _deny(f"cannot create folders: {_STRUCTURE}")


def may_rmdir(virtual: str, layout: Layout, login: str) -> Decision:
    return _deny(f"cannot remove folders: {_STRUCTURE}")


def may_link(virtual: str, layout: Layout, login: str) -> Decision:
    return _deny("links and symbolic links are not allowed")


def may_chmod(virtual: str, layout: Layout, login: str) -> Decision:
    return _deny("file modes cannot be changed")


# -- from virtual to real ---------------------------------------------------------------------


def real_path(root: Path, virtual: str) -> Path:
    """The on-disk path of a *normalised* virtual path under the login root (no checks)."""
    return root.joinpath(*parts_of(virtual))


def confine(root: Path, virtual: str) -> Path | None:
    """The real path of `virtual` if it stays inside `root`, else None.

    The final guard, whatever the policy said: the path must normalise, and no existing
    component below the root may be a symbolic link (a link planted on disk is never followed,
    even one pointing inside), checked with one `lstat` per component down to the first that
    does not exist (nothing deeper can exist then; a new name is being created).

    That also keeps the resolved path inside the resolved root: a normalised path has no `.`,
    `..` or empty component, so with no link below the root it resolves to the root's own
    resolution followed by the same names. (Until issue 15 both were also resolved with
    `Path.resolve` and compared: two more walks of about ten `lstat` each from `/`, on every
    request, proving what the walk had already proved.) A link in the data dir's own path,
    above the root, is the user's choice and is followed, as before.
    """
    norm = normalise(virtual)
    if norm is None:
        return None
    parts = parts_of(norm)
    current = os.fspath(root)
    for part in parts:
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            break  # nothing deeper exists either; a new name is being created
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return None
    return root.joinpath(*parts)


def to_virtual(root: Path | str, real: Path | str) -> str | None:
    """The virtual path of a real path under `root` (None if it is outside). Both are made
    absolute and normal (`os.path.abspath`), then compared as strings, component-wise."""
    base = os.path.abspath(root)
    path = os.path.abspath(real)
    if path == base:
        return "/"
    prefix = base if base.endswith(os.sep) else base + os.sep
    if not path.startswith(prefix):
        return None
    return "/" + path[len(prefix) :]
