"""Models and options: open and load GGUF files or remote servers off the GUI thread,
the models and conversion dialogs, the app and conversation settings. Internal."""

from __future__ import annotations

from pathlib import Path

from bllossom_core.errors import BllossomError
from desktop._window_base import WindowBase
from desktop.convert_dialog import ConvertDialog
from desktop.errors import show_error
from desktop.models import ModelsDialog
from desktop.qt import QApplication, QFileDialog
from desktop.settings import RegisteredModel
from desktop.settings_dialog import (
    ConversationOptions,
    ConversationSettingsDialog,
    SettingsDialog,
)
from desktop.theme import apply_theme


class ModelController(WindowBase):
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
