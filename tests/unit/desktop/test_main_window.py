"""The main window's features, driven like a user would with pytest-qt."""

from __future__ import annotations

import threading
from pathlib import Path

from bllossom_core.errors import GGUFError
from bllossom_core.store import ConversationStore
from desktop.qt import QApplication, QMessageBox, Qt
from desktop.settings import AppSettings
from tests.unit.desktop.scripted import ScriptedEngine, use_engine


def settle(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """Wait until every background operation of the window has ended."""
    qtbot.waitUntil(lambda: not window.ops.busy, timeout=10_000)


def send(qtbot, window, text: str) -> None:  # type: ignore[no-untyped-def]
    box = window.chat.input
    box.setPlainText(text)
    qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    settle(qtbot, window)


def shown_texts(window) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(w.message.role, w.message.text) for w in window.chat.view.widgets]


def test_first_run_shows_welcome_then_chat_after_model(make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    assert window.stack.currentWidget() is window.welcome
    use_engine(window, ScriptedEngine([["hi"]]), name="bllossom-tiny")
    assert window.stack.currentWidget() is window.chat
    assert "bllossom-tiny" in window.status.model_label.text()
    assert "CPU" in window.status.device_label.text()
    assert AppSettings.load().last_model == "/models/bllossom-tiny.gguf"


def test_send_streams_reply_saves_it_and_shows_stats(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    engine = ScriptedEngine([["안녕", "하세요", "! **반가워요**"]])
    use_engine(window, engine)
    send(qtbot, window, "안녕?")
    assert shown_texts(window) == [("user", "안녕?"), ("assistant", "안녕하세요! **반가워요**")]
    assert "<strong>반가워요</strong>" in window.chat.view.widgets[1].body_html()
    # The prompt had the seed card's system prompt and the question.
    assert [m.role for m in engine.prompts[0]] == ["system", "user"]
    assert "당신은 유능한 AI 어시스턴트" in engine.prompts[0][0].content
    store = ConversationStore()
    (conversation,) = store.list_conversations()
    assert conversation.title.startswith("안녕?")
    assert [m.text for m in store.thread(conversation.id)][-1] == "안녕하세요! **반가워요**"
    assert store.thread(conversation.id)[-1].complete
    assert "42.0" in window.status.speed_label.text()
    # The sidebar is refreshed in a later event-loop turn (see MainWindow.send).
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 1, timeout=2000)


def test_stop_button_and_escape_stop_generation(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    window = make_window()
    use_engine(window, ScriptedEngine([["첫", "둘", "셋", "넷"]], gate=gate))
    window.chat.input.setPlainText("길게 말해줘")
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    assert window.chat.send_button.text() == "Stop"
    op = window.conversation._reply_op
    assert op is not None
    qtbot.waitUntil(lambda: window.chat.view.streamed_text == "첫", timeout=5000)
    # Editing another message is ignored while the reply is being written.
    qtbot.mouseClick(window.chat.view.widgets[0].edit_button, Qt.MouseButton.LeftButton)
    assert window.conversation.editing_message_id is None
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Escape)
    assert op.cancel_token.cancelled
    gate.set()
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    assert window.chat.send_button.text() == "Send"
    reply = shown_texts(window)[-1][1]
    assert reply in ("첫", "첫둘")  # stopped within a token of the Esc
    store = ConversationStore()
    assert store.thread(window.conversation_id)[-1].text == reply


def test_regenerate_keeps_versions_browsable(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["first answer"], ["second answer"]]))
    send(qtbot, window, "질문")
    reply_widget = window.chat.view.widgets[-1]
    qtbot.mouseClick(reply_widget.regenerate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    last = window.chat.view.widgets[-1]
    assert last.message.text == "second answer"
    assert last.version_label.text() == "2/2" and last.version_label.isVisible()
    qtbot.mouseClick(last.previous_button, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert shown_texts(window)[-1] == ("assistant", "first answer")
    assert window.chat.view.widgets[-1].version_label.text() == "1/2"


def test_edit_user_message_creates_branch_and_keeps_old(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    engine = ScriptedEngine([["answer one"], ["answer two"]])
    use_engine(window, engine)
    send(qtbot, window, "원래 질문")
    question = window.chat.view.widgets[0]
    qtbot.mouseClick(question.edit_button, Qt.MouseButton.LeftButton)
    assert window.chat.edit_banner.isVisible()
    assert window.chat.input.toPlainText() == "원래 질문"
    send(qtbot, window, "고친 질문")
    assert shown_texts(window) == [("user", "고친 질문"), ("assistant", "answer two")]
    assert engine.prompts[1][-1].content == "고친 질문"
    edited = window.chat.view.widgets[0]
    assert edited.version_label.text() == "2/2"
    qtbot.mouseClick(edited.previous_button, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert shown_texts(window) == [("user", "원래 질문"), ("assistant", "answer one")]


def test_copy_message_and_code_block(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["코드:\n\n```python\nprint('안녕')\n```\n"]]))
    send(qtbot, window, "코드 줘")
    reply = window.chat.view.widgets[-1]
    reply.chunk_labels[0].linkActivated.emit("copy:0")
    assert QApplication.clipboard().text() == "print('안녕')\n"
    qtbot.mouseClick(reply.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text().startswith("코드:")


def test_sidebar_new_rename_delete_undo_and_reopen(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["a"], ["b"]]))
    send(qtbot, window, "첫 번째 대화")
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.conversation_id is None and window.chat.view.widgets == []
    send(qtbot, window, "두 번째 대화")
    titles = [window.sidebar.list.item(i).text() for i in range(window.sidebar.list.count())]
    assert titles == ["두 번째 대화", "첫 번째 대화"]  # newest first
    window.sidebar._on_item_activated(window.sidebar.list.item(1))
    settle(qtbot, window)
    assert shown_texts(window)[0] == ("user", "첫 번째 대화")
    item = window.sidebar.list.currentItem()
    item.setText("이름 바꾼 대화")
    settle(qtbot, window)
    assert ConversationStore().get_conversation(window.conversation_id).title == "이름 바꾼 대화"
    qtbot.waitUntil(lambda: window.sidebar.list.item(0).text() == "이름 바꾼 대화")
    window.sidebar.list.setCurrentRow(0)
    qtbot.mouseClick(window.sidebar.delete_button, Qt.MouseButton.LeftButton)
    assert window.sidebar.undo_bar.isVisible()
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 1)
    qtbot.mouseClick(window.sidebar.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 2)


def test_search_finds_korean_words_of_any_length(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["서울은 대한민국의 수도입니다."]]))
    send(qtbot, window, "한국의 수도는?")
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.search_box.hasFocus()
    for query in ("수", "수도", "대한민국의"):
        window.sidebar.search_box.setText(query)

        def highlighted(query: str = query) -> bool:
            item = window.sidebar.list.item(0)
            label = window.sidebar.list.itemWidget(item) if item is not None else None
            return label is not None and f"<b>{query}</b>" in label.text()

        qtbot.waitUntil(highlighted, timeout=3000)
    window.sidebar.search_box.setText("없는단어")
    qtbot.waitUntil(lambda: window.sidebar.list.item(0).text() == "No matches", timeout=3000)


def test_conversation_draft_and_geometry_survive_restart(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["ok"]]))
    send(qtbot, window, "기억해줘")
    window.chat.input.setPlainText("아직 안 보낸 초안")
    window.resize(700, 500)
    window.splitter.setSizes([200, 700])
    window.close()
    restarted = make_window()
    settle(qtbot, restarted)
    assert shown_texts(restarted) == [("user", "기억해줘"), ("assistant", "ok")]
    assert restarted.chat.input.toPlainText() == "아직 안 보낸 초안"
    assert (restarted.size().width(), restarted.size().height()) == (700, 500)
    assert restarted.splitter.sizes()[0] == 200


def test_conversation_settings_are_per_conversation(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    from bllossom_core.session import ConversationOptions

    window = make_window()
    engine = ScriptedEngine([["a"], ["b"]])
    use_engine(window, engine)
    options = window.conversation.options()
    assert options.settings.temperature == 0.2 and options.settings.top_k == 40
    window.conversation.apply_options(ConversationOptions("짧게 답해.", "auto", options.settings))
    settle(qtbot, window)
    send(qtbot, window, "질문")
    assert engine.prompts[0][0].content == "짧게 답해."
    conversation = ConversationStore().get_conversation(window.conversation_id)
    assert conversation.system_prompt == "짧게 답해."


def test_corrupt_model_error_is_shown_in_korean(qtbot, make_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = make_window(language="ko")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 30)
    window.models.open_file(broken)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None)
    box = window.findChild(QMessageBox, "errorBox")
    # The headline in Korean (chosen by the error's code), then the specific sentence.
    assert "모델 파일이 손상되었거나 GGUF 파일이 아닙니다." in box.text()
    assert str(broken) in box.text()
    assert "다시" in box.informativeText()
    assert window.models.engine is None
    assert isinstance(GGUFError("x"), Exception)


def test_real_model_loads_in_background_and_queued_message_is_sent(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    from bllossom_core.session import ConversationOptions
    from bllossom_core.types import GenerationSettings
    from tests.fixtures.gguf_models import fixture_gguf

    model = fixture_gguf("llama2-spm-ko")
    window = make_window()
    # A short reply: the random-weight model rarely stops by itself.
    window.conversation.apply_options(
        ConversationOptions("", "auto", GenerationSettings(max_tokens=48))
    )
    settle(qtbot, window)
    window.models.open_file(model)
    # The call returned at once: the model is read and loaded in worker threads.
    assert window.models.engine is None
    qtbot.waitUntil(lambda: window.models.loading is not None, timeout=10_000)
    assert window.status.model_label.text().startswith("Loading")
    window.chat.input.setPlainText("모델이 준비되면 보내 주세요")
    window.chat.input.submit()
    assert window.chat.input.toPlainText() == "모델이 준비되면 보내 주세요"  # kept, queued
    qtbot.waitUntil(lambda: window.models.engine is not None, timeout=60_000)
    qtbot.waitUntil(lambda: len(window.chat.view.widgets) == 2, timeout=10_000)
    qtbot.waitUntil(lambda: not window.busy, timeout=60_000)
    assert window.chat.input.toPlainText() == ""
    assert shown_texts(window)[0] == ("user", "모델이 준비되면 보내 주세요")
    store = ConversationStore()
    reply = store.thread(window.conversation_id)[-1]
    assert reply.complete and reply.generated_tokens > 0
    assert "CPU" in window.status.device_label.text()
    assert "F16" in window.status.model_label.text()
    assert AppSettings.load().last_model == str(model.resolve())


def test_template_choice_reloads_the_model_with_it(qtbot, make_window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import desktop.model_manager
    from bllossom_core.session import ConversationOptions

    window = make_window()
    use_engine(window, ScriptedEngine([["a"]]))
    loads: list[str] = []

    def load_engine(model, template, settings=None):  # type: ignore[no-untyped-def]
        loads.append(template)
        return ScriptedEngine([["b"]])

    monkeypatch.setattr(desktop.model_manager, "load_engine", load_engine)
    options = window.conversation.options()
    window.conversation.apply_options(
        ConversationOptions(options.system_prompt, "llama3", options.settings)
    )
    qtbot.waitUntil(lambda: window.models.template == "llama3", timeout=5000)
    settle(qtbot, window)
    assert loads == ["llama3"]
    send(qtbot, window, "질문")
    assert ConversationStore().get_conversation(window.conversation_id).template == "llama3"
    # A conversation with the automatic template switches the model back.
    window.conversation.new()
    qtbot.waitUntil(lambda: window.models.template == "auto", timeout=5000)
    assert loads == ["llama3", "auto"]


def test_closing_while_generating_saves_the_partial_reply(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    window = make_window()
    use_engine(window, ScriptedEngine([["부분", " 답변", " 나머지"]], gate=gate))
    window.chat.input.setPlainText("닫기 전에")
    window.chat.input.submit()
    qtbot.waitUntil(lambda: window.chat.view.streamed_text == "부분", timeout=5000)
    gate.set()
    window.close()  # stops the reply, waits for the worker, saves everything
    qtbot.waitUntil(lambda: window.closed, timeout=10_000)
    store = ConversationStore()
    (conversation,) = store.list_conversations()
    reply = store.thread(conversation.id)[-1]
    assert reply.text.startswith("부분") and reply.complete
    assert AppSettings.load().last_conversation == str(conversation.id)


def test_regenerate_after_a_failed_empty_reply_sends_the_right_prompt(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    store = ConversationStore()
    conversation = store.create_conversation(system_prompt="짧게 답하세요.")
    store.add_message(conversation.id, "user", "첫 질문")
    first = store.start_reply(conversation.id)
    first.append("첫 답")
    first_reply = first.finish()
    store.add_message(conversation.id, "user", "둘째 질문")
    store.start_reply(conversation.id).fail("the model stopped")  # empty and failed
    store.add_message(conversation.id, "user", "셋째 질문")
    store.add_message(conversation.id, "assistant", "셋째 답")
    store.close()
    window = make_window()
    engine = ScriptedEngine([["다시 쓴 첫 답"]])
    use_engine(window, engine)
    settle(qtbot, window)
    window.conversation.open(conversation.id)
    settle(qtbot, window)
    window.conversation.regenerate(first_reply.id)
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    # Only what led to the first reply: not the later turns, not the old version.
    assert [(m.role, m.content) for m in engine.prompts[-1]] == [
        ("system", "짧게 답하세요."),
        ("user", "첫 질문"),
    ]
    assert shown_texts(window) == [("user", "첫 질문"), ("assistant", "다시 쓴 첫 답")]


def test_a_file_without_a_chat_template_says_which_one_is_used(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    engine = ScriptedEngine([["hi"]])
    engine.template_note = "This model file has no chat template; using ChatML…"  # type: ignore[attr-defined]
    engine.template_name = "chatml"  # type: ignore[attr-defined]
    use_engine(window, engine)
    message = window.status.currentMessage()
    assert "no chat template" in message and "ChatML" in message
    window.languages.apply("ko")
    use_engine(window, engine)
    assert "ChatML" in window.status.currentMessage()
    assert "채팅 템플릿" in window.status.currentMessage()


def test_the_app_names_its_installed_desktop_entry(make_window) -> None:  # type: ignore[no-untyped-def]
    make_window()
    # Wayland finds the window's icon and name through the .desktop entry the .deb installs.
    assert QApplication.desktopFileName() == "io.github.bllossom.BllossomDesktop"
    assert (
        Path(__file__).resolve().parents[3]
        / "packaging"
        / "io.github.bllossom.BllossomDesktop.desktop"
    ).is_file()
