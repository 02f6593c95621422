"""The login's tree as pyftpdlib sees it (`Filesystem`), and the file object of an upload
(`UploadFile`); the open, size and rename rules come from `servers.dropbox`.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import IO, Any

from mockserver.core.faults import FaultRule
from mockserver.servers import dropbox, policy
from mockserver.servers.ftp import decisions
from mockserver.servers.ftp.compat import AbstractedFS, FilesystemError
from mockserver.servers.ftp.context import Context

log = logging.getLogger("mockserver.ftp")

_OTHER_LINKS = "access denied: the file has other links"

_WRITE_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT,  # truncated after the checks in `open`
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "r+b": os.O_RDWR,
}


class UploadCut(OSError):
    """A `truncate` fault (contract 9.2) cut the upload after its `bytes` bytes: the data channel
    answers 426 and the session removes the partial file (servers.ftp.transfer)."""

    def __init__(self, rule: FaultRule) -> None:
        super().__init__(errno.ECONNABORTED, "connection cut by an injected fault")
        self.rule = rule


class UploadFile:
    """A file being uploaded: refuses bytes past the size limit (checked on every write, so a
    REST at a huge offset cannot make a sparse file either) and stays registered in `OpenWrites`
    until closed, whatever ends the transfer. `cut`: a `truncate` fault (contract 9.2): the
    write past its `bytes` bytes raises UploadCut after writing the bytes before the cut.
    """

    def __init__(
        self, raw: IO[bytes], upload: dropbox.Upload, fresh: bool, cut: FaultRule | None = None
    ) -> None:
        self._raw = raw
        self._upload = upload
        self.name = str(upload.path)
        # Created or truncated by this upload (STOR, STOU), not resumed or appended to: if the
        # transfer never starts, nothing of value is lost by removing it.
        self.fresh = fresh
        self._cut = cut
        self._received = 0

    def write(self, data: bytes) -> int:
        if self._cut is not None:
            keep = self._cut.bytes - self._received
            if len(data) > keep:
                self._write(data[:keep])
                raise UploadCut(self._cut)
            self._received += len(data)
        self._write(data)
        return len(data)

    def _write(self, data: bytes) -> None:
        self._upload.admit(self._raw.tell(), len(data))
        # Unbuffered: a full disk fails this write, never a later flush in close(); pyftpdlib
        # ignores the count, so a short write is finished here.
        dropbox.write_all(self._raw.fileno(), data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            self._upload.release()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._raw, attr)


class Filesystem(AbstractedFS):  # type: ignore[misc]
    """The login's tree as pyftpdlib sees it: virtual paths go through `policy`, symbolic links
    are neither listed nor followed, and nothing here changes the process-wide cwd (pyftpdlib's
    default `chdir` calls `os.chdir`, which would move every other thread of the mock).
    """

    @property
    def ctx(self) -> Context:
        ctx: Context = self.cmd_channel.ctx
        return ctx

    def ftp2fs(self, ftppath: str) -> str:
        virtual = policy.normalise(ftppath, self.cwd)
        if virtual is None:
            # The handler answers bad paths before they get here; this is the backstop.
            raise FilesystemError("invalid path")
        return str(policy.real_path(Path(self.root), virtual))

    def fs2ftp(self, fspath: str) -> str:
        virtual = policy.to_virtual(self.root, fspath)
        return "/" if virtual is None else virtual

    def validpath(self, path: str) -> bool:
        if self.ctx.confined.vouches(path):
            return True  # confined by the session for this very command (`Confined`)
        virtual = policy.to_virtual(self.root, path)
        return virtual is not None and policy.confine(Path(self.root), virtual) is not None

    def chdir(self, path: str) -> None:
        if os.path.islink(path) or not os.path.isdir(path):
            raise OSError(errno.ENOTDIR, "Not a directory")
        self.cwd = self.fs2ftp(path)

    def open(self, filename: str, mode: str) -> Any:
        if mode != "rb" and mode not in _WRITE_FLAGS:
            raise FilesystemError(f"unsupported open mode {mode!r}")
        writing = mode != "rb"
        upload = None
        try:
            if writing:
                # Claimed before the open (docs/spec.md 4.3): one writer of a name, whichever
                # protocol; registered until closed.
                fd, _, upload = dropbox.open_upload(
                    filename,
                    _WRITE_FLAGS[mode],
                    self.ctx.open_writes,
                    self.ctx.max_file_bytes,
                    truncate=mode == "wb",
                )
            else:
                fd, _ = dropbox.open_file(filename, os.O_RDONLY, writing=False, truncate=False)
        except dropbox.Busy:
            self.ctx.announce.upload_refused(
                self.cmd_channel.username, self.fs2ftp(filename), "busy"
            )
            raise self._busy() from None
        except dropbox.NotARegularFile:
            raise FilesystemError("not a regular file") from None
        except dropbox.HasOtherLinks:
            raise FilesystemError(_OTHER_LINKS) from None
        try:
            raw = os.fdopen(fd, mode, buffering=0 if writing else -1)
        except BaseException:
            os.close(fd)
            if upload is not None:
                upload.release()
            raise
        if upload is None:
            return raw
        self._started(filename)
        return UploadFile(raw, upload, fresh=mode == "wb", cut=self._take_cut())

    def _busy(self) -> FilesystemError:
        """The refusal of a file another session is writing: the session answers it with 450
        (RFC 959 "file busy"), like `decisions.BUSY`, instead of pyftpdlib's 550."""
        self.cmd_channel.busy_refusal = True
        return FilesystemError(decisions.BUSY.reason)

    def _take_cut(self) -> FaultRule | None:
        """The `truncate` fault fired on this upload's command, if any (servers.ftp.faults)."""
        cut: FaultRule | None = self.cmd_channel.upload_cut
        self.cmd_channel.upload_cut = None
        return cut

    def _started(self, real: str) -> None:
        if log.isEnabledFor(logging.DEBUG):  # the virtual path is worked out for this line only
            login = self.cmd_channel.username
            log.debug("login=%s FTP upload started %s", login, self.fs2ftp(real))

    def mkstemp(
        self, suffix: str = "", prefix: str = "", dir: str | None = None, mode: str = "wb"
    ) -> Any:
        """STOU: a new unique name in `dir` (created exclusively, never following a link)."""
        base = dir if dir is not None else self.ftp2fs(self.cwd)
        writes = self.ctx.open_writes
        name, fd = dropbox.create_unique(base, prefix, suffix, writes)
        upload = dropbox.Upload(name, writes, self.ctx.max_file_bytes, claimed=True)
        try:
            raw = os.fdopen(fd, "wb", buffering=0)
        except BaseException:
            os.close(fd)
            upload.release()
            raise
        self._started(name)
        return UploadFile(raw, upload, fresh=True, cut=self._take_cut())

    def listdir(self, path: str) -> list[str]:
        # A link planted on disk is invisible: listing it would show (and MLSD would stat)
        # its target outside the tree.
        return [name for name in os.listdir(path) if not os.path.islink(os.path.join(path, name))]

    def listdirinfo(self, path: str) -> list[str]:
        return self.listdir(path)

    def remove(self, path: str) -> None:
        try:
            # Checked and removed in one step (docs/spec.md 4.3).
            dropbox.remove_file(path, self.ctx.open_writes)
        except dropbox.Busy:
            raise self._busy() from None
        except dropbox.NotARegularFile:
            raise FilesystemError("only files can be deleted") from None

    def rename(self, src: str, dst: str) -> None:
        try:
            # Contract 4: "A rename never overwrites an existing file" (renameat2 NOREPLACE);
            # neither name may be open for writing, checked in the same step; the event is
            # published before the processor can claim the new name.
            dropbox.rename_no_replace(
                src, dst, self.ctx.open_writes, then=lambda: self.cmd_channel.renamed(src, dst)
            )
        except dropbox.Busy:
            raise self._busy() from None
        except dropbox.TargetExists:
            raise FilesystemError(
                "the target name already exists; a rename never overwrites"
            ) from None
        except dropbox.NotARegularFile:
            raise FilesystemError("only files can be renamed") from None
        except dropbox.HasOtherLinks:
            raise FilesystemError(_OTHER_LINKS) from None

    def utime(self, path: str, timeval: float) -> None:
        """MFMT: through a descriptor opened with `open`'s checks, never by path (a hard link
        planted on disk is refused, docs/spec.md 4.3)."""
        ns = int(timeval * 1_000_000_000)
        try:
            dropbox.set_times(path, ns, ns)
        except dropbox.NotARegularFile:
            raise FilesystemError("not a regular file") from None
        except dropbox.HasOtherLinks:
            raise FilesystemError(_OTHER_LINKS) from None

    def mkdir(self, path: str) -> None:
        raise FilesystemError(str(policy.may_mkdir("/", self.ctx.layout, "").reason))

    def rmdir(self, path: str) -> None:
        raise FilesystemError(str(policy.may_rmdir("/", self.ctx.layout, "").reason))

    def chmod(self, path: str, mode: int) -> None:
        raise FilesystemError(str(policy.may_chmod("/", self.ctx.layout, "").reason))
