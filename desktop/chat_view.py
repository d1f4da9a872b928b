"""The conversation: one :class:`~desktop.message_widget.MessageWidget` per message in
a scroll area.

Streaming is cheap by construction: pieces from the generation worker are only
appended to a list; a 40 ms timer renders the *last* message once per tick (and
nothing else), and the view follows the bottom only while the user has not
scrolled up.
"""

from __future__ import annotations

from desktop.i18n import is_language_change
from desktop.message_body import markdown_renderer
from desktop.message_widget import MessageWidget, ShownMessage
from desktop.qt import (
    QEvent,
    QFrame,
    QResizeEvent,
    QScrollArea,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)

STREAM_FLUSH_MS = 40
FIRST_BATCH = 10
"""Messages shown at once when a long conversation opens (its end)."""
EARLIER_BATCH = 4
"""Earlier messages added per event-loop turn after that."""
BOTTOM_SLACK_PX = 24
MAX_CONTENT_WIDTH = 900
"""The conversation column's widest width: lines stay readable in very wide windows."""
SIDE_MARGIN = 16


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
