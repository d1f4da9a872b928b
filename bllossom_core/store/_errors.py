"""Turning SQLite and file-system failures into errors a user can act on. Internal.

SQLite often reports the symptom, not the cause: a full disk at start-up shows up as
"disk I/O error" (the shared-memory file cannot grow) and a read-only folder as
"unable to open database file". For those vague codes the folder itself is examined
(free space, write permission, read-only mount) so the message names the real cause,
the folder, and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from bllossom_core.errors import DiskFullError, ErrorCode, StorageError

# SQLite primary result codes (the low byte of the extended code).
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_LOW_SPACE_BYTES = 64 * 1024
"""Below this much free space (two shared-memory blocks) a vague I/O failure is taken to
be a full drive."""

_FREE_SPACE_HINT = (
    "Free some space on that drive (empty the trash, delete large files), then try again; "
    "saved conversations are intact."
)
_WRITABLE_HINT = (
    "Make the folder writable (check its owner and permissions, or remount the drive "
    "read-write), or set BLLOSSOM_HOME to a folder you can write to."
)


def _error_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF
    # Python 3.10 has no error codes; fall back on SQLite's fixed English messages.
    text = str(error).lower()
    for needle, primary in (
        ("disk is full", _SQLITE_FULL),
        ("readonly database", _SQLITE_READONLY),
        ("database is locked", _SQLITE_BUSY),
        ("table is locked", _SQLITE_LOCKED),
        ("malformed", _SQLITE_CORRUPT),
        ("not a database", _SQLITE_NOTADB),
        ("unable to open", _SQLITE_CANTOPEN),
        ("disk i/o error", _SQLITE_IOERR),
    ):
        if needle in text:
            return primary
    return None


def disk_full(path: Path, what: str) -> DiskFullError:
    """The error for a full drive; ``what`` says what could not be saved."""
    return DiskFullError(
        f"The drive holding {path.parent} is full; {what}.",
        hint=_FREE_SPACE_HINT,
        path=path,
        code=ErrorCode.DISK_FULL,
    )


def read_only(path: Path, what: str) -> StorageError:
    return StorageError(
        f"Bllossom may not write to the folder {path.parent} ({_read_only_reason(path)}); {what}.",
        hint=_WRITABLE_HINT,
        path=path,
        code=ErrorCode.READ_ONLY,
    )


def _read_only_reason(path: Path) -> str:
    if _mounted_read_only(path.parent):
        return "the drive is mounted read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path.name} is read-only"
    return "no write permission"


def _mounted_read_only(folder: Path) -> bool:
    with contextlib.suppress(OSError, AttributeError):
        return bool(os.statvfs(_existing(folder)).f_flag & os.ST_RDONLY)
    return False


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _free_bytes(folder: Path) -> int | None:
    with contextlib.suppress(OSError, AttributeError):
        stats = os.statvfs(_existing(folder))
        return stats.f_bavail * stats.f_frsize
    return None


def _folder_not_writable(folder: Path) -> bool:
    existing = _existing(folder)
    return _mounted_read_only(existing) or not os.access(existing, os.W_OK | os.X_OK)


def diagnose_folder(path: Path, what: str) -> StorageError | None:
    """A folder Bllossom may not write to or a full drive, when that is the case."""
    if _folder_not_writable(path.parent) or (path.exists() and not os.access(path, os.W_OK)):
        return read_only(path, what)
    free = _free_bytes(path.parent)
    if free is not None and free < _LOW_SPACE_BYTES:
        return disk_full(path, what)
    return None


_NOT_SAVED = "the last change was not saved"


def storage_error_for(
    error: sqlite3.Error, path: Path, outcome: str = _NOT_SAVED
) -> StorageError | None:
    """The user-facing error for a SQLite failure caused by the environment, else ``None``;
    ``outcome`` says what it means for the user."""
    code = _error_code(error)
    where = f"the conversation database {path}"
    if code == _SQLITE_FULL:
        return disk_full(path, outcome)
    if code in (_SQLITE_READONLY, _SQLITE_PERM):
        return read_only(path, outcome)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageError(
            f"{where[0].upper()}{where[1:]} is in use by another program, which has kept "
            f"it locked for too long; {outcome}.",
            hint="Close other Bllossom windows or tools that have it open, then try again.",
            path=path,
            code=ErrorCode.DATABASE_LOCKED,
        )
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StorageError(
            f"{where[0].upper()}{where[1:]} is damaged or is not a Bllossom database; "
            "Bllossom did not change it.",
            hint="Keep a copy somewhere safe, then move the damaged file aside (Bllossom can "
            "rename it for you; nothing is deleted) and start a new database.",
            path=path,
            code=ErrorCode.DATABASE_CORRUPT,
        )
    if code in (_SQLITE_CANTOPEN, _SQLITE_IOERR):
        if path.is_dir():
            return is_a_folder(path)
        diagnosed = diagnose_folder(path, outcome)
        if diagnosed is not None:
            return diagnosed
        return StorageError(
            f"Bllossom could not read or write {where} ({error}).",
            hint=f"Check that the drive holding {path.parent} is connected and the folder "
            "exists, or set BLLOSSOM_HOME to another folder.",
            path=path,
        )
    return None


def is_a_folder(path: Path) -> StorageError:
    return StorageError(
        f"The conversation database {path} is a folder, not a file.",
        hint="Move or rename that folder, or set BLLOSSOM_HOME to another folder.",
        path=path,
    )


def os_error_for(error: OSError, path: Path, what: str) -> StorageError:
    """The user-facing error for a failed file operation on ``path``."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full(path, what)
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return read_only(path, what)
    return StorageError(
        f"Bllossom could not use {path}: {error.strerror}; {what}.",
        hint="Set BLLOSSOM_HOME to a folder you can write to.",
        path=path,
    )


@contextlib.contextmanager
def translate_errors(path: Path, outcome: str = _NOT_SAVED) -> Iterator[None]:
    """Re-raise environment failures as :class:`StorageError`; bugs stay as they are."""
    try:
        yield
    except sqlite3.Error as error:
        translated = storage_error_for(error, path, outcome)
        if translated is None:
            raise
        raise translated from error
    except OSError as error:
        raise os_error_for(error, path, "the conversation database could not be created") from (
            error
        )
