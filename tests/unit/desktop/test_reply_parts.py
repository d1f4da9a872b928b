"""A reasoning model's thinking in the conversation, and the notes under replies that
ended unusually (stopped, cut at the length limit, empty, history left out)."""

from __future__ import annotations

import threading

from bllossom_core.store import ConversationStore
from desktop.model_settings_dialog import ModelSettingsDialog
from desktop.qt import QApplication, QColor, Qt, QVBoxLayout, QWidget
from desktop.reply_parts import ThinkingPanel
from desktop.theme import current_colors
from tests.unit.desktop.scripted import ScriptedEngine, use_engine
from tests.unit.desktop.test_main_window import send, settle


def last_reply(window):  # type: ignore[no-untyped-def]
    return window.chat.view.widgets[-1]


def reply_text(window) -> str | None:  # type: ignore[no-untyped-def]
    widgets = window.chat.view.widgets
    return widgets[-1].message.text if widgets else None


def test_thinking_streams_open_then_folds_to_thought_for_and_opens_on_click(
    qtbot, make_window
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    gate = threading.Event()
    engine = ScriptedEngine(
        [["서울", "입니다."]],
        gate=gate,
        thinking=[["The user asks ", "for the capital."]],
    )
    use_engine(window, engine)
    box = window.chat.input
    box.setPlainText("한국의 수도는?")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    # Paused after the first answer piece: while the answer streams, the thinking that
    # came first is folded and timed; before that it was shown open and live.
    qtbot.waitUntil(lambda: reply_text(window) == "서울", timeout=5000)
    panel = last_reply(window).thinking_panel
    assert panel.isVisible()
    assert panel.text_label.text() == "The user asks for the capital."
    assert not panel.expanded and panel.summary.startswith("Thought for")
    gate.set()
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    settle(qtbot, window)
    reply = last_reply(window)
    panel = reply.thinking_panel
    assert reply.message.text == "서울입니다." and reply.message.thinking_seconds == 12.0
    assert panel.summary == "Thought for 12 s" and panel.toggle_button.text() == panel.summary
    assert not panel.expanded and panel.text_label.isHidden()
    assert "capital" not in reply.body_html()  # the answer shows only the answer
    qtbot.mouseClick(panel.toggle_button, Qt.MouseButton.LeftButton)
    assert panel.expanded and panel.text_label.isVisible()
    qtbot.mouseClick(panel.toggle_button, Qt.MouseButton.LeftButton)
    assert panel.text_label.isHidden()
    # Reopened from the store: still folded, with the stored time.
    window.conversation.open(window.conversation.conversation_id)
    settle(qtbot, window)
    panel = last_reply(window).thinking_panel
    assert panel.isVisible() and panel.summary == "Thought for 12 s" and not panel.expanded


def test_thinking_text_has_its_bar_on_the_left(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Before: the stylesheet's border-left alone drew nothing (only the gap it left)."""
    host = QWidget()
    qtbot.addWidget(host)
    QVBoxLayout(host).addWidget(panel := ThinkingPanel(host))
    panel.set_thinking("생각: the user asks for the capital.\nA second line.", None, live=True)
    host.resize(360, 120)
    host.show()
    qtbot.waitExposed(host)
    label = panel.text_label
    image = label.grab().toImage()
    bar = QColor(current_colors().muted_text).rgb()
    middle = image.height() // 2
    assert [image.pixel(x, middle) for x in range(3)] == [bar] * 3
    assert image.pixel(5, middle) != bar  # the padding after the bar


def test_thinking_is_open_while_the_model_has_not_answered_yet(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["답"]]))
    window.chat.view.set_messages([])
    from desktop.message_widget import ShownMessage

    widget = window.chat.view.append_message(ShownMessage(id=-1, role="assistant", text=""))
    window.chat.view.begin_stream(widget)
    window.chat.view.add_piece("Let me think", thinking=True)
    window.chat.view.flush_stream()
    assert widget.thinking_panel.expanded and widget.thinking_panel.summary == "Thinking…"
    assert widget.thinking_panel.text_label.text() == "Let me think"
    assert widget.body_html() == ""  # no "…" under thinking that is showing
    window.chat.view.add_piece("답")
    window.chat.view.flush_stream()
    assert not widget.thinking_panel.expanded
    assert widget.thinking_panel.summary.startswith("Thought for")
    window.chat.view.stop_stream()


def test_a_plain_reply_has_no_thinking_panel_and_no_notes(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["안녕하세요"]]))
    send(qtbot, window, "안녕")
    reply = last_reply(window)
    assert reply.thinking_panel.isHidden() and reply.notes.isHidden()


def test_reply_cut_at_the_length_limit_is_marked_with_continue(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["고려 시대의 ", "역사는"]], stop_reason="length"))
    send(qtbot, window, "고려에 대해 알려줘")
    notes = last_reply(window).notes
    assert not notes.isHidden()
    assert notes.notice.text() == "The reply reached the length limit."
    assert not notes.continue_button.isHidden() and notes.continue_button.text() == "Continue"
    assert notes.context_button.isHidden()


def test_stopped_reply_is_marked_stopped(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    gate = threading.Event()
    use_engine(window, ScriptedEngine([["하나", "둘", "셋"]], gate=gate))
    box = window.chat.input
    box.setPlainText("세어 봐")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: reply_text(window) == "하나", timeout=5000)
    window.conversation.stop()
    gate.set()
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    settle(qtbot, window)
    notes = last_reply(window).notes
    assert notes.notice.text() == "Stopped."
    assert notes.continue_button.isHidden()


def test_empty_reply_is_shown_empty_with_a_note_not_an_ellipsis(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([[]]))
    send(qtbot, window, "아무 말도 하지 마")
    reply = last_reply(window)
    assert reply.body_html() == "" and "…" not in reply.body_html()
    assert reply.notes.notice.text() == "The model gave an empty reply."


def test_history_left_out_is_said_with_the_context_and_actions(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["네"]], dropped_messages=6, context_size=4096))
    send(qtbot, window, "계속 이야기해 줘")
    notes = last_reply(window).notes
    assert notes.notice.text() == (
        "The oldest 6 messages no longer fit in the 4,096-token context and were left out "
        "of this reply."
    )
    assert not notes.context_button.isHidden() and not notes.summary_button.isHidden()
    (conversation,) = ConversationStore().list_conversations()
    assert ConversationStore().thread(conversation.id)[-1].dropped_messages == 6
    # The Korean window says it in Korean, with the number formatted.
    window.languages.apply("ko")
    qtbot.waitUntil(lambda: "메시지" in notes.notice.text(), timeout=2000)
    assert "6" in notes.notice.text() and "4,096" in notes.notice.text()
    assert notes.context_button.text() == "컨텍스트 크기 늘리기…"


def test_continue_writes_more_into_the_same_reply(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    engine = ScriptedEngine([["고려는 ", "918년에"], [" 세워졌습니다."]], stop_reason="length")
    use_engine(window, engine)
    send(qtbot, window, "고려는 언제?")
    notes = last_reply(window).notes
    engine.stop_reason = None
    qtbot.mouseClick(notes.continue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    settle(qtbot, window)
    assert [w.message.text for w in window.chat.view.widgets] == [
        "고려는 언제?", "고려는 918년에 세워졌습니다.",
    ]  # fmt: skip
    assert last_reply(window).notes.isHidden()  # finished normally now
    assert engine.prompts[1][-1].role == "assistant"


def test_context_full_actions_open_model_settings_and_a_chat_from_a_summary(
    qtbot, make_window
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    engine = ScriptedEngine([["네"], ["요약된 ", "내용"]], dropped_messages=6, context_size=4096)
    use_engine(window, engine)
    send(qtbot, window, "긴 대화")
    first = window.conversation.conversation_id
    notes = last_reply(window).notes
    qtbot.mouseClick(notes.context_button, Qt.MouseButton.LeftButton)
    (dialog,) = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, ModelSettingsDialog) and w.isVisible()]  # fmt: skip
    dialog.reject()
    qtbot.mouseClick(notes.summary_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.conversation.conversation_id not in (None, first),
                    timeout=5000)  # fmt: skip
    settle(qtbot, window)
    assert window.chat.view.widgets == []
    options = window.conversation.options()
    assert options.system_prompt is not None and options.system_prompt.endswith("요약된 내용")
    assert window.chat.title_label.text() == "긴 대화 (…)"


def test_a_failure_before_any_text_reads_no_reply_not_stopped_early(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["안녕", "하세요"]], fail_after=0))
    send(qtbot, window, "안녕")
    assert last_reply(window).notes.notice.text().startswith("No reply: ")
    use_engine(window, ScriptedEngine([["안녕", "하세요"]], fail_after=1))
    send(qtbot, window, "다시")
    assert last_reply(window).notes.notice.text().startswith("The reply stopped early: ")
