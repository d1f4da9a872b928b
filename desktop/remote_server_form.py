"""Adding a remote OpenAI-compatible server: its address and key, a connection test off
the GUI thread, and the models its ``/v1/models`` lists to choose from.

"Test connection" asks the server for its models; "Add and use this server" runs the
same test first (unless it just passed for this address and key) and adds the server
only once it answered. The result is shown in the form, worded by the error's code
(:func:`desktop.errors.connection_failure`). Under the key, the form says where a key
will be kept: the system keyring, or (none found) the settings file only the user can
read (:mod:`bllossom_core.api_keys`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from bllossom_core import api_keys
from bllossom_core.errors import BllossomError
from bllossom_core.remote import RemoteEngine
from bllossom_core.remote_protocol import Endpoint
from desktop.errors import connection_failure, error_detail
from desktop.i18n import is_language_change
from desktop.ops import Op, OpContext, OpRunner
from desktop.qt import (
    QComboBox,
    QCoreApplication,
    QEvent,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.settings import RegisteredModel

translate = QCoreApplication.translate

CONNECT_TIMEOUT_S = 8.0
"""A test waits this long for a server that does not answer (then says so)."""
_TEST_READ_TIMEOUT_S = 30.0


def list_server_models(url: str, key: str, ctx: OpContext) -> list[str]:
    """The connection test (runs in an operation): the model ids ``url`` offers."""
    engine = RemoteEngine(
        url, key or None, connect_timeout_s=CONNECT_TIMEOUT_S, read_timeout_s=_TEST_READ_TIMEOUT_S
    )
    return engine.list_models(ctx.cancel)


def key_storage_note(keyring: bool) -> str:
    """Where an API key the user types is kept (said beside every API key field)."""
    if keyring:
        return translate("KeyStorage", "The key is saved in the system keyring.")
    return translate(
        "KeyStorage",
        "No system keyring found: the key is saved in a file readable only by you "
        "(settings.json, unencrypted).",
    )


@dataclass(frozen=True)
class TestState:
    """What the status line says: ``kind`` is "", "testing", "connected" or "failed"."""

    kind: str = ""
    address: str = ""
    models: int = 0
    error: BaseException | None = None


class RemoteServerForm(QWidget):
    added = Signal(object)
    """A :class:`RegisteredModel` for the server, which answered its connection test."""

    def __init__(self, ops: OpRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ops = ops
        self._op: Op[list[str]] | None = None
        self._tested: tuple[str, str] | None = None
        """The (address, key) the last successful test was for."""
        self.state = TestState()
        self._keyring = api_keys.keyring_available()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(self)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        layout.addWidget(self.title)
        form = QFormLayout()
        self.url_label, self.key_label, self.model_label = QLabel(self), QLabel(self), QLabel(self)
        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("http://localhost:8080/v1")
        self.key_edit = QLineEdit(self)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_note = QLabel(self)
        self.key_note.setObjectName("keyStorageNote")
        self.key_note.setWordWrap(True)
        self.key_note.setEnabled(False)  # the palette's secondary text colour
        self.model_combo = QComboBox(self)
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        form.addRow(self.url_label, self.url_edit)
        form.addRow(self.key_label, self.key_edit)
        form.addRow("", self.key_note)
        form.addRow(self.model_label, self.model_combo)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.test_button = QPushButton(self)
        self.add_button = QPushButton(self)
        row.addWidget(self.test_button)
        row.addStretch(1)
        row.addWidget(self.add_button)
        layout.addLayout(row)
        self.status = QLabel(self)
        self.status.setObjectName("connectionStatus")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.test_button.clicked.connect(lambda: self.test_connection())
        self.add_button.clicked.connect(self.add)
        self.url_edit.textEdited.connect(self._changed)
        self.key_edit.textEdited.connect(self._changed)
        self.retranslate()

    # ------------------------------------------------------------------ texts
    def retranslate(self) -> None:
        self.title.setText(self.tr("Remote server (OpenAI-compatible)"))
        self.url_label.setText(self.tr("Base URL"))
        self.key_label.setText(self.tr("API key"))
        self.model_label.setText(self.tr("Model"))
        self.key_edit.setPlaceholderText(self.tr("optional"))
        line = self.model_combo.lineEdit()
        if line is not None:
            line.setPlaceholderText(self.tr("test the connection to list them"))
        note = key_storage_note(self._keyring)
        self.key_note.setText(note)
        self.key_edit.setToolTip(note)
        self.test_button.setText(self.tr("Test connection"))
        self.add_button.setText(self.tr("Add and use this server"))
        self._show_state()

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def _show_state(self, state: TestState | None = None) -> None:
        if state is not None:
            self.state = state
        state = self.state
        if state.kind == "testing":
            text = html.escape(self.tr("Connecting to %1…").replace("%1", state.address))
        elif state.kind == "connected" and state.models == 0:
            text = "✓ " + html.escape(
                self.tr("Connected. The server serves one model and does not name it.")
            )
        elif state.kind == "connected" and state.models == 1:
            text = "✓ " + html.escape(self.tr("Connected. The server offers 1 model."))
        elif state.kind == "connected":
            offers = self.tr("Connected. The server offers %1 models: choose one above.")
            text = "✓ " + html.escape(offers.replace("%1", str(state.models)))
        elif state.error is not None:
            headline = html.escape(connection_failure(state.error, state.address))
            text = f"<b>✗ {headline}</b><br>{html.escape(error_detail(state.error))}"
        else:
            text = ""
        self.status.setText(text)
        self.status.setVisible(bool(text))

    # ------------------------------------------------------------------ testing
    @property
    def testing(self) -> bool:
        return self._op is not None

    def test_connection(self, then_add: bool = False) -> None:
        """Ask the server for its models off the GUI thread; ``then_add``: add the server
        when it answers."""
        url, key = self.url_edit.text().strip(), self.key_edit.text().strip()
        if not url:
            self.url_edit.setFocus()
            return
        try:
            address = Endpoint.parse(url).address
        except BllossomError as error:
            self._show_state(TestState("failed", url, error=error))
            return
        self.cancel()
        self._show_state(TestState("testing", address))
        self.test_button.setEnabled(False)
        self.add_button.setEnabled(False)

        def succeeded(models: list[str]) -> None:
            if self._op is not op:
                return  # cancelled or replaced by a newer test
            self._end_test()
            self._tested = (url, key)
            self._offer(models)
            self._show_state(TestState("connected", address, models=len(models)))
            if then_add:
                self.add()

        def failed(error: BaseException) -> None:
            if self._op is not op:
                return
            self._end_test()
            self._show_state(TestState("failed", address, error=error))

        op = self._ops.run(
            "test remote server",
            lambda ctx: list_server_models(url, key, ctx),
            succeeded,
            failed,
        )
        self._op = op

    def cancel(self) -> None:
        """Stop a test still waiting for the server (its result is then ignored)."""
        if self._op is not None:
            self._op.cancel()
            self._end_test()

    def _end_test(self) -> None:
        self._op = None
        self.test_button.setEnabled(True)
        self.add_button.setEnabled(True)

    def _offer(self, models: list[str]) -> None:
        typed = self.model_combo.currentText().strip()
        self.model_combo.clear()
        self.model_combo.addItems(models)
        if typed and typed in models:
            self.model_combo.setCurrentText(typed)
        elif models:
            self.model_combo.setCurrentIndex(0)

    def _changed(self) -> None:
        self._tested = None
        if self.state.kind != "testing":
            self._show_state(TestState())

    # ------------------------------------------------------------------ adding
    def add(self) -> None:
        url, key = self.url_edit.text().strip(), self.key_edit.text().strip()
        if not url:
            self.url_edit.setFocus()
            return
        if self._tested != (url, key):
            self.test_connection(then_add=True)
            return
        model = self.model_combo.currentText().strip()
        self.added.emit(
            RegisteredModel(name=model or url, base_url=url, api_key=key, remote_model=model)
        )


__all__ = ["CONNECT_TIMEOUT_S", "RemoteServerForm", "list_server_models"]
