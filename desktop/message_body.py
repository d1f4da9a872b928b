"""The body of a message: rich-text labels and code blocks, cheap to lay out.

A message's Markdown is split into chunks (:func:`desktop.markdown.split_chunks`); each
is a :class:`ChunkLabel`, or a :class:`CodeBlock` for fenced code (scrolling sideways,
its Copy button always in view).
"""

from __future__ import annotations

import functools

from desktop.markdown import MarkdownRenderer, MarkdownStyle
from desktop.qt import (
    QEvent,
    QFrame,
    QHBoxLayout,
    QLabel,
    QResizeEvent,
    QScrollArea,
    QSize,
    QSizePolicy,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.theme import Colors, current_colors, monospace_family

CHUNK_MIN_WIDTH = 160
"""The width every message label reports as its (minimum) size hint (see ChunkLabel)."""


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
