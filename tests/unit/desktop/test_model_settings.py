"""The model settings panel: context size, GPU layers, threads, flash attention and KV
cache, checked by the core and applied by reloading the real model off the GUI thread."""

from __future__ import annotations

from bllossom_core.model_settings import ModelSettings
from desktop.model_settings_dialog import AUTO, ModelSettingsDialog
from desktop.qt import QMessageBox
from desktop.settings import AppSettings
from tests.fixtures.gguf_models import fixture_gguf
from tests.unit.desktop.test_main_window import settle


def test_the_dialog_refuses_a_quantized_cache_without_flash_attention(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = ModelSettingsDialog(ModelSettings(), 8192)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.context_size.text().startswith("Automatic")
    assert dialog.gpu_layers.value() == AUTO and dialog.threads.text().startswith("Automatic")
    dialog.kv_cache_type.setCurrentIndex(dialog.kv_cache_type.findData("q4_0"))
    dialog.accept()
    assert dialog.isVisible() and "flash attention" in dialog.problem_label.text()
    dialog.flash_attention.setChecked(True)
    dialog.context_size.setValue(2048)
    dialog.threads.setValue(2)
    dialog.accept()
    assert not dialog.isVisible()
    assert dialog.settings() == ModelSettings(2048, None, 2, True, "q4_0")


def test_saving_reloads_the_open_model_with_the_new_settings(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    window.models.open_file(fixture_gguf("llama2-spm-ko"))
    qtbot.waitUntil(lambda: window.models.engine is not None, timeout=60_000)
    settle(qtbot, window)
    first = window.models.engine
    assert first.context_size != 512
    window.models.show_model_settings()
    dialog = window.findChild(ModelSettingsDialog)
    assert dialog is not None
    dialog.context_size.setValue(512)
    dialog.flash_attention.setChecked(True)
    dialog.kv_cache_type.setCurrentIndex(dialog.kv_cache_type.findData("q8_0"))
    dialog.accept()
    assert window.models.loading is not None  # reloading in the background
    qtbot.waitUntil(lambda: window.models.engine is not first, timeout=60_000)
    settle(qtbot, window)
    assert window.models.engine.context_size == 512
    assert window.findChild(QMessageBox, "errorBox") is None
    assert "CPU" in window.status.device_label.text()  # the device report is shown again
    saved = AppSettings.load().model_settings
    assert ModelSettings.from_dict(saved) == ModelSettings(512, None, None, True, "q8_0")
