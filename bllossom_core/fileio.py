"""Atomic file output: the one way Bllossom replaces or creates a file.

A file is written under a temporary name beside its target (same folder, so the
final rename never crosses file systems), flushed to the disk with ``fsync``, and
only then renamed over the target; the folder is fsync'ed after the rename so the
new name survives a power cut. A reader therefore sees the old file or the complete
new one, never half of one, and a failure or cancellation at any point (including
Ctrl-C) removes the temporary file.

Permissions: a replaced file keeps its permission bits; a new file gets ``mode``
when one is given (exactly, e.g. ``0o600`` for a file holding secrets), otherwise
what a plain ``open()`` would give it (``0o666`` less the umask, applied by the
kernel: the process umask is never read or changed, so this is safe in threads).

Temporary files are named ``.<target name>.<random>[.<tag>].part`` so that a person
(or a clean-up job) who finds one after a crash knows what it was.

    with atomic_output(path, overwrite=True) as stream:   # a binary file object
        stream.write(data)
    atomic_write_text(path, text, overwrite=False)         # refuses an existing file
    with atomic_path(path, overwrite=True) as temporary:  # for a child process or a
        run_tool(output=temporary)                         # library that wants a path
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bllossom_core.errors import DiskFullError, ErrorCode, StorageError

__all__ = [
    "TEMPORARY_SUFFIX",
    "atomic_output",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "publish",
    "start_writeback",
    "storage_error",
    "temporary_beside",
]

TEMPORARY_SUFFIX = ".part"
_DEFAULT_NEW_MODE = 0o666  # the kernel applies the umask, exactly as open() does
_MAX_NAME_STEM = 180  # keeps ".<stem>.<random>.<tag>.part" under the usual 255-byte limit
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV, errno.ENOSYS}
)


_TEMPORARY_NAME = re.compile(
    r"^\.(?P<target>.+?)\.[0-9a-f]{1,16}(\.[a-z0-9_]+)?" + re.escape(TEMPORARY_SUFFIX) + "$"
)
"""Ours (``.<name>.<random>[.<tag>].part``) and any made the same way with a process id."""


def _shown_name(path: Path) -> str:
    """The name the user chose: a temporary's target name rather than its own."""
    match = _TEMPORARY_NAME.match(path.name)
    return match.group("target") if match else path.name


def storage_error(exc: OSError, target: Path) -> StorageError:
    """The user-facing error for an ``OSError`` met while writing ``target`` (or a
    temporary file beside it: the message then names the file the user asked for)."""
    folder = target.parent
    name = _shown_name(target)
    if exc.errno in _DISK_FULL_ERRNOS:
        return DiskFullError(
            f"The disk holding {folder} is full; {name} was not written.",
            hint="Free some space or choose another folder, then try again.",
            path=folder,
            code=ErrorCode.DISK_FULL,
        )
    if exc.errno == errno.EROFS:
        return StorageError(
            f"{folder} is on a read-only disk; {name} was not written.",
            hint="Choose a folder on a writable disk.",
            path=folder,
            code=ErrorCode.READ_ONLY,
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageError(
            f"No permission to write {name} in {folder}.",
            hint="Choose a folder you can write to.",
            path=target,
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StorageError(f"Could not write {folder / name}: {reason}.", path=target)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the OS to start writing ``length`` bytes at ``offset`` of ``fd`` to the disk
    now, without waiting for it. A large file written in one go otherwise sits in the
    page cache until the final fsync, which then waits for all of it; started early,
    the disk works while the program produces the rest, and that fsync is short.
    (On Linux, POSIX_FADV_DONTNEED starts writeback of the range's dirty pages; where
    it is missing this does nothing and the final fsync does all the work.)"""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None or length <= 0:
        return
    with contextlib.suppress(OSError):
        advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _exists_error(target: Path) -> StorageError:
    return StorageError(
        f"{target} already exists; it was left unchanged.",
        hint="Choose another file name, or allow replacing it.",
        path=target,
        code=ErrorCode.OUTPUT_EXISTS,
    )


def _check_target(target: Path, overwrite: bool) -> None:
    if target.is_dir():
        raise StorageError(
            f"{target} is a folder, not a file; nothing was written.",
            hint="Give a file name inside it instead.",
            path=target,
        )
    if not overwrite and (target.exists() or target.is_symlink()):
        raise _exists_error(target)


def _existing_mode(target: Path) -> int | None:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return None


def _create_temporary(target: Path, tag: str, initial_mode: int) -> tuple[int, Path]:
    stem = target.name[:_MAX_NAME_STEM]
    suffix = f".{tag}{TEMPORARY_SUFFIX}" if tag else TEMPORARY_SUFFIX
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    for _ in range(100):
        candidate = target.with_name(f".{stem}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(candidate, flags, initial_mode), candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise storage_error(exc, target) from None
    raise StorageError(f"Could not create a temporary file beside {target}.", path=target)


@contextlib.contextmanager
def temporary_beside(target: Path, tag: str = "", *, mode: int | None = None) -> Iterator[Path]:
    """An empty temporary file beside ``target``, removed on exit whatever happens
    (unless :func:`publish` moved it to its target)."""
    target = Path(target)
    # While being written the file is never more open than it will finally be.
    initial = _existing_mode(target)
    if initial is None:
        initial = mode if mode is not None else _DEFAULT_NEW_MODE
    fd, temporary = _create_temporary(target, tag, initial)
    os.close(fd)
    try:
        yield temporary
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _fsync_folder(folder: Path) -> None:
    # Not possible on every platform (Windows cannot open folders); the rename is
    # then as durable as the OS makes it.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _move_into_place(temporary: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, target)
        return
    try:
        # A hard link fails if the name exists, so no file that appeared meanwhile is
        # ever replaced; the temporary name is removed afterwards.
        os.link(temporary, target)
    except FileExistsError:
        raise _exists_error(target) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if target.exists() or target.is_symlink():  # a file system without hard links
            raise _exists_error(target) from None
        os.replace(temporary, target)
        return
    temporary.unlink()


def publish(temporary: Path, target: Path, *, overwrite: bool, mode: int | None = None) -> None:
    """Flush ``temporary`` to the disk and move it to ``target`` in one step.

    ``target`` keeps its permission bits if it exists; otherwise it gets ``mode`` (or
    keeps the temporary's, which :func:`temporary_beside` created as ``open()`` would).
    """
    temporary, target = Path(temporary), Path(target)
    try:
        _check_target(target, overwrite)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        final_mode = _existing_mode(target) if overwrite else None
        if final_mode is None:
            final_mode = mode
        if final_mode is not None:
            os.chmod(temporary, final_mode)
        _move_into_place(temporary, target, overwrite)
    except OSError as exc:
        raise storage_error(exc, target) from None
    _fsync_folder(target.parent)


@contextlib.contextmanager
def atomic_path(
    target: Path, *, overwrite: bool, mode: int | None = None, tag: str = ""
) -> Iterator[Path]:
    """A temporary path to write (by any means, e.g. a child process) that becomes
    ``target`` when the block ends without an exception; removed otherwise."""
    target = Path(target)
    _check_target(target, overwrite)
    with temporary_beside(target, tag, mode=mode) as temporary:
        yield temporary
        publish(temporary, target, overwrite=overwrite, mode=mode)


@contextlib.contextmanager
def atomic_output(
    target: Path, *, overwrite: bool, mode: int | None = None, buffering: int = -1
) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces (or creates) ``target`` atomically
    when the block ends without an exception. ``overwrite=False`` refuses an existing
    target (:attr:`ErrorCode.OUTPUT_EXISTS`) before anything is written and again at
    the rename. A full disk raises :class:`DiskFullError` naming the folder."""
    target = Path(target)
    _check_target(target, overwrite)
    with temporary_beside(target, mode=mode) as temporary:
        try:
            stream: BinaryIO = open(temporary, "r+b", buffering=buffering)  # noqa: SIM115
        except OSError as exc:
            raise storage_error(exc, target) from None
        with stream:
            try:
                yield stream
            except OSError as exc:
                # Only a write can fill the disk; other errors belong to the caller.
                if exc.errno in _DISK_FULL_ERRNOS:
                    raise storage_error(exc, target) from None
                raise
            try:
                stream.flush()
            except OSError as exc:
                raise storage_error(exc, target) from None
        publish(temporary, target, overwrite=overwrite, mode=mode)


def atomic_write_bytes(
    target: Path, data: bytes | bytearray | memoryview, *, overwrite: bool, mode: int | None = None
) -> None:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_output`)."""
    with atomic_output(target, overwrite=overwrite, mode=mode) as stream:
        try:
            stream.write(data)
        except OSError as exc:
            raise storage_error(exc, Path(target)) from None


def atomic_write_text(
    target: Path, text: str, *, overwrite: bool, mode: int | None = None, encoding: str = "utf-8"
) -> None:
    """Write ``text`` to ``target`` atomically, with ``\\n`` line ends on every OS."""
    atomic_write_bytes(target, text.encode(encoding), overwrite=overwrite, mode=mode)
