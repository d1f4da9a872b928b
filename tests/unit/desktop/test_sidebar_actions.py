"""The conversation list as a user drives it: Delete key, right-click menu, Esc in the
search box, Undo reopening the shown conversation, dates and the "imported" mark."""

from __future__ import annotations

import time

from bllossom_core.store import ConversationStore
from desktop.qt import QDateTime, QLocale, Qt
from desktop.sidebar import STAMP_ROLE, ConversationEntry, Sidebar, short_when
from tests.unit.desktop.scripted import ScriptedEngine, use_engine
from tests.unit.desktop.test_main_window import send, settle, shown_texts

DAY = 86_400


def _titles(window) -> list[str]:  # type: ignore[no-untyped-def]
    items = [window.sidebar.list.item(i) for i in range(window.sidebar.list.count())]
    return [item.text() for item in items]


def test_delete_key_deletes_the_selected_conversation_and_undo_reopens_it(
    qtbot, make_window
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["a"], ["b"]]))
    send(qtbot, window, "첫 번째 대화")
    shown = window.conversation_id
    qtbot.waitUntil(lambda: _titles(window) == ["첫 번째 대화"])
    listing = window.sidebar.list
    listing.setFocus()
    listing.setCurrentRow(0)
    qtbot.keyClick(listing, Qt.Key.Key_Delete)
    assert window.sidebar.undo_bar.isVisible()
    qtbot.waitUntil(lambda: listing.count() == 0)
    settle(qtbot, window)
    assert window.conversation_id is None  # the deleted one is no longer shown
    assert ConversationStore().list_conversations() == []
    qtbot.mouseClick(window.sidebar.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.conversation_id == shown, timeout=5000)
    settle(qtbot, window)
    assert shown_texts(window) == [("user", "첫 번째 대화"), ("assistant", "a")]
    assert _titles(window) == ["첫 번째 대화"]


def test_undo_of_a_conversation_not_shown_does_not_switch(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["a"], ["b"]]))
    send(qtbot, window, "첫 번째 대화")
    first = window.conversation_id
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    send(qtbot, window, "두 번째 대화")
    second = window.conversation_id
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 2)
    window.sidebar.list.setCurrentRow(1)  # the first conversation, not the shown one
    window.sidebar.delete_button.click()
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 1)
    window.sidebar.undo_button.click()
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 2)
    settle(qtbot, window)
    assert window.conversation_id == second != first


def test_right_click_menu_renames_exports_and_deletes(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["a"]]))
    send(qtbot, window, "메뉴로 다룰 대화")
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 1)
    sidebar = window.sidebar
    exported: list[int] = []
    window.conversations.export_requested.connect(exported.append)
    asked: list[str] = []  # the save dialog FileActions opens for it, answered "cancel"
    window.files.ask_save_path = lambda title, suggested: asked.append(suggested)
    rect = sidebar.list.visualItemRect(sidebar.list.item(0))
    sidebar.list.customContextMenuRequested.emit(rect.center())
    menu = sidebar.context_menu
    qtbot.waitUntil(menu.isVisible)
    assert [a.text() for a in menu.actions() if not a.isSeparator()] == [
        "Rename",
        "Export…",
        "Delete",
    ]
    menu.hide()
    sidebar.export_action.trigger()
    assert exported == [window.conversation_id]
    qtbot.waitUntil(lambda: len(asked) == 1)  # the window's export asked where to save
    sidebar.rename_action.trigger()
    assert sidebar.list.isPersistentEditorOpen(sidebar.list.item(0)) or sidebar.list.state() == (
        sidebar.list.State.EditingState
    )
    sidebar.list.closePersistentEditor(sidebar.list.item(0))
    sidebar.delete_action.trigger()
    qtbot.waitUntil(lambda: sidebar.list.count() == 0)
    assert sidebar.undo_bar.isVisible()


def test_escape_in_the_search_box_clears_the_search(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["a"]]))
    send(qtbot, window, "검색할 대화")
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    box = window.sidebar.search_box
    box.setFocus()
    box.setText("없는말")
    qtbot.waitUntil(lambda: window.sidebar.list.item(0).text() == "No matches", timeout=3000)
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert box.text() == ""
    qtbot.waitUntil(lambda: _titles(window) == ["검색할 대화"], timeout=3000)


def test_dates_and_imported_mark_in_the_list(qtbot) -> None:  # type: ignore[no-untyped-def]
    sidebar = Sidebar()
    qtbot.addWidget(sidebar)
    now = time.time()
    old = now - 40 * DAY
    sidebar.set_conversations(
        [
            ConversationEntry(1, "오늘 대화", now),
            ConversationEntry(2, "가져온 대화", old, imported=True),
        ],
        current=1,
    )
    stamps = [sidebar.list.item(i).data(STAMP_ROLE) for i in range(2)]
    locale = QLocale()
    today_time = QDateTime.fromSecsSinceEpoch(int(now)).time()
    old_date = QDateTime.fromSecsSinceEpoch(int(old)).date()
    assert stamps[0] == locale.toString(today_time, QLocale.FormatType.ShortFormat)
    assert stamps[1] == locale.toString(old_date, QLocale.FormatType.ShortFormat) + " · imported"
    # Each row is two lines tall (title and the muted date line).
    one_line = sidebar.list.fontMetrics().height()
    assert sidebar.list.visualItemRect(sidebar.list.item(0)).height() >= 2 * one_line


def test_dates_follow_the_ui_language(qtbot) -> None:  # type: ignore[no-untyped-def]
    previous = QLocale()
    try:
        QLocale.setDefault(QLocale(QLocale.Language.Korean))
        stamp = short_when(time.time() - 40 * DAY)
        when = QDateTime.fromSecsSinceEpoch(int(time.time() - 40 * DAY)).date()
        assert stamp == QLocale(QLocale.Language.Korean).toString(
            when, QLocale.FormatType.ShortFormat
        )
        assert stamp != QLocale(QLocale.Language.English).toString(
            when, QLocale.FormatType.ShortFormat
        )
    finally:
        QLocale.setDefault(previous)


def test_messages_show_their_time(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    use_engine(window, ScriptedEngine([["a"]]))
    send(qtbot, window, "몇 시에 보냈지?")
    window.conversation.open(window.conversation_id)
    settle(qtbot, window)
    (question, _reply) = ConversationStore().thread(window.conversation_id)
    widget = window.chat.view.widgets[0]
    expected = QLocale().toString(
        QDateTime.fromSecsSinceEpoch(int(question.created_at)).time(),
        QLocale.FormatType.ShortFormat,
    )
    assert widget.time_label.text() == expected
    assert widget.time_label.isVisible()
