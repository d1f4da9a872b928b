"""The main window: sidebar | chat (or welcome page), menus, shortcuts, status bar.

Built by composition: the window owns the widgets and four controllers, each with one
concern, and wires them with signals:

* :class:`~desktop.model_manager.ModelManager`: the loaded model, opening and loading.
* :class:`~desktop.chat_controller.ChatController`: the shown conversation; sending,
  streaming, editing, versions (over the core's ``ChatSession``).
* :class:`~desktop.conversation_list.ConversationList`: listing, search, rename, delete.
* :class:`~desktop.file_actions.FileActions`: export, import and the trash.

Everything slow runs through one :class:`~desktop.ops.OpRunner`; closing the window
stops and waits for it before the store is closed.
"""

from __future__ import annotations

import logging

from bllossom_core.store import ConversationStore
from desktop.api_server import ApiServerSwitch
from desktop.api_server_settings import ApiServerSettingsBox
from desktop.chat_controller import ChatController
from desktop.chat_page import SIDEBAR_SHORTCUT, ChatPage
from desktop.context import AppContext
from desktop.conversation_list import ConversationList
from desktop.errors import show_error
from desktop.file_actions import FileActions
from desktop.get_models_page import show_get_models
from desktop.i18n import LanguageSwitcher, is_language_change
from desktop.model_downloads import ModelDownloads
from desktop.model_manager import ModelManager
from desktop.ops import OpRunner
from desktop.qt import (
    QAction,
    QApplication,
    QByteArray,
    QCloseEvent,
    QEvent,
    QKeySequence,
    QMainWindow,
    QShortcut,
    QSplitter,
    QStackedWidget,
    Qt,
)
from desktop.settings import AppSettings
from desktop.settings_dialog import ConversationSettingsDialog, SettingsDialog
from desktop.sidebar import Sidebar
from desktop.status_bar import ChatStatusBar
from desktop.theme import apply_theme
from desktop.welcome import WelcomePage

log = logging.getLogger(__name__)
CLOSE_WAIT_MS = 200
"""How long closing blocks for running operations before it shows "Stopping…"."""


class MainWindow(QMainWindow):
    def __init__(
        self,
        store: ConversationStore,
        settings: AppSettings,
        languages: LanguageSwitcher,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.languages = languages
        self.store = store
        self.setObjectName("mainWindow")
        self.resize(1100, 760)
        self._closing = False
        self._closed = False

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

        self.ops = OpRunner(self._show_error, self)
        self.context = AppContext(store, settings, self.ops, self.status, self)
        self.models = ModelManager(self.context)
        self.api_server = ApiServerSwitch(self.context, lambda: self.models.engine)
        self.context.engine_turn = self.api_server.app_turn
        self.conversation = ChatController(self.context, self.chat, self.models)
        self.conversations = ConversationList(
            self.context, self.sidebar, lambda cid: self.busy and cid == self.conversation_id
        )
        self.files = FileActions(self.context, lambda: self.conversation_id)
        self.downloads = ModelDownloads(
            self.context, self.models.open_file, lambda: self.models.model_settings.context_size
        )

        self._build_actions()
        self._connect()
        self.retranslate()
        self._restore_geometry()
        self._open_initial_conversation()
        self._update_page()
        self.chat.input.setFocus()
        self.files.purge_old_trash()

    def _show_error(self, error: BaseException) -> None:
        show_error(self, error)

    # ------------------------------------------------------------------ read-only state
    @property
    def conversation_id(self) -> int | None:
        return self.conversation.conversation_id

    @property
    def busy(self) -> bool:
        return self.conversation.busy

    # ------------------------------------------------------------------ construction
    def _action(self, slot: object, shortcut: str | None = None) -> QAction:
        action = QAction(self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        models, files, chat = self.models, self.files, self.conversation
        self.new_action = self._action(lambda: chat.new(), "Ctrl+N")
        self.open_action = self._action(models.choose_file, "Ctrl+O")
        self.convert_action = self._action(models.show_convert_dialog)
        self.models_action = self._action(models.show_models_dialog)
        self.get_models_action = self._action(self.show_get_models)
        self.model_settings_action = self._action(models.show_model_settings)
        self.export_action = self._action(files.export_conversation, "Ctrl+E")
        self.export_all_action = self._action(files.export_all)
        self.import_action = self._action(files.import_conversations)
        self.trash_action = self._action(files.show_recently_deleted)
        self.settings_action = self._action(self.show_settings, "Ctrl+,")
        self.quit_action = self._action(self.close, "Ctrl+Q")
        self.find_action = self._action(self.sidebar.focus_search, "Ctrl+F")
        self.options_action = self._action(self.show_conversation_settings)
        self.stop_action = self._action(chat.stop)
        menu_bar = self.menuBar()
        self.file_menu = menu_bar.addMenu("")
        groups = (
            (
                self.new_action,
                self.open_action,
                self.convert_action,
                self.get_models_action,
                self.models_action,
            ),
            (self.export_action, self.export_all_action, self.import_action, self.trash_action),
            (self.settings_action, self.model_settings_action),
            (self.quit_action,),
        )
        for index, group in enumerate(groups):
            if index:
                self.file_menu.addSeparator()
            for action in group:
                self.file_menu.addAction(action)
        self.chat_menu = menu_bar.addMenu("")
        for action in (self.find_action, self.options_action, self.stop_action):
            self.chat_menu.addAction(action)
        # Esc stops a reply wherever the focus is (it also cancels an edit).
        self.escape_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.escape_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.escape_shortcut.activated.connect(chat.escape)

    def _connect(self) -> None:
        chat, conversations, models = self.conversation, self.conversations, self.models
        conversations.new_requested.connect(chat.new)
        conversations.open_requested.connect(chat.open)
        conversations.deleted.connect(self._on_deleted)
        conversations.export_requested.connect(self.files.export_conversation_by_id)
        chat.conversation_changed.connect(conversations.set_current)
        chat.conversation_changed.connect(lambda _cid: self._update_page())
        chat.conversations_changed.connect(conversations.refresh)
        self.chat.options_button.clicked.connect(self.show_conversation_settings)
        self.chat.view.copy_requested.connect(self._copy)
        self.chat.view.raise_context_requested.connect(self.models.show_model_settings)
        models.engine_changed.connect(self.api_server.restart)
        self.api_server.state_changed.connect(self._show_api_server)
        self.chat.sidebar_button.toggled.connect(self._show_sidebar)
        self.sidebar.reveal_requested.connect(lambda: self.chat.sidebar_button.setChecked(True))
        QShortcut(QKeySequence(SIDEBAR_SHORTCUT), self, self.chat.sidebar_button.toggle)
        self.files.imported.connect(lambda cid: chat.open(cid) if not chat.busy else None)
        self.files.restored.connect(conversations.refresh)
        models.loading_changed.connect(self._update_page)
        models.engine_changed.connect(self._update_page)
        self.welcome.open_requested.connect(models.choose_file)
        self.welcome.convert_requested.connect(models.show_convert_dialog)
        self.welcome.models_requested.connect(models.show_models_dialog)
        self.welcome.get_models_requested.connect(self.show_get_models)
        self.welcome.attach_downloads(self.downloads)

    def _show_sidebar(self, shown: bool) -> None:
        self.sidebar.setVisible(shown)
        self.settings.sidebar_visible = shown
        self.context.save_settings()

    def _open_initial_conversation(self) -> None:
        last = self.settings.last_conversation
        self.conversation.new(announce=False)  # the welcome page or the model load says it
        if last.isdigit():
            self.conversation.open(int(last))

    def _on_deleted(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            self.conversation.new()

    def _update_page(self) -> None:
        show_welcome = (
            self.models.engine is None
            and self.models.loading is None
            and not self.settings.models
            and self.conversation_id is None
        )
        self.stack.setCurrentWidget(self.welcome if show_welcome else self.chat)

    def _copy(self, text: str) -> None:
        QApplication.clipboard().setText(text)
        self.status.showMessage(self.tr("Copied to the clipboard."), 3000)

    def show_get_models(self) -> None:
        show_get_models(self.downloads, self)

    # ------------------------------------------------------------------ settings
    def show_settings(self) -> None:
        dialog = SettingsDialog(self.settings.language, self.settings.theme, self,
                                sections=(ApiServerSettingsBox(self.api_server),))  # fmt: skip
        dialog.language_chosen.connect(self.set_language)
        dialog.theme_chosen.connect(self.set_theme)
        dialog.open()

    def set_language(self, choice: str) -> None:
        self.settings.language = choice  # type: ignore[assignment]
        self.languages.apply(choice)
        self.context.save_settings()

    def set_theme(self, choice: str) -> None:
        self.settings.theme = choice  # type: ignore[assignment]
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        apply_theme(app, choice)
        if self.conversation_id is not None and not self.busy:
            self.chat.view.clear()  # colours are baked into the rendered HTML
            self.conversation.open(self.conversation_id)
        self.context.save_settings()

    def follow_system_scheme(self) -> None:
        """The system switched between light and dark: follow it if the theme is "system"."""
        if self.settings.theme == "system":
            self.set_theme("system")

    def show_conversation_settings(self) -> None:
        dialog = ConversationSettingsDialog(self.conversation.options(), self._context_size(), self)
        dialog.accepted.connect(lambda: self.conversation.apply_options(dialog.options()))
        dialog.open()

    def _context_size(self) -> int | None:
        size = getattr(self.models.engine, "context_size", None)
        return size if isinstance(size, int) else None

    # ------------------------------------------------------------------ language
    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Bllossom"))
        self.file_menu.setTitle(self.tr("&File"))
        self.chat_menu.setTitle(self.tr("&Chat"))
        texts = {
            self.new_action: self.tr("New chat"),
            self.open_action: self.tr("Open a GGUF file…"),
            self.convert_action: self.tr("Convert a Hugging Face model…"),
            self.models_action: self.tr("Models and remote servers…"),
            self.get_models_action: self.tr("Get models…"),
            self.export_action: self.tr("Export conversation…"),
            self.export_all_action: self.tr("Export all conversations…"),
            self.import_action: self.tr("Import conversations…"),
            self.trash_action: self.tr("Recently deleted…"),
            self.settings_action: self.tr("Settings…"),
            self.model_settings_action: self.tr("Model settings…"),
            self.quit_action: self.tr("Quit"),
            self.find_action: self.tr("Search conversations"),
            self.options_action: self.tr("Conversation settings…"),
            self.stop_action: self.tr("Stop generating"),
        }
        for action, text in texts.items():
            action.setText(text)
        self.conversation.retranslate()

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    # ------------------------------------------------------------------ geometry, closing
    def _restore_geometry(self) -> None:
        s = self.settings
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.window_geometry.encode()))
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode()))
        if s.splitter_state:
            self.splitter.restoreState(QByteArray.fromBase64(s.splitter_state.encode()))
        self.chat.sidebar_button.setChecked(s.sidebar_visible)
        self.sidebar.setVisible(s.sidebar_visible)

    def remember_geometry(self) -> None:
        s = self.settings
        s.window_geometry = bytes(self.saveGeometry().toBase64().data()).decode()
        s.window_state = bytes(self.saveState().toBase64().data()).decode()
        s.splitter_state = bytes(self.splitter.saveState().toBase64().data()).decode()

    @property
    def closed(self) -> bool:
        """True once the window has let go of everything (store closed, no thread left)."""
        return self._closed

    def _show_api_server(self) -> None:
        server = self.api_server
        self.status.set_api_server(server.url, server.api_busy, server.starting)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop every operation, wait for it, then save and close the store.

        A reply being written is stopped (its text is kept); a model still loading
        cannot be interrupted, so the window says "Stopping…" and closes when it ends.
        Nothing is deleted under a running thread.
        """
        if self._closed:
            event.accept()
            return
        if not self._closing:
            self._closing = True
            self.conversation.save_draft()
            self.remember_geometry()
            self.context.save_settings()
            self.setEnabled(False)
        self.api_server.stop()  # API replies in progress stop within a token
        self.ops.cancel_all()
        if not self.ops.wait_all(CLOSE_WAIT_MS):
            self.status.showMessage(self.tr("Stopping…"))
            event.ignore()
            self.ops.all_ended.connect(self.close, Qt.ConnectionType.SingleShotConnection)
            return
        self.ops.close()
        QApplication.processEvents()  # deliver the last results (the stopped reply)
        self.models.close()
        self.store.close()
        self._closed = True
        super().closeEvent(event)
