"""The model list: registered files with size and quantization, remote endpoints."""

from __future__ import annotations

from bllossom_core import human_size
from bllossom_core.store import ConversationStore
from desktop.models import ModelsDialog
from desktop.qt import QMessageBox
from desktop.settings import AppSettings, RegisteredModel


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
        ["bllossom-8b", "4.6 GB", "Q4_K_M", "/m/b8.gguf"],
        ["tiny  (in use)", "2.0 KB", "F16", "/m/tiny.gguf"],
    ]
    chosen: list[object] = []
    dialog.model_chosen.connect(chosen.append)
    dialog.table.selectRow(0)
    dialog.use_button.click()
    assert chosen == [models[0]]


def test_remove_and_human_sizes(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = ModelsDialog([RegisteredModel(name="a", path="/a")], current="")
    qtbot.addWidget(dialog)
    removed: list[str] = []
    dialog.model_removed.connect(removed.append)
    dialog.table.selectRow(0)
    dialog.remove_button.click()
    assert removed == ["/a"] and dialog.table.rowCount() == 0
    assert [human_size(n) for n in (512, 1536, 5 * 1024**3)] == ["512 B", "1.5 KB", "5.0 GB"]


def test_remote_endpoint_is_registered_and_used(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    window.models.show_models_dialog()
    dialog = window.findChild(ModelsDialog)
    dialog.url_edit.setText("http://127.0.0.1:9/v1")
    dialog.key_edit.setText("sk-test")
    dialog.name_edit.setText("bllossom-remote")
    dialog.add_remote_button.click()
    qtbot.waitUntil(lambda: window.models.engine is not None, timeout=10_000)
    assert window.models.engine.device.backend == "remote"
    assert window.status.device_label.text() == "Remote server"
    saved = AppSettings.load()
    assert saved.last_model == "http://127.0.0.1:9/v1"
    assert (
        saved.models[0].api_key == "sk-test" and saved.models[0].remote_model == "bllossom-remote"
    )
    # Nothing listens there: the error says so, and as the reply could not start nothing
    # was stored; the question stays in the input box to send again.
    window.chat.input.setPlainText("들리나요?")
    window.chat.input.submit()
    qtbot.waitUntil(lambda: not window.busy, timeout=30_000)
    box = window.findChild(QMessageBox, "errorBox")
    assert box is not None and "Could not connect to the server." in box.text()
    assert "127.0.0.1:9" in box.text()
    assert window.chat.input.toPlainText() == "들리나요?"
    assert ConversationStore().list_conversations() == []
