"""The message input: Enter sends, Shift+Enter breaks the line, Korean IME safe.

While a Hangul syllable is being composed it lives in the input method's pre-edit,
*not* in the document. Apps that send ``toPlainText()`` on Enter drop that last
syllable; apps that also let the IME commit it afterwards duplicate it. Here, a send
while a pre-edit is pending first commits the pre-edit into the document ourselves,
asks the IME to forget it, and swallows the one late commit of that same text that
some IMEs still deliver after the key press. So the whole text goes out exactly once,
whichever order the IME uses.

Real engines differ in that order (``tests/e2e/test_real_ime.py`` drives both):

* ibus-hangul commits the syllable, then forwards the key that ended it.
* fcitx5-hangul (through fcitx5's IBus frontend) lets the key through first and
  commits afterwards: a Space or Return reaches the box while the syllable is still
  pre-edit. Any key other than a bare modifier that reaches the box while a pre-edit
  is pending therefore finishes the syllable first (so ``좋은 아침`` does not become
  ``좋 은아침``), and the late commit is swallowed.
* When the focus leaves the box (a click on a button that takes the focus), Qt clears
  the pre-edit (an input-method event with neither commit nor pre-edit) just before
  the focus moves, and fcitx5's own commit of the syllable then goes to the new focus
  widget, which drops it. The box remembers a pre-edit cleared that way until the
  event loop turns, and puts it in the document when the focus leaves in the
  meantime; a pre-edit still pending when the focus leaves is committed too.
"""

from __future__ import annotations

from desktop.qt import (
    QFocusEvent,
    QGuiApplication,
    QInputMethodEvent,
    QKeyEvent,
    QPlainTextEdit,
    QResizeEvent,
    QSizePolicy,
    Qt,
    QTimer,
    QWidget,
    Signal,
)

MIN_LINES = 2
MAX_LINES = 10
"""The box grows with its text up to this many lines, then scrolls."""

MODIFIER_KEYS = frozenset(
    {
        Qt.Key.Key_Shift,
        Qt.Key.Key_Control,
        Qt.Key.Key_Alt,
        Qt.Key.Key_AltGr,
        Qt.Key.Key_Meta,
        Qt.Key.Key_Super_L,
        Qt.Key.Key_Super_R,
        Qt.Key.Key_Hyper_L,
        Qt.Key.Key_Hyper_R,
        Qt.Key.Key_CapsLock,
        Qt.Key.Key_NumLock,
        Qt.Key.Key_ScrollLock,
        Qt.Key.Key_unknown,
    }
)
"""Keys that do not end a syllable when they reach the box (Shift for ㅆ, ㅃ, ...)."""


class InputBox(QPlainTextEdit):
    submitted = Signal(str)
    """The text to send, already stripped; never emitted for blank input."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_InputMethodEnabled, True)
        self.setTabChangesFocus(True)
        self._preedit = ""
        self._swallow_commit = ""
        self._cleared = ""
        """A pre-edit the input method cleared without committing it, kept until the
        event loop turns: the focus leaving meanwhile means Qt dropped the syllable."""
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
        if self._preedit and not commit and not event.preeditString():
            self._cleared = self._preedit
            QTimer.singleShot(0, self, self._forget_cleared)
        else:
            self._cleared = ""
        self._preedit = event.preeditString()
        super().inputMethodEvent(event)

    def _forget_cleared(self) -> None:
        self._cleared = ""

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

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # A popup (the context menu) or the menu bar keeps the composition going, as
        # Qt's own input-method commit on a focus change does.
        if event.reason() not in (
            Qt.FocusReason.PopupFocusReason,
            Qt.FocusReason.MenuBarFocusReason,
        ):
            if self._cleared:
                # Qt cleared the syllable for the focus change: it was never typed
                # into the document, so put it there; the engine's own commit goes
                # to the new focus widget (or, if it comes here, is swallowed).
                self.insertPlainText(self._cleared)
                self._swallow_commit = self._cleared
            self.commit_preedit()
        self._cleared = ""
        super().focusOutEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._preedit and event.key() not in MODIFIER_KEYS:
            # The input method let this key through while a syllable is composing: it
            # ends the syllable, which goes in before the key's own effect.
            self.commit_preedit()
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
