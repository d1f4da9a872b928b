"""Temporary part files beside the output, named so that leftovers can be recognised.

A conversion writes ``.<output name>.<pid>.<tag>.part`` files next to the output (the
float GGUF, then the quantized one) and renames the last into place. Every exit Python
lives through removes them; ``kill -9``, a crash or a power cut cannot, and for an 8B
model they are about 16 GB and 5 GB. The process id in the name says whose they are, so
the next conversion to the same output removes the parts of processes that are gone.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from bllossom_core import fileio
from bllossom_core.errors import ErrorCode, StorageError

_TAG = re.compile(r"[a-z0-9_]+")


def part_path(output: Path, tag: str, pid: int | None = None) -> Path:
    """The part file of ``output`` for stage ``tag`` (``bf16``, ``q4_k_m``…) of ``pid``."""
    if not _TAG.fullmatch(tag):
        raise ValueError(f"part tags are lower-case names, not {tag!r}")
    return output.parent / f".{output.name}.{os.getpid() if pid is None else pid}.{tag}.part"


def _part_pattern(output: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(output.name)}\.([0-9]{{1,10}})\.{_TAG.pattern}\.part")


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it there; never remove what may be live
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to another user
        return True
    return True


def remove_stale_parts(output: Path) -> list[Path]:
    """Remove the part files of ``output`` left by processes that no longer run; return
    them. Parts of running processes (another conversion in progress) are kept."""
    pattern = _part_pattern(output)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(output.parent))
    except OSError:
        return removed
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if not found:
            continue
        pid = int(found.group(1))
        if pid == os.getpid() or _running(pid):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def part_beside(output: Path, tag: str) -> Iterator[Path]:
    """A new, empty part file next to ``output``; removed afterwards whatever happens
    (Ctrl-C, SIGTERM and SIGHUP included), unless it was renamed away."""
    path = part_path(output, tag)
    try:
        # 0o666 less the umask, as open() gives: the published GGUF keeps these bits.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise StorageError(
            f"{path} already exists: another conversion to {output} is running in this program.",
            hint="Wait for it to finish, or choose another output file.",
            path=path,
            code=ErrorCode.OUTPUT_EXISTS,
        ) from None
    except OSError as exc:
        raise fileio.storage_error(exc, output) from None
    os.close(fd)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
