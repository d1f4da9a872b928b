"""Opening the conversation database: pragmas, schema migrations, error translation.

Internal to :mod:`bllossom_core.store`. The schema version lives in
``PRAGMA user_version``; :data:`MIGRATIONS` lists the steps from version 0 (an empty
file) upwards, and a database is always brought to :data:`SCHEMA_VERSION` in one
transaction when it is opened. A database written by a *newer* Bllossom is refused
rather than guessed at.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bllossom_core.errors import ErrorCode, StorageError
from bllossom_core.store._errors import is_a_folder, translate_errors
from bllossom_core.store._search import search_copy

# Version 1: one linear list of messages per conversation (no reply versions, no search).
_V1 = """
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    title         TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    model         TEXT,
    system_prompt TEXT,
    settings_json TEXT NOT NULL DEFAULT '{}',
    deleted_at    REAL
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    text            TEXT NOT NULL DEFAULT '',
    created_at      REAL NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
"""

# Version 2: messages form a tree (reply versions and edited branches), carry token
# counts and a completion flag for streamed replies, and are searchable with FTS5.
_V2 = """
ALTER TABLE conversations ADD COLUMN template TEXT;
ALTER TABLE conversations ADD COLUMN active_leaf_id INTEGER;
ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE;
ALTER TABLE messages ADD COLUMN updated_at REAL;
ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN generated_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN stop_reason TEXT;
ALTER TABLE messages ADD COLUMN error TEXT;

-- A v1 conversation is one chain: each message's parent is the one before it.
UPDATE messages SET updated_at = created_at,
    parent_id = (SELECT MAX(p.id) FROM messages AS p
                 WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id);
UPDATE conversations SET active_leaf_id =
    (SELECT MAX(m.id) FROM messages AS m WHERE m.conversation_id = conversations.id);
CREATE INDEX messages_by_parent ON messages(conversation_id, parent_id);
CREATE INDEX conversations_by_update ON conversations(updated_at);

CREATE VIRTUAL TABLE messages_fts USING fts5(
    text, content='messages', content_rowid='id', tokenize='trigram'
);
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
END;
"""

# Version 3: reasoning models' thinking is kept beside the answer (searchable on
# request), imported conversations are marked, and text after a NUL is searchable.
# FTS5's trigram tokenizer stops at a NUL and SQLite's replace() cannot match one, so
# the store writes a NUL-free copy into *_search only for the rare text that has one.
_V3 = """
ALTER TABLE messages ADD COLUMN thinking TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN thinking_seconds REAL;
ALTER TABLE messages ADD COLUMN text_search TEXT;
ALTER TABLE messages ADD COLUMN thinking_search TEXT;
ALTER TABLE conversations ADD COLUMN imported_at REAL;

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
CREATE VIEW messages_searchable AS
    SELECT id, coalesce(text_search, text) AS text,
           coalesce(thinking_search, thinking) AS thinking
    FROM messages;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    text, thinking, content='messages_searchable', content_rowid='id', tokenize='trigram'
);
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text, thinking) VALUES (
        new.id, coalesce(new.text_search, new.text),
        coalesce(new.thinking_search, new.thinking));
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text, thinking) VALUES (
        'delete', old.id, coalesce(old.text_search, old.text),
        coalesce(old.thinking_search, old.thinking));
END;
CREATE TRIGGER messages_fts_update
AFTER UPDATE OF text, thinking, text_search, thinking_search ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text, thinking) VALUES (
        'delete', old.id, coalesce(old.text_search, old.text),
        coalesce(old.thinking_search, old.thinking));
    INSERT INTO messages_fts(rowid, text, thinking) VALUES (
        new.id, coalesce(new.text_search, new.text),
        coalesce(new.thinking_search, new.thinking));
END;
"""

# Version 4: how many of the oldest messages a reply had to leave out because the
# conversation no longer fitted the model's context (the app shows it under the reply).
_V4 = """
ALTER TABLE messages ADD COLUMN dropped_messages INTEGER NOT NULL DEFAULT 0;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
"""``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``.

    The connection is in autocommit mode: callers group writes with :func:`transaction`.
    """
    with translate_errors(path, f"the conversation database {path} could not be opened"):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise is_a_folder(path)
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
        try:
            conn.row_factory = sqlite3.Row
            _refuse_newer_schema(conn, path)  # before WAL mode rewrites the file header
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            _migrate(conn, path)
        except BaseException:
            conn.close()
            raise
    return conn


def _refuse_newer_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"The conversation database {path} was written by a newer Bllossom "
            f"(schema {version}; this version knows up to {SCHEMA_VERSION}).",
            hint="Update Bllossom to open it; the file was left unchanged.",
            path=path,
            code=ErrorCode.DATABASE_TOO_NEW,
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    with transaction(conn):  # re-read inside: another process may be migrating too
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        _refuse_newer_schema(conn, path)
        for step in range(version, SCHEMA_VERSION):
            for statement in _split_statements(MIGRATIONS[step]):
                conn.execute(statement)
            finish_step = _PYTHON_STEPS.get(step + 1)
            if finish_step is not None:
                finish_step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _copy_text_after_nul(conn: sqlite3.Connection) -> None:
    """Version 3's NUL-free search copies for messages saved before it (SQL cannot
    replace a NUL, so this step is Python); the update trigger re-indexes them."""
    rows = conn.execute(
        "SELECT id, text, thinking FROM messages "
        "WHERE instr(text, char(0)) > 0 OR instr(thinking, char(0)) > 0"
    ).fetchall()
    for row in rows:
        conn.execute(
            "UPDATE messages SET text_search = ?, thinking_search = ? WHERE id = ?",
            (search_copy(row["text"]), search_copy(row["thinking"]), row["id"]),
        )


_PYTHON_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {3: _copy_text_after_nul}
"""Work a migration to version N needs beyond SQL, run right after its statements."""


def _split_statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``executescript`` would commit mid-migration)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise AssertionError(f"unterminated migration statement: {pending!r}")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if the body raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (disk full) leaves the transaction open: undo it too.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL files) to ``<name>.damaged-<time>``.

    Only ever called at the user's explicit request; returns the new path.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    return target
