"""Pieces the settings dialogs share: the line that says what is wrong, and the
OK / Cancel / Restore defaults buttons."""

from __future__ import annotations

from collections.abc import Callable

from desktop.qt import QDialog, QDialogButtonBox, QLabel

PROBLEM_COLOR = "#c62828"


def problem_label(dialog: QDialog) -> QLabel:
    """A hidden red line for what is wrong with the values entered (shown when set)."""
    label = QLabel(dialog)
    label.setObjectName("settingsProblem")
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {PROBLEM_COLOR};")
    label.hide()
    return label


def settings_buttons(dialog: QDialog, restore_defaults: Callable[[], None]) -> QDialogButtonBox:
    """OK (accept), Cancel (reject) and Restore defaults (``restore_defaults``)."""
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok
        | QDialogButtonBox.StandardButton.Cancel
        | QDialogButtonBox.StandardButton.RestoreDefaults,
        dialog,
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
    restore.clicked.connect(restore_defaults)
    return buttons
