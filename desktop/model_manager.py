"""The model the app talks to: opening GGUF files and remote servers, loading them off
the GUI thread, the models and conversion dialogs.

Owns ``engine`` (the loaded model, or ``None``) and says when it changes; nothing
else in the app assigns it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bllossom_core import LocalEngine, RemoteEngine, read_gguf_info
from bllossom_core.errors import ErrorCode, InputError
from bllossom_core.model_settings import ModelSettings
from bllossom_core.templates import TEMPLATE_CHOICES
from bllossom_core.types import ChatEngine
from desktop.context import AppContext
from desktop.convert_dialog import ConvertDialog
from desktop.model_settings_dialog import ModelSettingsDialog
from desktop.models import ModelsDialog, model_display_name
from desktop.ops import OpContext
from desktop.qt import QFileDialog, QMessageBox, QObject, Signal
from desktop.settings import RegisteredModel


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    size_bytes: int
    quantization: str
    architecture: str
    context_length: int | None


def inspect_model(path: Path | str) -> ModelInfo:
    """Read a GGUF's header safely (no weights): name, size, quantization."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path} does not exist.",
            hint="Choose an existing .gguf file.",
            path=path,
            code=ErrorCode.MODEL_FILE_MISSING,
        )
    info = read_gguf_info(path)
    return ModelInfo(
        name=model_display_name(info.metadata, path),
        path=path,
        size_bytes=info.file_size,
        quantization=info.quantization,
        architecture=info.architecture,
        context_length=info.context_length,
    )


def registered(info: ModelInfo) -> RegisteredModel:
    return RegisteredModel(
        name=info.name,
        path=str(info.path.resolve()),
        size_bytes=info.size_bytes,
        quantization=info.quantization,
    )


def load_engine(
    model: RegisteredModel, template: str, settings: ModelSettings | None = None
) -> ChatEngine:
    """Open a model; slow (seconds), so only ever called inside an operation."""
    if model.is_remote:
        return RemoteEngine(model.base_url, model.api_key or None, model=model.remote_model or None)
    inspect_model(model.path)  # a missing or corrupt file fails here, fast and safely
    arguments = (settings or ModelSettings()).load_arguments()
    return LocalEngine.load(model.path, template=template, **arguments)


class ModelManager(QObject):
    engine_changed = Signal()
    """The engine was replaced (or is ``None`` again)."""
    loading_changed = Signal()
    """A load started or ended (successfully or not)."""

    def __init__(self, context: AppContext) -> None:
        super().__init__(context.window)
        self._context = context
        self.engine: ChatEngine | None = None
        self.model: RegisteredModel | None = None
        self.template = "auto"
        """The chat template the engine was loaded with."""
        self.loading: RegisteredModel | None = None

    # ------------------------------------------------------------------ opening
    def choose_file(self) -> None:
        window = self._context.window
        path, _ = QFileDialog.getOpenFileName(
            window, self.tr("Open a GGUF model"), str(Path.home()), self.tr("GGUF models (*.gguf)")
        )
        if path:
            self.open_file(Path(path))

    def open_file(self, path: Path, template: str = "auto") -> None:
        """Open a GGUF file: its header is read and the model loaded in one operation,
        so the app counts as loading (and queues a message sent meanwhile) at once."""
        placeholder = RegisteredModel(name=path.name, path=str(path))

        def read_then_load(_ctx: OpContext) -> tuple[RegisteredModel, ChatEngine]:
            model = registered(inspect_model(path))
            return model, load_engine(model, template, settings)

        settings = self.model_settings
        self._start_loading(placeholder, "open model", read_then_load, template)

    def load(self, model: RegisteredModel, template: str = "auto") -> None:
        """Load ``model`` off the GUI thread; the current engine stays until it is ready."""
        settings = self.model_settings

        def load(_ctx: OpContext) -> tuple[RegisteredModel, ChatEngine]:
            return model, load_engine(model, template, settings)

        self._start_loading(model, "load model", load, template)

    def _start_loading(
        self,
        model: RegisteredModel,
        name: str,
        load: Callable[[OpContext], tuple[RegisteredModel, ChatEngine]],
        template: str,
    ) -> None:
        if self.loading is not None:
            return
        self.loading = model
        self._context.status.set_loading(model.name)
        self.loading_changed.emit()
        self._context.ops.run(
            name,
            load,
            lambda loaded: self._loaded(loaded[0], loaded[1], template),
            self._failed,
        )

    @property
    def model_settings(self) -> ModelSettings:
        return ModelSettings.from_dict(self._context.settings.model_settings)

    def apply_settings(self, settings: ModelSettings) -> None:
        """Save the model settings and reload the open local model with them."""
        self._context.settings.model_settings = settings.to_dict()
        self._context.save_settings()
        model = self.model
        if model is not None and not model.is_remote:
            self.load(model, self.template)

    def show_model_settings(self) -> None:
        info = getattr(self.engine, "info", None)
        trained = getattr(info, "context_length", None)
        dialog = ModelSettingsDialog(
            self.model_settings, trained if isinstance(trained, int) else None, self._context.window
        )
        dialog.accepted.connect(lambda: self.apply_settings(dialog.settings()))
        dialog.open()

    def ensure_template(self, template: str) -> None:
        """Reload the local model when a conversation asks for another chat template."""
        model = self.model
        if model is None or model.is_remote or self.loading is not None:
            return
        if template != self.template:
            self.load(model, template)

    def _loaded(self, model: RegisteredModel, engine: ChatEngine, template: str) -> None:
        previous = self.engine
        self.engine, self.model, self.template, self.loading = engine, model, template, None
        if previous is not None:
            previous.close()  # frees its memory as soon as any reply on it ends
        settings = self._context.settings
        settings.register_model(model)
        settings.last_model = model.key
        self._context.save_settings()
        self._context.status.set_model(model.name, model.quantization, engine.device)
        self.loading_changed.emit()
        self.engine_changed.emit()
        if getattr(engine, "template_note", None):  # a local file without a chat template
            self._context.status.showMessage(self._guessed_template_text(engine), 15000)

    def _guessed_template_text(self, engine: ChatEngine) -> str:
        label = dict(TEMPLATE_CHOICES).get(getattr(engine, "template_name", ""), "")
        return self.tr(
            "This model file has no chat template; using %1, chosen from its vocabulary. If "
            "its replies look wrong, choose another in the conversation settings."
        ).replace("%1", label)

    def _failed(self, error: BaseException) -> None:
        self.loading = None
        model, engine = self.model, self.engine
        self._context.status.set_model(
            model.name if model else None,
            model.quantization if model else "",
            engine.device if engine else None,
        )
        self.loading_changed.emit()
        self._context.show_error(error)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def unload(self) -> None:
        """Let go of the loaded model (its memory is freed once any reply on it ends)."""
        if self.engine is None:
            return
        engine, self.engine, self.model = self.engine, None, None
        engine.close()
        self._context.settings.last_model = ""
        self._context.save_settings()
        self._context.status.set_model(None, "", None)
        self.engine_changed.emit()

    # ------------------------------------------------------------------ dialogs
    def show_models_dialog(self) -> None:
        settings = self._context.settings
        loaded = self.model.key if self.engine is not None and self.model is not None else ""
        dialog = ModelsDialog(
            settings.models, settings.last_model, self._context.window, loaded=loaded
        )
        dialog.model_chosen.connect(self.load)
        dialog.unload_requested.connect(self.unload)
        dialog.model_removed.connect(self._forget)
        dialog.open_file_requested.connect(dialog.accept)
        dialog.open_file_requested.connect(self.choose_file)
        dialog.open()

    def _forget(self, key: str) -> None:
        self._context.settings.forget_model(key)
        self._context.save_settings()

    def show_convert_dialog(self) -> None:
        dialog = ConvertDialog(self._context.ops, self._context.window)
        dialog.converted.connect(lambda result: self._offer_converted(Path(result.output)))
        dialog.open()

    def _offer_converted(self, output: Path) -> None:
        """A finished conversion never switches the model silently: ask first."""
        if self.ask_open_converted(output):
            self.open_file(output)

    def ask_open_converted(self, output: Path) -> bool:
        answer = QMessageBox.question(
            self._context.window,
            self.tr("Open the new model?"),
            self.tr("%1 is ready. Open it now? (The current model is closed.)").replace(
                "%1", output.name
            ),
        )
        return answer == QMessageBox.StandardButton.Yes
