"""Export to Markdown/JSON and lossless JSON import. Internal; see ConversationStore."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bllossom_core.errors import DiskFullError, InputError, StorageError
from bllossom_core.store._records import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    Conversation,
    Message,
)

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
_ROLE_HEADINGS = {"system": "System", "user": "User", "assistant": "Assistant"}


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
        item["settings"] = json.loads(row["settings_json"] or "{}")
        item["active_leaf_id"] = row["active_leaf_id"]
        messages = conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
            (row["id"],),
        ).fetchall()
        item["messages"] = [
            {"id": m["id"], "parent_id": m["parent_id"]}
            | {name: m[name] for name in _MESSAGE_FIELDS}
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


def import_json(conn: sqlite3.Connection, document: str) -> list[int]:
    try:
        data = json.loads(document)
    except json.JSONDecodeError as error:
        raise InputError(f"The file is not valid JSON ({error}).") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise InputError("The file is not a Bllossom conversation export.")
    if not isinstance(data.get("version"), int) or data["version"] > FORMAT_VERSION:
        raise InputError(
            "The export was made by a newer Bllossom.", hint="Update Bllossom to import it."
        )
    try:
        return [_import_conversation(conn, item) for item in data["conversations"]]
    except (KeyError, TypeError, ValueError, sqlite3.IntegrityError) as error:
        raise InputError(f"The conversation export is damaged ({error!r}).") from error


def _import_conversation(conn: sqlite3.Connection, item: dict[str, Any]) -> int:
    values = [item[name] for name in _CONVERSATION_FIELDS]
    cursor = conn.execute(
        f"INSERT INTO conversations ({', '.join(_CONVERSATION_FIELDS)}, settings_json) "
        f"VALUES ({', '.join('?' * (len(_CONVERSATION_FIELDS) + 1))})",
        (*values, json.dumps(item.get("settings") or {})),
    )
    conversation_id = cursor.lastrowid
    new_ids: dict[int, int] = {}
    # In id order, which keeps the order of sibling versions; a parent is always older
    # than its children.
    for message in sorted(item["messages"], key=lambda m: int(m["id"])):
        parent_id = message["parent_id"]
        if parent_id is not None and parent_id not in new_ids:
            raise ValueError(f"message {message['id']} comes before its parent {parent_id}")
        cursor = conn.execute(
            f"INSERT INTO messages (conversation_id, parent_id, {', '.join(_MESSAGE_FIELDS)}) "
            f"VALUES ({', '.join('?' * (len(_MESSAGE_FIELDS) + 2))})",
            (
                conversation_id,
                new_ids[parent_id] if parent_id is not None else None,
                *(message[name] for name in _MESSAGE_FIELDS),
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


def conversation_markdown(conversation: Conversation, thread: list[Message]) -> str:
    lines = [f"# {conversation.title or 'Untitled conversation'}", ""]
    created = datetime.fromtimestamp(conversation.created_at, timezone.utc)
    details = [f"Created {created:%Y-%m-%d %H:%M} UTC"]
    if conversation.model:
        details.append(f"model `{conversation.model}`")
    lines += ["_" + ", ".join(details) + "_", ""]
    if conversation.system_prompt:
        lines += ["## System", "", conversation.system_prompt, ""]
    for message in thread:
        heading = _ROLE_HEADINGS.get(message.role, message.role)
        if message.sibling_count > 1:
            heading += f" (version {message.sibling_index + 1} of {message.sibling_count})"
        lines += [f"## {heading}", "", message.text, ""]
        if message.error:
            lines += [f"> Reply interrupted: {message.error}", ""]
        elif not message.complete:
            lines += ["> Reply incomplete.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_text_atomically(path: Path, content: str, *, overwrite: bool = False) -> None:
    """Write via a temporary file and rename, so a failure never leaves half a file.

    An existing file is refused unless ``overwrite``; a folder always is. The new file
    gets the usual permissions (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
    """
    if path.is_dir():
        raise StorageError(
            f"{path} is a folder.", hint=f"Give a file name, e.g. {path / 'chat.md'}.", path=path
        )
    if path.exists() and not overwrite:
        raise StorageError(
            f"{path} already exists; it was left unchanged.",
            hint="Choose another file name.",
            path=path,
        )
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(content)
            stream.flush()
            os.chmod(stream.fileno(), _new_file_mode(path))
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise DiskFullError(
                f"The disk is full; {path} was not written.",
                hint="Free some space and retry.",
                path=path,
            ) from error
        if error.errno == errno.EISDIR:
            raise StorageError(
                f"{path} is a folder.", hint="Give a file name.", path=path
            ) from error
        raise StorageError(
            f"Could not write {path}: {error.strerror}.",
            hint="Choose a folder you can write to.",
            path=path,
        ) from error
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _new_file_mode(path: Path) -> int:
    """An overwritten file keeps its mode; a new one gets what ``open()`` would give it."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)  # the only portable way to read it
    os.umask(umask)
    return 0o666 & ~umask
