"""The input row: the Send button keeps a composing Hangul syllable; the box grows."""

from __future__ import annotations

from desktop.chat_page import ChatPage
from desktop.input_box import MAX_LINES, MIN_LINES
from desktop.qt import QApplication, QEvent, QInputMethodEvent, QObject, Qt


class DiscardPreeditOnFocusLoss(QObject):
    """What fcitx5-hangul does when the focus leaves the box: the pre-edit is dropped
    (an empty input-method event) before the widget sees the focus change."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusOut:
            QApplication.sendEvent(watched, QInputMethodEvent("", []))
        return False


def _page(qtbot) -> ChatPage:  # type: ignore[no-untyped-def]
    page = ChatPage()
    qtbot.addWidget(page)
    page.resize(700, 500)
    with qtbot.waitExposed(page):
        page.show()
    page.activateWindow()
    page.input.setFocus()
    qtbot.waitUntil(page.input.hasFocus)
    return page


def test_send_button_click_sends_the_syllable_being_composed(qtbot) -> None:  # type: ignore[no-untyped-def]
    page = _page(qtbot)
    box = page.input
    ime = DiscardPreeditOnFocusLoss()
    box.installEventFilter(ime)
    sent: list[str] = []
    box.submitted.connect(sent.append)
    # The controller's Send button handler submits the box (ChatController._on_send_button).
    page.send_button.clicked.connect(box.submit)
    committed = QInputMethodEvent("다", [])
    committed.setCommitString("감사합니")
    box.inputMethodEvent(committed)
    assert box.preedit == "다"
    qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    assert sent == ["감사합니다"]
    assert box.hasFocus()
    assert page.send_button.focusPolicy() & Qt.FocusPolicy.TabFocus  # still reachable by Tab


def test_input_box_grows_with_its_text_up_to_a_limit(qtbot) -> None:  # type: ignore[no-untyped-def]
    page = _page(qtbot)
    box = page.input
    line = box.fontMetrics().lineSpacing()
    empty_height = box.height()
    assert box.visible_lines() == MIN_LINES
    box.setPlainText("\n".join(f"줄 {n}" for n in range(5)))
    qtbot.waitUntil(lambda: box.height() >= empty_height + 3 * line)
    five_lines = box.height()
    box.setPlainText("\n".join(f"줄 {n}" for n in range(40)))
    qtbot.waitUntil(lambda: box.visible_lines() == MAX_LINES)
    assert box.height() == five_lines + (MAX_LINES - 5) * line
    assert box.verticalScrollBar().maximum() > 0  # the rest scrolls
    # One long line wraps into several lines at the box's width and grows it too.
    box.setPlainText("가나다라마바사 " * 60)
    qtbot.waitUntil(lambda: box.visible_lines() > MIN_LINES)
    box.clear()
    qtbot.waitUntil(lambda: box.height() == empty_height)
