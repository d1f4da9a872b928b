"""The model list: registered GGUF files and remote endpoints, to switch between."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from bllossom_core.api_keys import KeyStorage
from desktop.i18n import is_language_change
from desktop.ops import OpRunner
from desktop.qt import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QEvent,
    QHBoxLayout,
    QLocale,
    QMessageBox,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.remote_server_form import RemoteServerForm
from desktop.settings import RegisteredModel

_WORD = re.compile(r"[^\W_]+")


def format_size(size_bytes: int) -> str:
    """A file size for the app: decimal units (1 GB = 10^9 bytes), localised.

    Decimal like the device report (``bllossom_core.hardware``), the Hugging Face hub
    and desktop file managers, so one model never shows two different "GB" figures.
    """
    return QLocale().formattedDataSize(size_bytes, 1, QLocale.DataSizeFormat.DataSizeSIFormat)


def model_display_name(metadata: dict[str, Any], path: Path) -> str:
    """The name to show for a GGUF: its ``general.name`` as written, else the file name.

    llama.cpp's converter fills ``general.name`` from the folder name it was given and
    title-cases lowercase words ("smollm2-135m-8k-lc100k-mix1-ep2" becomes
    "Smollm2 135M 8k Lc100K Mix1 Ep2"). When the file name spells one of the name's
    words with other capitals ("SmolLM2-135M-Instruct.Q4_1.gguf"), the name's casing
    was made up, and the file name (as its author wrote it) is shown instead.
    """
    name = str(metadata.get("general.name") or "").strip()
    stem = path.name.removesuffix(".gguf")
    if not name:
        return stem
    spelled = {word.lower(): word for word in _WORD.findall(stem)}
    for word in _WORD.findall(name):
        original = spelled.get(word.lower())
        if original is not None and original != word:
            return stem
    return name


def shown_names(models: list[RegisteredModel]) -> list[str]:
    """Names for the list: a name that several models share gets its folder added."""
    counts = Counter(model.name for model in models)
    names = []
    for model in models:
        if counts[model.name] > 1 and not model.is_remote:
            folder = Path(model.path).parent.name or model.path
            names.append(f"{model.name} ({folder})")
        elif counts[model.name] > 1:
            names.append(f"{model.name} ({model.base_url})")
        else:
            names.append(model.name)
    return names


def _runner_of(window: QWidget | None) -> OpRunner | None:
    """The operation runner the main window owns (its direct child), if any."""
    if window is None:
        return None
    return window.findChild(OpRunner, "", Qt.FindChildOption.FindDirectChildrenOnly)


class ModelsDialog(QDialog):
    model_chosen = Signal(object)
    """A :class:`RegisteredModel` to switch to."""
    model_removed = Signal(str)
    unload_requested = Signal()
    """The model in use was removed from the list (after the user agreed): unload it."""
    open_file_requested = Signal()

    def __init__(
        self,
        models: list[RegisteredModel],
        current: str,
        parent: QWidget | None = None,
        loaded: str = "",
        ops: OpRunner | None = None,
    ):
        """``current``: the key of the model shown as in use; ``loaded``: the key of the
        model loaded now ("" when none), which asks before it is removed; ``ops``: the
        app's operation runner, for the remote server's connection test (by default the
        parent window's, so that closing the app stops and waits for a test too)."""
        super().__init__(parent)
        self.resize(760, 560)
        self._models = list(models)
        self._current = current
        self._loaded = loaded
        self.confirm_box: QMessageBox | None = None
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 4, self)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.doubleClicked.connect(self._use_selected)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.use_button = QPushButton(self)
        self.remove_button = QPushButton(self)
        self.open_button = QPushButton(self)
        self.use_button.clicked.connect(self._use_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        self.open_button.clicked.connect(self.open_file_requested)
        for button in (self.use_button, self.remove_button, self.open_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.remote = RemoteServerForm(ops or _runner_of(parent) or OpRunner(parent=self), self)
        self.remote.added.connect(self._add_remote)
        self.url_edit, self.key_edit = self.remote.url_edit, self.remote.key_edit
        layout.addWidget(self.remote)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.retranslate()
        self._fill()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Models"))
        self.table.setHorizontalHeaderLabels(
            [self.tr("Name"), self.tr("Size"), self.tr("Quantization"), self.tr("Location")]
        )
        self.use_button.setText(self.tr("Use this model"))
        self.remove_button.setText(self.tr("Remove from list"))
        self.open_button.setText(self.tr("Open a GGUF file…"))
        self._fill()

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def _fill(self) -> None:
        self.table.clearSelection()
        self.table.setRowCount(len(self._models))
        in_use = self.tr("(in use)")
        names = shown_names(self._models)
        for row, (model, shown) in enumerate(zip(self._models, names, strict=True)):
            name = f"{shown}  {in_use}" if model.key == self._current else shown
            size = format_size(model.size_bytes) if model.size_bytes else ""
            quant = model.quantization if not model.is_remote else self._remote_kind(model)
            for column, text in enumerate((name, size, quant, model.key)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self._update_buttons()

    def _remote_kind(self, model: RegisteredModel) -> str:
        """ "remote", and where its key is kept (a keyring that refused means the file)."""
        if model.key_storage == KeyStorage.KEYRING:
            return self.tr("remote, key in the keyring")
        if model.key_storage == KeyStorage.FILE:
            return self.tr("remote, key in settings.json")
        return self.tr("remote")

    def _update_buttons(self) -> None:
        chosen = self._selected() is not None
        self.use_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)

    def _selected(self) -> RegisteredModel | None:
        rows = self.table.selectionModel().selectedRows()
        return self._models[rows[0].row()] if rows else None

    def _use_selected(self) -> None:
        model = self._selected()
        if model is not None:
            self.model_chosen.emit(model)
            self.accept()

    def _remove_selected(self) -> None:
        model = self._selected()
        if model is None:
            return
        if not self._loaded or model.key != self._loaded:
            self._remove(model)
            return
        box = QMessageBox(self)
        box.setObjectName("removeLoadedBox")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Remove the model in use?"))
        box.setText(
            self.tr("%1 is the model in use. Remove it from the list and unload it?").replace(
                "%1", model.name
            )
        )
        box.setInformativeText(self.tr("The file itself is not deleted."))
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.finished.connect(
            lambda _result: self._remove_loaded(model, box.standardButton(box.clickedButton()))
        )
        self.confirm_box = box
        box.open()

    def _remove_loaded(self, model: RegisteredModel, answer: QMessageBox.StandardButton) -> None:
        self.confirm_box = None
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._loaded = ""
        self._current = ""
        self.unload_requested.emit()
        self._remove(model)

    def _remove(self, model: RegisteredModel) -> None:
        self._models.remove(model)
        self.model_removed.emit(model.key)
        self._fill()

    def _add_remote(self, model: RegisteredModel) -> None:
        self.model_chosen.emit(model)
        self.accept()

    def done(self, result: int) -> None:
        self.remote.cancel()  # a connection test still waiting is of no use any more
        super().done(result)
