"""Model settings: context size, GPU layers, threads, flash attention, KV-cache type.

Applied by reloading the model off the GUI thread (see ModelManager.apply_settings);
values are checked by the core's one check before the dialog closes.
"""

from __future__ import annotations

from bllossom_core.errors import InvalidSettingError
from bllossom_core.model_settings import KV_CACHE_TYPES, ModelSettings, check_model_settings
from desktop.dialog_parts import problem_label, settings_buttons
from desktop.i18n import is_language_change
from desktop.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QEvent,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

AUTO = -2
"""Spin-box value shown as "Automatic" (its special-value text)."""


class ModelSettingsDialog(QDialog):
    def __init__(
        self,
        settings: ModelSettings,
        trained_context: int | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("modelSettingsDialog")
        self._trained_context = trained_context
        layout = QVBoxLayout(self)
        self.explanation = QLabel(self)
        self.explanation.setWordWrap(True)
        layout.addWidget(self.explanation)
        form = QFormLayout()
        self.labels = {key: QLabel(self) for key in ("context", "gpu", "threads", "flash", "kv")}
        self.context_size = QSpinBox(self)
        self.context_size.setRange(63, trained_context or 1_048_576)
        self.context_size.setSingleStep(1024)
        self.context_size.setValue(settings.context_size or 63)
        self.gpu_layers = QSpinBox(self)
        self.gpu_layers.setRange(AUTO, 1000)
        self.gpu_layers.setValue(AUTO if settings.gpu_layers is None else settings.gpu_layers)
        self.threads = QSpinBox(self)
        self.threads.setRange(0, 256)
        self.threads.setValue(settings.threads or 0)
        self.flash_attention = QCheckBox(self)
        self.flash_attention.setChecked(settings.flash_attention)
        self.kv_cache_type = QComboBox(self)
        for kind in KV_CACHE_TYPES:
            self.kv_cache_type.addItem(kind, kind)
        self.kv_cache_type.setCurrentIndex(self.kv_cache_type.findData(settings.kv_cache_type))
        widgets = (
            self.context_size,
            self.gpu_layers,
            self.threads,
            self.flash_attention,
            self.kv_cache_type,
        )
        for label, widget in zip(self.labels.values(), widgets, strict=True):
            form.addRow(label, widget)
        layout.addLayout(form)
        self.problem_label = problem_label(self)
        layout.addWidget(self.problem_label)
        self.buttons = settings_buttons(self, lambda: self._show(ModelSettings()))
        layout.addWidget(self.buttons)
        self.retranslate()

    def _show(self, settings: ModelSettings) -> None:
        self.context_size.setValue(settings.context_size or 63)
        self.gpu_layers.setValue(AUTO if settings.gpu_layers is None else settings.gpu_layers)
        self.threads.setValue(settings.threads or 0)
        self.flash_attention.setChecked(settings.flash_attention)
        self.kv_cache_type.setCurrentIndex(self.kv_cache_type.findData(settings.kv_cache_type))

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Model settings"))
        self.explanation.setText(
            self.tr("These apply to local models. Saving reloads the model that is open.")
        )
        texts = (
            self.tr("Context size (tokens)"),
            self.tr("Layers on the GPU"),
            self.tr("CPU threads"),
            self.tr("Flash attention"),
            self.tr("KV cache type"),
        )
        for label, text in zip(self.labels.values(), texts, strict=True):
            label.setText(text)
        trained = self._trained_context
        self.context_size.setSpecialValueText(
            self.tr("Automatic (%1)").replace("%1", str(min(trained or 4096, 4096)))
        )
        self.gpu_layers.setSpecialValueText(self.tr("Automatic (all that fit)"))
        self.threads.setSpecialValueText(self.tr("Automatic (one per core)"))
        self.flash_attention.setText(self.tr("Use flash attention (needed for q8_0/q4_0)"))
        self.gpu_layers.setToolTip(self.tr("-1 puts every layer on the GPU, 0 none."))

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def settings(self) -> ModelSettings:
        context = self.context_size.value()
        layers = self.gpu_layers.value()
        return ModelSettings(
            context_size=None if context == self.context_size.minimum() else context,
            gpu_layers=None if layers == AUTO else layers,
            threads=self.threads.value() or None,
            flash_attention=self.flash_attention.isChecked(),
            kv_cache_type=str(self.kv_cache_type.currentData()),
        )

    def accept(self) -> None:
        try:
            check_model_settings(self.settings())
        except InvalidSettingError as error:
            texts = {
                "kv_cache_type": self.tr(
                    "A quantized KV cache needs flash attention: turn it on, or choose f16."
                ),
            }
            self.problem_label.setText(texts.get(error.setting, error.message))
            self.problem_label.show()
            return
        super().accept()
