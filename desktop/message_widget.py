"""One message of the conversation: who wrote it, its body, a reasoning model's
thinking, the notes under a reply that ended unusually, and its actions (copy, edit,
regenerate, versions)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from desktop.i18n import is_language_change
from desktop.markdown import COPY_SCHEME, MarkdownRenderer, fenced_code, plain_to_html, split_chunks
from desktop.message_body import ChunkLabel, CodeBlock, markdown_renderer
from desktop.qt import (
    QDateTime,
    QEvent,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLocale,
    QSizePolicy,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.reply_parts import ReplyNotes, ReplyState, ThinkingPanel
from desktop.sidebar import short_when
from desktop.theme import current_colors


@dataclass(frozen=True)
class ShownMessage:
    """What the view needs of a stored message (see ``chat_controller.shown_message``)."""

    id: int
    role: str
    text: str
    sibling_index: int = 0
    sibling_count: int = 1
    sibling_ids: tuple[int, ...] = ()
    complete: bool = True
    error: str | None = None
    created_at: float = 0.0
    """Unix seconds; 0 for a message not stored yet (no time is shown)."""
    stop_reason: str | None = None
    thinking: str = ""
    thinking_seconds: float | None = None
    dropped_messages: int = 0


class MessageWidget(QFrame):
    copy_requested = Signal(str)
    edit_requested = Signal(int)
    regenerate_requested = Signal(int)
    version_requested = Signal(int)
    continue_requested = Signal(int)
    raise_context_requested = Signal()
    summary_chat_requested = Signal(int)

    def __init__(
        self,
        message: ShownMessage,
        renderer: MarkdownRenderer,
        parent: QWidget,
        context_size: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.message = message
        self._renderer = renderer
        self.live = False
        """The reply is streaming: an empty one shows "…", and no notes yet."""
        self._thinking_began: float | None = None
        self._thought_for: float | None = None
        """How long the thinking took, measured here until the stored figure arrives."""
        self.context_size = context_size
        """The loaded model's context, for the note about messages left out."""
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
        self.thinking_panel = ThinkingPanel(self)
        layout.addWidget(self.thinking_panel)
        # The body is a column of labels, one per Markdown chunk (see split_chunks):
        # while a reply streams only its last chunk changes and is laid out again.
        self._body_layout = QVBoxLayout()
        self._body_layout.setContentsMargins(0, 0, 0, 0)
        self._body_layout.setSpacing(0)
        layout.addLayout(self._body_layout)
        self.chunk_labels: list[ChunkLabel | CodeBlock] = []
        """One per chunk of the text (see split_chunks): a label, or a code block."""
        self._chunk_sources: list[str] = []
        self._chunk_code: list[list[str]] = []
        self.notes = ReplyNotes(self)
        self.notice = self.notes.notice
        layout.addWidget(self.notes)
        self.notes.continue_requested.connect(lambda: self.continue_requested.emit(self.message.id))
        self.notes.raise_context_requested.connect(self.raise_context_requested)
        self.notes.summary_chat_requested.connect(
            lambda: self.summary_chat_requested.emit(self.message.id)
        )
        footer = QHBoxLayout()
        footer.setSpacing(2)
        self.previous_button = self._tool_button("◀", footer)
        self.version_label = QLabel(self)
        footer.addWidget(self.version_label)
        self.next_button = self._tool_button("▶", footer)
        footer.addStretch(1)
        self.time_label = QLabel(self)
        self.time_label.setObjectName("messageTime")
        footer.addWidget(self.time_label)
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
            f"QLabel#messageTime {{ color: {colors.muted_text}; font-size: small; }}"
        )

    def retranslate(self) -> None:
        self.role_label.setText(
            self.tr("You") if self.message.role == "user" else self.tr("Assistant")
        )
        self.copy_button.setText(self.tr("Copy"))
        self.copy_button.setToolTip(self.tr("Copy this message"))
        self.edit_button.setText(self.tr("Edit"))
        self.edit_button.setToolTip(self.tr("Edit and resend as a new branch"))
        self.regenerate_button.setText(self.tr("Regenerate"))
        self.regenerate_button.setToolTip(self.tr("Write a new version of this reply"))
        self.previous_button.setToolTip(self.tr("Previous version"))
        self.next_button.setToolTip(self.tr("Next version"))
        self._renderer = markdown_renderer(self.tr("Copy"))
        self._render(force=True)
        self._update_notice()
        self._show_time()

    def changeEvent(self, event: QEvent) -> None:
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
        self._show_time()
        self._show_thinking()
        self._render()
        self._update_notice()

    def set_live(self, live: bool) -> None:
        """Mark the reply as streaming (or no longer)."""
        if live != self.live:
            self.live = live
            self._show_thinking()
            self._render()
            self._update_notice()

    def set_context_size(self, context_size: int | None) -> None:
        if context_size != self.context_size:
            self.context_size = context_size
            self._update_notice()

    def _show_thinking(self) -> None:
        """Open while the model thinks; folded once its answer begins (or the reply ended)."""
        message = self.message
        thinking_now = self.live and not message.text
        if self.live and message.thinking and self._thinking_began is None:
            self._thinking_began = time.monotonic()
        if self.live and message.text and self._thinking_began is not None:
            self._thought_for = self._thought_for or time.monotonic() - self._thinking_began
        seconds = message.thinking_seconds
        if seconds is None:
            seconds = self._thought_for
        self.thinking_panel.set_thinking(message.thinking, seconds, thinking_now)

    def _show_time(self) -> None:
        created = self.message.created_at
        self.time_label.setText(short_when(created) if created else "")
        if created:
            when = QDateTime.fromSecsSinceEpoch(int(created))
            self.time_label.setToolTip(QLocale().toString(when, QLocale.FormatType.LongFormat))
        self.time_label.setVisible(bool(created))

    def set_text(self, text: str, thinking: str | None = None) -> None:
        """Replace the text (and thinking) only: used while streaming."""
        if thinking is not None and thinking != self.message.thinking:
            first_thought = not self.message.thinking
            self.message = replace(self.message, thinking=thinking)
            self._show_thinking()
            if first_thought and not self.message.text:
                self._render()  # the thinking replaces the "…"
        if text != self.message.text:
            answer_began = not self.message.text
            self.message = replace(self.message, text=text)
            if answer_began:
                self._show_thinking()
            self._render()

    def set_actions_enabled(self, enabled: bool) -> None:
        for button in (self.edit_button, self.regenerate_button, self.previous_button):
            button.setEnabled(enabled)
        self.notes.set_actions_enabled(enabled)
        self.next_button.setEnabled(
            enabled and self.message.sibling_index + 1 < self.message.sibling_count
        )
        self.previous_button.setEnabled(enabled and self.message.sibling_index > 0)

    def body_html(self) -> str:
        return "".join(label.text() for label in self.chunk_labels)

    def _code_block(self, index: int) -> CodeBlock:
        current = self._chunk_label(index)
        if isinstance(current, CodeBlock):
            return current
        block = CodeBlock(self)
        block.copy_requested.connect(self.copy_requested)
        self._replace_chunk(index, block)
        return block

    def _text_label(self, index: int) -> ChunkLabel:
        current = self._chunk_label(index)
        if isinstance(current, ChunkLabel):
            return current
        label = self._new_label(index)
        self._replace_chunk(index, label)
        return label

    def _replace_chunk(self, index: int, widget: ChunkLabel | CodeBlock) -> None:
        old = self.chunk_labels[index]
        self._body_layout.insertWidget(index, widget)
        old.setParent(None)
        old.deleteLater()
        self.chunk_labels[index] = widget
        self._chunk_sources[index] = ""

    def _new_label(self, position: int) -> ChunkLabel:
        label = ChunkLabel(self)
        label.setObjectName("messageBody")
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        label.setOpenExternalLinks(False)
        # Vertically Preferred, not Minimum: with Minimum, Qt takes the size hint (the
        # height at the narrow hint width) as the floor, and a long reply then gets a
        # label many times taller than its text.
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        label.linkActivated.connect(lambda link, at=position: self._on_link(at, link))
        return label

    def _chunk_label(self, index: int) -> ChunkLabel | CodeBlock:
        while len(self.chunk_labels) <= index:
            label = self._new_label(len(self.chunk_labels))
            self._body_layout.addWidget(label)
            self.chunk_labels.append(label)
            self._chunk_sources.append("")
            self._chunk_code.append([])
        return self.chunk_labels[index]

    def _render(self, force: bool = False) -> None:
        if self.message.role == "user":
            chunks = [self.message.text]
        elif not self.message.text:
            # "…" while the reply is on its way; a finished empty reply shows nothing
            # (its note says so). Thinking alone is shown by the thinking panel.
            chunks = ["…"] if self.live and not self.message.thinking else []
        else:
            chunks = split_chunks(self.message.text)
        copy_label = self.tr("Copy")
        for index, chunk in enumerate(chunks):
            current = self._chunk_label(index)
            if not force and self._chunk_sources[index] == chunk and current.text():
                continue
            fence = fenced_code(chunk) if self.message.role != "user" else None
            if fence is not None:
                language, code = fence
                block = self._code_block(index)
                block.set_code(
                    language, code, self._renderer.highlight_code(code, language), copy_label
                )
                self._chunk_code[index] = [code]
            elif self.message.role == "user":
                self._text_label(index).setText(plain_to_html(chunk))
                self._chunk_code[index] = []
            else:
                rendered = self._renderer.render(chunk)
                self._text_label(index).setText(rendered.html)
                self._chunk_code[index] = rendered.code_blocks
            self._chunk_sources[index] = chunk
        for label in self.chunk_labels[len(chunks) :]:
            label.setParent(None)
            label.deleteLater()
        del self.chunk_labels[len(chunks) :]
        del self._chunk_sources[len(chunks) :]
        del self._chunk_code[len(chunks) :]

    def _update_notice(self) -> None:
        message = self.message
        self.notes.show_state(
            ReplyState(
                role=message.role,
                text=message.text,
                complete=message.complete,
                stop_reason=message.stop_reason,
                error=message.error,
                dropped_messages=message.dropped_messages,
                live=self.live,
                context_size=self.context_size,
            )
        )

    def _on_link(self, chunk: int, link: str) -> None:
        scheme, _, rest = link.partition(":")
        if scheme != COPY_SCHEME or not rest.isdigit():
            return
        # A label's own code (a block inside a list item) first, else the message's
        # code blocks in order.
        blocks = self._chunk_code[chunk] if chunk < len(self._chunk_code) else []
        if not blocks:
            blocks = [code for chunk_code in self._chunk_code for code in chunk_code]
        if int(rest) < len(blocks):
            self.copy_requested.emit(blocks[int(rest)])

    def _step_version(self, step: int) -> None:
        target = self.message.sibling_index + step
        if 0 <= target < len(self.message.sibling_ids):
            self.version_requested.emit(self.message.sibling_ids[target])
