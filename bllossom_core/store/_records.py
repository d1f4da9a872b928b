"""The plain records the store hands out. Internal; re-exported by :mod:`bllossom_core.store`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from bllossom_core.types import GenerationSettings, Role

HIGHLIGHT_START = "[["
"""Marks the start of a search hit inside :attr:`SearchHit.snippet`."""
HIGHLIGHT_END = "]]"
"""Marks the end of a search hit inside :attr:`SearchHit.snippet`."""


@dataclass(frozen=True)
class Conversation:
    """One saved conversation. Times are Unix seconds (UTC)."""

    id: int
    title: str
    created_at: float
    updated_at: float
    model: str | None
    """The model the conversation was last used with (a GGUF path or a remote model id)."""
    template: str | None
    """The chat template name or Jinja source chosen for it, ``None`` for the model's own."""
    system_prompt: str | None
    settings: GenerationSettings
    active_leaf_id: int | None
    """The last message of the branch the user is looking at (``None`` when empty)."""
    deleted_at: float | None = None
    imported_at: float | None = None
    """When it was imported from an export file (its own times are the original ones),
    ``None`` for a conversation made here."""

    @property
    def deleted(self) -> bool:
        """Soft-deleted: hidden from lists, restorable until purged."""
        return self.deleted_at is not None

    @property
    def imported(self) -> bool:
        """Came from an export file (the sidebar may mark it)."""
        return self.imported_at is not None


@dataclass(frozen=True)
class Message:
    """One message in a conversation's tree of messages.

    Reply versions and edits are siblings: messages with the same ``parent_id``.
    ``sibling_index`` (0-based) and ``sibling_count`` say where this one sits among
    them, so the UI can show ``f"{sibling_index + 1}/{sibling_count}"``, and
    ``sibling_ids`` (oldest first) are what to pass to
    :meth:`ConversationStore.switch_version` for "previous" and "next".
    """

    id: int
    conversation_id: int
    parent_id: int | None
    role: Role
    text: str
    created_at: float
    updated_at: float
    prompt_tokens: int = 0
    generated_tokens: int = 0
    complete: bool = True
    """``False`` for a reply still streaming, or one cut off by a crash or an error."""
    stop_reason: str | None = None
    """``"stop"``, ``"length"`` or ``"cancelled"`` once a reply finished, else ``None``."""
    error: str | None = None
    """Why the reply failed (the partial text is kept), or ``None``."""
    sibling_index: int = 0
    sibling_count: int = 1
    sibling_ids: tuple[int, ...] = ()
    thinking: str = ""
    """A reasoning model's thinking before its answer (``text``); never sent back to the
    model, not searched unless asked for."""
    thinking_seconds: float | None = None
    """How long the model thought (first thinking piece to first answer piece), or
    ``None`` when it did not think."""
    dropped_messages: int = 0
    """How many of the oldest messages were left out of this reply's prompt because the
    conversation no longer fitted the context."""


@dataclass(frozen=True)
class SearchHit:
    """One message matching a search.

    ``snippet`` is an excerpt of the message with every match wrapped in
    :data:`HIGHLIGHT_START` / :data:`HIGHLIGHT_END` (``[[`` and ``]]``); ``excerpt``
    is the same text without markers and ``highlights`` gives the ``(start, end)``
    character ranges of the matches in ``excerpt``, for UIs that highlight by offset
    (safer when a message itself contains ``[[``).
    """

    conversation_id: int
    conversation_title: str
    message_id: int
    role: Role
    snippet: str
    excerpt: str
    highlights: tuple[tuple[int, int], ...]
    updated_at: float
    in_thinking: bool = False
    """The excerpt comes from the message's thinking (only with ``include_thinking``)."""


CONVERSATION_COLUMNS = (
    "id, title, created_at, updated_at, model, template, system_prompt, settings_json, "
    "active_leaf_id, deleted_at, imported_at"
)
MESSAGE_COLUMNS = (
    "id, conversation_id, parent_id, role, text, created_at, updated_at, prompt_tokens, "
    "generated_tokens, complete, stop_reason, error, thinking, thinking_seconds, dropped_messages"
)


def conversation_from_row(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model=row["model"],
        template=row["template"],
        system_prompt=row["system_prompt"],
        settings=GenerationSettings.from_dict(json.loads(row["settings_json"] or "{}")),
        active_leaf_id=row["active_leaf_id"],
        deleted_at=row["deleted_at"],
        imported_at=row["imported_at"],
    )


def message_from_row(row: sqlite3.Row, sibling_ids: tuple[int, ...] | None = None) -> Message:
    siblings = sibling_ids if sibling_ids is not None else (row["id"],)
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        parent_id=row["parent_id"],
        role=row["role"],
        text=row["text"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        prompt_tokens=row["prompt_tokens"],
        generated_tokens=row["generated_tokens"],
        complete=bool(row["complete"]),
        stop_reason=row["stop_reason"],
        error=row["error"],
        sibling_index=siblings.index(row["id"]),
        sibling_count=len(siblings),
        sibling_ids=siblings,
        thinking=row["thinking"],
        thinking_seconds=row["thinking_seconds"],
        dropped_messages=row["dropped_messages"],
    )
