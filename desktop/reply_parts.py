"""The parts of a reply around its text: a reasoning model's thinking, and the notes
under a reply that ended unusually (stopped, cut at the length limit, history left out).

Both are composed into :class:`desktop.message_widget.MessageWidget`; they only show state
and emit what the user asked for, the controller decides what happens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from desktop.i18n import is_language_change
from desktop.qt import (
    QEvent,
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
from desktop.theme import current_colors


class ThinkingPanel(QWidget):
    """A reasoning model's thinking: shown live while it streams, then folded into one
    line ("Thought for 12 s") that opens on click."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("thinkingPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        self.toggle_button = QToolButton(self)
        self.toggle_button.setObjectName("thinkingToggle")
        self.toggle_button.setAutoRaise(True)
        self.toggle_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.toggle_button.clicked.connect(self.toggle)
        layout.addWidget(self.toggle_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.text_label = QLabel(self)
        self.text_label.setObjectName("thinkingText")
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setWordWrap(True)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.text_label)
        self._thinking = ""
        self._seconds: float | None = None
        self._live = False
        self.expanded = False
        colors = current_colors()
        # Qt draws a lone border-left only after a whole border is declared (0px here).
        self.setStyleSheet(
            f"QLabel#thinkingText {{ color: {colors.muted_text}; border: 0px solid; "
            f"border-left: 3px solid {colors.muted_text}; padding-left: 8px; }}"
            f"QToolButton#thinkingToggle {{ color: {colors.muted_text}; }}"
        )
        self.setVisible(False)

    def set_thinking(self, thinking: str, seconds: float | None, live: bool) -> None:
        """Show ``thinking``; ``live`` while it streams (open), folded once it ended."""
        if live != self._live:
            self.expanded = live
        self._thinking, self._seconds, self._live = thinking, seconds, live
        self.setVisible(bool(thinking))
        self._update()

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self._update()

    @property
    def summary(self) -> str:
        if self._live:
            return self.tr("Thinking…")
        if self._seconds is None:
            return self.tr("Thoughts")
        seconds = QLocale().toString(max(1, round(self._seconds)))
        return self.tr("Thought for %1 s").replace("%1", seconds)

    def _update(self) -> None:
        arrow = Qt.ArrowType.DownArrow if self.expanded else Qt.ArrowType.RightArrow
        self.toggle_button.setArrowType(arrow)
        self.toggle_button.setText(self.summary)
        self.toggle_button.setToolTip(
            self.tr("Hide the model's thinking") if self.expanded
            else self.tr("Show the model's thinking")
        )  # fmt: skip
        if self.text_label.text() != self._thinking:
            self.text_label.setText(self._thinking)
        self.text_label.setVisible(self.expanded)

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self._update()
        super().changeEvent(event)


@dataclass(frozen=True)
class ReplyState:
    """What the notes under a reply depend on (from the stored message)."""

    role: str
    text: str
    complete: bool
    stop_reason: str | None
    error: str | None
    dropped_messages: int
    live: bool
    context_size: int | None


class ReplyNotes(QWidget):
    """The muted line under a reply that ended unusually, with what can be done about it."""

    continue_requested = Signal()
    raise_context_requested = Signal()
    summary_chat_requested = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.notice = QLabel(self)
        self.notice.setObjectName("messageNotice")
        self.notice.setWordWrap(True)
        layout.addWidget(self.notice)
        actions = QHBoxLayout()
        actions.setSpacing(4)
        self.continue_button = self._button(actions, self.continue_requested.emit)
        self.context_button = self._button(actions, self.raise_context_requested.emit)
        self.summary_button = self._button(actions, self.summary_chat_requested.emit)
        actions.addStretch(1)
        layout.addLayout(actions)
        self._state: ReplyState | None = None
        self.setStyleSheet(f"QLabel#messageNotice {{ color: {current_colors().muted_text}; }}")

    def _button(self, layout: QHBoxLayout, on_click: Callable[[], None]) -> QToolButton:
        button = QToolButton(self)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(on_click)
        layout.addWidget(button)
        return button

    def show_state(self, state: ReplyState) -> None:
        self._state = state
        self._update()

    def notes(self, state: ReplyState) -> list[str]:
        """The sentences shown for ``state`` (none for an ordinary reply)."""
        if state.live or state.role != "assistant":
            return []
        notes = []
        if state.dropped_messages:
            notes.append(self._dropped_note(state))
        if state.error and not state.text:
            notes.append(self.tr("No reply: %1").replace("%1", state.error))
        elif state.error:
            notes.append(self.tr("The reply stopped early: %1").replace("%1", state.error))
        elif not state.complete and state.text:
            notes.append(self.tr("This reply was interrupted."))
        elif state.stop_reason == "cancelled":
            notes.append(self.tr("Stopped.") if state.text else self.tr("Stopped before any text."))
        elif state.stop_reason == "length":
            notes.append(self.tr("The reply reached the length limit."))
        elif state.complete and not state.text:
            notes.append(self.tr("The model gave an empty reply."))
        return notes

    def _dropped_note(self, state: ReplyState) -> str:
        count = QLocale().toString(state.dropped_messages)
        if state.context_size:
            return (
                self.tr(
                    "The oldest %1 messages no longer fit in the %2-token context and were "
                    "left out of this reply."
                )
                .replace("%1", count)
                .replace("%2", QLocale().toString(state.context_size))
            )
        return self.tr(
            "The oldest %1 messages no longer fit in the model's context and were left out "
            "of this reply."
        ).replace("%1", count)

    def _update(self) -> None:
        state = self._state
        notes = self.notes(state) if state is not None else []
        self.notice.setText("\n".join(notes))
        self.continue_button.setText(self.tr("Continue"))
        self.continue_button.setToolTip(self.tr("Write more of this reply"))
        self.context_button.setText(self.tr("Raise the context size…"))
        self.summary_button.setText(self.tr("New chat from a summary"))
        self.summary_button.setToolTip(
            self.tr("Start a new chat that begins with a summary of this one")
        )
        can_continue = (
            state is not None and not state.live and state.stop_reason == "length"
            and state.error is None and bool(state.text)
        )  # fmt: skip
        dropped = state is not None and not state.live and state.dropped_messages > 0
        self.continue_button.setVisible(can_continue)
        self.context_button.setVisible(dropped)
        self.summary_button.setVisible(dropped)
        self.setVisible(bool(notes))

    def set_actions_enabled(self, enabled: bool) -> None:
        for button in (self.continue_button, self.context_button, self.summary_button):
            button.setEnabled(enabled)

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self._update()
        super().changeEvent(event)
