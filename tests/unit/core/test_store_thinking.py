"""Reasoning models' thinking in the store (schema 3), search after a NUL, imports marked
as imported with their original times, localised exports without model folders."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from bllossom_core.errors import InputError
from bllossom_core.store import EXPORT_LANGUAGES, SCHEMA_VERSION, ConversationStore
from bllossom_core.types import ChatMessage, GenerationStats
from tests.unit.core.test_store_schema import make_v1_database

# The version-2 migration as Bllossom 0.2 shipped it (frozen here: a test of upgrading
# must not change when the current migrations do).
V2_MIGRATION = """
ALTER TABLE conversations ADD COLUMN template TEXT;
ALTER TABLE conversations ADD COLUMN active_leaf_id INTEGER;
ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE;
ALTER TABLE messages ADD COLUMN updated_at REAL;
ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN generated_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN stop_reason TEXT;
ALTER TABLE messages ADD COLUMN error TEXT;
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
PRAGMA user_version = 2;
"""


def make_v2_database(path: Path) -> None:
    make_v1_database(path)
    conn = sqlite3.connect(path)
    conn.executescript(V2_MIGRATION)
    conn.execute(
        "INSERT INTO messages (conversation_id, parent_id, role, text, created_at, updated_at, "
        "complete, stop_reason) VALUES (1, 3, 'assistant', 'version two reply', 140, 141, 1, "
        "'stop')"
    )
    conn.execute("UPDATE conversations SET active_leaf_id = 4 WHERE id = 1")
    conn.execute(
        "INSERT INTO messages (conversation_id, role, text, created_at, updated_at) "
        "VALUES (2, 'user', ?, 150, 150)",
        ("pasted\x00binary then words after the nul",),
    )
    conn.commit()
    conn.close()


def test_version_2_database_gains_thinking_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    make_v2_database(path)
    with ConversationStore(path) as store:
        assert SCHEMA_VERSION == 4
        thread = store.thread(1)
        assert [m.text for m in thread][-2:] == ["second question", "version two reply"]
        assert all(m.thinking == "" and m.thinking_seconds is None for m in thread)
        assert thread[-1].stop_reason == "stop" and thread[-1].updated_at == 141
        assert not store.get_conversation(1).imported
        # Old messages are still found, and the new features work on them.
        assert [h.message_id for h in store.search("version two")] == [thread[-1].id]
        assert [h.message_id for h in store.search("오래된 메시지")] == [thread[0].id]
        (hit,) = store.search("words after")  # saved before version 3, found now
        assert hit.conversation_id == 2 and "[[words after]]" in hit.snippet
        with store.regenerate(thread[-1].id) as writer:
            writer.append_thinking("The user asks again.")
            writer.append("새 답변")
        reply = store.get_message(writer.message_id)
        assert (reply.text, reply.thinking) == ("새 답변", "The user asks again.")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    conn.close()


def reasoning_reply(store: ConversationStore) -> tuple[int, int]:
    conversation = store.create_conversation(model="/home/민수/models/DeepSeek-R1-8B.Q4_K_M.gguf")
    store.add_message(conversation.id, "user", "2+2는?")
    with store.start_reply(conversation.id, checkpoint_interval_s=3600) as writer:
        writer.append_thinking("The user asks for 2+2. ")
        writer.append_thinking("That is four.")
        writer.append("4입니다.")
        writer.finish(GenerationStats(generated_tokens=12, thinking_seconds=12.4))
    return conversation.id, writer.message_id


def test_thinking_is_kept_apart_from_the_answer(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation_id, reply_id = reasoning_reply(store)
        reply = store.get_message(reply_id)
        assert reply.text == "4입니다."
        assert reply.thinking == "The user asks for 2+2. That is four."
        assert reply.thinking_seconds == 12.4  # the engine's measure
        question = store.thread(conversation_id)[0]
        assert question.thinking == "" and question.thinking_seconds is None
        # The model is never shown its earlier thinking.
        assert store.chat_messages(conversation_id) == [
            ChatMessage("user", "2+2는?"), ChatMessage("assistant", "4입니다."),
        ]  # fmt: skip


def test_thinking_is_checkpointed_while_it_streams(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation = store.create_conversation()
        store.add_message(conversation.id, "user", "Q")
        writer = store.start_reply(conversation.id, checkpoint_interval_s=0.02)
        writer.append_thinking("still thinking")
        deadline = time.monotonic() + 20
        while store.get_message(writer.message_id).thinking != "still thinking":
            assert time.monotonic() < deadline, "the thinking was never checkpointed"
            time.sleep(0.02)
        saved = store.get_message(writer.message_id)
        assert saved.text == "" and not saved.complete
        writer.fail("cancelled")


def test_search_leaves_thinking_out_unless_asked(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        _, reply_id = reasoning_reply(store)
        for query in ("That is four", "Th"):  # the FTS path and the short LIKE path
            assert store.search(query) == []
            (hit,) = store.search(query, include_thinking=True)
            assert hit.message_id == reply_id and hit.in_thinking
            assert hit.snippet.startswith("[[") or "[[" in hit.snippet
        (hit,) = store.search("입니다")
        assert hit.message_id == reply_id and not hit.in_thinking


@pytest.mark.parametrize("query", ["hidden words", "hi"])
def test_text_after_a_nul_character_is_found(tmp_path: Path, query: str) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation = store.create_conversation()
        message = store.add_message(conversation.id, "user", "binary\x00paste with hidden words")
        assert store.get_message(message.id).text == "binary\x00paste with hidden words"
        (hit,) = store.search(query)
        assert hit.message_id == message.id and "[[" in hit.snippet
        with store.start_reply(conversation.id) as writer:
            writer.append("reply\x00 after nul: 찾을 수 있는 답")
        assert [h.message_id for h in store.search("찾을 수")] == [writer.message_id]
        reimported = store.import_json(store.export_json([conversation.id]))
        assert {h.conversation_id for h in store.search("찾을 수")} == {
            conversation.id, *reimported,
        }  # fmt: skip


def test_import_marks_conversations_and_keeps_original_times(tmp_path: Path) -> None:
    clock = iter([1000.0 + i for i in range(100)]).__next__
    with ConversationStore(tmp_path / "a.sqlite3", clock=clock) as source:
        conversation_id, _ = reasoning_reply(source)
        original = source.get_conversation(conversation_id)
        original_thread = source.thread(conversation_id)
        document = source.export_json()
    assert not original.imported and original.imported_at is None
    later = iter([5000.0 + i for i in range(100)]).__next__
    with ConversationStore(tmp_path / "b.sqlite3", clock=later) as target:
        (new_id,) = target.import_json(document)
        imported = target.get_conversation(new_id)
        assert imported.imported and imported.imported_at is not None
        assert imported.imported_at >= 5000.0
        assert (imported.created_at, imported.updated_at) == (
            original.created_at, original.updated_at,
        )  # fmt: skip
        thread = target.thread(new_id)
        assert [(m.created_at, m.updated_at) for m in thread] == [
            (m.created_at, m.updated_at) for m in original_thread
        ]
        assert thread[-1].thinking == "The user asks for 2+2. That is four."
        assert thread[-1].thinking_seconds == original_thread[-1].thinking_seconds
        # Imported conversations keep their place in the list by their own dates.
        newer = target.create_conversation("made here")
        assert [c.id for c in target.list_conversations()] == [newer.id, new_id]


def test_exports_name_the_model_file_never_its_folder(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation_id, _ = reasoning_reply(store)
        windows = store.create_conversation(model="C:\\Users\\민수\\models\\bllossom.gguf")
        remote = store.create_conversation(model="meta-llama/Llama-3-70B @ 10.0.0.2:8000")
        exported = store.export_json()
        markdown = store.export_markdown()
    assert "민수" not in exported and "민수" not in markdown and "/home" not in exported
    models = {c["id"]: c["model"] for c in json.loads(exported)["conversations"]}
    assert models == {
        conversation_id: "DeepSeek-R1-8B.Q4_K_M.gguf",
        windows.id: "bllossom.gguf",
        remote.id: "meta-llama/Llama-3-70B @ 10.0.0.2:8000",
    }
    assert "`DeepSeek-R1-8B.Q4_K_M.gguf`" in markdown


def test_exports_include_the_thinking(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation_id, _ = reasoning_reply(store)
        markdown = store.export_markdown([conversation_id])
        document = json.loads(store.export_json([conversation_id]))
    reply = document["conversations"][0]["messages"][-1]
    assert reply["thinking"] == "The user asks for 2+2. That is four."
    assert reply["thinking_seconds"] == 12.4
    assert "<details>\n<summary>Thought for 12 s</summary>" in markdown
    assert "> The user asks for 2+2. That is four.\n\n</details>\n\n4입니다." in markdown


def test_exports_are_localised(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation_id, _ = reasoning_reply(store)
        english = store.export_markdown([conversation_id], language="en")
        korean = store.export_markdown([conversation_id], language="ko")
        written = store.export_file(tmp_path / "대화.md", [conversation_id], language="ko-KR")
        with pytest.raises(InputError, match="en or ko"):
            store.export_markdown([conversation_id], language="fr")
    assert EXPORT_LANGUAGES == ("en", "ko")
    assert "## User" in english and "## Assistant" in english and "Created " in english
    assert "## 사용자" in korean and "## 어시스턴트" in korean and "UTC에 만듦" in korean
    assert "12초 동안 생각함" in korean and "모델 `DeepSeek-R1-8B.Q4_K_M.gguf`" in korean
    assert "User" not in korean and "Assistant" not in korean
    assert written.read_text(encoding="utf-8") == korean


def test_old_exports_without_thinking_still_import(tmp_path: Path) -> None:
    document = {
        "format": "bllossom-conversations", "version": 1, "exported_at": 1.0,
        "conversations": [{
            "id": 1, "title": "old", "created_at": 10.0, "updated_at": 20.0,
            "model": None, "template": None, "system_prompt": None, "deleted_at": None,
            "settings": {}, "active_leaf_id": 1,
            "messages": [{
                "id": 1, "parent_id": None, "role": "user", "text": "hello there",
                "created_at": 10.0, "updated_at": 10.0, "prompt_tokens": 0,
                "generated_tokens": 0, "complete": True, "stop_reason": None, "error": None,
            }],
        }],
    }  # fmt: skip
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        (new_id,) = store.import_json(json.dumps(document))
        (message,) = store.thread(new_id)
        assert (message.text, message.thinking, message.thinking_seconds) == (
            "hello there", "", None,
        )  # fmt: skip
        assert store.get_conversation(new_id).created_at == 10.0


def test_thinking_time_is_measured_when_the_engine_gives_none(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation = store.create_conversation()
        store.add_message(conversation.id, "user", "Q")
        with store.start_reply(conversation.id) as writer:
            writer.append_thinking("hmm")
            time.sleep(0.05)
            writer.append("A")
        reply = store.get_message(writer.message_id)
        assert reply.thinking_seconds is not None and reply.thinking_seconds > 0
        with store.start_reply(conversation.id) as plain:
            plain.append("no thinking")
        assert store.get_message(plain.message_id).thinking_seconds is None
