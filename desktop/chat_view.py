"""The conversation: one :class:`MessageWidget` per message in a scroll area.

Streaming is cheap by construction: pieces from the generation worker are only
appended to a list; a 40 ms timer renders the *last* message once per tick (and
nothing else), and the view follows the bottom only while the user has not
scrolled up.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace

from desktop.i18n import is_language_change
from desktop.markdown import (
    COPY_SCHEME,
    MarkdownRenderer,
    MarkdownStyle,
    fenced_code,
    plain_to_html,
    split_chunks,
)
from desktop.qt import (
    QDateTime,
    QEvent,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLocale,
    QResizeEvent,
    QScrollArea,
    QSize,
    QSizePolicy,
    Qt,
    QTimer,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.reply_parts import ReplyNotes, ReplyState, ThinkingPanel
from desktop.sidebar import short_when
from desktop.theme import Colors, current_colors, monospace_family

STREAM_FLUSH_MS = 40
FIRST_BATCH = 10
"""Messages shown at once when a long conversation opens (its end)."""
EARLIER_BATCH = 4
"""Earlier messages added per event-loop turn after that."""
BOTTOM_SLACK_PX = 24
CHUNK_MIN_WIDTH = 160
"""The width every message label reports as its (minimum) size hint (see ChunkLabel)."""
MAX_CONTENT_WIDTH = 900
"""The conversation column's widest width: lines stay readable in very wide windows."""
SIDE_MARGIN = 16


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


def markdown_renderer(copy_label: str) -> MarkdownRenderer:
    """The shared renderer for the current theme and language."""
    return _renderer_for(copy_label, current_colors())


@functools.lru_cache(maxsize=8)
def _renderer_for(copy_label: str, colors: Colors) -> MarkdownRenderer:
    return MarkdownRenderer(
        MarkdownStyle(
            code_background=colors.code_background,
            muted_text=colors.muted_text,
            border=colors.muted_text,
            monospace=monospace_family(),
            pygments_style=colors.pygments_style,
            copy_label=copy_label,
            inline_code_background=colors.code_background,
            quote_bar=colors.muted_text,
        )
    )


class ChunkLabel(QLabel):
    """A rich-text label that remembers its height for a width until its text changes.

    Qt asks every label of the conversation for ``heightForWidth`` whenever any of
    them changes size, and a rich-text QLabel lays its document out again for each
    question; with hundreds of messages that made every streamed update cost over
    100 ms. Finished messages never change, so their answer is cached.
    """

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._heights: dict[int, int] = {}
        # Text starts at the top even while the layout still has an old height for us.
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

    def setText(self, text: str) -> None:
        self._heights.clear()
        super().setText(text)

    def heightForWidth(self, width: int) -> int:
        height = self._heights.get(width)
        if height is None:
            height = super().heightForWidth(width)
            if len(self._heights) > 8:
                self._heights.clear()
            self._heights[width] = height
        return height

    def minimumSizeHint(self) -> QSize:
        # Qt measures every message's height at the widest (minimum) size-hint width
        # among them. A streaming reply's hint widths grow with its text, and each new
        # width missed every label's height cache: a 60-180 ms stall per new width.
        # Constant hint widths keep that width constant. The column layout stretches
        # the labels to the view's width anyway; long lines wrap or are clipped.
        # QLabel's own hints lay the rich text out again at widths of their own choice
        # (1-2 ms per message). No minimum height: Qt's layouts use the larger of the
        # minimum and heightForWidth(actual width), and the height at the narrow hint
        # width is far taller than the text at the real width.
        return QSize(CHUNK_MIN_WIDTH, 0)

    def sizeHint(self) -> QSize:
        return QSize(CHUNK_MIN_WIDTH, self.heightForWidth(CHUNK_MIN_WIDTH))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._heights.clear()
        super().changeEvent(event)


class CodeBlock(QFrame):
    """A fenced code block: its language and a Copy button on top (always in view),
    the code below with whole lines, scrolling sideways when they are wider than the
    message instead of being clipped."""

    copy_requested = Signal(str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("codeBlock")
        self.code = ""
        self._html = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        header = QHBoxLayout()
        header.setContentsMargins(8, 2, 4, 0)
        self.language_label = QLabel(self)
        self.language_label.setObjectName("codeLanguage")
        self.copy_button = QToolButton(self)
        self.copy_button.setAutoRaise(True)
        self.copy_button.clicked.connect(lambda: self.copy_requested.emit(self.code))
        header.addWidget(self.language_label)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        layout.addLayout(header)
        self.scroller = QScrollArea(self)
        self.scroller.setFrameShape(QFrame.Shape.NoFrame)
        self.scroller.setWidgetResizable(False)
        self.scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.scroller.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.code_label = QLabel()
        self.code_label.setObjectName("codeText")
        self.code_label.setTextFormat(Qt.TextFormat.RichText)
        self.code_label.setWordWrap(False)
        self.code_label.setContentsMargins(8, 2, 8, 6)
        self.code_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scroller.setWidget(self.code_label)
        layout.addWidget(self.scroller)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        colors = current_colors()
        self.setStyleSheet(
            f"QFrame#codeBlock {{ background: {colors.code_background}; border-radius: 6px; }}"
            f"QLabel#codeLanguage {{ color: {colors.muted_text}; }}"
            "QScrollArea, QLabel#codeText { background: transparent; }"
        )

    def set_code(self, language: str, code: str, html: str, copy_label: str) -> None:
        self.code = code
        self.language_label.setText(language)
        self.copy_button.setText(copy_label)
        if html != self._html:
            self._html = html
            self.code_label.setText(html)
            self.code_label.adjustSize()
        self._fit()

    def text(self) -> str:
        """The code as shown (highlighted HTML), like a label's text."""
        return self._html

    def _fit(self) -> None:
        height = self.code_label.sizeHint().height()
        if self.code_label.sizeHint().width() > self.scroller.viewport().width():
            height += self.scroller.horizontalScrollBar().sizeHint().height()
        if self.scroller.height() != height:
            self.scroller.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def sizeHint(self) -> QSize:
        # The same hint width as every ChunkLabel (see ChunkLabel.minimumSizeHint).
        return QSize(CHUNK_MIN_WIDTH, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(CHUNK_MIN_WIDTH, super().minimumSizeHint().height())


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


class ChatView(QScrollArea):
    copy_requested = Signal(str)
    edit_requested = Signal(int)
    regenerate_requested = Signal(int)
    version_requested = Signal(int)
    continue_requested = Signal(int)
    raise_context_requested = Signal()
    summary_chat_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Always shown: otherwise Qt measures every message again at the width without
        # the scroll bar each time the content height changes.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self._content = QWidget(self)
        self._layout = QVBoxLayout(self._content)
        self._layout.setContentsMargins(SIDE_MARGIN, 16, SIDE_MARGIN, 16)
        self._layout.setSpacing(10)
        self._layout.addStretch(1)
        self.setWidget(self._content)
        self.widgets: list[MessageWidget] = []
        self._earlier: list[ShownMessage] = []
        self._earlier_timer = QTimer(self)
        self._earlier_timer.setInterval(0)
        self._earlier_timer.timeout.connect(self._load_earlier_batch)
        self._renderer = markdown_renderer(self.tr("Copy"))
        self._stream_widget: MessageWidget | None = None
        self._stream_pieces: list[str] = []
        self._stream_text = ""
        self._thinking_pieces: list[str] = []
        self._stream_thinking = ""
        self.context_size: int | None = None
        """The loaded model's context (the note about messages left out names it)."""
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
        self._earlier = []
        self._earlier_timer.stop()
        for widget in self.widgets:
            widget.setParent(None)
            widget.deleteLater()
        self.widgets = []
        self.follow_bottom = True

    def set_messages(self, messages: list[ShownMessage], scroll: bool = True) -> None:
        """Show ``messages``, reusing the widgets of the unchanged leading messages.

        Sending, regenerating or switching a version changes only the tail of the
        thread, so only the tail is rendered again (a long conversation stays cheap).
        """
        self.stop_stream()
        self.finish_loading()
        keep = 0
        for widget, message in zip(self.widgets, messages, strict=False):
            if widget.message.id != message.id:
                break
            if widget.message != message:
                widget.set_message(message)
            keep += 1
        for widget in self.widgets[keep:]:
            widget.setParent(None)
            widget.deleteLater()
        self.widgets = self.widgets[:keep]
        new = messages[keep:]
        if keep == 0 and len(new) > FIRST_BATCH:
            # A long conversation opens at its end at once; the earlier messages are
            # added above it a batch per event-loop turn, so the window stays live.
            self._earlier, new = new[:-FIRST_BATCH], new[-FIRST_BATCH:]
            self._earlier_timer.start()
        self._content.setUpdatesEnabled(False)
        try:
            for message in new:
                self.append_message(message)
        finally:
            self._content.setUpdatesEnabled(True)
        if scroll:
            self.scroll_to_bottom()

    @property
    def loading(self) -> bool:
        """True while earlier messages of a long conversation are still being added."""
        return bool(self._earlier)

    def _load_earlier_batch(self) -> None:
        batch, self._earlier = self._earlier[-EARLIER_BATCH:], self._earlier[:-EARLIER_BATCH]
        widgets = [self._make_widget(message) for message in batch]
        for index, widget in enumerate(widgets):
            self._layout.insertWidget(index, widget)
        self.widgets = widgets + self.widgets
        if not self._earlier:
            self._earlier_timer.stop()

    def finish_loading(self) -> None:
        while self._earlier:
            self._load_earlier_batch()

    def _make_widget(self, message: ShownMessage) -> MessageWidget:
        widget = MessageWidget(message, self._renderer, self._content, self.context_size)
        widget.copy_requested.connect(self.copy_requested)
        widget.edit_requested.connect(self.edit_requested)
        widget.regenerate_requested.connect(self.regenerate_requested)
        widget.version_requested.connect(self.version_requested)
        widget.continue_requested.connect(self.continue_requested)
        widget.raise_context_requested.connect(self.raise_context_requested)
        widget.summary_chat_requested.connect(self.summary_chat_requested)
        return widget

    def set_context_size(self, context_size: int | None) -> None:
        self.context_size = context_size
        for widget in self.widgets:
            widget.set_context_size(context_size)

    def append_message(self, message: ShownMessage) -> MessageWidget:
        widget = self._make_widget(message)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.widgets.append(widget)
        return widget

    def widget_for(self, message_id: int) -> MessageWidget | None:
        found = next((w for w in self.widgets if w.message.id == message_id), None)
        if found is None and any(m.id == message_id for m in self._earlier):
            self.finish_loading()
            found = next((w for w in self.widgets if w.message.id == message_id), None)
        return found

    # ------------------------------------------------------------------ streaming
    def begin_stream(self, widget: MessageWidget) -> None:
        self._stream_widget = widget
        self._stream_pieces = []
        self._stream_text = widget.message.text
        self._thinking_pieces = []
        self._stream_thinking = widget.message.thinking
        widget.set_live(True)
        # Only the streaming message's buttons are disabled: toggling every message's
        # buttons re-polishes hundreds of styled widgets (a 100+ ms stall); the window
        # ignores actions on other messages while a reply is being written.
        widget.set_actions_enabled(False)
        self._flush_timer.start()

    def add_piece(self, piece: str, thinking: bool = False) -> None:
        (self._thinking_pieces if thinking else self._stream_pieces).append(piece)

    def flush_stream(self) -> None:
        if self._stream_widget is None or not (self._stream_pieces or self._thinking_pieces):
            return
        self._stream_text += "".join(self._stream_pieces)
        self._stream_thinking += "".join(self._thinking_pieces)
        self._stream_pieces, self._thinking_pieces = [], []
        self._stream_widget.set_text(self._stream_text, self._stream_thinking)
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
        if self._stream_widget is not None:
            self._stream_widget.set_actions_enabled(True)
            self._stream_widget.set_live(False)
        self._stream_widget = None

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

    def resizeEvent(self, event: QResizeEvent) -> None:
        # Very wide windows: the column stays MAX_CONTENT_WIDTH wide, centred.
        width = self.viewport().width()
        side = max(SIDE_MARGIN, (width - MAX_CONTENT_WIDTH) // 2)
        margins = self._layout.contentsMargins()
        if margins.left() != side:
            self._layout.setContentsMargins(side, margins.top(), side, margins.bottom())
        super().resizeEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self._renderer = markdown_renderer(self.tr("Copy"))
        super().changeEvent(event)
