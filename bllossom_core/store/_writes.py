"""Writing message rows. Internal to the store.

Every string is made valid Unicode before SQLite sees it (:func:`valid_text`): a lone
surrogate from a server's JSON or an undecodable command-line byte would otherwise
make the write fail and lose the whole reply. Text holding a NUL also gets a NUL-free
copy for the search index (see the version-3 migration).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from bllossom_core._utf8 import valid_text
from bllossom_core.store import _tree
from bllossom_core.store._reply import ReplyDraft
from bllossom_core.store._search import search_copy
from bllossom_core.types import Role

_TITLE_LENGTH = 40
UNSET: Any = object()


def clean(text: str | None) -> str | None:
    """``text`` as valid Unicode (``None`` stays ``None``)."""
    return None if text is None else valid_text(text)


def insert_message(
    conn: sqlite3.Connection,
    conversation_id: int,
    role: Role,
    text: str,
    parent_id: int | None,
    *,
    complete: bool,
    now: float,
) -> int:
    """Add a message under ``parent_id`` (``UNSET``: the active leaf) and make it the
    active leaf; an untitled conversation is named after its first user message."""
    text = valid_text(text)
    conversation = _tree.require_conversation(conn, conversation_id)
    if parent_id is UNSET:
        parent_id = conversation["active_leaf_id"]
    elif parent_id is not None:
        parent = conn.execute(
            "SELECT conversation_id FROM messages WHERE id = ?", (parent_id,)
        ).fetchone()
        if parent is None or parent["conversation_id"] != conversation_id:
            raise ValueError(f"message {parent_id} is not in conversation {conversation_id}")
    cursor = conn.execute(
        "INSERT INTO messages (conversation_id, parent_id, role, text, text_search, "
        "created_at, updated_at, complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (conversation_id, parent_id, role, text, search_copy(text), now, now, int(complete)),
    )
    message_id = cursor.lastrowid
    title = conversation["title"]
    if not title and role == "user" and text.strip():
        title = text.strip().splitlines()[0][:_TITLE_LENGTH]
    conn.execute(
        "UPDATE conversations SET active_leaf_id = ?, updated_at = ?, title = ? WHERE id = ?",
        (message_id, now, title, conversation_id),
    )
    assert message_id is not None
    return message_id


def save_reply(conn: sqlite3.Connection, message_id: int, draft: ReplyDraft, now: float) -> None:
    """Write a streamed reply's current state (see :class:`ReplyWriter`)."""
    text, thinking = valid_text(draft.text), valid_text(draft.thinking)
    conn.execute(
        "UPDATE messages SET text = ?, text_search = ?, thinking = ?, thinking_search = ?, "
        "thinking_seconds = ?, updated_at = ?, complete = ?, error = ? WHERE id = ?",
        (
            text,
            search_copy(text),
            thinking,
            search_copy(thinking),
            draft.thinking_seconds,
            now,
            int(draft.complete),
            clean(draft.error),
            message_id,
        ),
    )
    stats = draft.stats
    if stats is not None:
        conn.execute(
            "UPDATE messages SET prompt_tokens = ?, generated_tokens = ?, "
            "stop_reason = ?, dropped_messages = ? WHERE id = ?",
            (
                stats.prompt_tokens,
                stats.generated_tokens,
                stats.stop_reason,
                stats.dropped_messages,
                message_id,
            ),
        )
    if draft.complete or draft.error is not None:
        conn.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = "
            "(SELECT conversation_id FROM messages WHERE id = ?)",
            (now, message_id),
        )
