"""JSON export, lossless JSON import, writing export files. Internal; see
ConversationStore (the Markdown export is in ``_markdown``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from bllossom_core.errors import ErrorCode, InputError, StorageError
from bllossom_core.fileio import atomic_write_text, storage_error
from bllossom_core.store._markdown import model_file_name
from bllossom_core.store._records import CONVERSATION_COLUMNS, MESSAGE_COLUMNS
from bllossom_core.store._search import search_copy
from bllossom_core.store._writes import clean

FORMAT_NAME = "bllossom-conversations"
FORMAT_VERSION = 1

_CONVERSATION_FIELDS = (
    "title",
    "created_at",
    "updated_at",
    "model",
    "template",
    "system_prompt",
    "deleted_at",
)
_MESSAGE_FIELDS = (
    "role", "text", "created_at", "updated_at", "prompt_tokens", "generated_tokens",
    "complete", "stop_reason", "error",
)  # fmt: skip
_OPTIONAL_MESSAGE_FIELDS = {"thinking": "", "thinking_seconds": None, "dropped_messages": 0}
"""Added later: exports from older versions lack them."""
_TEXT_FIELDS = frozenset({"title", "model", "template", "system_prompt", "text", "error"})


def export_json(conn: sqlite3.Connection, ids: list[int] | None, now: float) -> str:
    if ids is None:
        rows = conn.execute(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE deleted_at IS NULL ORDER BY id"
        ).fetchall()
    else:
        rows = [
            row
            for i in ids
            for row in conn.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (i,)
            ).fetchall()
        ]
    conversations = []
    for row in rows:
        item: dict[str, Any] = {"id": row["id"]}
        item.update({name: row[name] for name in _CONVERSATION_FIELDS})
        item["model"] = model_file_name(row["model"])
        item["imported_at"] = row["imported_at"]
        item["settings"] = json.loads(row["settings_json"] or "{}")
        item["active_leaf_id"] = row["active_leaf_id"]
        messages = conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
            (row["id"],),
        ).fetchall()
        item["messages"] = [
            {"id": m["id"], "parent_id": m["parent_id"]}
            | {name: m[name] for name in (*_MESSAGE_FIELDS, *_OPTIONAL_MESSAGE_FIELDS)}
            | {"complete": bool(m["complete"])}
            for m in messages
        ]
        conversations.append(item)
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "exported_at": now,
        "conversations": conversations,
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def import_json(conn: sqlite3.Connection, document: str, now: float) -> list[int]:
    try:
        data = json.loads(document)
    except json.JSONDecodeError as error:
        raise InputError(
            f"The file is not valid JSON ({error}).", code=ErrorCode.IMPORT_INVALID
        ) from error
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise InputError(
            "The file is not a Bllossom conversation export.", code=ErrorCode.IMPORT_INVALID
        )
    if not isinstance(data.get("version"), int) or data["version"] > FORMAT_VERSION:
        raise InputError(
            "The export was made by a newer Bllossom.",
            hint="Update Bllossom to import it.",
            code=ErrorCode.IMPORT_INVALID,
        )
    try:
        return [_import_conversation(conn, item, now) for item in data["conversations"]]
    except (KeyError, TypeError, ValueError, sqlite3.IntegrityError) as error:
        raise InputError(
            f"The conversation export is damaged ({error!r}).", code=ErrorCode.IMPORT_INVALID
        ) from error


def _checked(name: str, value: Any) -> Any:
    """A field's value from the document, with text made valid Unicode."""
    if name in _TEXT_FIELDS and value is not None:
        if not isinstance(value, str):
            raise TypeError(f"{name} is not text")
        return clean(value)
    return value


def _import_conversation(conn: sqlite3.Connection, item: dict[str, Any], now: float) -> int:
    """One conversation, with its original times, marked as imported ``now``."""
    values = [_checked(name, item[name]) for name in _CONVERSATION_FIELDS]
    cursor = conn.execute(
        f"INSERT INTO conversations ({', '.join(_CONVERSATION_FIELDS)}, settings_json, "
        f"imported_at) VALUES ({', '.join('?' * (len(_CONVERSATION_FIELDS) + 2))})",
        (*values, json.dumps(item.get("settings") or {}), now),
    )
    conversation_id = cursor.lastrowid
    new_ids: dict[int, int] = {}
    # In id order, which keeps the order of sibling versions; a parent is always older
    # than its children.
    for message in sorted(item["messages"], key=lambda m: int(m["id"])):
        parent_id = message["parent_id"]
        if parent_id is not None and parent_id not in new_ids:
            raise ValueError(f"message {message['id']} comes before its parent {parent_id}")
        fields = {name: _checked(name, message[name]) for name in _MESSAGE_FIELDS}
        for name, default in _OPTIONAL_MESSAGE_FIELDS.items():
            fields[name] = message.get(name, default)
        thinking = fields["thinking"]
        if not isinstance(thinking, str):
            raise TypeError("thinking is not text")
        fields["thinking"] = clean(thinking)
        dropped = fields["dropped_messages"]
        if not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
            raise TypeError("dropped_messages is not a count")
        fields["text_search"] = search_copy(fields["text"])
        fields["thinking_search"] = search_copy(fields["thinking"])
        cursor = conn.execute(
            f"INSERT INTO messages (conversation_id, parent_id, {', '.join(fields)}) "
            f"VALUES ({', '.join('?' * (len(fields) + 2))})",
            (
                conversation_id,
                new_ids[parent_id] if parent_id is not None else None,
                *fields.values(),
            ),
        )
        assert cursor.lastrowid is not None
        new_ids[int(message["id"])] = cursor.lastrowid
    leaf = item.get("active_leaf_id")
    conn.execute(
        "UPDATE conversations SET active_leaf_id = ? WHERE id = ?",
        (new_ids[leaf] if leaf is not None else None, conversation_id),
    )
    assert conversation_id is not None
    return conversation_id


def write_export(path: Path, content: str, *, overwrite: bool = False) -> None:
    """Write an export with :mod:`bllossom_core.fileio`'s atomic writer (never half a
    file; an existing file only with ``overwrite``), creating its folder if needed."""
    if path.is_dir():
        raise StorageError(
            f"{path} is a folder.", hint=f"Give a file name, e.g. {path / 'chat.md'}.", path=path
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise storage_error(error, path) from error
    atomic_write_text(path, content, overwrite=overwrite)
