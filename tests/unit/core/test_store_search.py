"""Search: FTS5 trigram for 3+ characters, a substring scan for 1–2 (Korean syllables)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bllossom_core.store import HIGHLIGHT_END, HIGHLIGHT_START, ConversationStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    with ConversationStore(tmp_path / "search.sqlite3") as opened:
        travel = opened.create_conversation("여행")
        opened.add_message(travel.id, "user", "서울에서 부산까지 기차로 얼마나 걸리나요?")
        opened.add_message(
            travel.id, "assistant", "KTX로 약 2시간 30분 걸립니다. 서울역에서 출발해요."
        )
        code = opened.create_conversation("Code")
        opened.add_message(code.id, "user", "How do I open a SQLite database in Python?")
        opened.add_message(code.id, "assistant", "Use sqlite3.connect(); SQLite ships with Python.")
        opened.add_message(code.id, "user", "100% sure? Use a_b or [[brackets]].")
        yield opened


def texts(store: ConversationStore, query: str) -> set[str]:
    return {store.get_message(hit.message_id).text for hit in store.search(query)}


@pytest.mark.parametrize(
    ("query", "expected_snippet_part"),
    [
        ("서", "[[서]]울"),  # one syllable: substring scan
        ("서울", "[[서울]]"),  # two syllables: substring scan
        ("서울역", "[[서울역]]"),  # three: FTS5 trigram
        ("부산까지 기차", "[[부산까지 기차]]"),
    ],
)
def test_korean_queries_of_every_length(
    store: ConversationStore, query: str, expected_snippet_part: str
) -> None:
    hits = store.search(query)
    assert hits, query
    assert all(query in store.get_message(hit.message_id).text for hit in hits)
    assert any(expected_snippet_part in hit.snippet for hit in hits)


def test_one_syllable_finds_every_message_containing_it(store: ConversationStore) -> None:
    assert texts(store, "서") == {
        "서울에서 부산까지 기차로 얼마나 걸리나요?",
        "KTX로 약 2시간 30분 걸립니다. 서울역에서 출발해요.",
    }
    assert texts(store, "걸립") == {"KTX로 약 2시간 30분 걸립니다. 서울역에서 출발해요."}
    assert texts(store, "없음") == set() and texts(store, "없는말") == set()


def test_english_is_case_insensitive_and_snippets_keep_original_case(
    store: ConversationStore,
) -> None:
    hits = store.search("SQLITE")
    assert {h.conversation_title for h in hits} == {"Code"}
    assert len(hits) == 2
    by_id = {h.message_id: h for h in hits}
    question = next(h for h in by_id.values() if h.role == "user")
    assert question.snippet == "How do I open a [[SQLite]] database in Python?"
    answer = next(h for h in by_id.values() if h.role == "assistant")
    assert answer.snippet.count(HIGHLIGHT_START) == 2  # both matches in the excerpt
    assert texts(store, "pY") == texts(store, "python")  # 2-char fallback folds ASCII too
    assert texts(store, "ktx") == {"KTX로 약 2시간 30분 걸립니다. 서울역에서 출발해요."}


def test_query_syntax_and_wildcards_are_literal(store: ConversationStore) -> None:
    assert texts(store, "%") == {"100% sure? Use a_b or [[brackets]]."}
    assert texts(store, "_") == {"100% sure? Use a_b or [[brackets]]."}
    assert texts(store, '" OR "') == set()
    assert texts(store, "NOT open") == set()
    assert texts(store, "a_b") == {"100% sure? Use a_b or [[brackets]]."}


def test_highlight_offsets_point_at_the_matches(store: ConversationStore) -> None:
    (hit,) = store.search("bracket")
    assert hit.snippet.count(HIGHLIGHT_START) == hit.snippet.count(HIGHLIGHT_END)
    assert [hit.excerpt[s:e] for s, e in hit.highlights] == ["bracket"]
    assert hit.excerpt == "100% sure? Use a_b or [[brackets]]."


def test_long_messages_get_a_window_around_the_first_match(tmp_path: Path) -> None:
    with ConversationStore(tmp_path / "long.sqlite3") as store:
        conversation = store.create_conversation()
        text = "가" * 500 + "목표단어" + "나" * 500
        store.add_message(conversation.id, "user", text)
        (hit,) = store.search("목표단어")
        assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
        assert "[[목표단어]]" in hit.snippet and len(hit.excerpt) < 100
        (short,) = store.search("목표")
        assert "[[목표]]" in short.snippet


def test_search_follows_edits_of_streamed_text_and_empty_queries(
    store: ConversationStore,
) -> None:
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "Q")
    with store.start_reply(conversation.id) as writer:
        writer.append("스트리밍된 ")
        writer.append("답변입니다")
    assert texts(store, "스트리밍된 답변") == {"스트리밍된 답변입니다"}
    assert store.search("") == [] and store.search("   ") == []
    assert len(store.search("서", limit=1)) == 1
