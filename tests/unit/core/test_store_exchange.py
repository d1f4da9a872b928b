"""Export to Markdown and JSON; JSON import is lossless (branches, times, flags)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bllossom_core.errors import ErrorCode, InputError
from bllossom_core.store import ConversationStore
from bllossom_core.types import GenerationSettings, GenerationStats


def build_branchy_conversation(store: ConversationStore) -> int:
    conversation = store.create_conversation(
        "번역", model="bllossom-8b.Q4_K_M.gguf", template="llama3",
        system_prompt="You are a helpful assistant. 당신은 훌륭한 비서입니다.",
        settings=GenerationSettings(temperature=0.3, seed=7),
    )  # fmt: skip
    question = store.add_message(conversation.id, "user", "이탈리아를 한국어로 설명해줘.")
    answer = store.add_message(
        conversation.id, "assistant", "이탈리아는 유럽에 있습니다.", prompt_tokens=30,
        generated_tokens=9,
    )  # fmt: skip
    with store.regenerate(answer.id) as writer:
        writer.append("이탈리아의 수도는 로마입니다.")
        writer.finish(GenerationStats(prompt_tokens=30, generated_tokens=11, stop_reason="stop"))
    store.add_message(conversation.id, "user", "더 자세히")
    failed = store.start_reply(conversation.id)
    failed.append("중간에 끊긴")
    failed.fail("server died")
    store.edit_message(question.id, "Explain Italy in Korean.")
    store.switch_version(answer.id)
    return conversation.id


def normalised(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The export without database ids (they become positions in the message list)
    and without the import mark."""
    result = []
    for conversation in document["conversations"]:
        position = {m["id"]: i for i, m in enumerate(conversation["messages"])}
        item = {k: v for k, v in conversation.items() if k not in ("id", "imported_at")}
        item["active_leaf_id"] = position.get(conversation["active_leaf_id"])
        item["messages"] = [
            {**m, "id": position[m["id"]], "parent_id": position.get(m["parent_id"])}
            for m in conversation["messages"]
        ]
        result.append(item)
    return result


def test_json_round_trip_is_lossless(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "a.sqlite3") as source:
        conversation_id = build_branchy_conversation(source)
        empty = source.create_conversation("empty")
        exported = source.export_json()
        original_thread = source.thread(conversation_id)
    with ConversationStore(tmp_path / "b.sqlite3") as target:
        target.create_conversation("already here")  # ids in the target differ
        new_ids = target.import_json(exported)
        assert len(new_ids) == 2
        reexported = json.loads(target.export_json(new_ids))
        assert normalised(reexported) == normalised(json.loads(exported))
        thread = target.thread(new_ids[0])
        assert [m.text for m in thread] == [m.text for m in original_thread]
        assert [(m.sibling_index, m.sibling_count) for m in thread] == [
            (m.sibling_index, m.sibling_count) for m in original_thread
        ]
        imported = target.get_conversation(new_ids[0])
        assert imported.settings == GenerationSettings(temperature=0.3, seed=7)
        assert target.get_conversation(new_ids[1]).title == empty.title
        assert target.search("끊긴")[0].conversation_id == new_ids[0]  # indexed for search


def test_exported_json_records_every_branch_and_flag(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "a.sqlite3") as store:
        conversation_id = build_branchy_conversation(store)
        document = json.loads(store.export_json([conversation_id]))
    assert document["format"] == "bllossom-conversations" and document["version"] == 1
    (conversation,) = document["conversations"]
    messages = conversation["messages"]
    assert len(messages) == 6
    interrupted = next(m for m in messages if m["text"] == "중간에 끊긴")
    assert interrupted["complete"] is False and interrupted["error"] == "server died"
    regenerated = next(m for m in messages if m["text"].startswith("이탈리아의 수도"))
    assert (regenerated["generated_tokens"], regenerated["stop_reason"]) == (11, "stop")
    assert all(isinstance(m["created_at"], float) for m in messages)


def test_markdown_shows_the_viewed_branch(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "a.sqlite3") as store:
        conversation_id = build_branchy_conversation(store)
        markdown = store.export_markdown([conversation_id])
        written = store.export_file(tmp_path / "out" / "chat.md", [conversation_id])
        json_file = store.export_file(tmp_path / "out" / "chat.json")
    assert markdown.startswith("# 번역\n")
    assert "## System\n\nYou are a helpful assistant. 당신은 훌륭한 비서입니다." in markdown
    assert "## User (version 1 of 2)\n\n이탈리아를 한국어로 설명해줘." in markdown
    assert "## Assistant (version 1 of 2)\n\n이탈리아는 유럽에 있습니다." in markdown
    assert "로마" not in markdown and "model `bllossom-8b.Q4_K_M.gguf`" in markdown
    assert written.read_text(encoding="utf-8") == markdown
    assert json.loads(json_file.read_text(encoding="utf-8"))["conversations"]
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        json.dumps({"format": "something-else"}),
        json.dumps({"format": "bllossom-conversations", "version": 99, "conversations": []}),
        json.dumps({"format": "bllossom-conversations", "version": 1, "conversations": [{}]}),
    ],
)
def test_bad_imports_are_refused_without_partial_writes(tmp_path: Path, document: str) -> None:
    with ConversationStore(tmp_path / "a.sqlite3") as store:
        with pytest.raises(InputError) as caught:
            store.import_json(document)
        assert caught.value.code is ErrorCode.IMPORT_INVALID
        assert store.list_conversations() == []


def test_import_with_a_dangling_parent_is_refused(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "a.sqlite3") as store:
        build_branchy_conversation(store)
        document = json.loads(store.export_json())
        document["conversations"][0]["messages"][1]["parent_id"] = 12345
        with pytest.raises(InputError, match="damaged"):
            store.import_json(json.dumps(document))
        assert len(store.list_conversations()) == 1
