"""The one reader for the JSON files of a checkpoint (config, shard index, tokenizer files).

Every failure becomes a one-line error of the caller's class that names the file, says
what is wrong with it and what to do, so the user never sees a decoder traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bllossom_core.errors import BllossomError

_REDOWNLOAD = "Download it again, or fix it in a text editor."


def read_json(
    path: Path, error: type[BllossomError], *, required: bool = True, object_only: bool = True
) -> Any:
    """The parsed contents of ``path``; ``None`` when it is absent and not ``required``.

    ``object_only`` insists on a JSON object at the top level, which every file the
    converter reads has; anything else is reported instead of failing later on ``.get``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not required:
            return None
        raise error(
            f"{path} is missing.", hint="Download it with the rest of the model.", path=path
        ) from None
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text.", hint=_REDOWNLOAD, path=path) from None
    except OSError as exc:
        raise error(
            f"{path} cannot be read ({exc.strerror or exc}).",
            hint="Check that it is a readable file.",
            path=path,
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).",
            hint=_REDOWNLOAD,
            path=path,
        ) from None
    if object_only and not isinstance(data, dict):
        raise error(
            f"{path} holds a JSON {json_type(data)} where a JSON object ({{...}}) is expected.",
            hint=_REDOWNLOAD,
            path=path,
        )
    return data


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
