"""Whether an FTP command may act on its path (`decide`): `servers.policy`'s rules for each
command, and the temporary refusal of a file still being written (`BUSY`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mockserver.servers import policy
from mockserver.tree import Layout
from mockserver.writes import OpenWrites

# A temporary refusal (450, RFC 959 "file unavailable (e.g., file busy)"): the file is still
# being written, so renaming, replacing or deleting it must wait (a half-written file is never
# renamed or judged: docs/design.md, "The open-writes registry").
BUSY = policy.Decision(False, "the file is still being uploaded by another session")

# Commands whose argument is a path (each one is checked by `decide`).
READ_CMDS = frozenset(
    {"CWD", "XCWD", "LIST", "NLST", "MLSD", "MLST", "STAT", "SIZE", "MDTM", "RETR"}
)
CREATE_CMDS = frozenset({"STOR", "APPE", "STOU", "RNTO", "MKD", "XMKD"})
PATH_CMDS = READ_CMDS | CREATE_CMDS | {"DELE", "RNFR", "RMD", "XRMD", "MFMT"}

# How a refused command is named in the log, in the SFTP server's words (servers.sftp_tree).
WHAT = {"STOR": "upload", "APPE": "upload", "STOU": "upload", "RETR": "read", "DELE": "delete"}
WHAT |= {"RNFR": "rename", "RNTO": "rename", "MKD": "mkdir", "XMKD": "mkdir", "RMD": "rmdir"}
WHAT |= {"XRMD": "rmdir", "MFMT": "set times", "SIZE": "stat", "MDTM": "stat", "MLST": "stat"}


def decide(
    cmd: str,
    virtual: str,
    real: Path,
    pending: str | None,
    root: Path,
    layout: Layout,
    login: str,
    writes: OpenWrites,
) -> policy.Decision:
    """Command `cmd` of `login` on `virtual` (`real` on disk; `pending`: RNTO's RNFR source, a
    real path under `root`)."""
    if cmd in READ_CMDS:
        return policy.may_read(virtual, layout, login)
    if cmd in ("STOR", "APPE"):
        decision = policy.may_write(virtual, layout, login)
        return BUSY if decision and writes.is_open(real) else decision
    if cmd == "STOU":
        # The unique name is made in the argument's folder, which must be SEND_SMS.
        return policy.may_write(virtual.rsplit("/", 1)[0] + "/x", layout, login)
    if cmd == "MFMT":
        return policy.may_set_times(virtual, layout, login)
    if cmd == "DELE":
        decision = policy.may_delete(virtual, layout, login)
        return BUSY if decision and writes.is_open(real) else decision
    if cmd in ("MKD", "XMKD"):
        return policy.may_mkdir(virtual, layout, login)
    if cmd in ("RMD", "XRMD"):
        return policy.may_rmdir(virtual, layout, login)
    if cmd == "RNFR":
        decision = policy.may_rename_from(virtual, layout, login)
        if decision and writes.is_open(real):
            # Never let x.tmp become x.csv while it is written (docs/spec.md 5.2.1).
            return BUSY
        if decision and real.exists() and not real.is_file():
            return policy.Decision(False, "only files can be renamed")
        return decision
    if cmd == "RNTO":
        src_real = pending
        if not src_real:
            return policy.Decision(True)  # pyftpdlib answers 503 (RNFR first)
        src = policy.to_virtual(root, Path(src_real))
        if src is None:
            return policy.Decision(False, "invalid source")
        decision = policy.may_rename(src, virtual, layout, login)
        if not decision:
            return decision
        if writes.is_open(src_real):
            return BUSY
        if os.path.lexists(real):
            return policy.Decision(False, "the target exists; a rename never overwrites")
        return decision
    return policy.Decision(False, "not allowed")
