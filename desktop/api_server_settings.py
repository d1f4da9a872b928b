"""The "Local API server" part of the settings: the switch, port, key, other devices."""

from __future__ import annotations

from bllossom_core import api_keys
from desktop.api_server import ApiServerConfig, ApiServerSwitch, new_api_key
from desktop.i18n import is_language_change
from desktop.qt import (
    QApplication,
    QCheckBox,
    QEvent,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    Qt,
    QWidget,
)
from desktop.remote_server_form import key_storage_note
from desktop.theme import current_colors

FIRST_USER_PORT = 1024


class ApiServerSettingsBox(QGroupBox):
    """Edits the switch's settings; Apply starts, restarts or stops the server."""

    def __init__(self, switch: ApiServerSwitch, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._switch = switch
        self._keyring = api_keys.keyring_available()  # asked once, not on every keystroke
        config = switch.config
        form = QFormLayout(self)
        self.enabled_box = QCheckBox(self)
        self.enabled_box.setChecked(config.enabled)
        form.addRow(self.enabled_box)
        self.port_label = QLabel(self)
        self.port_spin = QSpinBox(self)
        self.port_spin.setRange(FIRST_USER_PORT, 65535)
        self.port_spin.setValue(config.port)
        form.addRow(self.port_label, self.port_spin)
        self.network_box = QCheckBox(self)
        self.network_box.setChecked(config.allow_network)
        form.addRow(self.network_box)
        self.key_label = QLabel(self)
        key_row = QHBoxLayout()
        self.key_edit = QLineEdit(config.api_key, self)
        # Shown as typed: it is this server's own key, to be copied into the clients.
        self.generate_button = QPushButton(self)
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.generate_button)
        form.addRow(self.key_label, key_row)
        self.key_note = QLabel(self)
        self.key_note.setWordWrap(True)
        form.addRow(self.key_note)
        self.state_label = QLabel(self)
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.state_label)
        buttons = QHBoxLayout()
        self.copy_button = QPushButton(self)
        self.apply_button = QPushButton(self)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.apply_button)
        form.addRow(buttons)
        muted = current_colors().muted_text
        self.key_note.setStyleSheet(f"color: {muted};")
        self.generate_button.clicked.connect(lambda: self.key_edit.setText(new_api_key()))
        self.network_box.toggled.connect(self._network_toggled)
        self.apply_button.clicked.connect(self.apply)
        self.copy_button.clicked.connect(self._copy_address)
        for signal in (self.enabled_box.toggled, self.network_box.toggled):
            signal.connect(self._update)
        self.key_edit.textChanged.connect(self._update)
        self.port_spin.valueChanged.connect(self._update)
        switch.state_changed.connect(self._update)
        self.retranslate()

    def config(self) -> ApiServerConfig:
        return ApiServerConfig(
            enabled=self.enabled_box.isChecked(),
            port=self.port_spin.value(),
            allow_network=self.network_box.isChecked(),
            api_key=self.key_edit.text().strip(),
        )

    def problem(self) -> str | None:
        """Why Apply is not possible now (other devices without a key)."""
        config = self.config()
        if config.enabled and config.allow_network and not config.api_key:
            return self.tr("Other devices need an API key: type one or press Generate.")
        return None

    def apply(self) -> None:
        if self.problem() is None:
            self._switch.apply(self.config())
            self._update()

    def _network_toggled(self, allowed: bool) -> None:
        if allowed and not self.key_edit.text().strip():
            self.key_edit.setText(new_api_key())  # never open to the network without one

    def _copy_address(self) -> None:
        url = self._switch.url
        clipboard = QApplication.clipboard()
        if url and clipboard is not None:
            clipboard.setText(url)

    def retranslate(self) -> None:
        self.setTitle(self.tr("Local API server"))
        self.enabled_box.setText(
            self.tr("Serve the loaded model to other programs (OpenAI-compatible API)")
        )
        self.port_label.setText(self.tr("Port"))
        self.network_box.setText(self.tr("Allow other devices on the network"))
        self.network_box.setToolTip(
            self.tr("Off: only programs on this computer can connect (127.0.0.1).")
        )
        self.key_label.setText(self.tr("API key"))
        self.key_edit.setPlaceholderText(self.tr("None (this computer only)"))
        self.generate_button.setText(self.tr("Generate"))
        self.copy_button.setText(self.tr("Copy address"))
        self.apply_button.setText(self.tr("Apply"))
        self._update()

    def _update(self) -> None:
        switch = self._switch
        problem = self.problem()
        changed = self.config() != switch.config
        if problem:
            state = problem
        elif changed:
            state = self.tr("Press Apply to use these settings.")
        elif switch.running:
            state = self.tr("Serving at %1").replace("%1", switch.url or "")
        elif switch.problem:
            state = self.tr("Not serving: %1").replace("%1", switch.problem)
        elif switch.config.enabled:
            state = self.tr("Starts when a model on this computer is loaded.")
        else:
            state = self.tr("Off.")
        self.state_label.setText(state)
        self.apply_button.setEnabled(problem is None and changed)
        self.copy_button.setEnabled(switch.running and not changed)
        self.key_note.setText(key_storage_note(self._keyring))

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)
