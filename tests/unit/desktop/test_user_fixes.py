"""What a demanding user noticed (issue: "The desktop app as a demanding Korean user finds
it"): messages during a model switch, drafts while editing, settings checks, the status
bar per conversation, and nothing switching or stopping without asking."""

from __future__ import annotations

import threading
from pathlib import Path

import desktop.model_manager
from bllossom_core.store import ConversationStore
from desktop.qt import QMessageBox, Qt
from desktop.settings import RegisteredModel
from desktop.settings_dialog import ConversationSettingsDialog
from tests.unit.desktop.scripted import ScriptedEngine, use_engine
from tests.unit.desktop.test_main_window import send, settle, shown_texts


def test_a_message_sent_during_a_model_switch_is_answered_by_the_new_model(
    qtbot, make_window, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    old, new = ScriptedEngine([["old model"]]), ScriptedEngine([["new model"]])
    release = threading.Event()

    def load_engine(
        model: RegisteredModel, template: str, settings: object = None
    ) -> ScriptedEngine:
        release.wait(10)
        return new

    monkeypatch.setattr(desktop.model_manager, "load_engine", load_engine)
    window = make_window()
    use_engine(window, old, name="old")
    window.models.load(RegisteredModel(name="new", path="/models/new.gguf"))
    window.chat.input.setPlainText("누가 답하나요?")
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    assert not window.busy and window.chat.input.toPlainText() == "누가 답하나요?"  # queued
    assert "when the model is ready" in window.status.currentMessage()
    release.set()
    qtbot.waitUntil(lambda: len(shown_texts(window)) == 2, timeout=10_000)
    settle(qtbot, window)
    assert shown_texts(window)[-1] == ("assistant", "new model")
    assert old.prompts == []  # the old model never saw it
    conversation = ConversationStore().get_conversation(window.conversation_id)
    assert conversation.model == "/models/new.gguf"


def test_editing_a_message_keeps_the_draft(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["답"]]))
    send(qtbot, window, "질문")
    window.chat.input.setPlainText("쓰다 만 초안")
    qtbot.mouseClick(window.chat.view.widgets[0].edit_button, Qt.MouseButton.LeftButton)
    assert window.chat.input.toPlainText() == "질문"
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Escape)
    assert window.chat.input.toPlainText() == "쓰다 만 초안"
    assert not window.chat.edit_banner.isVisible()


def test_conversation_settings_use_the_one_check(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    dialog = ConversationSettingsDialog(window.conversation.options(), 2048, window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.top_p.setValue(0.0)
    dialog.accept()
    assert dialog.isVisible() and dialog.problem_label.isVisible()
    assert "Top-p" in dialog.problem_label.text()
    dialog.top_p.setValue(0.9)
    dialog.max_tokens.setValue(4096)  # more than the 2,048-token context
    dialog.accept()
    assert dialog.isVisible() and "2048" in dialog.problem_label.text()
    dialog.max_tokens.setValue(512)
    dialog.accept()
    assert not dialog.isVisible()


def test_stats_belong_to_the_conversation_shown(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["답"]]))
    send(qtbot, window, "질문")
    assert "42.0" in window.status.speed_label.text()
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.status.speed_label.text() == ""


def test_new_chat_without_a_model_says_what_to_do(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    window.settings.models.append(RegisteredModel(name="x", path="/models/x.gguf"))
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert "No model is loaded" in window.status.currentMessage()


def test_a_finished_conversion_asks_before_opening(qtbot, make_window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["a"]]), name="current")
    opened: list[Path] = []
    monkeypatch.setattr(
        window.models, "open_file", lambda path, template="auto": opened.append(path)
    )
    monkeypatch.setattr(window.models, "ask_open_converted", lambda output: False)
    window.models._offer_converted(Path("/models/new.gguf"))
    assert opened == [] and "current" in window.status.model_label.text()
    monkeypatch.setattr(window.models, "ask_open_converted", lambda output: True)
    window.models._offer_converted(Path("/models/new.gguf"))
    assert opened == [Path("/models/new.gguf")]


def test_closing_the_convert_dialog_mid_conversion_asks(qtbot, make_window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import desktop.convert_dialog
    from desktop.convert_dialog import ConvertDialog

    release = threading.Event()

    def slow_convert(source, output, quant, *, verify, progress, cancel):  # type: ignore[no-untyped-def]
        while not cancel.cancelled and not release.wait(0.01):
            pass
        from bllossom_core.errors import Cancelled

        raise Cancelled("cancelled")

    monkeypatch.setattr(desktop.convert_dialog, "convert", slow_convert)
    window = make_window()
    dialog = ConvertDialog(window.ops, window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.source_edit.setText("/checkpoints/x")
    dialog.output_edit.setText("/tmp/x.gguf")
    dialog.start()
    monkeypatch.setattr(dialog, "confirm_stop", lambda: False)
    dialog.reject()
    assert dialog.isVisible() and dialog.running  # the user chose to keep converting
    monkeypatch.setattr(dialog, "confirm_stop", lambda: True)
    dialog.reject()
    assert not dialog.isVisible()
    settle(qtbot, window)
    assert not dialog.running
    assert window.findChild(QMessageBox, "errorBox") is None  # a cancel is not an error
