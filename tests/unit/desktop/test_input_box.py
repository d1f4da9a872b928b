"""Korean IME: Enter or Send while a syllable is composing sends the text exactly once."""

from __future__ import annotations

import pytest

from desktop.input_box import InputBox
from desktop.qt import QInputMethodEvent, Qt


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
