"""One SFTP session (`ConfinedSftp`): files (open, read, write, close), attribute and name
changes, over the confined tree of `servers.sftp_tree` with the upload rules of `servers.dropbox`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh
from asyncssh import (
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_READ,
    FXF_TRUNC,
    FXF_WRITE,
    SFTPAttrs,
    SFTPFailure,
    SFTPOpUnsupported,
    SFTPPermissionDenied,
)

from mockserver.health import DATA_DIR
from mockserver.servers import dropbox, policy
from mockserver.servers.sftp_tree import ConfinedTree, guarded
from mockserver.tree import Layout

if TYPE_CHECKING:
    from mockserver.servers.sftp import SftpServer
    from mockserver.servers.ssh import SshConnection

log = logging.getLogger("mockserver.sftp")

_WRITE_FLAGS = FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC | FXF_EXCL
_MAX_READ = 256 * 1024
_MAX_OFFSET = 2**63 - 1  # off_t
# Open files a session may hold (issue 16: one session with 1,004 handles exhausted the
# descriptors of the whole mock); the next open is refused until one is closed.
MAX_HANDLES = 64


@dataclass(eq=False, slots=True)
class _Handle:
    """An open file: a raw descriptor, its virtual and real paths, and its upload if writing."""

    fd: int
    virtual: str
    real: Path
    append: bool
    upload: dropbox.Upload | None  # None: opened for reading
    closed: bool = False
    removed: bool = False  # the client removed the file while writing it: nothing to announce

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # asyncssh's "ranges@asyncssh.com" extension seeks the file object it was given.
        return os.lseek(self.fd, offset, whence)


class ConfinedSftp(ConfinedTree):
    """One SFTP session, confined to the login's tree (contract 4): `ConfinedTree`'s paths
    and listings, plus files (through `servers.dropbox`) and changes."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        owner: SftpServer,
        login: str,
        root: Path,
        layout: Layout,
        connection: SshConnection | None = None,
    ) -> None:
        super().__init__(chan, owner, login, root, layout, connection)
        self._handles: set[_Handle] = set()

    # -- files ----------------------------------------------------------------------------

    @guarded
    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> _Handle:
        virtual = self._virtual(path)
        writing = bool(pflags & _WRITE_FLAGS)
        if writing:
            # Contract 4: "upload ... only in SEND_SMS", files directly in it.
            self._require(policy.may_write(virtual, self._layout, self._login), "upload", virtual)
        else:
            self._require(policy.may_read(virtual, self._layout, self._login), "read", virtual)
        if len(self._handles) >= MAX_HANDLES:
            raise SFTPFailure("too many open files in this session")
        if writing and self._owner.health.problem(DATA_DIR) is not None:
            raise SFTPFailure("platform storage unavailable")  # issue 16: the data dir is gone
        real = self._real(virtual)
        if writing:
            flags = os.O_RDWR if pflags & FXF_READ else os.O_WRONLY
            flags |= os.O_CREAT if pflags & FXF_CREAT else 0
            flags |= os.O_EXCL if pflags & FXF_EXCL else 0
        else:
            flags = os.O_RDONLY
        truncate = writing and bool(pflags & FXF_TRUNC)
        upload = None
        try:
            if writing:
                # Claimed before the open (docs/spec.md 4.3): one writer of a name, whichever
                # protocol; registered until close, so it is neither removed nor renamed by
                # another session nor judged meanwhile.
                fd, _, upload = dropbox.open_upload(
                    real, flags, self._owner.open_writes, self._limit, truncate=truncate
                )
            else:
                fd, _ = dropbox.open_file(real, flags, writing=False, truncate=False)
        except dropbox.Busy:
            self._owner.announce.upload_refused(self._login, virtual, "busy")
            if self._writing(real):
                raise SFTPFailure("this file is already open for writing in this session") from None
            raise SFTPFailure("this file is being uploaded by another session") from None
        except dropbox.NotARegularFile:
            raise SFTPFailure("not a regular file") from None
        except dropbox.HasOtherLinks:
            raise SFTPPermissionDenied("access denied: the file has other links") from None
        handle = _Handle(
            fd=fd, virtual=virtual, real=real, append=bool(pflags & FXF_APPEND), upload=upload
        )
        self._handles.add(handle)
        if writing:
            log.debug("login=%s SFTP upload started %s", self._login, virtual)
        return handle

    def open56(self, path: bytes, desired_access: int, flags: int, attrs: SFTPAttrs) -> object:
        raise SFTPOpUnsupported("SFTP version 3 only")

    def _writing(self, real: Path) -> list[_Handle]:
        """This session's handles still uploading `real`."""
        return [h for h in self._handles if h.upload and h.real == real and not h.removed]

    @staticmethod
    def _handle(file_obj: object) -> _Handle:
        if not isinstance(file_obj, _Handle) or file_obj.closed:
            raise SFTPFailure("invalid handle")
        return file_obj

    @guarded
    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        fd = self._handle(file_obj).fd
        if offset > _MAX_OFFSET:
            return b""  # past any file's end (and past what pread accepts): end of file
        # A short read is normal SFTP; a client asking for 4 GiB at once gets a slice (like
        # OpenSSH's 256 KiB cap) instead of a 4 GiB buffer.
        return os.pread(fd, min(size, _MAX_READ), offset)

    @guarded
    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        handle = self._handle(file_obj)
        upload = handle.upload
        if upload is None:
            raise SFTPPermissionDenied("file not opened for writing")
        if handle.append:
            offset = os.fstat(handle.fd).st_size
        # Manual 4.1: "la taille maximale des fichiers déposés ne doit pas dépasser 8 Mo".
        refused_before = upload.too_large
        try:
            upload.admit(offset, len(data))
        except dropbox.FileTooLarge:
            if not refused_before:
                log.warning(
                    "login=%s SFTP upload %s refused: over %d bytes",
                    self._login,
                    handle.virtual,
                    self._limit,
                )
            raise SFTPFailure(f"file too large: limit {self._limit} bytes") from None
        try:
            dropbox.write_all(handle.fd, data, offset)
        except OSError as exc:
            # A full disk (or an I/O error) leaves a hole: this upload can no longer be
            # complete, so at close it is removed, never handed to the processor.
            if not upload.failed:
                log.warning(
                    "login=%s SFTP upload %s failed: %s",
                    self._login,
                    handle.virtual,
                    exc.strerror or exc,
                )
            upload.failed = True
            raise
        return len(data)

    @guarded
    def fstat(self, file_obj: object) -> os.stat_result:
        return os.fstat(self._handle(file_obj).fd)

    @guarded
    def fsync(self, file_obj: object) -> None:
        os.fsync(self._handle(file_obj).fd)

    @guarded
    def close(self, file_obj: object) -> None:
        if not isinstance(file_obj, _Handle) or file_obj.closed:
            return
        # asyncssh also closes the handles a session leaves open when its channel goes away:
        # such an upload never finished.
        self._finish(file_obj, interrupted=self.channel.is_closing())

    def _finish(self, handle: _Handle, interrupted: bool) -> None:
        handle.closed = True
        self._handles.discard(handle)
        with contextlib.suppress(OSError):
            os.close(handle.fd)
        upload = handle.upload
        if upload is None:
            return
        if handle.removed:
            log.info(
                "login=%s SFTP upload %s closed after its removal", self._login, handle.virtual
            )
            return
        if upload.too_large or upload.failed or interrupted:
            # An upload refused for its size, failed or cut off is not left half-written; it
            # is removed while still registered as open, so the processor never sees it.
            upload.discard()
            upload.release()
            why = "too large" if upload.too_large else "failed" if upload.failed else "interrupted"
            log.info(
                "login=%s SFTP upload %s %s; partial file removed", self._login, handle.virtual, why
            )
            self._owner.announce.upload_refused(self._login, handle.virtual, why)
            return
        upload.release()
        try:
            size = handle.real.stat().st_size
        except FileNotFoundError:
            return  # deleted by the client before closing
        log.info("login=%s SFTP upload complete %s (%d bytes)", self._login, handle.virtual, size)
        self._owner.announce.upload_closed(self._login, handle.virtual, size)
        self._notify(handle.real)

    def _notify(self, real: Path) -> None:
        dropbox.notify_upload(self._owner.on_upload, self._login, real, log)

    def exit(self) -> None:
        for handle in list(self._handles):
            self._finish(handle, interrupted=True)

    # -- attributes -----------------------------------------------------------------------

    @guarded
    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        virtual = self._virtual(path)
        self._set_attrs(virtual, self._real(virtual), attrs, None)

    @guarded
    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        self.setstat(path, attrs)

    @guarded
    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        handle = self._handle(file_obj)
        self._set_attrs(handle.virtual, handle.real, attrs, handle)

    def _set_attrs(
        self, virtual: str, real: Path, attrs: SFTPAttrs, handle: _Handle | None
    ) -> None:
        """Contract 4: "never ... change modes". Mode and owner requests that change nothing
        are accepted (OpenSSH `put -p` sends them); times and size, which clients set after an
        upload (`put -p`, rclone, WinSCP), are applied where uploads are allowed, size within
        the limit; anything else is a permission error and nothing is changed."""
        st = os.fstat(handle.fd) if handle else self._entry_stat(real)
        if st.st_nlink > 1:
            # A hard link planted on disk may lead outside the tree: never changed through it.
            raise SFTPPermissionDenied("access denied: the file has other links")
        if attrs.permissions is not None and stat.S_IMODE(attrs.permissions) != stat.S_IMODE(
            st.st_mode
        ):
            self._require(policy.may_chmod(virtual, self._layout, self._login), "chmod", virtual)
        if (attrs.uid is not None and attrs.uid != st.st_uid) or (
            attrs.gid is not None and attrs.gid != st.st_gid
        ):
            self._require(policy.may_chmod(virtual, self._layout, self._login), "chown", virtual)
        if attrs.owner is not None or attrs.group is not None:
            self._require(policy.may_chmod(virtual, self._layout, self._login), "chown", virtual)
        new_size = attrs.size if attrs.size is not None and attrs.size != st.st_size else None
        times = attrs.atime is not None or attrs.mtime is not None
        if new_size is not None:
            self._require(policy.may_write(virtual, self._layout, self._login), "truncate", virtual)
            if new_size > self._limit:
                raise SFTPFailure(f"file too large: limit {self._limit} bytes")
        if times:
            self._require(
                policy.may_set_times(virtual, self._layout, self._login), "set times", virtual
            )
        atime_ns = _ns(attrs.atime, attrs.atime_ns)
        mtime_ns = _ns(attrs.mtime, attrs.mtime_ns)
        try:
            if handle is not None:
                if new_size is not None:
                    os.ftruncate(handle.fd, new_size)
                if times:
                    atime = st.st_atime_ns if atime_ns is None else atime_ns
                    mtime = st.st_mtime_ns if mtime_ns is None else mtime_ns
                    os.utime(handle.fd, ns=(atime, mtime))
                return
            # By path: through a descriptor opened with `open`'s checks (docs/spec.md 4.3).
            if new_size is not None:
                dropbox.set_size(real, new_size, self._owner.open_writes)
            if times:
                dropbox.set_times(real, atime_ns, mtime_ns)
        except dropbox.Busy:
            raise SFTPFailure("this file is being uploaded by another session") from None
        except dropbox.NotARegularFile:
            raise SFTPPermissionDenied("access denied: not a regular file") from None
        except dropbox.HasOtherLinks:
            raise SFTPPermissionDenied("access denied: the file has other links") from None

    # -- names ----------------------------------------------------------------------------

    @guarded
    def remove(self, path: bytes) -> None:
        virtual = self._virtual(path)
        # Contract 4: delete in SEND_SMS, ARCHIVES and INVALIDS, never a folder.
        self._require(policy.may_delete(virtual, self._layout, self._login), "delete", virtual)
        real = self._real(virtual)
        if not stat.S_ISREG(self._entry_stat(real).st_mode):
            raise SFTPPermissionDenied("only files can be deleted")
        own = self._writing(real)
        try:
            # docs/spec.md 4.3: a file another session is writing cannot be deleted (checked
            # and removed in one step).
            dropbox.remove_file(real, self._owner.open_writes, own=bool(own))
        except dropbox.Busy:
            raise SFTPFailure("this file is being uploaded by another session") from None
        except dropbox.NotARegularFile:
            raise SFTPPermissionDenied("only files can be deleted") from None
        log.info("login=%s SFTP deleted %s", self._login, virtual)
        self._owner.announce.deleted(self._login, virtual)
        # A file this session is still writing (rclone removes it after a failed write,
        # without closing the handle, then uploads it again): that upload can never complete,
        # so it stops holding the name at once, and closing it later does nothing.
        for handle in own:
            handle.removed = True
            if handle.upload is not None:
                handle.upload.release()

    @guarded
    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, "rename")

    @guarded
    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        # OpenSSH's posix-rename overwrites on a real server; here it must not (contract 4:
        # "A rename never overwrites an existing file"; docs/spec.md 4.3).
        self._rename(oldpath, newpath, "posix-rename")

    def _rename(self, oldpath: bytes, newpath: bytes, what: str) -> None:
        src_virtual, dst_virtual = self._virtual(oldpath), self._virtual(newpath)
        decision = policy.may_rename(src_virtual, dst_virtual, self._layout, self._login)
        self._require(decision, what, f"{src_virtual} -> {dst_virtual}")
        if self._owner.health.problem(DATA_DIR) is not None:
            raise SFTPFailure("platform storage unavailable")  # issue 16: the data dir is gone
        src, dst = self._real(src_virtual), self._real(dst_virtual)
        if not stat.S_ISREG(self._entry_stat(src).st_mode):
            raise SFTPPermissionDenied("only files can be renamed")
        try:
            # Never hand a half-written file to the processor, never rename onto a name being
            # uploaded, never overwrite (docs/spec.md 4.3, 5.2.1): one step under the registry.
            # The event is published under the registry's lock, before any pickup of `dst`.
            announce = partial(self._renamed, what, src_virtual, dst_virtual)
            dropbox.rename_no_replace(src, dst, self._owner.open_writes, then=announce)
        except dropbox.Busy:
            raise SFTPFailure(
                "the file or the target is still being uploaded; close it before renaming"
            ) from None
        except dropbox.TargetExists:
            raise SFTPFailure("the target exists: a rename never overwrites a file") from None
        except dropbox.NotARegularFile:
            raise SFTPPermissionDenied("only files can be renamed") from None
        except dropbox.HasOtherLinks:
            raise SFTPPermissionDenied("access denied: the file has other links") from None
        self._notify(dst)

    def _renamed(self, what: str, src_virtual: str, dst_virtual: str) -> None:
        log.info("login=%s SFTP %s %s -> %s", self._login, what, src_virtual, dst_virtual)
        self._owner.announce.renamed(self._login, src_virtual, dst_virtual)

    @guarded
    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        virtual = self._virtual(path)
        self._require(policy.may_mkdir(virtual, self._layout, self._login), "mkdir", virtual)
        raise SFTPOpUnsupported("folders cannot be created")

    @guarded
    def rmdir(self, path: bytes) -> None:
        virtual = self._virtual(path)
        self._require(policy.may_rmdir(virtual, self._layout, self._login), "rmdir", virtual)
        raise SFTPOpUnsupported("folders cannot be removed")

    @guarded
    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        virtual = self._virtual(newpath)
        self._require(policy.may_link(virtual, self._layout, self._login), "symlink", virtual)
        raise SFTPOpUnsupported("links are not supported")

    @guarded
    def link(self, oldpath: bytes, newpath: bytes) -> None:
        # Both SSH_FXP_LINK and OpenSSH's "hardlink@openssh.com" land here.
        virtual = self._virtual(newpath)
        self._require(policy.may_link(virtual, self._layout, self._login), "link", virtual)
        raise SFTPOpUnsupported("links are not supported")


def _ns(seconds: int | None, nanos: int | None) -> int | None:
    if seconds is None:
        return None
    return seconds * 1_000_000_000 + (nanos or 0)
