"""The main window: sidebar | chat (or welcome page), menus, shortcuts, status bar.

Its behaviour lives in layers, one module each, each class built on the previous:
``_window_base`` (state, widgets, drafts), ``_window_models`` (models, settings),
``_window_conversations`` (open, rename, delete, search, versions), ``_window_files``
(export, import, recently deleted) and ``_window_generation`` (sending, streaming).
This module builds the menus and handles language changes and closing.
"""

from __future__ import annotations

import logging

from bllossom_core.errors import BllossomError
from desktop._window_generation import GenerationController
from desktop.i18n import LanguageSwitcher, is_language_change
from desktop.qt import (
    QAction,
    QByteArray,
    QCloseEvent,
    QEvent,
    QKeySequence,
    QShortcut,
    Qt,
)
from desktop.services import Services
from desktop.settings import AppSettings

log = logging.getLogger(__name__)


class MainWindow(GenerationController):
    def __init__(
        self,
        services: Services,
        settings: AppSettings,
        languages: LanguageSwitcher,
    ) -> None:
        super().__init__(services, settings, languages)
        self._build_actions()
        self._connect()
        self.retranslate()
        self._restore_geometry()
        self.refresh_conversations()
        self._open_initial_conversation()
        self._update_page()
        self.chat.input.setFocus()
        # Housekeeping off the GUI thread: the trash keeps conversations for 30 days.
        self.runner.run_function(
            self.services.purge_old_deleted,
            on_failed=lambda error: log.warning("could not empty the old trash: %s", error),
        )

    # ------------------------------------------------------------------ construction
    def _build_actions(self) -> None:
        self.new_action = QAction(self)
        self.new_action.setShortcut(QKeySequence("Ctrl+N"))
        self.new_action.triggered.connect(self.new_conversation)
        self.open_action = QAction(self)
        self.open_action.setShortcut(QKeySequence("Ctrl+O"))
        self.open_action.triggered.connect(self.choose_model_file)
        self.convert_action = QAction(self)
        self.convert_action.triggered.connect(self.show_convert_dialog)
        self.models_action = QAction(self)
        self.models_action.triggered.connect(self.show_models_dialog)
        self.export_action = QAction(self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.triggered.connect(self.export_conversation)
        self.export_all_action = QAction(self)
        self.export_all_action.triggered.connect(self.export_all)
        self.import_action = QAction(self)
        self.import_action.triggered.connect(self.import_conversations)
        self.trash_action = QAction(self)
        self.trash_action.triggered.connect(self.show_recently_deleted)
        self.settings_action = QAction(self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.triggered.connect(self.show_settings)
        self.quit_action = QAction(self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.triggered.connect(self.close)
        self.find_action = QAction(self)
        self.find_action.setShortcut(QKeySequence("Ctrl+F"))
        self.find_action.triggered.connect(self.sidebar.focus_search)
        self.options_action = QAction(self)
        self.options_action.triggered.connect(self.show_conversation_settings)
        self.stop_action = QAction(self)
        self.stop_action.triggered.connect(self.stop_generation)
        menu_bar = self.menuBar()
        self.file_menu = menu_bar.addMenu("")
        for action in (self.new_action, self.open_action, self.convert_action, self.models_action):
            self.file_menu.addAction(action)
        self.file_menu.addSeparator()
        for action in (
            self.export_action,
            self.export_all_action,
            self.import_action,
            self.trash_action,
        ):
            self.file_menu.addAction(action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.settings_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.chat_menu = menu_bar.addMenu("")
        for action in (self.find_action, self.options_action, self.stop_action):
            self.chat_menu.addAction(action)
        # Esc stops a reply wherever the focus is (it also cancels an edit).
        self.escape_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.escape_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.escape_shortcut.activated.connect(self._on_escape)

    def _connect(self) -> None:
        sidebar, chat = self.sidebar, self.chat
        sidebar.new_requested.connect(self.new_conversation)
        sidebar.conversation_selected.connect(self.open_conversation)
        sidebar.search_hit_selected.connect(self._open_search_hit)
        sidebar.rename_requested.connect(self._rename)
        sidebar.delete_requested.connect(self._delete)
        sidebar.undo_delete_requested.connect(self._undo_delete)
        sidebar.search_changed.connect(self._search)
        chat.input.submitted.connect(self.send)
        chat.send_button.clicked.connect(self._on_send_button)
        chat.options_button.clicked.connect(self.show_conversation_settings)
        chat.cancel_edit_button.clicked.connect(self.cancel_edit)
        chat.view.copy_requested.connect(self._copy)
        chat.view.edit_requested.connect(self.start_edit)
        chat.view.regenerate_requested.connect(self.regenerate)
        chat.view.version_requested.connect(self._switch_version)
        self.welcome.open_requested.connect(self.choose_model_file)
        self.welcome.convert_requested.connect(self.show_convert_dialog)
        self.welcome.models_requested.connect(self.show_models_dialog)

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Bllossom"))
        self.file_menu.setTitle(self.tr("&File"))
        self.chat_menu.setTitle(self.tr("&Chat"))
        self.new_action.setText(self.tr("New chat"))
        self.open_action.setText(self.tr("Open a GGUF file…"))
        self.convert_action.setText(self.tr("Convert a Hugging Face model…"))
        self.models_action.setText(self.tr("Models and remote servers…"))
        self.export_action.setText(self.tr("Export conversation…"))
        self.export_all_action.setText(self.tr("Export all conversations…"))
        self.import_action.setText(self.tr("Import conversations…"))
        self.trash_action.setText(self.tr("Recently deleted…"))
        self.settings_action.setText(self.tr("Settings…"))
        self.quit_action.setText(self.tr("Quit"))
        self.find_action.setText(self.tr("Search conversations"))
        self.options_action.setText(self.tr("Conversation settings…"))
        self.stop_action.setText(self.tr("Stop generating"))
        self._update_title()

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

    def remember_geometry(self) -> None:
        s = self.settings
        s.window_geometry = bytes(self.saveGeometry().toBase64().data()).decode()
        s.window_state = bytes(self.saveState().toBase64().data()).decode()
        s.splitter_state = bytes(self.splitter.saveState().toBase64().data()).decode()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._closing = True
        self.stop_generation()
        self.runner.wait_all()
        if self.writer is not None and not self.writer.closed:
            try:
                self.writer.finish(None)
            except BllossomError as error:
                log.warning("could not save the last reply: %s", error)
            self.writer = None
        self.save_draft()
        self.remember_geometry()
        self._save_settings()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.services.close()
        super().closeEvent(event)
