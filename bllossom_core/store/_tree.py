"""Queries over a conversation's tree of messages. Internal to the store.

Each message points at its parent; siblings (same parent) are versions of one turn,
oldest first. A conversation shows one branch: the path from a root to its active leaf.
"""

from __future__ import annotations

import sqlite3

from bllossom_core.errors import StorageError
from bllossom_core.store._records import MESSAGE_COLUMNS, Message, message_from_row

_MAX_DEPTH = 1_000_000  # far beyond any real conversation; stops a loop in a damaged file


def require_conversation(conn: sqlite3.Connection, conversation_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, title, active_leaf_id FROM conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    if row is None:
        raise StorageError(f"Conversation {conversation_id} no longer exists.")
    return row


def message_row(conn: sqlite3.Connection, message_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    if row is None:
        raise StorageError(f"Message {message_id} no longer exists.")
    return row


def load_message(conn: sqlite3.Connection, message_id: int) -> Message:
    row = message_row(conn, message_id)
    return message_from_row(row, sibling_ids(conn, row))


def sibling_ids(conn: sqlite3.Connection, row: sqlite3.Row) -> tuple[int, ...]:
    siblings = conn.execute(
        "SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS ? ORDER BY id",
        (row["conversation_id"], row["parent_id"]),
    ).fetchall()
    return tuple(s["id"] for s in siblings)


def path_to(conn: sqlite3.Connection, leaf: int | None, conversation_id: int) -> list[Message]:
    """The messages from the root down to ``leaf`` (inclusive), with version info."""
    path: list[Message] = []
    next_id = leaf
    while next_id is not None:
        row = conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (next_id,)
        ).fetchone()
        if row is None or row["conversation_id"] != conversation_id:
            raise StorageError(f"Message {next_id} is not in conversation {conversation_id}.")
        if len(path) > _MAX_DEPTH:
            raise StorageError(f"Conversation {conversation_id} has a broken thread.")
        path.append(message_from_row(row, sibling_ids(conn, row)))
        next_id = row["parent_id"]
    path.reverse()
    return path


def newest_leaf_below(conn: sqlite3.Connection, message_id: int) -> int:
    """Follow the most recently written child down from ``message_id`` to a leaf."""
    leaf = message_id
    for _ in range(_MAX_DEPTH):
        child = conn.execute(
            "SELECT id FROM messages WHERE parent_id = ? ORDER BY updated_at DESC, id DESC LIMIT 1",
            (leaf,),
        ).fetchone()
        if child is None:
            break
        leaf = child["id"]
    return leaf
