"""Quitting while work runs: no thread outlives the window, nothing typed or streamed
is lost, and the store is closed only after every operation has ended."""

from __future__ import annotations

import threading

import desktop.model_manager
from bllossom_core.store import ConversationStore
from desktop.qt import Qt
from desktop.settings import RegisteredModel
from tests.unit.desktop.scripted import ScriptedEngine, use_engine


def test_quit_mid_reply_waits_visibly_and_keeps_the_text(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    window = make_window()
    use_engine(window, ScriptedEngine([["부분", " 답변", " 끝"]], gate=gate))
    window.chat.input.setPlainText("닫기 전에")
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.chat.view.streamed_text == "부분", timeout=5000)
    window.close()  # the engine is blocked between two tokens: the window must wait
    assert not window.closed
    assert window.status.currentMessage() == "Stopping…"
    assert window.ops.busy  # the reply's thread still runs; the store is still open
    gate.set()
    qtbot.waitUntil(lambda: window.closed, timeout=10_000)
    assert window.ops.running() == []
    store = ConversationStore()
    (conversation,) = store.list_conversations()
    reply = store.thread(conversation.id)[-1]
    assert reply.text.startswith("부분")  # stopped within a token, kept
    store.close()


def test_quit_while_a_model_loads_closes_after_the_load(qtbot, make_window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()
    loaded: list[ScriptedEngine] = []

    def slow_load(model: RegisteredModel, template: str, settings: object = None) -> ScriptedEngine:
        release.wait(10)  # llama.cpp's load cannot be interrupted
        engine = ScriptedEngine([["x"]])
        loaded.append(engine)
        return engine

    monkeypatch.setattr(desktop.model_manager, "load_engine", slow_load)
    window = make_window()
    window.models.load(RegisteredModel(name="slow", path="/models/slow.gguf"))
    window.chat.input.setPlainText("초안은 남아야 합니다")
    window.close()
    assert not window.closed and window.ops.busy
    release.set()
    qtbot.waitUntil(lambda: window.closed, timeout=10_000)
    assert window.ops.running() == []
    assert loaded and loaded[0].closed  # the late engine was freed, not leaked
    restarted = make_window()
    assert restarted.chat.input.toPlainText() == "초안은 남아야 합니다"


def test_a_too_long_message_is_refused_and_nothing_is_stored(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    from desktop.qt import QMessageBox

    window = make_window()
    use_engine(window, ScriptedEngine([["답"]], context_chars=200))
    text = "아주 긴 메시지 " * 40
    window.chat.input.setPlainText(text)
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None)
    box = window.findChild(QMessageBox, "errorBox")
    assert "too long" in box.text()
    assert window.chat.input.toPlainText() == text.strip()  # nothing typed is lost
    assert window.chat.view.widgets == []
    assert ConversationStore().list_conversations() == []
