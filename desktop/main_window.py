"""The main window: sidebar | chat (or welcome page), menus, shortcuts, status bar."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bllossom_core.errors import BllossomError
from bllossom_core.store import ReplyWriter
from bllossom_core.templates import DEFAULT_SYSTEM_PROMPT
from bllossom_core.types import ChatEngine, ChatMessage, GenerationSettings, GenerationStats
from desktop.chat_page import ChatPage
from desktop.convert_dialog import ConvertDialog
from desktop.errors import show_error
from desktop.i18n import LanguageSwitcher, is_language_change
from desktop.models import ModelsDialog
from desktop.qt import (
    QAction,
    QApplication,
    QByteArray,
    QCloseEvent,
    QEvent,
    QFileDialog,
    QKeySequence,
    QMainWindow,
    QShortcut,
    QSplitter,
    QStackedWidget,
    Qt,
    QTimer,
    Slot,
)
from desktop.services import Services, shown_message
from desktop.settings import NEW_CONVERSATION_KEY, AppSettings, RegisteredModel
from desktop.settings_dialog import (
    ConversationOptions,
    ConversationSettingsDialog,
    SettingsDialog,
)
from desktop.sidebar import Sidebar
from desktop.status_bar import ChatStatusBar
from desktop.theme import apply_theme
from desktop.welcome import WelcomePage
from desktop.workers import GenerationOutcome, GenerationWorker, JobRunner

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAFT_SAVE_DELAY_MS = 400


def default_options() -> ConversationOptions:
    return ConversationOptions(DEFAULT_SYSTEM_PROMPT, "auto", GenerationSettings())


class MainWindow(QMainWindow):
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
        self._build_actions()
        self._connect()
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_SAVE_DELAY_MS)
        self._draft_timer.timeout.connect(self.save_draft)
        self.chat.input.textChanged.connect(self._draft_timer.start)
        self.retranslate()
        self._restore_geometry()
        self.refresh_conversations()
        self._open_initial_conversation()
        self._update_page()
        self.chat.input.setFocus()

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

    # ------------------------------------------------------------------ conversations
    def refresh_conversations(self) -> None:
        if self.sidebar.searching():
            self._search(self.sidebar.query)
            return
        try:
            entries = self.services.conversations()
        except BllossomError as error:
            show_error(self, error)
            return
        self.sidebar.set_conversations(entries, self.conversation_id)

    def _open_initial_conversation(self) -> None:
        last = self.settings.last_conversation
        if last.isdigit():
            try:
                self.open_conversation(int(last))
                return
            except BllossomError:
                pass
        self.new_conversation()

    def new_conversation(self) -> None:
        if self.busy:
            return
        self.save_draft()
        self.conversation_id = None
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.new_options = default_options()
        self.chat.view.clear()
        self._load_draft()
        self.settings.last_conversation = ""
        self.refresh_conversations()
        self._update_title()
        self._update_page()
        self._ensure_template()
        self.chat.input.setFocus()

    def open_conversation(self, conversation_id: int) -> None:
        if self.busy and conversation_id != self.conversation_id:
            self.refresh_conversations()
            return
        self.save_draft()
        messages = self.services.thread(conversation_id)
        self.conversation_id = conversation_id
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.chat.view.set_messages(messages)
        self._load_draft()
        self.settings.last_conversation = str(conversation_id)
        self._update_title()
        self._update_page()
        if not self.sidebar.searching():
            self.sidebar.set_conversations(self.services.conversations(), conversation_id)
        self._ensure_template()

    def _open_search_hit(self, conversation_id: int, message_id: int) -> None:
        self.open_conversation(conversation_id)
        widget = self.chat.view.widget_for(message_id)
        if widget is not None:
            self.chat.view.follow_bottom = False
            QTimer.singleShot(0, lambda: self.chat.view.ensureWidgetVisible(widget))

    def _rename(self, conversation_id: int, title: str) -> None:
        self._guard(lambda: self.services.rename(conversation_id, title))
        self._update_title()
        QTimer.singleShot(0, self.refresh_conversations)

    def _delete(self, conversation_id: int) -> None:
        if self.busy and conversation_id == self.conversation_id:
            return
        self._guard(lambda: self.services.delete(conversation_id))
        if conversation_id == self.conversation_id:
            self.new_conversation()
        self.refresh_conversations()

    def _undo_delete(self, conversation_id: int) -> None:
        self._guard(lambda: self.services.restore(conversation_id))
        self.refresh_conversations()

    def _search(self, query: str) -> None:
        if not query:
            self.sidebar.set_conversations(self.services.conversations(), self.conversation_id)
            return
        try:
            hits = self.services.search(query)
        except BllossomError as error:
            show_error(self, error)
            return
        self.sidebar.set_search_results(hits)

    def _switch_version(self, message_id: int) -> None:
        if self.busy:
            return
        messages = self._guard(lambda: self.services.switch_version(message_id))
        if messages is not None:
            self.chat.view.set_messages(messages, scroll=False)

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

    # ------------------------------------------------------------------ sending
    @property
    def busy(self) -> bool:
        """A reply is being written (or about to start): editing actions wait."""
        return self.generation is not None or self.chat.generating

    def _on_send_button(self) -> None:
        if self.busy:
            self.stop_generation()
        else:
            self.chat.input.submit()

    def _on_escape(self) -> None:
        if self.busy:
            self.stop_generation()
        elif self.editing_message_id is not None:
            self.cancel_edit()

    @Slot(str)
    def send(self, text: str) -> None:
        if self.engine is None:
            self.chat.input.setPlainText(text)
            if self.loading_model is not None:
                # Sent as soon as the model is ready; the text stays editable meanwhile.
                self._send_when_loaded = True
                self.status.showMessage(
                    self.tr("The message will be sent when the model is ready.")
                )
            else:
                self.status.showMessage(
                    self.tr("Open a model first: File › Open a GGUF file…"), 8000
                )
            return
        try:
            if self.conversation_id is None:
                options = self.new_options
                conversation = self.services.create_conversation(
                    self.engine_model.key if self.engine_model else None,
                    options.template,
                    options.system_prompt or None,
                    options.settings,
                )
                self.settings.drafts.pop(NEW_CONVERSATION_KEY, None)
                self.conversation_id = conversation.id
                self.settings.last_conversation = str(conversation.id)
            if self.editing_message_id is not None:
                self.services.edit_user_message(self.editing_message_id, text)
            else:
                self.services.add_user_message(self.conversation_id, text)
        except BllossomError as error:
            self.chat.input.setPlainText(text)
            show_error(self, error)
            return
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.settings.drafts.pop(self._draft_key(), None)
        # The question shows at once; the reply starts in the next event-loop turn, and
        # the bookkeeping runs in turns of its own, so no single turn blocks for long.
        self.chat.set_generating(True)
        self.chat.view.set_messages(self.services.thread(self.conversation_id))
        conversation_id = self.conversation_id
        # Staggered, so that repaints and input are served between them.
        QTimer.singleShot(1, lambda: self._begin_reply(conversation_id))
        QTimer.singleShot(20, self.refresh_conversations)
        QTimer.singleShot(30, self._update_title)
        QTimer.singleShot(250, self._save_settings)

    def _begin_reply(self, conversation_id: int) -> None:
        if self._closing:  # the window closed in between: the question is saved, no reply
            return
        try:
            messages, writer = self.services.prepare_reply(conversation_id)
        except BllossomError as error:
            self.chat.set_generating(False)
            show_error(self, error)
            return
        self._start_generation(messages, writer)

    def regenerate(self, message_id: int) -> None:
        if self.busy or self.engine is None:
            if self.engine is None:
                self.status.showMessage(
                    self.tr("Open a model first: File › Open a GGUF file…"), 8000
                )
            return
        prepared = self._guard(lambda: self.services.prepare_regeneration(message_id))
        if prepared is not None:
            self._start_generation(*prepared)

    def start_edit(self, message_id: int) -> None:
        if self.busy:
            return
        widget = self.chat.view.widget_for(message_id)
        if widget is None:
            return
        self.editing_message_id = message_id
        self.chat.edit_banner.show()
        self.chat.input.setPlainText(widget.message.text)
        self.chat.input.setFocus()

    def cancel_edit(self) -> None:
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.chat.input.clear()

    def _start_generation(self, messages: list[ChatMessage], writer: ReplyWriter) -> None:
        assert self.engine is not None and self.conversation_id is not None
        settings = self.services.conversation(self.conversation_id).settings
        self.writer = writer
        view = self.chat.view
        view.set_messages(self.services.thread(self.conversation_id))
        stream_widget = view.widget_for(writer.message_id)
        assert stream_widget is not None
        view.begin_stream(stream_widget)
        worker = GenerationWorker(self.engine, messages, settings, writer)
        worker.pieces.connect(self._on_pieces)
        self.generation = worker
        self.chat.set_generating(True)
        self.runner.start(worker, self._on_generation_finished, self._on_generation_failed)

    @Slot(str)
    def _on_pieces(self, text: str) -> None:
        self.chat.view.add_piece(text)

    def stop_generation(self) -> None:
        if self.generation is not None:
            self.generation.cancel.cancel()

    def _end_generation(self) -> None:
        self.chat.view.stop_stream()
        self.generation = None
        self.chat.set_generating(False)

    def _on_generation_finished(self, outcome: object) -> None:
        self.writer = None
        self._end_generation()
        assert isinstance(outcome, GenerationOutcome)
        if outcome.stats is not None:
            self.last_stats = outcome.stats
            self.status.set_stats(outcome.stats)
        self._show_final(outcome.message.id)

    def _on_generation_failed(self, error: BaseException) -> None:
        writer = self.writer
        self.writer = None
        self._end_generation()
        if writer is not None:
            self._show_final(writer.message_id)
        show_error(self, error)

    def _show_final(self, message_id: int) -> None:
        widget = self.chat.view.widget_for(message_id)
        if widget is not None:
            stored = self._guard(lambda: self.services.store.get_message(message_id))
            if stored is not None:
                widget.set_message(shown_message(stored))
        QTimer.singleShot(0, self.refresh_conversations)

    def _copy(self, text: str) -> None:
        clipboard = QApplication.clipboard()
        clipboard.setText(text)
        self.status.showMessage(self.tr("Copied to the clipboard."), 3000)

    # ------------------------------------------------------------------ models
    def choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Open a GGUF model"), str(Path.home()), self.tr("GGUF models (*.gguf)")
        )
        if path:
            self.open_model_file(Path(path))

    def open_model_file(self, path: Path) -> None:
        try:
            info = self.services.inspect_model(path)
        except BllossomError as error:
            show_error(self, error)
            return
        self.load_model(self.services.registered(info))

    def load_model(self, model: RegisteredModel) -> None:
        if self.busy:
            return
        self.loading_model = model
        self.status.set_loading(model.name)
        self._update_page()
        template = self.current_options().template
        self.runner.run_function(
            lambda: self.services.load_engine(model, template),
            lambda engine: self._on_model_loaded(model, engine, template),
            lambda error: self._on_model_failed(model, error),
        )

    def _ensure_template(self) -> None:
        """Reload the local model when this conversation uses another chat template."""
        model = self.engine_model
        if model is None or model.is_remote or self.loading_model is not None:
            return
        if self.current_options().template != self.engine_template:
            self.load_model(model)

    def _on_model_loaded(
        self, model: RegisteredModel, engine: object, template: str = "auto"
    ) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine = engine  # type: ignore[assignment]
        self.engine_model = model
        self.engine_template = template
        self.loading_model = None
        self.settings.register_model(model)
        self.settings.last_model = model.key
        self._save_settings()
        device = self.engine.device if self.engine is not None else None
        self.status.set_model(model.name, model.quantization, device)
        self._update_page()
        if self._send_when_loaded:
            self._send_when_loaded = False
            self.status.clearMessage()
            self.chat.input.submit()

    def _on_model_failed(self, model: RegisteredModel, error: BaseException) -> None:
        self.loading_model = None
        self._send_when_loaded = False
        self.status.set_model(
            self.engine_model.name if self.engine_model else None,
            self.engine_model.quantization if self.engine_model else "",
            self.engine.device if self.engine else None,
        )
        self._update_page()
        show_error(self, error)

    def show_models_dialog(self) -> None:
        dialog = ModelsDialog(self.settings.models, self.settings.last_model, self)
        dialog.model_chosen.connect(self.load_model)
        dialog.model_removed.connect(self._forget_model)
        dialog.open_file_requested.connect(dialog.accept)
        dialog.open_file_requested.connect(self.choose_model_file)
        dialog.open()

    def _forget_model(self, key: str) -> None:
        self.settings.forget_model(key)
        self._save_settings()

    def show_convert_dialog(self) -> None:
        dialog = ConvertDialog(self.services, self)
        dialog.converted.connect(lambda result: self.open_model_file(Path(result.output)))
        dialog.open()

    # ------------------------------------------------------------------ settings
    def show_settings(self) -> None:
        dialog = SettingsDialog(self.settings.language, self.settings.theme, self)
        dialog.language_chosen.connect(self.set_language)
        dialog.theme_chosen.connect(self.set_theme)
        dialog.open()

    def set_language(self, choice: str) -> None:
        self.settings.language = choice  # type: ignore[assignment]
        self.languages.apply(choice)
        self._save_settings()

    def set_theme(self, choice: str) -> None:
        self.settings.theme = choice  # type: ignore[assignment]
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        apply_theme(app, choice)
        if self.conversation_id is not None and not self.busy:
            self.chat.view.clear()  # colours are baked into the rendered HTML
            self.chat.view.set_messages(self.services.thread(self.conversation_id))
        self._save_settings()

    def current_options(self) -> ConversationOptions:
        if self.conversation_id is None:
            return self.new_options
        conversation = self.services.conversation(self.conversation_id)
        return ConversationOptions(
            conversation.system_prompt or "", conversation.template or "auto", conversation.settings
        )

    def show_conversation_settings(self) -> None:
        dialog = ConversationSettingsDialog(self.current_options(), self)
        dialog.accepted.connect(lambda: self._apply_options(dialog.options()))
        dialog.open()

    def _apply_options(self, options: ConversationOptions) -> None:
        previous = self.current_options()
        if self.conversation_id is None:
            self.new_options = options
        else:
            conversation_id = self.conversation_id
            self._guard(
                lambda: self.services.update_conversation(
                    conversation_id,
                    system_prompt=options.system_prompt or None,
                    template=options.template,
                    settings=options.settings,
                )
            )
        if options.template != previous.template:
            self._ensure_template()

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
