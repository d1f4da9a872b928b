"""The chat side of the window: the conversation, the edit banner and the input row."""

from __future__ import annotations

from desktop.chat_view import ChatView
from desktop.i18n import is_language_change
from desktop.input_box import InputBox
from desktop.qt import (
    QEvent,
    QHBoxLayout,
    QLabel,
    QPushButton,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

SIDEBAR_SHORTCUT = "Ctrl+B"
"""Shows or hides the conversation list (the window owns the shortcut: it works on
every page)."""


class ChatPage(QWidget):
    """Chat view, the edit banner and the input row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        header = QHBoxLayout()
        header.setContentsMargins(12, 6, 12, 0)
        self.sidebar_button = QToolButton(self)
        self.sidebar_button.setObjectName("sidebarToggle")
        self.sidebar_button.setText("☰")
        self.sidebar_button.setCheckable(True)
        self.sidebar_button.setChecked(True)
        self.sidebar_button.setAutoRaise(True)
        self.sidebar_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        header.addWidget(self.sidebar_button)
        self.title_label = QLabel(self)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.options_button = QPushButton(self)
        header.addWidget(self.title_label, 1)
        header.addWidget(self.options_button)
        layout.addLayout(header)
        self.view = ChatView(self)
        layout.addWidget(self.view, 1)
        self.edit_banner = QWidget(self)
        banner = QHBoxLayout(self.edit_banner)
        banner.setContentsMargins(12, 0, 12, 0)
        self.edit_label = QLabel(self.edit_banner)
        self.cancel_edit_button = QPushButton(self.edit_banner)
        banner.addWidget(self.edit_label, 1)
        banner.addWidget(self.cancel_edit_button)
        self.edit_banner.hide()
        layout.addWidget(self.edit_banner)
        row = QHBoxLayout()
        row.setContentsMargins(12, 0, 12, 0)
        self.input = InputBox(self)
        self.send_button = QPushButton(self)
        # A click must not take the focus from the input: the focus change makes some
        # input methods (fcitx5-hangul) drop the syllable still being composed before
        # the click is handled. Tab still reaches the button.
        self.send_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.send_button.setMinimumHeight(40)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(row)
        self.generating = False
        self.retranslate()

    def set_generating(self, generating: bool) -> None:
        self.generating = generating
        self.input.send_enabled = not generating
        self.retranslate()

    def retranslate(self) -> None:
        self.options_button.setText(self.tr("Conversation settings"))
        self.sidebar_button.setToolTip(self.tr("Show or hide the conversation list (Ctrl+B)"))
        self.edit_label.setText(self.tr("Editing a message: sending creates a new branch."))
        self.cancel_edit_button.setText(self.tr("Cancel editing"))
        self.input.setPlaceholderText(
            self.tr("Type a message. Enter sends, Shift+Enter adds a line.")
        )
        self.send_button.setText(self.tr("Stop") if self.generating else self.tr("Send"))
        self.send_button.setToolTip(
            self.tr("Stop generating (Esc)") if self.generating else self.tr("Send (Enter)")
        )

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)
