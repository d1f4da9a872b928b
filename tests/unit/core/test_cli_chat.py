"""``bllossom chat``'s conversation loop with a scripted engine: commands, /save, failures."""

from __future__ import annotations

import builtins
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bllossom_core import cli
from bllossom_core.commands import chat
from bllossom_core.commands.chat import parse_line
from bllossom_core.errors import InputError, RemoteError
from bllossom_core.store import ConversationStore
from bllossom_core.types import (
    CancelToken,
    ChatMessage,
    DeviceReport,
    GenerationSettings,
    GenerationStats,
    StreamPiece,
)


class ScriptedStream:
    def __init__(self, pieces: list[str], failure: Exception | None) -> None:
        self.pieces = pieces
        self.failure = failure
        self.stats = GenerationStats()
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        yield from self.pieces
        if self.failure is not None:
            self.stats.stop_reason = "error"
            raise self.failure
        self.stats.stop_reason = "stop"

    def events(self) -> Iterator[StreamPiece]:
        for text in self:
            yield StreamPiece("answer", text)

    def close(self) -> None:
        self.closed = True


class ScriptedEngine:
    """Answers each prompt from ``replies``: a string, or an exception raised when the
    reply starts (``("start", error)``) or after its text (``("mid", text, error)``)."""

    display_name = "scripted"
    device = DeviceReport(backend="cpu", summary="CPU: scripted")

    def __init__(self, *replies: object) -> None:
        self.replies = list(replies)
        self.prompts: list[list[ChatMessage]] = []
        self.streams: list[ScriptedStream] = []

    def stream_chat(
        self, messages: list[ChatMessage], settings: GenerationSettings, cancel: CancelToken
    ) -> ScriptedStream:
        self.prompts.append(list(messages))
        reply = self.replies.pop(0)
        if isinstance(reply, tuple) and reply[0] == "start":
            raise reply[1]
        if isinstance(reply, tuple):
            stream = ScriptedStream([reply[1]] if reply[1] else [], reply[2])
        else:
            stream = ScriptedStream([str(reply)], None)
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        pass


def run_chat(
    monkeypatch: pytest.MonkeyPatch,
    engine: ScriptedEngine,
    *lines: str,
    options: tuple[str, ...] = (),
) -> tuple[int, ConversationStore]:
    monkeypatch.setattr(chat, "_open_engine", lambda args: engine)
    feed = iter(lines)

    def fake_input(prompt: str = "") -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(builtins, "input", fake_input)
    code = cli.main(["chat", "--endpoint", "http://unused", *options])
    return code, ConversationStore()


def test_save_refuses_existing_files_and_the_database(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    bllossom_home: Path,
) -> None:
    existing = tmp_path / "notes.md"
    existing.write_text("my notes", "utf-8")
    database = bllossom_home / "conversations.sqlite3"
    code, store = run_chat(
        monkeypatch, ScriptedEngine("대답"), "질문", f"/save {existing}", f"/save {database}",
        f"/save {database}-wal", "/quit",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert existing.read_text("utf-8") == "my notes"
    assert f"Not saved: {existing} already exists" in out
    assert out.count("is the conversation database itself") == 2
    assert not (bllossom_home / "conversations.sqlite3-wal.md").exists()
    (conversation,) = store.list_conversations()  # the database is still a database
    assert [m.text for m in store.thread(conversation.id)] == ["질문", "대답"]
    store.close()


def test_save_failures_are_reported_and_the_chat_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "somedir"
    folder.mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, store = run_chat(
        monkeypatch, ScriptedEngine("하나", "둘"), "첫째", f"/save {folder}",
        f"/save {blocker}/x.md", "둘째", "/quit",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert f"Not saved: {folder} is a folder." in out
    assert "Choose a folder you can write to" not in out.split(f"{folder} is a folder")[1][:80]
    assert f"Not saved: Could not write {blocker}/x.md" in out
    (conversation,) = store.list_conversations()
    assert [m.text for m in store.thread(conversation.id)] == ["첫째", "하나", "둘째", "둘"]
    store.close()


def test_save_expands_home_and_keeps_normal_permissions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    old_umask = os.umask(0o022)
    try:
        code, store = run_chat(monkeypatch, ScriptedEngine("답"), "질문", "/save ~/x.md", "/quit")
    finally:
        os.umask(old_umask)
    store.close()
    assert code == 0
    saved = tmp_path / "x.md"
    assert saved.is_file() and "질문" in saved.read_text("utf-8")
    assert not (tmp_path / "~").exists()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o644
    assert f"Saved to {saved}." in capsys.readouterr().out


def test_a_reply_that_cannot_start_stores_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    too_long = InputError("The message is too long: its prompt needs 9999 tokens.")
    refused = RemoteError("There is no OpenAI-compatible API at http://x (HTTP 404).")
    engine = ScriptedEngine(("start", too_long), ("start", refused), "안녕하세요")
    code, store = run_chat(monkeypatch, engine, "아주 긴 글", "다시", "인사", "/quit")
    err = capsys.readouterr().err
    assert code == 0 and "too long" in err and "HTTP 404" in err
    (conversation,) = store.list_conversations()
    assert [(m.role, m.text) for m in store.thread(conversation.id)] == [
        ("user", "인사"), ("assistant", "안녕하세요"),
    ]  # fmt: skip
    assert engine.prompts[-1] == [ChatMessage("user", "인사")]
    store.close()


def test_a_reply_failing_without_text_stays_out_of_the_next_prompt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    died = RemoteError("The server stopped in the middle of the reply.")
    engine = ScriptedEngine(("mid", "", died), "네")
    code, store = run_chat(monkeypatch, engine, "첫 질문", "다시 묻기", "/quit")
    assert code == 0 and "stopped in the middle" in capsys.readouterr().err
    (conversation,) = store.list_conversations()
    # The second question replaced the unanswered one as a new version of that turn.
    assert engine.prompts[1] == [ChatMessage("user", "다시 묻기")]
    thread = store.thread(conversation.id)
    assert [(m.role, m.text) for m in thread] == [("user", "다시 묻기"), ("assistant", "네")]
    assert thread[0].sibling_count == 2
    assert store.chat_messages(conversation.id) == [
        ChatMessage("user", "다시 묻기"), ChatMessage("assistant", "네"),
    ]  # fmt: skip
    # Every stream is closed, the failed one too: the engine is free for the next reply.
    assert [s.closed for s in engine.streams] == [True, True]
    store.close()


def test_store_leaves_empty_failed_replies_out_of_prompts() -> None:
    with ConversationStore() as store:
        conversation = store.create_conversation(system_prompt="sys")
        store.add_message(conversation.id, "user", "Q")
        failed = store.start_reply(conversation.id)
        failed.fail("server died")
        assert store.thread(conversation.id)[-1].error == "server died"  # the app shows it
        store.add_message(conversation.id, "user", "Q again")
        assert store.chat_messages(conversation.id) == [
            ChatMessage("system", "sys"), ChatMessage("user", "Q"), ChatMessage("user", "Q again"),
        ]  # fmt: skip


def test_a_failed_first_reply_with_a_system_prompt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    died = RemoteError("The server stopped in the middle of the reply.")
    engine = ScriptedEngine(("mid", "", died), ("mid", "", died), "네")
    monkeypatch.setattr(chat, "_open_engine", lambda args: engine)
    feed = iter(["하나", "둘", "셋", "/quit"])
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(feed))
    assert cli.main(["chat", "--endpoint", "http://unused", "--system", "sys"]) == 0
    assert engine.prompts == [
        [ChatMessage("system", "sys"), ChatMessage("user", text)] for text in ("하나", "둘", "셋")
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/save out.md", ("command", "/save out.md")),
        ("/quit", ("command", "/quit")),
        ("/etc/hosts 설명해줘", ("text", "/etc/hosts 설명해줘")),
        ("//new 라는 명령은 뭐야?", ("text", "/new 라는 명령은 뭐야?")),
        ("/sve x.md", ("unknown", "/sve")),
        ("/ 하나", ("text", "/ 하나")),
        ("안녕 /new", ("text", "안녕 /new")),
    ],
)
def test_only_known_commands_are_commands(line: str, expected: tuple[str, str]) -> None:
    assert parse_line(line) == expected


def test_slash_lines_in_a_session(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = ScriptedEngine("hosts 파일입니다", "명령입니다")
    code, store = run_chat(
        monkeypatch, engine, "/etc/hosts 설명해줘", "/sve x.md", "//help 는 뭐야", "/quit"
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Unknown command /sve; /help lists them" in out and "begin it with //" in out
    (conversation,) = store.list_conversations()
    assert [m.text for m in store.thread(conversation.id)] == [
        "/etc/hosts 설명해줘", "hosts 파일입니다", "/help 는 뭐야", "명령입니다",
    ]  # fmt: skip
    store.close()


class ThinkingStream(ScriptedStream):
    def events(self) -> Iterator[StreamPiece]:
        yield StreamPiece("thinking", "Let me think.")
        yield from super().events()


class ThinkingEngine(ScriptedEngine):
    def stream_chat(
        self, messages: list[ChatMessage], settings: GenerationSettings, cancel: CancelToken
    ) -> ScriptedStream:
        self.prompts.append(list(messages))
        stream = ThinkingStream([str(self.replies.pop(0))], None)
        self.streams.append(stream)
        return stream


def test_chat_shows_thinking_apart_or_hides_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_chat(monkeypatch, ThinkingEngine("서울입니다."), "수도는?", "/quit")[1].close()
    shown = capsys.readouterr().out
    assert "Let me think.\n\n서울입니다." in shown  # set apart (not dimmed: not a terminal)
    engine = ThinkingEngine("부산입니다.")
    run_chat(monkeypatch, engine, "수도는?", options=("--hide-thinking",))[1].close()
    hidden = capsys.readouterr().out
    assert "부산입니다." in hidden and "Let me think." not in hidden
