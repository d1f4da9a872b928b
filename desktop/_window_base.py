"""The main window's state and widgets, and the small helpers every part of it uses.

Internal: :class:`desktop.main_window.MainWindow` is built from this base and the
controllers stacked on it (models, conversations, generation), one module each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from bllossom_core.errors import BllossomError
from bllossom_core.store import ReplyWriter
from bllossom_core.templates import DEFAULT_SYSTEM_PROMPT
from bllossom_core.types import ChatEngine, GenerationSettings, GenerationStats
from desktop.chat_page import ChatPage
from desktop.errors import show_error
from desktop.i18n import LanguageSwitcher
from desktop.qt import QMainWindow, QSplitter, QStackedWidget, Qt, QTimer
from desktop.services import Services
from desktop.settings import NEW_CONVERSATION_KEY, AppSettings, RegisteredModel
from desktop.settings_dialog import ConversationOptions
from desktop.sidebar import Sidebar
from desktop.status_bar import ChatStatusBar
from desktop.welcome import WelcomePage
from desktop.workers import GenerationWorker, JobRunner

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAFT_SAVE_DELAY_MS = 400


def default_options() -> ConversationOptions:
    return ConversationOptions(DEFAULT_SYSTEM_PROMPT, "auto", GenerationSettings())


class WindowBase(QMainWindow):
    def __init__(
        self,
        services: Services,
        settings: AppSettings,
        languages: LanguageSwitcher,
    ) -> None:
        super().__init__()
        self.services = services
        self.settings = settings
        self.languages = languages
        self.runner = JobRunner(self)
        self.engine: ChatEngine | None = None
        self.engine_model: RegisteredModel | None = None
        self.engine_template = "auto"
        self.loading_model: RegisteredModel | None = None
        self.conversation_id: int | None = None
        self.editing_message_id: int | None = None
        self.generation: GenerationWorker | None = None
        self.writer: ReplyWriter | None = None
        self.last_stats: GenerationStats | None = None
        self.new_options = default_options()
        self._send_when_loaded = False
        self._closing = False
        self.setObjectName("mainWindow")
        self.resize(1100, 760)

        self.sidebar = Sidebar(self)
        self.stack = QStackedWidget(self)
        self.welcome = WelcomePage(self.stack)
        self.chat = ChatPage(self.stack)
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.chat)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.stack)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([280, 820])
        self.setCentralWidget(self.splitter)
        self.status = ChatStatusBar(self)
        self.setStatusBar(self.status)
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_SAVE_DELAY_MS)
        self._draft_timer.timeout.connect(self.save_draft)
        self.chat.input.textChanged.connect(self._draft_timer.start)

    # ------------------------------------------------------------------ pages
    def _update_page(self) -> None:
        show_welcome = (
            self.engine is None
            and self.loading_model is None
            and not self.settings.models
            and self.conversation_id is None
        )
        self.stack.setCurrentWidget(self.welcome if show_welcome else self.chat)

    def _update_title(self) -> None:
        title = ""
        if self.conversation_id is not None:
            try:
                title = self.services.conversation(self.conversation_id).title
            except BllossomError:
                title = ""
        self.chat.title_label.setText(title or self.tr("New chat"))

    def _guard(self, fn: Callable[[], T]) -> T | None:
        """Run a store call; a storage error is shown to the user instead of raised."""
        try:
            return fn()
        except BllossomError as error:
            show_error(self, error)
            return None

    # ------------------------------------------------------------------ drafts
    def _draft_key(self) -> str:
        return (
            str(self.conversation_id) if self.conversation_id is not None else NEW_CONVERSATION_KEY
        )

    def save_draft(self) -> None:
        self._draft_timer.stop()
        text = self.chat.input.toPlainText()
        key = self._draft_key()
        if text == self.settings.drafts.get(key, ""):
            return
        if text:
            self.settings.drafts[key] = text
        else:
            self.settings.drafts.pop(key, None)
        self._save_settings()

    def _load_draft(self) -> None:
        self.chat.input.blockSignals(True)
        self.chat.input.setPlainText(self.settings.drafts.get(self._draft_key(), ""))
        self.chat.input.moveCursor(self.chat.input.textCursor().MoveOperation.End)
        self.chat.input.blockSignals(False)

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as error:
            log.warning("could not save settings: %s", error)

    # ------------------------------------------------------------------ shared state
    @property
    def busy(self) -> bool:
        """A reply is being written (or about to start): editing actions wait."""
        return self.generation is not None or self.chat.generating

    def current_options(self) -> ConversationOptions:
        if self.conversation_id is None:
            return self.new_options
        conversation = self.services.conversation(self.conversation_id)
        return ConversationOptions(
            conversation.system_prompt or "", conversation.template or "auto", conversation.settings
        )
