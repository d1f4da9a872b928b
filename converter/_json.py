"""The one reader for the JSON files of a checkpoint (config, shard index, tokenizer files,
safetensors headers), bounded in size and nesting before anything is parsed.

Every failure becomes a one-line error of the caller's class that names the file, says
what is wrong with it and what to do, so the user never sees a decoder traceback. A
checkpoint folder is untrusted input: a file may be a link to ``/dev/zero`` or a FIFO
(reads that never end), gigabytes of JSON, or ``[[[[...`` nested past Python's recursion
limit; each of these is refused with a message instead of hanging or crashing.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from bllossom_core.errors import BllossomError, ErrorCode

_REDOWNLOAD = "Download it again, or fix it in a text editor."
MAX_JSON_BYTES = 16 * 2**20
"""config.json, tokenizer_config.json and the like are kilobytes; 16 MiB is generous."""
MAX_TOKENIZER_JSON_BYTES = 256 * 2**20
"""The largest real ``tokenizer.json`` files (256k-token vocabularies) are about 35 MB."""
MAX_JSON_DEPTH = 64
"""Real checkpoint JSON nests at most about 6 deep; deeper data is an attack or damage."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular_file(
    path: Path, error: type[BllossomError], *, max_bytes: int | None = None
) -> int:
    """The size of ``path`` after checking it is a regular file (links followed) of at
    most ``max_bytes``; a device such as ``/dev/zero``, a pipe or a folder is refused."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(
            f"{path} is missing.",
            hint="Download it with the rest of the model.",
            path=path,
            code=ErrorCode.FILE_NOT_FOUND,
        ) from None
    except OSError as exc:
        raise error(
            f"{path} cannot be read ({exc.strerror or exc}).",
            hint="Check that it is a readable file.",
            path=path,
            code=ErrorCode.FILE_UNREADABLE,
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"{path} is {_kind(info.st_mode)}, not a regular file.",
            hint="Replace it with the real file from the model's download.",
            path=path,
        )
    if max_bytes is not None and info.st_size > max_bytes:
        raise _too_large(path, error, max_bytes)
    return info.st_size


def _too_large(path: Path, error: type[BllossomError], max_bytes: int) -> BllossomError:
    return error(
        f"{path} is larger than {max_bytes // 2**20} MiB, far more than a file of its kind "
        "ever holds; it is damaged or not the file it claims to be.",
        hint=_REDOWNLOAD,
        path=path,
    )


def read_bounded(path: Path, error: type[BllossomError], max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, refused when over ``max_bytes``.

    The file is opened without blocking (a FIFO would wait for a writer forever) and read
    with a limit, so a file that grows after the check cannot make the read unbounded.
    """
    check_regular_file(path, error, max_bytes=max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced since the check
                raise error(f"{path} is not a regular file.", path=path)
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(
            f"{path} cannot be read ({exc.strerror or exc}).",
            hint="Check that it is a readable file.",
            path=path,
            code=ErrorCode.FILE_UNREADABLE,
        ) from None
    if len(data) > max_bytes:
        raise _too_large(path, error, max_bytes)
    return data


def read_json(
    path: Path,
    error: type[BllossomError],
    *,
    required: bool = True,
    object_only: bool = True,
    max_bytes: int = MAX_JSON_BYTES,
) -> Any:
    """The parsed contents of ``path``; ``None`` when it is absent and not ``required``.

    ``object_only`` insists on a JSON object at the top level, which every file the
    converter reads has; anything else is reported instead of failing later on ``.get``.
    """
    if not required and not os.path.lexists(path):
        return None
    data = read_bounded(path, error, max_bytes)
    return parse_json(data, path, error, object_only=object_only)


def parse_json(
    data: bytes,
    path: Path,
    error: type[BllossomError],
    *,
    object_only: bool = True,
    what: str = "",
) -> Any:
    """``data`` parsed as JSON, nested at most :data:`MAX_JSON_DEPTH` deep.

    ``what`` names the part of ``path`` that ``data`` is ("the safetensors header"), if
    not all of it.
    """
    where = f"{what} of {path}" if what else str(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{where} is not UTF-8 text.", hint=_REDOWNLOAD, path=path) from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).",
            hint=_REDOWNLOAD,
            path=path,
        ) from None
    except RecursionError:
        raise _too_deep(where, error, path) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"{where} is not valid JSON ({exc}).", hint=_REDOWNLOAD, path=path) from None
    except MemoryError:
        raise error(
            f"{where} is too large to read into memory.", hint=_REDOWNLOAD, path=path
        ) from None
    if _depth_exceeds(parsed, MAX_JSON_DEPTH):
        raise _too_deep(where, error, path)
    if object_only and not isinstance(parsed, dict):
        raise error(
            f"{where} holds a JSON {json_type(parsed)} where a JSON object ({{...}}) is expected.",
            hint=_REDOWNLOAD,
            path=path,
        )
    return parsed


def _too_deep(where: str, error: type[BllossomError], path: Path) -> BllossomError:
    return error(
        f"{where} nests its JSON more than {MAX_JSON_DEPTH} levels deep; no real file of its "
        "kind does, so it is damaged or built to crash programs.",
        hint=_REDOWNLOAD,
        path=path,
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (no recursion: the value
    may be nearly as deep as Python's recursion limit)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def show_value(value: Any, limit: int = 40) -> str:
    """A short JSON rendering of a config value for a message (never recursion-deep)."""
    if isinstance(value, dict | list):
        return f"a JSON {json_type(value)}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        return f"a {len(str(abs(value)))}-digit number"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
