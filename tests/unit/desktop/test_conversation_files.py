"""File › Export / Import / Recently deleted, driven through the window's actions."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bllossom_core.store import ConversationStore
from desktop.file_actions import RecentlyDeletedDialog, export_name
from desktop.qt import QMessageBox, Qt
from tests.unit.desktop.scripted import ScriptedEngine, use_engine
from tests.unit.desktop.test_main_window import send, settle, shown_texts


def answer_dialogs(monkeypatch, window, save: Path | None = None, open_: Path | None = None):  # type: ignore[no-untyped-def]
    asked: list[tuple[str, str]] = []

    def ask_save_path(title: str, suggested: str) -> Path | None:
        asked.append((title, suggested))
        return save

    monkeypatch.setattr(window.files, "ask_save_path", ask_save_path)
    monkeypatch.setattr(window.files, "ask_open_path", lambda title: open_)
    return asked


def two_conversations(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    use_engine(window, ScriptedEngine([["첫 답변 **굵게**"], ["second answer"]]))
    send(qtbot, window, "첫 번째 질문")
    window.conversation.new()
    send(qtbot, window, "second question")


def test_export_current_conversation_as_markdown(qtbot, make_window, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    two_conversations(qtbot, window)
    window.conversation.open(ConversationStore().list_conversations()[1].id)
    settle(qtbot, window)
    target = tmp_path / "chat.md"
    asked = answer_dialogs(monkeypatch, window, save=target)
    window.export_action.trigger()
    settle(qtbot, window)
    assert asked == [("Export conversation", "첫 번째 질문.md")]
    text = target.read_text(encoding="utf-8")
    assert "첫 번째 질문" in text and "첫 답변 **굵게**" in text
    assert "second question" not in text
    assert str(target) in window.status.currentMessage()


def test_export_all_as_json_and_import_it_back(qtbot, make_window, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    two_conversations(qtbot, window)
    target = tmp_path / "everything"  # no suffix: the JSON filter was not chosen -> .md
    answer_dialogs(monkeypatch, window, save=target.with_suffix(".json"))
    window.export_all_action.trigger()
    settle(qtbot, window)
    document = json.loads(target.with_suffix(".json").read_text(encoding="utf-8"))
    assert len(document["conversations"]) == 2
    answer_dialogs(monkeypatch, window, open_=target.with_suffix(".json"))
    window.import_action.trigger()
    settle(qtbot, window)
    store = ConversationStore()
    titles = sorted(c.title for c in store.list_conversations())
    assert titles == sorted(["첫 번째 질문", "second question"] * 2)
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 4)
    # The first imported conversation is opened, with its messages.
    assert shown_texts(window)[0][1] in ("첫 번째 질문", "second question")
    assert window.status.currentMessage() == "Imported 2 conversation(s)."


def test_import_of_a_wrong_file_is_explained_in_korean(
    qtbot, make_window, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window(language="ko")
    wrong = tmp_path / "notes.json"
    wrong.write_text('{"hello": 1}', encoding="utf-8")
    answer_dialogs(monkeypatch, window, open_=wrong)
    window.import_action.trigger()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None)
    box = window.findChild(QMessageBox, "errorBox")
    assert "파일을 가져올 수 없습니다." in box.text()
    assert box.informativeText() == "Bllossom에서 내보낸 .json 파일을 고르세요."
    assert "not a Bllossom conversation export" in box.text()
    assert ConversationStore().list_conversations() == []
    box.close()
    box.setParent(None)  # type: ignore[call-overload]
    binary = tmp_path / "image.json"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not text")
    answer_dialogs(monkeypatch, window, open_=binary)
    window.import_action.trigger()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None)
    box = window.findChild(QMessageBox, "errorBox")
    assert "is not a text file" in box.text()


def test_export_errors_and_cancel(qtbot, make_window, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = make_window(language="ko")
    answer_dialogs(monkeypatch, window, save=tmp_path / "x.md")
    settle(qtbot, window)
    window.export_action.trigger()  # nothing open yet
    assert window.status.currentMessage() == "내보낼 대화를 먼저 여세요."
    two_conversations(qtbot, window)
    answer_dialogs(monkeypatch, window, save=None)  # the user cancelled the dialog
    window.export_action.trigger()
    settle(qtbot, window)
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    answer_dialogs(monkeypatch, window, save=blocker / "inside.md")  # a file, not a folder
    window.export_action.trigger()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None)
    box = window.findChild(QMessageBox, "errorBox")
    assert "내보내기 파일을 쓰지 못했습니다." in box.text()
    assert box.informativeText() == "쓰기 권한이 있는 폴더를 골라 다시 내보내세요."
    assert str(blocker) in box.text()


def test_recently_deleted_restores_chosen_conversations(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    two_conversations(qtbot, window)
    for conversation in ConversationStore().list_conversations():
        window.conversations.delete(conversation.id)  # what the sidebar's Delete asks for
    settle(qtbot, window)
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 0)
    window.trash_action.trigger()
    settle(qtbot, window)
    dialog = window.findChild(RecentlyDeletedDialog)
    assert dialog is not None and dialog.list.count() == 2
    assert not dialog.restore_button.isEnabled() and not dialog.empty_label.isVisible()
    titles = {dialog.list.item(i).text() for i in range(2)}
    assert titles == {"첫 번째 질문", "second question"}
    dialog.list.item(0).setSelected(True)
    restored_title = dialog.list.item(0).text()
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    assert dialog.list.count() == 1
    settle(qtbot, window)
    assert [c.title for c in ConversationStore().list_conversations()] == [restored_title]
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 1)
    dialog.list.item(0).setSelected(True)
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    assert dialog.empty_label.isVisibleTo(dialog)
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 2)


def test_export_name_is_a_safe_file_name() -> None:
    assert export_name('a/b:c*?"<>| ', "x") == "a b c"
    assert export_name("...", "대화") == "대화"
    assert export_name("서울 여행 계획", "x") == "서울 여행 계획"


def test_export_replaces_a_confirmed_file(qtbot, make_window, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    two_conversations(qtbot, window)
    target = tmp_path / "chat.md"
    target.write_text("an older export", encoding="utf-8")
    answer_dialogs(monkeypatch, window, save=target)  # the save dialog asked to replace it
    window.export_action.trigger()
    settle(qtbot, window)
    assert window.findChild(QMessageBox, "errorBox") is None
    text = target.read_text(encoding="utf-8")
    assert "second question" in text and "an older export" not in text


def test_trash_older_than_30_days_is_erased_at_start(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    day = 24 * 3600.0
    now = time.time()
    store = ConversationStore()
    ids = {}
    for title, deleted_days_ago in (("오래된 대화", 31), ("어제 지운 대화", 1)):
        conversation = store.create_conversation(title)
        store.add_message(conversation.id, "user", title)
        ids[title] = conversation.id
        # Deleted that long ago, by a store whose clock said so then.
        past = ConversationStore(clock=lambda ago=deleted_days_ago: now - ago * day)
        past.delete_conversation(conversation.id)
        past.close()
    kept = store.create_conversation("남은 대화")
    store.close()
    window = make_window(language="ko")
    settle(qtbot, window)
    store = ConversationStore()
    assert [c.title for c in store.list_conversations(deleted=True)] == ["어제 지운 대화"]
    assert [c.id for c in store.list_conversations()] == [kept.id]
    window.trash_action.trigger()
    settle(qtbot, window)
    dialog = window.findChild(RecentlyDeletedDialog)
    assert dialog is not None and dialog.list.count() == 1
    assert "30일" in dialog.explanation.text()


def test_the_sidebar_menu_exports_the_conversation_it_names(
    qtbot, make_window, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    two_conversations(qtbot, window)  # the second one is shown
    first = ConversationStore().list_conversations()[1]
    target = tmp_path / "first.md"
    asked = answer_dialogs(monkeypatch, window, save=target)
    window.sidebar.export_requested.emit(first.id)  # right-click › Export… on it
    settle(qtbot, window)
    assert asked == [("Export conversation", "첫 번째 질문.md")]
    assert "첫 번째 질문" in target.read_text(encoding="utf-8")
