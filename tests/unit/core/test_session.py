"""ChatSession: the one rule set for asking, regenerating, editing and switching versions,
shared by ``bllossom chat`` and the desktop app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bllossom_core.errors import ErrorCode, InputError, InvalidSettingError, StorageError
from bllossom_core.session import ChatSession, ConversationOptions, ReplyPiece
from bllossom_core.store import ConversationStore
from bllossom_core.types import ChatMessage, GenerationSettings
from tests.fixtures.scripted_engine import ScriptedEngine


@pytest.fixture
def store() -> Iterator[ConversationStore]:
    store = ConversationStore()
    yield store
    store.close()


def texts(session: ChatSession) -> list[tuple[str, str]]:
    return [(m.role, m.text) for m in session.thread()]


def test_ask_saves_the_question_and_the_streamed_reply(store: ConversationStore) -> None:
    engine = ScriptedEngine([["안녕", "하세요"]])
    session = ChatSession(store, engine, options=ConversationOptions("시스템"))
    reply = session.ask("질문")
    pieces = [piece.text for piece in reply]
    assert pieces == ["안녕", "하세요"]
    assert reply.message is not None and reply.message.complete
    assert texts(session) == [("user", "질문"), ("assistant", "안녕하세요")]
    assert engine.prompts[0] == [ChatMessage("system", "시스템"), ChatMessage("user", "질문")]
    assert session.title == "질문"  # filled from the first question
    assert engine.open_stream is None and engine.streams[0].closed


def test_too_long_is_refused_and_nothing_is_stored(store: ConversationStore) -> None:
    engine = ScriptedEngine([["짧은 답"]], context_chars=50)
    session = ChatSession(store, engine)
    with pytest.raises(InputError) as refused:
        session.ask("가" * 100)
    assert refused.value.code is ErrorCode.MESSAGE_TOO_LONG
    assert session.conversation_id is None and store.list_conversations() == []
    session.ask("짧게").run()
    before = texts(session)
    with pytest.raises(InputError):
        session.ask("나" * 100)
    assert texts(session) == before  # the saved conversation did not change either
    assert len(store.list_conversations()) == 1


def test_a_storage_failure_releases_the_engine(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving the question fails (disk full): the engine must not stay taken."""
    engine = ScriptedEngine([["첫 답"], ["둘째 답"]])
    session = ChatSession(store, engine)
    session.ask("하나").run()
    real_add = store.add_message

    def disk_full(*args: object, **kwargs: object) -> object:
        raise StorageError("disk full", code=ErrorCode.DISK_FULL)

    monkeypatch.setattr(store, "add_message", disk_full)
    with pytest.raises(StorageError):
        session.ask("둘")
    assert engine.open_stream is None  # released at once, not by the garbage collector
    monkeypatch.setattr(store, "add_message", real_add)
    assert session.ask("셋").run().text == "둘째 답"


def test_an_unanswered_question_is_replaced_not_repeated(store: ConversationStore) -> None:
    engine = ScriptedEngine([["답"], ["오류 전"], ["새 답"]], fail_after=None)
    session = ChatSession(store, engine)
    session.ask("첫 질문").run()
    engine.fail_after = 0  # the next reply fails before its first word
    failing = session.ask("실패할 질문")
    with pytest.raises(Exception, match="scripted model failed"):
        failing.run()
    assert failing.message is not None and failing.message.error
    engine.fail_after = None
    session.ask("다시 묻기").run()
    # The model never saw two user turns in a row.
    assert [m.role for m in engine.prompts[-1]] == ["user", "assistant", "user"]
    assert engine.prompts[-1][-1].content == "다시 묻기"
    assert texts(session)[-2:] == [("user", "다시 묻기"), ("assistant", "새 답")]
    question = session.thread()[-2]
    assert question.sibling_count == 2  # a new version of the unanswered question


def test_regenerate_adds_a_version_and_keeps_the_old_one(store: ConversationStore) -> None:
    engine = ScriptedEngine([["첫 답"], ["두번째 답"]])
    session = ChatSession(store, engine)
    first = session.ask("질문")
    first.run()
    second = session.regenerate(first.message_id)
    second.run()
    assert engine.prompts[1] == [ChatMessage("user", "질문")]  # not the old reply
    reply = session.thread()[-1]
    assert reply.text == "두번째 답" and reply.sibling_count == 2
    assert [m.text for m in session.switch_version(first.message_id)][-1] == "첫 답"


def test_edit_starts_a_new_branch(store: ConversationStore) -> None:
    engine = ScriptedEngine([["a"], ["b"], ["c"]])
    session = ChatSession(store, engine)
    first = session.ask("하나")
    first.run()
    session.ask("둘").run()
    assert first.question_id is not None
    session.edit(first.question_id, "하나 고침").run()
    assert engine.prompts[-1] == [ChatMessage("user", "하나 고침")]
    assert texts(session) == [("user", "하나 고침"), ("assistant", "c")]
    with pytest.raises(InputError):
        session.edit(first.message_id, "답은 고칠 수 없음")


def test_stop_keeps_the_partial_reply_and_frees_the_engine(store: ConversationStore) -> None:
    engine = ScriptedEngine([["하나", "둘", "셋"]])
    session = ChatSession(store, engine)
    reply = session.ask("질문")
    seen = []
    for piece in reply:
        seen.append(piece)
        reply.cancel()
    assert seen == [ReplyPiece("answer", "하나")]
    assert reply.message is not None and reply.message.text == "하나"
    assert engine.open_stream is None


def test_leaving_the_loop_early_finishes_the_reply(store: ConversationStore) -> None:
    engine = ScriptedEngine([["하나", "둘", "셋"]])
    session = ChatSession(store, engine)
    reply = session.ask("질문")
    iterator = iter(reply)
    next(iterator)
    iterator.close()  # the consumer went away (a closed window, a broken pipe)
    assert engine.open_stream is None
    assert session.thread()[-1].text == "하나"


def test_a_failure_mid_reply_keeps_the_text_and_the_error(store: ConversationStore) -> None:
    engine = ScriptedEngine([["앞부분", "뒷부분"]], fail_after=1)
    session = ChatSession(store, engine)
    reply = session.ask("질문")
    with pytest.raises(Exception, match="scripted model failed"):
        reply.run()
    saved = session.thread()[-1]
    assert saved.text == "앞부분" and not saved.complete and saved.error
    assert engine.open_stream is None


def test_options_use_the_one_settings_check(store: ConversationStore) -> None:
    engine = ScriptedEngine([["답"]])
    engine.context_size = 2048  # type: ignore[attr-defined]
    session = ChatSession(store, engine)
    with pytest.raises(InvalidSettingError) as refused:
        session.set_options(ConversationOptions(settings=GenerationSettings(top_p=0)))
    assert refused.value.setting == "top_p"
    with pytest.raises(InvalidSettingError) as too_long:
        session.set_options(ConversationOptions(settings=GenerationSettings(max_tokens=4000)))
    assert too_long.value.setting == "max_tokens"
    applied = session.set_options(ConversationOptions("새 시스템", "llama3"))
    session.ask("질문").run()
    assert session.options == applied
    assert engine.prompts[0][0] == ChatMessage("system", "새 시스템")


def test_no_model_is_a_clear_error(store: ConversationStore) -> None:
    session = ChatSession(store, None)
    with pytest.raises(InputError) as refused:
        session.ask("질문")
    assert refused.value.code is ErrorCode.NO_MODEL
    assert store.list_conversations() == []


def test_the_conversation_records_the_model_that_answered(store: ConversationStore) -> None:
    session = ChatSession(store, ScriptedEngine([["a"]]), model_name="/models/first.gguf")
    session.ask("하나").run()
    assert session.conversation_id is not None
    assert store.get_conversation(session.conversation_id).model == "/models/first.gguf"
    session.engine, session.model_name = ScriptedEngine([["b"]]), "/models/second.gguf"
    session.ask("둘").run()
    assert store.get_conversation(session.conversation_id).model == "/models/second.gguf"


def test_thinking_is_stored_apart_and_never_fed_back(store: ConversationStore) -> None:
    engine = ScriptedEngine([["서울입니다."], ["네."]])
    session = ChatSession(store, engine)
    reply = session.ask("한국의 수도는?")
    engine.streams[-1].thinking = ["The user asks ", "about Seoul."]
    kinds = [(piece.kind, piece.text) for piece in reply]
    assert kinds[0] == ("thinking", "The user asks ")
    saved = session.thread()[-1]
    assert saved.text == "서울입니다." and saved.thinking == "The user asks about Seoul."
    session.ask("확실해요?").run()
    assert all("Seoul" not in m.content for m in engine.prompts[-1])


def test_continue_appends_to_the_reply_and_sends_it_as_the_answer_begun(
    store: ConversationStore,
) -> None:
    engine = ScriptedEngine([["고려는 ", "918년에"], [" 세워졌습니다."]], stop_reason="length")
    session = ChatSession(store, engine, options=ConversationOptions("시스템"))
    cut = session.ask("고려는 언제?").run()
    assert cut.stop_reason == "length"
    engine.stop_reason = "stop"
    continued = session.continue_reply(cut.id).run()
    assert (continued.id, continued.text) == (cut.id, "고려는 918년에 세워졌습니다.")
    assert continued.stop_reason == "stop" and continued.complete
    # Before: only the continuation's tokens were counted.
    assert continued.generated_tokens == cut.generated_tokens + 1 and cut.generated_tokens == 2
    assert engine.prompts[1] == [
        ChatMessage("system", "시스템"),
        ChatMessage("user", "고려는 언제?"),
        ChatMessage("assistant", "고려는 918년에"),
    ]
    assert texts(session) == [
        ("user", "고려는 언제?"),
        ("assistant", "고려는 918년에 세워졌습니다."),
    ]
    with pytest.raises(InputError) as caught:
        session.continue_reply(cut.parent_id or 0)
    assert caught.value.code is ErrorCode.NOTHING_TO_REPLY


def test_a_new_chat_starts_from_the_models_summary(store: ConversationStore) -> None:
    engine = ScriptedEngine([["서울은 ", "수도"], ["요약: ", "서울 이야기"]])
    session = ChatSession(store, engine, options=ConversationOptions("시스템"))
    session.ask("서울은?").run()
    summary = session.summarize()
    assert summary == "요약: 서울 이야기"
    assert engine.prompts[1][-1].role == "user" and "Summarize" in engine.prompts[1][-1].content
    assert engine.prompts[1][:3] == [
        ChatMessage("system", "시스템"), ChatMessage("user", "서울은?"),
        ChatMessage("assistant", "서울은 수도"),
    ]  # fmt: skip
    assert len(session.thread()) == 2  # nothing stored by summarizing
    new_id = session.start_from_summary(summary)
    fresh = ChatSession(store, engine, new_id)
    assert fresh.thread() == []
    assert (
        fresh.options.system_prompt
        == "시스템\n\nSummary of the earlier conversation:\n요약: 서울 이야기"
    )
    assert fresh.title == "서울은? (…)"
