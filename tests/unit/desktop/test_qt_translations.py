"""Qt's own dialogs speak Korean in the Korean UI (qtbase_ko.qm beside our catalogue)."""

from __future__ import annotations

import re

from desktop.i18n import LanguageSwitcher
from desktop.qt import QAbstractButton, QFileDialog, QLabel

HANGUL = re.compile(r"[가-힣]")


def _file_dialog_texts(qtbot) -> list[str]:  # type: ignore[no-untyped-def]
    dialog = QFileDialog()
    qtbot.addWidget(dialog)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    labels = [label.text() for label in dialog.findChildren(QLabel) if label.text()]
    buttons = [b.text() for b in dialog.findChildren(QAbstractButton) if b.text()]
    return labels + buttons


def test_file_dialog_labels_are_korean_in_the_korean_ui(qtbot) -> None:  # type: ignore[no-untyped-def]
    languages = LanguageSwitcher()
    try:
        languages.apply("ko")
        texts = _file_dialog_texts(qtbot)
    finally:
        languages.apply("en")
    labels = [t for t in texts if t.endswith(":")]
    assert len(labels) == 3, texts  # Look in, File name, Files of type
    for text in labels:
        assert HANGUL.search(text), f"{text!r} is not Korean"
    assert "다음에서 찾기(&L):" in labels
    assert "파일 형식(&T):" in labels
    assert not any("Look in" in t or "Files of" in t for t in texts)


def test_file_dialog_labels_are_english_again_after_switching_back(qtbot) -> None:  # type: ignore[no-untyped-def]
    languages = LanguageSwitcher()
    languages.apply("ko")
    languages.apply("en")
    texts = _file_dialog_texts(qtbot)
    assert "&Look in:" in texts
    assert "Files of &type:" in texts
