"""App settings (language, theme) and per-conversation generation settings."""

from __future__ import annotations

from bllossom_core.errors import InvalidSettingError
from bllossom_core.session import ConversationOptions
from bllossom_core.templates import DEFAULT_SYSTEM_PROMPT, TEMPLATE_CHOICES
from bllossom_core.types import GenerationSettings, check_settings
from desktop.dialog_parts import problem_label, settings_buttons
from desktop.i18n import is_language_change
from desktop.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QEvent,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    Signal,
)


class SettingsDialog(QDialog):
    """Language and theme apply live, as soon as they are picked."""

    language_chosen = Signal(str)
    theme_chosen = Signal(str)

    def __init__(
        self,
        language: str,
        theme: str,
        parent: QWidget | None = None,
        sections: tuple[QWidget, ...] = (),
    ) -> None:
        """``sections`` are further parts shown below (the local API server's)."""
        super().__init__(parent)
        self.setMinimumWidth(380)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.language_label = QLabel(self)
        self.language_combo = QComboBox(self)
        self.theme_label = QLabel(self)
        self.theme_combo = QComboBox(self)
        form.addRow(self.language_label, self.language_combo)
        form.addRow(self.theme_label, self.theme_combo)
        layout.addLayout(form)
        for section in sections:
            section.setParent(self)
            layout.addWidget(section)
        if sections:
            self.setMinimumWidth(460)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.rejected.connect(self.accept)
        layout.addWidget(self.buttons)
        self._language = language
        self._theme = theme
        self.retranslate()
        self.language_combo.currentIndexChanged.connect(self._language_changed)
        self.theme_combo.currentIndexChanged.connect(self._theme_changed)

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Settings"))
        self.language_label.setText(self.tr("Language"))
        self.theme_label.setText(self.tr("Theme"))
        for combo, items, value in (
            (
                self.language_combo,
                [("system", self.tr("System default")), ("ko", "한국어"), ("en", "English")],
                self._language,
            ),
            (
                self.theme_combo,
                [
                    ("system", self.tr("System default")),
                    ("light", self.tr("Light")),
                    ("dark", self.tr("Dark")),
                ],
                self._theme,
            ),
        ):
            combo.blockSignals(True)
            combo.clear()
            for key, text in items:
                combo.addItem(text, key)
            combo.setCurrentIndex(max(0, combo.findData(value)))
            combo.blockSignals(False)

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def _language_changed(self) -> None:
        self._language = str(self.language_combo.currentData())
        self.language_chosen.emit(self._language)

    def _theme_changed(self) -> None:
        self._theme = str(self.theme_combo.currentData())
        self.theme_chosen.emit(self._theme)


class ConversationSettingsDialog(QDialog):
    """System prompt, chat template and sampling settings of one conversation."""

    def __init__(
        self,
        options: ConversationOptions,
        context_size: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._context_size = context_size
        layout = QVBoxLayout(self)
        self.form = QFormLayout()
        self.labels = {
            key: QLabel(self)
            for key in (
                "system",
                "template",
                "temperature",
                "top_p",
                "top_k",
                "repeat",
                "max_tokens",
            )
        }
        self.system_prompt = QPlainTextEdit(options.system_prompt or "", self)
        self.system_prompt.setMinimumHeight(80)
        self.template = QComboBox(self)
        self.temperature = self._double(0.0, 2.0, 0.05, options.settings.temperature)
        self.top_p = self._double(0.0, 1.0, 0.05, options.settings.top_p)
        self.top_k = QSpinBox(self)
        self.top_k.setRange(0, 1000)
        self.top_k.setValue(options.settings.top_k)
        self.repeat_penalty = self._double(0.5, 2.0, 0.05, options.settings.repeat_penalty)
        self.max_tokens = QSpinBox(self)
        self.max_tokens.setRange(1, 32768)
        self.max_tokens.setValue(options.settings.max_tokens)
        for key, widget in zip(
            self.labels,
            (
                self.system_prompt,
                self.template,
                self.temperature,
                self.top_p,
                self.top_k,
                self.repeat_penalty,
                self.max_tokens,
            ),
            strict=True,
        ):
            self.form.addRow(self.labels[key], widget)
        layout.addLayout(self.form)
        self.problem_label = problem_label(self)
        layout.addWidget(self.problem_label)
        self.buttons = settings_buttons(self, self._restore_defaults)
        layout.addWidget(self.buttons)
        self._seed = options.settings.seed
        self._template_value = options.template
        self.retranslate()

    def _double(self, low: float, high: float, step: float, value: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox(self)
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setValue(value)
        return box

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Conversation settings"))
        texts = {
            "system": self.tr("System prompt"),
            "template": self.tr("Chat template"),
            "temperature": self.tr("Temperature"),
            "top_p": self.tr("Top-p"),
            "top_k": self.tr("Top-k"),
            "repeat": self.tr("Repetition penalty"),
            "max_tokens": self.tr("Maximum reply length (tokens)"),
        }
        for key, label in self.labels.items():
            label.setText(texts[key])
        names = {
            "auto": self.tr("Automatic (from the GGUF file)"),
            "llama2-bllossom": self.tr("Llama-2 Bllossom"),
            "llama3": self.tr("Llama-3"),
            "chatml": self.tr("ChatML (Qwen, SmolLM)"),
            "gemma": self.tr("Gemma"),
            "gguf": self.tr("Always the GGUF file's own template"),
        }
        current = self.template.currentData() or self._template_value
        self.template.clear()
        # The core's one template list; a template added there shows with its own label.
        for key, core_label in TEMPLATE_CHOICES:
            self.template.addItem(names.get(key, core_label), key)
        self.template.setCurrentIndex(max(0, self.template.findData(current)))

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def _restore_defaults(self) -> None:
        defaults = GenerationSettings()
        self.system_prompt.setPlainText(DEFAULT_SYSTEM_PROMPT)
        self.template.setCurrentIndex(0)
        self.temperature.setValue(defaults.temperature)
        self.top_p.setValue(defaults.top_p)
        self.top_k.setValue(defaults.top_k)
        self.repeat_penalty.setValue(defaults.repeat_penalty)
        self.max_tokens.setValue(defaults.max_tokens)

    def accept(self) -> None:
        """Close only with settings that pass the one check every front end uses."""
        try:
            check_settings(self.options().settings, context_size=self._context_size)
        except InvalidSettingError as error:
            self._show_problem(error)
            return
        self.problem_label.hide()
        super().accept()

    def _show_problem(self, error: InvalidSettingError) -> None:
        fields = {
            "temperature": (self.temperature, self.tr("Temperature must be 0 or more.")),
            "top_p": (self.top_p, self.tr("Top-p must be above 0 and at most 1.")),
            "top_k": (self.top_k, self.tr("Top-k must be 0 (all tokens) or more.")),
            "repeat_penalty": (
                self.repeat_penalty,
                self.tr("The repetition penalty must be above 0."),
            ),
            "max_tokens": (
                self.max_tokens,
                self.tr(
                    "The maximum reply length must be between 1 and the context size (%1)."
                ).replace("%1", str(self._context_size or "?")),
            ),
        }
        widget, text = fields.get(error.setting, (None, error.message))
        self.problem_label.setText(text)
        self.problem_label.show()
        if widget is not None:
            widget.setFocus()

    def options(self) -> ConversationOptions:
        return ConversationOptions(
            system_prompt=self.system_prompt.toPlainText().strip() or None,
            template=str(self.template.currentData()),
            settings=GenerationSettings(
                temperature=self.temperature.value(),
                top_p=self.top_p.value(),
                top_k=self.top_k.value(),
                repeat_penalty=self.repeat_penalty.value(),
                max_tokens=self.max_tokens.value(),
                seed=self._seed,
            ),
        )
