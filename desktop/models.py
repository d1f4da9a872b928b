"""The model list: registered GGUF files and remote endpoints, to switch between."""

from __future__ import annotations

from bllossom_core import human_size
from desktop.i18n import is_language_change
from desktop.qt import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QEvent,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.settings import RegisteredModel


class ModelsDialog(QDialog):
    model_chosen = Signal(object)
    """A :class:`RegisteredModel` to switch to."""
    model_removed = Signal(str)
    open_file_requested = Signal()

    def __init__(self, models: list[RegisteredModel], current: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.resize(760, 440)
        self._models = list(models)
        self._current = current
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 4, self)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.doubleClicked.connect(self._use_selected)
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
        self.remote_title = QLabel(self)
        font = self.remote_title.font()
        font.setBold(True)
        self.remote_title.setFont(font)
        layout.addWidget(self.remote_title)
        form = QFormLayout()
        self.url_label, self.key_label, self.name_label = QLabel(self), QLabel(self), QLabel(self)
        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("http://localhost:8080/v1")
        self.key_edit = QLineEdit(self)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.name_edit = QLineEdit(self)
        form.addRow(self.url_label, self.url_edit)
        form.addRow(self.key_label, self.key_edit)
        form.addRow(self.name_label, self.name_edit)
        layout.addLayout(form)
        self.add_remote_button = QPushButton(self)
        self.add_remote_button.clicked.connect(self._add_remote)
        layout.addWidget(self.add_remote_button)
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
        self.remote_title.setText(self.tr("Remote server (OpenAI-compatible)"))
        self.url_label.setText(self.tr("Base URL"))
        self.key_label.setText(self.tr("API key"))
        self.name_label.setText(self.tr("Model name"))
        self.key_edit.setPlaceholderText(self.tr("optional"))
        key_note = self.tr(
            "API keys are saved unencrypted in settings.json, readable only by your user account."
        )
        self.key_edit.setToolTip(key_note)
        self.key_label.setToolTip(key_note)
        self.add_remote_button.setText(self.tr("Add and use this server"))
        self._fill()

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def _fill(self) -> None:
        self.table.setRowCount(len(self._models))
        for row, model in enumerate(self._models):
            in_use = self.tr("(in use)")
            name = f"{model.name}  {in_use}" if model.key == self._current else model.name
            size = human_size(model.size_bytes) if model.size_bytes else ""
            quant = model.quantization if not model.is_remote else self.tr("remote")
            for column, text in enumerate((name, size, quant, model.key)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

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
        if model is not None:
            self._models.remove(model)
            self.model_removed.emit(model.key)
            self._fill()

    def _add_remote(self) -> None:
        url = self.url_edit.text().strip()
        if not url:
            self.url_edit.setFocus()
            return
        name = self.name_edit.text().strip()
        model = RegisteredModel(
            name=name or url, base_url=url, api_key=self.key_edit.text().strip(), remote_model=name
        )
        self.model_chosen.emit(model)
        self.accept()
