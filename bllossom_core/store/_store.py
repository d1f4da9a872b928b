"""The conversation store: conversations, their tree of messages, streamed replies."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from bllossom_core import paths
from bllossom_core.errors import StorageError
from bllossom_core.store import _exchange, _markdown, _search, _tree, _writes
from bllossom_core.store._errors import translate_errors
from bllossom_core.store._records import (
    CONVERSATION_COLUMNS,
    Conversation,
    Message,
    SearchHit,
    conversation_from_row,
)
from bllossom_core.store._reply import DEFAULT_CHECKPOINT_INTERVAL_S, ReplyDraft, ReplyWriter
from bllossom_core.store._schema import connect, move_aside, transaction
from bllossom_core.store._writes import UNSET as _UNSET
from bllossom_core.store._writes import clean
from bllossom_core.types import ChatMessage, GenerationSettings, Role

DEFAULT_PURGE_AGE_S = 30 * 24 * 3600.0


class ConversationStore:
    """Saved conversations in one SQLite file (``paths.database_path()`` by default).

    Thread safety: one connection guarded by a lock, so a store may be shared by the
    GUI thread and a worker thread (e.g. one streaming a reply through a
    :class:`ReplyWriter`); every method is one short transaction. Several processes
    may open the same file (WAL mode; a writer waits up to ``busy_timeout_s``).

    Durability: WAL with ``synchronous=FULL``; every method commits before it returns,
    streamed replies are checkpointed by :class:`ReplyWriter`.

    Errors: failures of the disk or the file (full, read-only, locked, damaged) raise
    :class:`~bllossom_core.errors.StorageError` (:class:`DiskFullError` when full) with
    a message for the user; a damaged file is never modified, see :meth:`move_aside`.
    An unknown conversation or message id raises ``StorageError`` too (the UI may
    hold a stale id after a purge from another window).

    Times are Unix seconds (UTC), from ``clock`` (``time.time``).
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        busy_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(path) if path is not None else paths.database_path()
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = connect(self.path, busy_timeout_s=busy_timeout_s)

    # -- plumbing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, translate_errors(self.path):
            if self._conn is None:
                raise RuntimeError("the conversation store is closed")
            yield self._conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._reading() as conn, transaction(conn):
            yield conn

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def move_aside(path: Path | str | None = None) -> Path:
        """Rename a damaged database out of the way so a new one can be created.

        Call it only when the user chose to (after a ``StorageError`` saying the file
        is damaged); nothing is deleted. Returns where the old file went.
        """
        target = Path(path) if path is not None else paths.database_path()
        try:
            return move_aside(target)
        except OSError as error:
            raise StorageError(
                f"Could not move the damaged database {target} aside: {error.strerror}.",
                hint="Move or rename it yourself, then restart Bllossom.",
                path=target,
            ) from error

    # -- conversations ----------------------------------------------------------------

    def create_conversation(
        self,
        title: str = "",
        *,
        model: str | None = None,
        template: str | None = None,
        system_prompt: str | None = None,
        settings: GenerationSettings | None = None,
    ) -> Conversation:
        """A new, empty conversation. An empty title is filled from the first user message."""
        now = self._clock()
        settings_json = json.dumps((settings or GenerationSettings()).to_dict())
        with self._writing() as conn:
            cursor = conn.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model, template, "
                "system_prompt, settings_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    clean(title),
                    now,
                    now,
                    clean(model),
                    clean(template),
                    clean(system_prompt),
                    settings_json,
                ),
            )
            conversation_id = cursor.lastrowid
        assert conversation_id is not None
        return self.get_conversation(conversation_id)

    def get_conversation(self, conversation_id: int) -> Conversation:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                (conversation_id,),
            ).fetchone()
        if row is None:
            raise StorageError(f"Conversation {conversation_id} no longer exists.")
        return conversation_from_row(row)

    def list_conversations(
        self, *, deleted: bool = False, limit: int | None = None
    ) -> list[Conversation]:
        """Conversations, most recently updated first; ``deleted=True`` lists the trash."""
        condition = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {condition} "
                "ORDER BY updated_at DESC, id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [conversation_from_row(row) for row in rows]

    def rename_conversation(self, conversation_id: int, title: str) -> Conversation:
        return self.update_conversation(conversation_id, title=title)

    def update_conversation(
        self,
        conversation_id: int,
        *,
        title: str = _UNSET,
        model: str | None = _UNSET,
        template: str | None = _UNSET,
        system_prompt: str | None = _UNSET,
        settings: GenerationSettings = _UNSET,
    ) -> Conversation:
        """Change the given fields (the others keep their values) and bump ``updated_at``."""
        changes: dict[str, Any] = {
            "title": title,
            "model": model,
            "template": template,
            "system_prompt": system_prompt,
        }
        if settings is not _UNSET:
            changes["settings_json"] = json.dumps(settings.to_dict())
        changes = {column: clean(value) for column, value in changes.items() if value is not _UNSET}
        changes["updated_at"] = self._clock()
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._writing() as conn:
            _tree.require_conversation(conn, conversation_id)
            conn.execute(
                f"UPDATE conversations SET {assignments} WHERE id = ?",
                (*changes.values(), conversation_id),
            )
        return self.get_conversation(conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        """Move a conversation to the trash; :meth:`restore_conversation` undoes it."""
        with self._writing() as conn:
            _tree.require_conversation(conn, conversation_id)
            conn.execute(
                "UPDATE conversations SET deleted_at = ? WHERE id = ?",
                (self._clock(), conversation_id),
            )

    def restore_conversation(self, conversation_id: int) -> Conversation:
        with self._writing() as conn:
            _tree.require_conversation(conn, conversation_id)
            conn.execute(
                "UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,)
            )
        return self.get_conversation(conversation_id)

    def purge_deleted(self, older_than_s: float = DEFAULT_PURGE_AGE_S) -> int:
        """Erase conversations in the trash for longer than ``older_than_s``; returns how many."""
        cutoff = self._clock() - older_than_s
        with self._writing() as conn:
            cursor = conn.execute(
                "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                (cutoff,),
            )
        return cursor.rowcount

    # -- messages ---------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        text: str,
        *,
        parent_id: int | None = _UNSET,
        prompt_tokens: int = 0,
        generated_tokens: int = 0,
    ) -> Message:
        """Save a finished message as a child of ``parent_id`` (default: the active leaf).

        It becomes the active leaf. Giving the parent of an existing message adds a
        sibling version of it.
        """
        with self._writing() as conn:
            message_id = _writes.insert_message(
                conn, conversation_id, role, text, parent_id, complete=True, now=self._clock()
            )
            conn.execute(
                "UPDATE messages SET prompt_tokens = ?, generated_tokens = ? WHERE id = ?",
                (prompt_tokens, generated_tokens, message_id),
            )
        return self.get_message(message_id)

    def edit_message(self, message_id: int, text: str) -> Message:
        """Save an edited message as a new sibling; the old one and its replies are kept."""
        original = self.get_message(message_id)
        return self.add_message(
            original.conversation_id, original.role, text, parent_id=original.parent_id
        )

    def start_reply(
        self,
        conversation_id: int,
        parent_id: int | None = _UNSET,
        *,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    ) -> ReplyWriter:
        """Begin saving a streamed assistant reply under ``parent_id`` (default: active leaf).

        The empty, incomplete reply is committed at once and becomes the active leaf;
        if ``parent_id`` already has replies, this one is a new version beside them.
        """
        with self._writing() as conn:
            message_id = _writes.insert_message(
                conn, conversation_id, "assistant", "", parent_id, complete=False, now=self._clock()
            )
        return ReplyWriter(self.get_message(message_id), self._save_reply, checkpoint_interval_s)

    def regenerate(
        self,
        message_id: int,
        *,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    ) -> ReplyWriter:
        """Start a new version of the assistant reply ``message_id``; the old one is kept."""
        original = self.get_message(message_id)
        if original.role != "assistant":
            raise ValueError(f"message {message_id} is a {original.role} message, not a reply")
        return self.start_reply(
            original.conversation_id,
            original.parent_id,
            checkpoint_interval_s=checkpoint_interval_s,
        )

    def continue_reply(
        self,
        message_id: int,
        *,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    ) -> ReplyWriter:
        """Reopen the assistant reply ``message_id`` to append more to it (a reply that
        reached the length limit); it is flagged incomplete until finished again."""
        original = self.get_message(message_id)
        if original.role != "assistant":
            raise ValueError(f"message {message_id} is a {original.role} message, not a reply")
        with self._writing() as conn:
            conn.execute(
                "UPDATE messages SET complete = 0, stop_reason = NULL, error = NULL WHERE id = ?",
                (message_id,),
            )
        return ReplyWriter(self.get_message(message_id), self._save_reply, checkpoint_interval_s)

    def get_message(self, message_id: int) -> Message:
        with self._reading() as conn:
            return _tree.load_message(conn, message_id)

    def thread(self, conversation_id: int) -> list[Message]:
        """The branch being viewed, first message to active leaf, with version info."""
        with self._reading() as conn:
            leaf = _tree.require_conversation(conn, conversation_id)["active_leaf_id"]
            return _tree.path_to(conn, leaf, conversation_id)

    def chat_messages(self, conversation_id: int, up_to: int | None = None) -> list[ChatMessage]:
        """The system prompt and a branch, ready for an engine's ``stream_chat``.

        The branch ends at message ``up_to`` (inclusive), by default at the active leaf.
        For a reply being written pass ``up_to=writer.parent_id``: the prompt then
        leaves out the reply itself (and, when regenerating, the old version). Assistant
        messages without text are left out, except the last message of the branch.
        A reasoning model's thinking is never included, only what it answered.
        """
        conversation = self.get_conversation(conversation_id)
        messages = []
        if conversation.system_prompt:
            messages.append(ChatMessage("system", conversation.system_prompt))
        if up_to is None:
            branch = self.thread(conversation_id)
        else:
            with self._reading() as conn:
                branch = _tree.path_to(conn, up_to, conversation_id)
        # An empty reply (failed or stopped before its first word) says nothing and would
        # only confuse the template and the model. The last one stays: it is the reply
        # being written or retried, which callers cut off by position.
        messages.extend(
            ChatMessage(m.role, m.text)
            for m in branch
            if m.text or m.role != "assistant" or m is branch[-1]
        )
        return messages

    def switch_version(self, message_id: int) -> list[Message]:
        """Show the branch through ``message_id`` (a sibling version); returns the new thread.

        Below it, the most recently written version of each later message is shown.
        """
        with self._writing() as conn:
            conversation_id = _tree.message_row(conn, message_id)["conversation_id"]
            conn.execute(
                "UPDATE conversations SET active_leaf_id = ? WHERE id = ?",
                (_tree.newest_leaf_below(conn, message_id), conversation_id),
            )
        return self.thread(conversation_id)

    # -- search, export, import -------------------------------------------------------

    def search(
        self, query: str, limit: int = 50, *, include_thinking: bool = False
    ) -> list[SearchHit]:
        """Messages containing ``query`` (case-insensitive), newest first; Korean works.

        Only what was said is searched; a reasoning model's thinking too when
        ``include_thinking`` (the hit's snippet then comes from wherever it matched).
        Deleted conversations are left out. Every version of every message is searched,
        so a hit may lie on a branch that is not shown: ``switch_version(hit.message_id)``
        shows it. See :class:`SearchHit` for the snippet format.
        """
        with self._reading() as conn:
            return _search.search(conn, query, limit, include_thinking=include_thinking)

    def export_json(self, conversation_ids: list[int] | None = None) -> str:
        """A JSON document with the conversations (all non-deleted ones by default),
        every message of every branch (with its thinking) included; :meth:`import_json`
        reads it back. A model file is named without its folder."""
        with self._reading() as conn:
            return _exchange.export_json(conn, conversation_ids, self._clock())

    def export_markdown(
        self, conversation_ids: list[int] | None = None, *, language: str = "en"
    ) -> str:
        """Markdown of the viewed branch of each conversation, for reading and sharing.

        Headings and labels are in ``language`` (``"en"`` or ``"ko"``, see
        :data:`EXPORT_LANGUAGES`); thinking is a collapsed "Thinking" section before the
        answer; a model file is named without its folder.
        """
        labels = _markdown.labels_for(language)
        ids = conversation_ids
        if ids is None:
            ids = [c.id for c in reversed(self.list_conversations())]
        return "\n\n---\n\n".join(
            _markdown.conversation_markdown(self.get_conversation(i), self.thread(i), labels)
            for i in ids
        )

    def import_json(self, document: str) -> list[int]:
        """Add the conversations of an :meth:`export_json` document as new ones.

        Everything (branches, thinking, original times, token counts, flags) is kept;
        ids are new and each conversation is marked imported (``imported_at`` is now).
        Returns the new conversation ids. A malformed document raises ``InputError``.
        """
        with self._writing() as conn:
            return _exchange.import_json(conn, document, self._clock())

    def export_file(
        self,
        path: Path | str,
        conversation_ids: list[int] | None = None,
        *,
        overwrite: bool = False,
        language: str = "en",
    ) -> Path:
        """Write :meth:`export_markdown` (``.md``) or :meth:`export_json` (else) to ``path``.

        ``~`` is expanded. An existing file is refused (``StorageError``) unless
        ``overwrite`` (e.g. after the user confirmed it); the database itself and its
        ``-wal``/``-shm`` files always are. ``language`` is the Markdown's.
        """
        target = Path(path).expanduser()
        self._refuse_database_file(target)
        if target.suffix.lower() in (".md", ".markdown"):
            content = self.export_markdown(conversation_ids, language=language)
        else:
            content = self.export_json(conversation_ids)
        _exchange.write_export(target, content, overwrite=overwrite)
        return target

    # -- internals --------------------------------------------------------------------

    def _refuse_database_file(self, target: Path) -> None:
        database = self.path.expanduser().resolve()
        protected = {database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")}
        if target.resolve() in protected:
            raise StorageError(
                f"{target} is the conversation database itself; exporting there would destroy it.",
                hint="Choose another file name.",
                path=target,
            )

    def _save_reply(self, message_id: int, draft: ReplyDraft) -> Message:
        with self._writing() as conn:
            _writes.save_reply(conn, message_id, draft, self._clock())
        return self.get_message(message_id)
