"""Korean IME: Enter or Send while a syllable is composing sends the text exactly once."""

from __future__ import annotations

import pytest

from desktop.input_box import InputBox
from desktop.qt import QEvent, QFocusEvent, QInputMethodEvent, Qt


def preedit(box: InputBox, text: str) -> None:
    box.inputMethodEvent(QInputMethodEvent(text, []))


def commit(box: InputBox, text: str, next_preedit: str = "") -> None:
    event = QInputMethodEvent(next_preedit, [])
    event.setCommitString(text)
    box.inputMethodEvent(event)


@pytest.fixture
def box(qtbot):  # type: ignore[no-untyped-def]
    widget = InputBox()
    qtbot.addWidget(widget)
    widget.show()
    widget.setFocus()
    sent: list[str] = []
    widget.submitted.connect(sent.append)
    widget.sent = sent  # type: ignore[attr-defined]
    return widget


def type_hangeul_with_pending_syllable(box: InputBox) -> None:
    """한 is committed, 글 is still in the pre-edit (the IME has not finished it)."""
    preedit(box, "ㅎ")
    preedit(box, "하")
    preedit(box, "한")
    commit(box, "한", next_preedit="ㄱ")
    preedit(box, "그")
    preedit(box, "글")
    assert box.toPlainText() == "한"
    assert box.preedit == "글"


def test_enter_with_pending_preedit_sends_whole_text_once(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    type_hangeul_with_pending_syllable(box)
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.sent == ["한글"]
    assert box.toPlainText() == ""
    assert box.preedit == ""


def test_late_commit_after_enter_is_not_duplicated(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    type_hangeul_with_pending_syllable(box)
    qtbot.keyClick(box, Qt.Key.Key_Return)
    # Some IMEs (ibus, fcitx) deliver the commit of the pending syllable after the key.
    commit(box, "글")
    assert box.sent == ["한글"]
    assert box.toPlainText() == ""
    # Typing goes on normally afterwards.
    commit(box, "다")
    assert box.toPlainText() == "다"


def test_ime_that_commits_before_enter(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    type_hangeul_with_pending_syllable(box)
    commit(box, "글")  # the IME finishes the syllable itself, then forwards Enter
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.sent == ["한글"]


def test_send_button_path_commits_preedit(box) -> None:  # type: ignore[no-untyped-def]
    commit(box, "안녕하세")
    preedit(box, "요")
    assert box.submit() is True
    assert box.sent == ["안녕하세요"]
    assert box.submit() is False  # nothing left: not sent twice
    assert box.sent == ["안녕하세요"]


def test_preedit_in_the_middle_of_text(box) -> None:  # type: ignore[no-untyped-def]
    commit(box, "가다")
    cursor = box.textCursor()
    cursor.setPosition(1)
    box.setTextCursor(cursor)
    preedit(box, "나")
    assert box.full_text() == "가나다"
    box.submit()
    assert box.sent == ["가나다"]


def test_shift_enter_inserts_newline_and_keeps_syllable(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    type_hangeul_with_pending_syllable(box)
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert box.sent == []
    assert box.toPlainText() == "한글\n"
    qtbot.keyClicks(box, "ok")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.sent == ["한글\nok"]


def test_blank_text_is_not_sent(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    qtbot.keyClicks(box, "   ")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.sent == []


def test_enter_does_nothing_while_generating(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    box.send_enabled = False
    qtbot.keyClicks(box, "next question")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.sent == []
    assert box.toPlainText() == "next question"


# fcitx5-hangul (through fcitx5's IBus frontend) lets the key that ends a syllable
# reach the box first and commits the syllable afterwards; Qt drops a pending
# pre-edit when a click moves the focus. tests/e2e/test_real_ime.py drives the real
# engines; these replay the orders of events they produce.


def focus_out(box: InputBox, reason: Qt.FocusReason = Qt.FocusReason.MouseFocusReason) -> None:
    box.focusOutEvent(QFocusEvent(QEvent.Type.FocusOut, reason))


def test_space_before_the_late_commit_keeps_the_order(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    commit(box, "좋")
    preedit(box, "은")
    qtbot.keyClick(box, Qt.Key.Key_Space)  # the engine let Space through first...
    commit(box, "은")  # ...and commits 은 after it
    assert box.toPlainText() == "좋은 "
    preedit(box, "아")
    commit(box, "아", next_preedit="치")
    preedit(box, "침")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    commit(box, "침")
    assert box.sent == ["좋은 아침"]
    assert box.toPlainText() == ""


def test_shift_while_composing_does_not_end_the_syllable(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    preedit(box, "이")
    qtbot.keyPress(box, Qt.Key.Key_Shift)  # Shift+t is ㅆ: 있 is still composing
    assert box.preedit == "이"
    assert box.toPlainText() == ""
    preedit(box, "있")
    commit(box, "있")
    assert box.toPlainText() == "있"


def test_preedit_cleared_for_a_focus_change_is_kept(box) -> None:  # type: ignore[no-untyped-def]
    commit(box, "감사합니")
    preedit(box, "다")
    preedit(box, "")  # Qt clears the pre-edit as the click moves the focus...
    focus_out(box)  # ...just before the focus leaves
    assert box.toPlainText() == "감사합니다"
    commit(box, "다")  # should the engine's own commit come here, it is not doubled
    assert box.toPlainText() == "감사합니다"
    assert box.submit() is True
    assert box.sent == ["감사합니다"]


def test_preedit_cleared_by_the_engine_stays_cleared(qtbot, box) -> None:  # type: ignore[no-untyped-def]
    commit(box, "가")
    preedit(box, "ㄴ")
    preedit(box, "")  # Backspace: the engine removes the last jamo
    qtbot.wait(20)  # the event loop turns before any focus change
    focus_out(box)
    assert box.toPlainText() == "가"


def test_pending_preedit_is_committed_when_the_focus_leaves(box) -> None:  # type: ignore[no-untyped-def]
    commit(box, "감사합니")
    preedit(box, "다")
    focus_out(box, Qt.FocusReason.TabFocusReason)
    assert (box.toPlainText(), box.preedit) == ("감사합니다", "")
    commit(box, "다")  # the engine's late commit is swallowed
    assert box.toPlainText() == "감사합니다"


def test_context_menu_keeps_the_composition(box) -> None:  # type: ignore[no-untyped-def]
    commit(box, "감사합니")
    preedit(box, "다")
    focus_out(box, Qt.FocusReason.PopupFocusReason)
    assert (box.toPlainText(), box.preedit) == ("감사합니", "다")
