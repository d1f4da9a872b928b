"""The model list: registered files with size and quantization, remote endpoints."""

from __future__ import annotations

from pathlib import Path

from bllossom_core.hardware import HardwareInfo
from desktop.models import ModelsDialog, format_size, model_display_name
from desktop.qt import QMessageBox
from desktop.settings import AppSettings, RegisteredModel
from tests.unit.desktop.scripted import ScriptedEngine, use_engine


def test_lists_models_and_switches(qtbot) -> None:  # type: ignore[no-untyped-def]
    models = [
        RegisteredModel(name="bllossom-8b", path="/m/b8.gguf", size_bytes=4_920_000_000,
                        quantization="Q4_K_M"),
        RegisteredModel(name="tiny", path="/m/tiny.gguf", size_bytes=2048, quantization="F16"),
    ]  # fmt: skip
    dialog = ModelsDialog(models, current="/m/tiny.gguf")
    qtbot.addWidget(dialog)
    rows = [
        [dialog.table.item(r, c).text() for c in range(4)] for r in range(dialog.table.rowCount())
    ]
    assert rows == [
        ["bllossom-8b", "4.9 GB", "Q4_K_M", "/m/b8.gguf"],
        ["tiny  (in use)", "2.0 kB", "F16", "/m/tiny.gguf"],
    ]
    chosen: list[object] = []
    dialog.model_chosen.connect(chosen.append)
    dialog.table.selectRow(0)
    dialog.use_button.click()
    assert chosen == [models[0]]


def test_remove_needs_a_selection(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = ModelsDialog([RegisteredModel(name="a", path="/a")], current="")
    qtbot.addWidget(dialog)
    removed: list[str] = []
    dialog.model_removed.connect(removed.append)
    assert not dialog.remove_button.isEnabled() and not dialog.use_button.isEnabled()
    dialog.table.selectRow(0)
    assert dialog.remove_button.isEnabled() and dialog.use_button.isEnabled()
    dialog.remove_button.click()
    assert removed == ["/a"] and dialog.table.rowCount() == 0
    assert not dialog.remove_button.isEnabled()


def test_sizes_use_the_decimal_units_of_the_device_report() -> None:
    assert [format_size(n) for n in (1536, 91_000_000, 4_920_000_000)] == [
        "1.5 kB",
        "91.0 MB",
        "4.9 GB",
    ]
    # The device report (bllossom_core.hardware) says GB for 10^9 bytes too.
    report = HardwareInfo(total_ram=4_920_000_000, available_ram=4_920_000_000)
    assert "RAM 4.9 GB" in report.describe()


def test_model_names_from_gguf_metadata() -> None:
    # llama.cpp's converter title-cased a lowercase folder name: the file name has the
    # author's spelling.
    smollm = {"general.name": "Smollm2 135M 8k Lc100K Mix1 Ep2", "general.basename": "smollm2"}
    assert (
        model_display_name(smollm, Path("/m/SmolLM2-135M-Instruct.Q4_1.gguf"))
        == "SmolLM2-135M-Instruct.Q4_1"
    )
    # A name written deliberately is shown as written (no title-casing of our own).
    named = {"general.name": "llama-3-Korean-Bllossom-8B"}
    assert (
        model_display_name(named, Path("/m/llama-3-Korean-Bllossom-8B-Q4_K_M.gguf"))
        == "llama-3-Korean-Bllossom-8B"
    )
    assert model_display_name({"general.name": "Qwen2.5 7B Instruct"}, Path("/m/q.gguf")) == (
        "Qwen2.5 7B Instruct"
    )
    assert model_display_name({}, Path("/m/my-model-Q8_0.gguf")) == "my-model-Q8_0"


def test_same_name_in_different_folders_shows_the_folder(qtbot) -> None:  # type: ignore[no-untyped-def]
    models = [
        RegisteredModel(name="bllossom", path="/home/u/run1/bllossom-Q8_0.gguf"),
        RegisteredModel(name="bllossom", path="/home/u/run2/bllossom-Q8_0.gguf"),
        RegisteredModel(name="other", path="/home/u/run2/other.gguf"),
    ]
    dialog = ModelsDialog(models, current="")
    qtbot.addWidget(dialog)
    names = [dialog.table.item(r, 0).text() for r in range(3)]
    assert names == ["bllossom (run1)", "bllossom (run2)", "other"]


def test_removing_the_model_in_use_asks_and_unloads_it(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    engine = ScriptedEngine([["hi"]])
    use_engine(window, engine, name="tiny")
    other = RegisteredModel(name="other", path="/models/other.gguf")
    window.settings.register_model(other)
    window.models.show_models_dialog()
    dialog = window.findChild(ModelsDialog)
    keys = [dialog.table.item(r, 3).text() for r in range(dialog.table.rowCount())]
    # Removing another model does not ask.
    dialog.table.selectRow(keys.index("/models/other.gguf"))
    dialog.remove_button.click()
    assert dialog.confirm_box is None
    assert window.settings.find_model("/models/other.gguf") is None
    # The model in use: asked first; "No" keeps it loaded and listed.
    dialog.table.selectRow(0)
    dialog.remove_button.click()
    box = dialog.confirm_box
    assert box is not None and "tiny" in box.text()
    box.button(QMessageBox.StandardButton.No).click()
    assert window.models.engine is engine and dialog.table.rowCount() == 1
    dialog.table.selectRow(0)
    dialog.remove_button.click()
    dialog.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert window.models.engine is None and window.models.model is None
    assert engine.closed
    assert dialog.table.rowCount() == 0
    saved = AppSettings.load()
    assert saved.models == [] and saved.last_model == ""
    assert window.status.model_label.text() == "" or "tiny" not in window.status.model_label.text()
