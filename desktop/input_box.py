"""The message input: Enter sends, Shift+Enter breaks the line, Korean IME safe.

While a Hangul syllable is being composed it lives in the input method's pre-edit,
*not* in the document. Apps that send ``toPlainText()`` on Enter drop that last
syllable; apps that also let the IME commit it afterwards duplicate it. Here, a send
while a pre-edit is pending first commits the pre-edit into the document ourselves,
asks the IME to forget it, and swallows the one late commit of that same text that
some IMEs still deliver after the key press. So the whole text goes out exactly once,
whichever order the IME uses.
"""

from __future__ import annotations

from desktop.qt import (
    QGuiApplication,
    QInputMethodEvent,
    QKeyEvent,
    QPlainTextEdit,
    QResizeEvent,
    QSizePolicy,
    Qt,
    QWidget,
    Signal,
)

MIN_LINES = 2
MAX_LINES = 10
"""The box grows with its text up to this many lines, then scrolls."""


class InputBox(QPlainTextEdit):
    submitted = Signal(str)
    """The text to send, already stripped; never emitted for blank input."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_InputMethodEnabled, True)
        self.setTabChangesFocus(True)
        self._preedit = ""
        self._swallow_commit = ""
        self.send_enabled = True
        """False while a reply is generating: Enter then keeps the text in the box."""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self.fit_height)
        self.fit_height()

    def visible_lines(self) -> int:
        """Lines the box shows without scrolling: its text's lines, within the limits."""
        # QPlainTextEdit's document layout measures the document in (wrapped) lines.
        lines = int(self.document().documentLayout().documentSize().height())
        return max(MIN_LINES, min(MAX_LINES, lines))

    def fit_height(self) -> None:
        """Grow or shrink with the text, from MIN_LINES up to MAX_LINES."""
        margins = self.contentsMargins()
        document_margin = int(self.document().documentMargin())
        height = (
            self.visible_lines() * self.fontMetrics().lineSpacing()
            + 2 * document_margin
            + margins.top()
            + margins.bottom()
        )
        if height != self.height() or self.minimumHeight() != height:
            self.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit_height()  # a new width wraps the text into more or fewer lines

    @property
    def preedit(self) -> str:
        return self._preedit

    def full_text(self) -> str:
        """The document text plus any syllable still being composed, at the cursor."""
        if not self._preedit:
            return self.toPlainText()
        cursor = self.textCursor()
        text = self.toPlainText()
        at = cursor.position()
        return text[:at] + self._preedit + text[at:]

    def inputMethodEvent(self, event: QInputMethodEvent) -> None:
        commit = event.commitString()
        if self._swallow_commit and commit:
            if commit == self._swallow_commit:
                # The IME is committing the syllable we already sent: keep only its
                # pre-edit update so nothing is typed twice.
                self._swallow_commit = ""
                replacement = QInputMethodEvent(event.preeditString(), event.attributes())
                self._preedit = event.preeditString()
                super().inputMethodEvent(replacement)
                return
            self._swallow_commit = ""
        elif event.preeditString():
            self._swallow_commit = ""
        self._preedit = event.preeditString()
        super().inputMethodEvent(event)

    def commit_preedit(self) -> str:
        """Move a pending pre-edit into the document; returns what was committed."""
        pending = self._preedit
        if not pending:
            return ""
        commit = QInputMethodEvent("", [])
        commit.setCommitString(pending)
        super().inputMethodEvent(commit)
        self._preedit = ""
        self._swallow_commit = pending
        method = QGuiApplication.inputMethod()
        if method is not None:
            method.reset()
        return pending

    def submit(self) -> bool:
        """Send the whole text (pre-edit included) once; True when something was sent."""
        if not self.send_enabled:
            return False
        self.commit_preedit()
        text = self.toPlainText().strip()
        if not text:
            return False
        self.clear()
        self.submitted.emit(text)
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            modifiers = event.modifiers()
            if modifiers & Qt.KeyboardModifier.ShiftModifier:
                self.commit_preedit()
                self.insertPlainText("\n")
            elif not modifiers & (
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
            ):
                self.submit()
            event.accept()
            return
        super().keyPressEvent(event)
