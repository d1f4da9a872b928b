"""ConversationStore: conversations, reply versions and branches, streamed replies, trash."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bllossom_core import paths
from bllossom_core.errors import StorageError
from bllossom_core.store import ConversationStore
from bllossom_core.types import ChatMessage, GenerationSettings, GenerationStats


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += 1.0
            return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    with ConversationStore(tmp_path / "conversations.sqlite3", clock=FakeClock()) as opened:
        yield opened


def test_default_location_is_the_data_dir_and_durability_pragmas_are_set(
    bllossom_home: Path,
) -> None:
    with ConversationStore() as store:
        assert store.path == paths.database_path()
        assert store.path.parent == bllossom_home
        conn = sqlite3.connect(store.path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        assert store._conn is not None
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_conversation_fields_round_trip_and_list_is_newest_first(
    store: ConversationStore,
) -> None:
    settings = GenerationSettings(temperature=0.7, top_k=20, max_tokens=256, seed=42)
    first = store.create_conversation(
        "첫 대화", model="m.gguf", template="llama3", system_prompt="당신은 비서입니다.",
        settings=settings,
    )  # fmt: skip
    second = store.create_conversation()
    assert store.get_conversation(first.id) == first
    assert (first.title, first.model, first.template) == ("첫 대화", "m.gguf", "llama3")
    assert first.system_prompt == "당신은 비서입니다." and first.settings == settings
    assert second.settings == GenerationSettings() and not second.deleted
    assert [c.id for c in store.list_conversations()] == [second.id, first.id]

    store.add_message(first.id, "user", "hello")  # touching a conversation moves it up
    assert [c.id for c in store.list_conversations()] == [first.id, second.id]
    assert [c.id for c in store.list_conversations(limit=1)] == [first.id]


def test_rename_and_settings_update_keep_other_fields(store: ConversationStore) -> None:
    conversation = store.create_conversation("old", model="a.gguf", system_prompt="sys")
    renamed = store.rename_conversation(conversation.id, "새 이름")
    assert renamed.title == "새 이름" and renamed.model == "a.gguf"
    assert renamed.updated_at > conversation.updated_at
    updated = store.update_conversation(
        conversation.id, settings=GenerationSettings(temperature=1.0), system_prompt=None
    )
    assert updated.settings.temperature == 1.0 and updated.system_prompt is None
    assert updated.title == "새 이름" and updated.model == "a.gguf"


def test_first_user_message_names_an_untitled_conversation(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "  이탈리아의 면적을 한국어로 설명해 주세요. " * 3)
    title = store.get_conversation(conversation.id).title
    assert title.startswith("이탈리아의 면적을") and len(title) == 40
    named = store.create_conversation("kept")
    store.add_message(named.id, "user", "something else")
    assert store.get_conversation(named.id).title == "kept"


def test_regenerate_and_edit_keep_old_versions_as_siblings(store: ConversationStore) -> None:
    conversation = store.create_conversation(system_prompt="sys")
    question = store.add_message(conversation.id, "user", "Q1")
    answer = store.add_message(conversation.id, "assistant", "A1")
    with store.regenerate(answer.id) as writer:
        writer.append("A1 v2")
    thread = store.thread(conversation.id)
    assert [m.text for m in thread] == ["Q1", "A1 v2"]
    assert (thread[1].sibling_index, thread[1].sibling_count) == (1, 2)
    assert thread[1].sibling_ids == (answer.id, writer.message_id)

    follow_up = store.add_message(conversation.id, "user", "Q2")
    store.add_message(conversation.id, "assistant", "A2")
    edited = store.edit_message(question.id, "Q1 edited")
    assert edited.parent_id is None and edited.sibling_count == 2
    assert [m.text for m in store.thread(conversation.id)] == ["Q1 edited"]
    with store.start_reply(conversation.id) as writer:
        writer.append("B1")

    # Back to the first version of the question: its newest branch is shown again.
    thread = store.switch_version(question.id)
    assert [m.text for m in thread] == ["Q1", "A1 v2", "Q2", "A2"]
    assert [(m.sibling_index, m.sibling_count) for m in thread] == [(0, 2), (1, 2), (0, 1), (0, 1)]
    thread = store.switch_version(answer.id)
    assert [m.text for m in thread] == ["Q1", "A1"]
    assert store.get_message(follow_up.id).text == "Q2"  # the other branch is kept
    assert store.chat_messages(conversation.id) == [
        ChatMessage("system", "sys"), ChatMessage("user", "Q1"), ChatMessage("assistant", "A1"),
    ]  # fmt: skip
    thread = store.switch_version(edited.id)
    assert [m.text for m in thread] == ["Q1 edited", "B1"]


def test_prompt_for_a_reply_leaves_the_reply_out(store: ConversationStore) -> None:
    conversation = store.create_conversation(system_prompt="sys")
    store.add_message(conversation.id, "user", "Q")
    old = store.add_message(conversation.id, "assistant", "old answer")
    writer = store.regenerate(old.id)
    assert store.chat_messages(conversation.id, up_to=writer.parent_id) == [
        ChatMessage("system", "sys"), ChatMessage("user", "Q"),
    ]  # fmt: skip
    assert store.chat_messages(conversation.id)[-1] == ChatMessage("assistant", "")
    writer.finish()
    other = store.create_conversation()
    with pytest.raises(StorageError, match="not in conversation"):
        store.chat_messages(other.id, up_to=old.id)


def test_regenerate_refuses_a_user_message(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    question = store.add_message(conversation.id, "user", "Q")
    with pytest.raises(ValueError, match="not a reply"):
        store.regenerate(question.id)


def test_reply_writer_finish_records_text_and_stats(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "안녕?")
    writer = store.start_reply(conversation.id, checkpoint_interval_s=60)
    started = store.get_message(writer.message_id)
    assert started.text == "" and not started.complete and started.role == "assistant"
    for piece in ["반갑", "습니다", "!"]:
        writer.append(piece)
    assert writer.text == "반갑습니다!"
    stats = GenerationStats(prompt_tokens=12, generated_tokens=5, stop_reason="length")
    saved = writer.finish(stats)
    assert saved.text == "반갑습니다!" and saved.complete and saved.error is None
    assert (saved.prompt_tokens, saved.generated_tokens, saved.stop_reason) == (12, 5, "length")
    with pytest.raises(RuntimeError):
        writer.append("more")


def test_reply_writer_fail_keeps_partial_text_and_error(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "Q")
    with pytest.raises(ConnectionError), store.start_reply(conversation.id) as writer:
        writer.append("partial ")
        writer.append("text")
        raise ConnectionError("server went away")
    saved = store.get_message(writer.message_id)
    assert saved.text == "partial text" and not saved.complete
    assert saved.error == "server went away"


def test_streaming_reply_is_checkpointed_without_further_calls(
    store: ConversationStore,
) -> None:
    """The background checkpoint commits text even while the engine is silent."""
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "Q")
    writer = store.start_reply(conversation.id, checkpoint_interval_s=0.05)
    writer.append("첫 조각")
    other = sqlite3.connect(store.path)  # what a crash now would leave on disk
    try:
        deadline = time.monotonic() + 20
        saved = ""
        while saved != "첫 조각" and time.monotonic() < deadline:
            time.sleep(0.02)
            saved = other.execute(
                "SELECT text FROM messages WHERE id = ?", (writer.message_id,)
            ).fetchone()[0]
        assert saved == "첫 조각"
        assert (
            other.execute(
                "SELECT complete FROM messages WHERE id = ?", (writer.message_id,)
            ).fetchone()[0]
            == 0
        )
    finally:
        other.close()
    writer.finish()


def test_reply_streams_from_a_worker_thread_while_the_gui_thread_reads(
    store: ConversationStore,
) -> None:
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "Q")
    writer = store.start_reply(conversation.id, checkpoint_interval_s=0.01)

    def stream() -> None:
        for i in range(300):
            writer.append(f"{i},")
        writer.finish()

    worker = threading.Thread(target=stream)
    worker.start()
    for _ in range(200):  # the GUI keeps reading meanwhile
        store.thread(conversation.id)
        store.list_conversations()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert store.get_message(writer.message_id).text == "".join(f"{i}," for i in range(300))


def test_soft_delete_restore_and_purge(store: ConversationStore) -> None:
    keep = store.create_conversation("keep")
    trash = store.create_conversation("trash")
    message = store.add_message(trash.id, "user", "지워질 메시지")
    store.delete_conversation(trash.id)
    assert [c.id for c in store.list_conversations()] == [keep.id]
    assert [c.id for c in store.list_conversations(deleted=True)] == [trash.id]
    assert store.get_conversation(trash.id).deleted
    assert store.search("지워질") == []

    restored = store.restore_conversation(trash.id)
    assert not restored.deleted and store.get_message(message.id).text == "지워질 메시지"

    store.delete_conversation(trash.id)
    assert store.purge_deleted(older_than_s=3600) == 0  # too recent
    assert store.purge_deleted(older_than_s=0) == 1
    with pytest.raises(StorageError, match="no longer exists"):
        store.get_conversation(trash.id)
    with pytest.raises(StorageError, match="no longer exists"):
        store.get_message(message.id)
    assert store.list_conversations(deleted=True) == []
    assert store._conn is not None  # the search index lost the purged text too
    store._conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    assert store._conn.execute("SELECT count(*) FROM messages_fts").fetchone()[0] == 0
    assert [c.id for c in store.list_conversations()] == [keep.id]


def test_unknown_ids_and_foreign_parents_are_refused(store: ConversationStore) -> None:
    one = store.create_conversation()
    two = store.create_conversation()
    other = store.add_message(two.id, "user", "x")
    with pytest.raises(StorageError):
        store.add_message(999, "user", "x")
    with pytest.raises(ValueError, match="not in conversation"):
        store.add_message(one.id, "assistant", "x", parent_id=other.id)
    assert store.thread(one.id) == []


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with ConversationStore(path) as store:
        conversation = store.create_conversation("t")
        store.add_message(conversation.id, "user", "저장됨")
    with ConversationStore(path) as store:
        assert [m.text for m in store.thread(conversation.id)] == ["저장됨"]
