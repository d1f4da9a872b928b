"""The conversation: one :class:`MessageWidget` per message in a scroll area.

Streaming is cheap by construction: pieces from the generation worker are only
appended to a list; a 40 ms timer renders the *last* message once per tick (and
nothing else), and the view follows the bottom only while the user has not
scrolled up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from desktop.i18n import is_language_change
from desktop.markdown import COPY_SCHEME, MarkdownRenderer, MarkdownStyle, plain_to_html
from desktop.qt import (
    QEvent,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    Qt,
    QTimer,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.theme import current_colors, monospace_family

STREAM_FLUSH_MS = 40
BOTTOM_SLACK_PX = 24


@dataclass(frozen=True)
class ShownMessage:
    """What the view needs of a stored message (see ``services.shown_message``)."""

    id: int
    role: str
    text: str
    sibling_index: int = 0
    sibling_count: int = 1
    sibling_ids: tuple[int, ...] = ()
    complete: bool = True
    error: str | None = None


def markdown_renderer(copy_label: str) -> MarkdownRenderer:
    colors = current_colors()
    return MarkdownRenderer(
        MarkdownStyle(
            code_background=colors.code_background,
            muted_text=colors.muted_text,
            monospace=monospace_family(),
            pygments_style=colors.pygments_style,
            copy_label=copy_label,
        )
    )


class MessageWidget(QFrame):
    copy_requested = Signal(str)
    edit_requested = Signal(int)
    regenerate_requested = Signal(int)
    version_requested = Signal(int)

    def __init__(self, message: ShownMessage, renderer: MarkdownRenderer, parent: QWidget) -> None:
        super().__init__(parent)
        self.message = message
        self._renderer = renderer
        self._code_blocks: list[str] = []
        self.setObjectName("message")
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 6)
        layout.setSpacing(4)
        self.role_label = QLabel(self)
        self.role_label.setObjectName("roleLabel")
        font = self.role_label.font()
        font.setBold(True)
        self.role_label.setFont(font)
        layout.addWidget(self.role_label)
        self.body = QLabel(self)
        self.body.setObjectName("messageBody")
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.body.setOpenExternalLinks(False)
        self.body.linkActivated.connect(self._on_link)
        self.body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.body)
        self.notice = QLabel(self)
        self.notice.setObjectName("messageNotice")
        self.notice.setWordWrap(True)
        layout.addWidget(self.notice)
        footer = QHBoxLayout()
        footer.setSpacing(2)
        self.previous_button = self._tool_button("◀", footer)
        self.version_label = QLabel(self)
        footer.addWidget(self.version_label)
        self.next_button = self._tool_button("▶", footer)
        footer.addStretch(1)
        self.copy_button = self._tool_button("", footer)
        self.edit_button = self._tool_button("", footer)
        self.regenerate_button = self._tool_button("", footer)
        layout.addLayout(footer)
        self.previous_button.clicked.connect(lambda: self._step_version(-1))
        self.next_button.clicked.connect(lambda: self._step_version(1))
        self.copy_button.clicked.connect(lambda: self.copy_requested.emit(self.message.text))
        self.edit_button.clicked.connect(lambda: self.edit_requested.emit(self.message.id))
        self.regenerate_button.clicked.connect(
            lambda: self.regenerate_requested.emit(self.message.id)
        )
        self.retranslate()
        self._apply_style()
        self.set_message(message)

    def _tool_button(self, text: str, layout: QHBoxLayout) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setAutoRaise(True)
        layout.addWidget(button)
        return button

    def _apply_style(self) -> None:
        colors = current_colors()
        background = colors.user_bubble if self.message.role == "user" else colors.assistant_bubble
        self.setStyleSheet(
            f"QFrame#message {{ background: {background}; border-radius: 10px; }}"
            f"QLabel#messageNotice {{ color: {colors.muted_text}; }}"
        )

    def retranslate(self) -> None:
        self.role_label.setText(self.tr("You") if self.message.role == "user" else self.tr("Assistant"))
        self.copy_button.setText(self.tr("Copy"))
        self.copy_button.setToolTip(self.tr("Copy this message"))
        self.edit_button.setText(self.tr("Edit"))
        self.edit_button.setToolTip(self.tr("Edit and resend as a new branch"))
        self.regenerate_button.setText(self.tr("Regenerate"))
        self.regenerate_button.setToolTip(self.tr("Write a new version of this reply"))
        self.previous_button.setToolTip(self.tr("Previous version"))
        self.next_button.setToolTip(self.tr("Next version"))
        self._renderer = markdown_renderer(self.tr("Copy"))
        self._render()
        self._update_notice()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def set_message(self, message: ShownMessage) -> None:
        self.message = message
        self.edit_button.setVisible(message.role == "user")
        self.regenerate_button.setVisible(message.role == "assistant")
        many = message.sibling_count > 1
        for widget in (self.previous_button, self.version_label, self.next_button):
            widget.setVisible(many)
        self.version_label.setText(f"{message.sibling_index + 1}/{message.sibling_count}")
        self.previous_button.setEnabled(message.sibling_index > 0)
        self.next_button.setEnabled(message.sibling_index + 1 < message.sibling_count)
        self._render()
        self._update_notice()

    def set_text(self, text: str) -> None:
        """Replace the text only (used while streaming)."""
        self.message = replace(self.message, text=text)
        self._render()

    def set_actions_enabled(self, enabled: bool) -> None:
        for button in (self.edit_button, self.regenerate_button, self.previous_button):
            button.setEnabled(enabled)
        self.next_button.setEnabled(
            enabled and self.message.sibling_index + 1 < self.message.sibling_count
        )
        self.previous_button.setEnabled(enabled and self.message.sibling_index > 0)

    def _render(self) -> None:
        if self.message.role == "user":
            self._code_blocks = []
            self.body.setText(plain_to_html(self.message.text))
            return
        rendered = self._renderer.render(self.message.text or "…")
        self._code_blocks = rendered.code_blocks
        self.body.setText(rendered.html)

    def _update_notice(self) -> None:
        if self.message.error:
            self.notice.setText(self.tr("The reply stopped early: %1").replace("%1", self.message.error))
        elif not self.message.complete and self.message.text:
            self.notice.setText(self.tr("This reply was interrupted."))
        else:
            self.notice.setText("")
        self.notice.setVisible(bool(self.notice.text()))

    def _on_link(self, link: str) -> None:
        scheme, _, rest = link.partition(":")
        if scheme == COPY_SCHEME and rest.isdigit() and int(rest) < len(self._code_blocks):
            self.copy_requested.emit(self._code_blocks[int(rest)])

    def _step_version(self, step: int) -> None:
        target = self.message.sibling_index + step
        if 0 <= target < len(self.message.sibling_ids):
            self.version_requested.emit(self.message.sibling_ids[target])


class ChatView(QScrollArea):
    copy_requested = Signal(str)
    edit_requested = Signal(int)
    regenerate_requested = Signal(int)
    version_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._content = QWidget(self)
        self._layout = QVBoxLayout(self._content)
        self._layout.setContentsMargins(16, 16, 16, 16)
        self._layout.setSpacing(10)
        self._layout.addStretch(1)
        self.setWidget(self._content)
        self.widgets: list[MessageWidget] = []
        self._renderer = markdown_renderer(self.tr("Copy"))
        self._stream_widget: MessageWidget | None = None
        self._stream_pieces: list[str] = []
        self._stream_text = ""
        self.follow_bottom = True
        self.renders = 0
        """How many times the streaming message was re-rendered (for tests and benchmarks)."""
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(STREAM_FLUSH_MS)
        self._flush_timer.timeout.connect(self.flush_stream)
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)

    # ------------------------------------------------------------------ content
    def clear(self) -> None:
        self.stop_stream()
        for widget in self.widgets:
            widget.setParent(None)
            widget.deleteLater()
        self.widgets = []
        self.follow_bottom = True

    def set_messages(self, messages: list[ShownMessage]) -> None:
        self.clear()
        self._content.setUpdatesEnabled(False)
        try:
            for message in messages:
                self.append_message(message)
        finally:
            self._content.setUpdatesEnabled(True)
        self.scroll_to_bottom()

    def append_message(self, message: ShownMessage) -> MessageWidget:
        widget = MessageWidget(message, self._renderer, self._content)
        widget.copy_requested.connect(self.copy_requested)
        widget.edit_requested.connect(self.edit_requested)
        widget.regenerate_requested.connect(self.regenerate_requested)
        widget.version_requested.connect(self.version_requested)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.widgets.append(widget)
        return widget

    def widget_for(self, message_id: int) -> MessageWidget | None:
        return next((w for w in self.widgets if w.message.id == message_id), None)

    # ------------------------------------------------------------------ streaming
    def begin_stream(self, widget: MessageWidget) -> None:
        self._stream_widget = widget
        self._stream_pieces = []
        self._stream_text = widget.message.text
        for other in self.widgets:
            other.set_actions_enabled(False)
        self._flush_timer.start()

    def add_piece(self, piece: str) -> None:
        self._stream_pieces.append(piece)

    def flush_stream(self) -> None:
        if self._stream_widget is None or not self._stream_pieces:
            return
        self._stream_text += "".join(self._stream_pieces)
        self._stream_pieces = []
        self._stream_widget.set_text(self._stream_text)
        self.renders += 1

    @property
    def streaming(self) -> bool:
        return self._stream_widget is not None

    @property
    def streamed_text(self) -> str:
        return self._stream_text + "".join(self._stream_pieces)

    def stop_stream(self) -> None:
        self.flush_stream()
        self._flush_timer.stop()
        self._stream_widget = None
        for widget in self.widgets:
            widget.set_actions_enabled(True)

    # ------------------------------------------------------------------ scrolling
    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self.follow_bottom = value >= bar.maximum() - BOTTOM_SLACK_PX

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self.follow_bottom:
            self.verticalScrollBar().setValue(maximum)

    def scroll_to_bottom(self) -> None:
        self.follow_bottom = True
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if is_language_change(event):
            self._renderer = markdown_renderer(self.tr("Copy"))
        super().changeEvent(event)
