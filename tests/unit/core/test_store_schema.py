"""Schema migrations and how SQLite failures reach the user."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bllossom_core.errors import DiskFullError, StorageError
from bllossom_core.store import SCHEMA_VERSION, ConversationStore

# The version-1 schema as Bllossom 0.1 wrote it: one linear list of messages.
V1_SCHEMA = """
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL, updated_at REAL NOT NULL, model TEXT, system_prompt TEXT,
    settings_json TEXT NOT NULL DEFAULT '{}', deleted_at REAL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    text TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
PRAGMA user_version = 1;
"""


def make_v1_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.executemany(
        "INSERT INTO conversations (id, title, created_at, updated_at, model, settings_json) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (1, "옛 대화", 100.0, 130.0, "old.gguf", '{"temperature": 0.5, "future_key": 1}'),
            (2, "empty", 200.0, 200.0, None, "{}"),
        ],
    )
    conn.executemany(
        "INSERT INTO messages (conversation_id, role, text, created_at) VALUES (?, ?, ?, ?)",
        [
            (1, "user", "안녕하세요, 오래된 메시지입니다", 110.0),
            (1, "assistant", "반갑습니다", 120.0),
            (1, "user", "second question", 130.0),
        ],
    )
    conn.commit()
    conn.close()


def test_version_1_database_is_migrated_with_its_messages_chained(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    make_v1_database(path)
    with ConversationStore(path) as store:
        assert SCHEMA_VERSION == 4
        conversation = store.get_conversation(1)
        assert conversation.title == "옛 대화" and conversation.model == "old.gguf"
        assert conversation.settings.temperature == 0.5 and conversation.template is None
        thread = store.thread(1)
        assert [m.text for m in thread] == [
            "안녕하세요, 오래된 메시지입니다", "반갑습니다", "second question",
        ]  # fmt: skip
        assert [m.parent_id for m in thread] == [None, thread[0].id, thread[1].id]
        assert all(m.complete and m.updated_at == m.created_at for m in thread)
        assert all(m.dropped_messages == 0 for m in thread)
        assert [m.created_at for m in thread] == [110.0, 120.0, 130.0]
        assert store.thread(2) == []
        # Old text is searchable and the new features work on old conversations.
        assert [h.message_id for h in store.search("오래된 메시지")] == [thread[0].id]
        with store.regenerate(thread[1].id) as writer:
            writer.append("새 답변")
        assert [m.text for m in store.thread(1)] == ["안녕하세요, 오래된 메시지입니다", "새 답변"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_database_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="newer Bllossom") as caught:
        ConversationStore(path)
    assert caught.value.path == path and "Update Bllossom" in str(caught.value)
    assert path.read_bytes() == before


def test_damaged_file_is_reported_untouched_and_moved_aside_only_on_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "conversations.sqlite3"
    garbage = b"this is not a database, but a user's precious file\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(StorageError, match="damaged") as caught:
        ConversationStore(path)
    assert "nothing is deleted" in str(caught.value)
    assert path.read_bytes() == garbage
    moved = ConversationStore.move_aside(path)
    assert moved.read_bytes() == garbage and not path.exists()
    assert moved.name.startswith("conversations.sqlite3.damaged-")
    with ConversationStore(path) as store:
        assert store.list_conversations() == []


def test_full_disk_raises_disk_full_and_keeps_earlier_data(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "full.sqlite3") as store:
        conversation = store.create_conversation("t")
        store.add_message(conversation.id, "user", "saved before the disk filled")
        assert store._conn is not None
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # as if the disk were full
        with pytest.raises(DiskFullError, match="full") as caught:
            store.add_message(conversation.id, "user", "큰 메시지 " * 100_000)
        assert isinstance(caught.value, StorageError) and caught.value.path == store.path
        writer = store.start_reply(conversation.id, checkpoint_interval_s=3600)
        writer.append("x" * 2_000_000)
        with pytest.raises(DiskFullError):
            writer.finish()
        store._conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
        assert writer.finish().text == "x" * 2_000_000  # the reply was kept in memory
        assert [m.text for m in store.thread(conversation.id)][:1] == [
            "saved before the disk filled"
        ]
        assert store.get_message(writer.message_id).complete
        store.add_message(conversation.id, "user", "works again")


def test_locked_database_reports_the_other_program(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    with ConversationStore(path, busy_timeout_s=0.05) as store:
        conversation = store.create_conversation()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError, match="in use by another program"):
                store.add_message(conversation.id, "user", "blocked")
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.add_message(conversation.id, "user", "after the lock")
        assert [m.text for m in store.thread(conversation.id)] == ["after the lock"]


def test_read_only_database_reports_permissions(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "ro.sqlite3") as store:
        conversation = store.create_conversation()
        assert store._conn is not None
        store._conn.execute("PRAGMA query_only = 1")
        with pytest.raises(StorageError, match="may not write"):
            store.rename_conversation(conversation.id, "x")


def test_programming_errors_are_not_disguised(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "bug.sqlite3") as store:
        store.close()
        with pytest.raises(RuntimeError, match="closed"):
            store.list_conversations()


def test_a_reply_remembers_how_many_old_messages_it_left_out(tmp_path: Path) -> None:
    """Version 4: the count of messages that no longer fitted the context is kept with
    the reply (the app shows it under the reply), and travels through export/import."""
    from bllossom_core.types import GenerationStats

    with ConversationStore(tmp_path / "c.sqlite3") as store:
        conversation = store.create_conversation("long")
        store.add_message(conversation.id, "user", "질문")
        writer = store.start_reply(conversation.id)
        writer.append("답")
        reply = writer.finish(GenerationStats(dropped_messages=6, stop_reason="length"))
        assert reply.dropped_messages == 6 and reply.stop_reason == "length"
        assert store.thread(conversation.id)[-1].dropped_messages == 6
        exported = store.export_json([conversation.id])
        copy = store.import_json(exported)[0]
        assert store.thread(copy)[-1].dropped_messages == 6
        broken = exported.replace('"dropped_messages": 6', '"dropped_messages": -1')
        with pytest.raises(Exception, match="dropped_messages"):
            store.import_json(broken)
