"""Conversations in files and the trash: export (Markdown or JSON), import (JSON) and
the "Recently deleted" list with restore. Internal.

The file dialogs are asked through :meth:`ConversationFiles.ask_save_path` and
:meth:`ConversationFiles.ask_open_path`, so tests can answer them.
"""

from __future__ import annotations

import re
from pathlib import Path

from bllossom_core.errors import BllossomError, DiskFullError, InputError
from desktop._window_conversations import ConversationActions
from desktop.errors import show_error
from desktop.qt import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    Qt,
    QVBoxLayout,
    QWidget,
)
from desktop.services import TRASH_KEEP_DAYS
from desktop.sidebar import ConversationEntry

STATUS_MS = 6000
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def export_name(title: str, fallback: str) -> str:
    """A file name (without suffix) made from a conversation title."""
    name = _UNSAFE_NAME.sub(" ", title).strip(" .")[:60].strip()
    return name or fallback


class RecentlyDeletedDialog(QDialog):
    """The trash: pick conversations and restore them."""

    def __init__(self, entries: list[ConversationEntry], parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("recentlyDeletedDialog")
        self.setWindowTitle(self.tr("Recently deleted"))
        self.resize(420, 360)
        layout = QVBoxLayout(self)
        self.explanation = QLabel(
            self.tr(
                "Deleted conversations are kept for %1 days, then erased. Choose the ones "
                "to bring back, then press Restore."
            ).replace("%1", str(TRASH_KEEP_DAYS)),
            self,
        )
        self.explanation.setWordWrap(True)
        layout.addWidget(self.explanation)
        self.list = QListWidget(self)
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        for entry in entries:
            item = QListWidgetItem(entry.title or self.tr("Untitled conversation"))
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            self.list.addItem(item)
        layout.addWidget(self.list)
        self.empty_label = QLabel(self.tr("The trash is empty."), self)
        self.empty_label.setVisible(not entries)
        layout.addWidget(self.empty_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.restore_button = QPushButton(self.tr("Restore"), self)
        self.buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.list.itemSelectionChanged.connect(self._update_button)
        self._update_button()

    def chosen_ids(self) -> list[int]:
        return [int(item.data(Qt.ItemDataRole.UserRole)) for item in self.list.selectedItems()]

    def remove_chosen(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.empty_label.setVisible(self.list.count() == 0)

    def _update_button(self) -> None:
        self.restore_button.setEnabled(bool(self.list.selectedItems()))


class ConversationFiles(ConversationActions):
    # ------------------------------------------------------------------ file dialogs
    def ask_save_path(self, title: str, suggested: str) -> Path | None:
        """Where to export; the file type picks the format (``.md`` or ``.json``).

        Replacing an existing file has been confirmed by the user when a path is returned.
        """
        markdown, json = self.tr("Markdown (*.md)"), self.tr("JSON (*.json)")
        path, chosen = QFileDialog.getSaveFileName(
            self, title, str(Path.home() / suggested), f"{markdown};;{json}"
        )
        if not path:
            return None
        target = Path(path)
        if target.suffix.lower() not in (".md", ".markdown", ".json"):
            # The dialog confirmed replacing the name typed, not this one: ask again.
            target = target.with_name(target.name + (".json" if chosen == json else ".md"))
            if target.exists() and not self._confirm_replace(target):
                return None
        return target

    def _confirm_replace(self, target: Path) -> bool:
        answer = QMessageBox.question(
            self,
            self.tr("Replace the file?"),
            self.tr("%1 already exists. Replace it?").replace("%1", str(target)),
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_open_path(self, title: str) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(
            self, title, str(Path.home()), self.tr("Bllossom export (*.json)")
        )
        return Path(path) if path else None

    # ------------------------------------------------------------------ export, import
    def export_conversation(self) -> None:
        if self.conversation_id is None:
            self.status.showMessage(self.tr("Open a conversation to export it."), STATUS_MS)
            return
        conversation_id = self.conversation_id
        title = self._guard(lambda: self.services.conversation(conversation_id).title) or ""
        path = self.ask_save_path(
            self.tr("Export conversation"), export_name(title, self.tr("conversation")) + ".md"
        )
        if path is not None:
            self._export(path, [conversation_id])

    def export_all(self) -> None:
        path = self.ask_save_path(
            self.tr("Export all conversations"), self.tr("bllossom-conversations") + ".json"
        )
        if path is not None:
            self._export(path, None)

    def _export(self, path: Path, conversation_ids: list[int] | None) -> None:
        try:
            # ask_save_path has had the user confirm replacing an existing file.
            written = self.services.export_file(path, conversation_ids, overwrite=True)
        except BllossomError as error:
            # A full disk keeps its own advice; otherwise the chosen folder is the issue.
            advice = (
                None
                if isinstance(error, DiskFullError)
                else self.tr("Choose a folder you can write to, then export again.")
            )
            show_error(self, error, self.tr("The export could not be written."), advice)
            return
        self.status.showMessage(self.tr("Exported to %1").replace("%1", str(written)), 8000)

    def import_conversations(self) -> None:
        path = self.ask_open_path(self.tr("Import conversations"))
        if path is None:
            return
        try:
            imported = self.services.import_file(path)
        except InputError as error:  # not an export, damaged, or unreadable
            show_error(
                self,
                error,
                self.tr("The file could not be imported."),
                self.tr("Choose a .json file exported by Bllossom."),
            )
            return
        except BllossomError as error:  # the store could not save them
            show_error(self, error)
            return
        self.refresh_conversations()
        if imported and not self.busy:
            self.open_conversation(imported[0])
        self.status.showMessage(
            self.tr("Imported %1 conversation(s).").replace("%1", str(len(imported))), STATUS_MS
        )

    # ------------------------------------------------------------------ trash
    def show_recently_deleted(self) -> None:
        entries = self._guard(self.services.deleted_conversations)
        if entries is None:
            return
        dialog = RecentlyDeletedDialog(entries, self)
        dialog.restore_button.clicked.connect(lambda: self._restore_from(dialog))
        dialog.open()

    def _restore_from(self, dialog: RecentlyDeletedDialog) -> None:
        for conversation_id in dialog.chosen_ids():
            self._restore_one(conversation_id)
        dialog.remove_chosen()
        self.refresh_conversations()

    def _restore_one(self, conversation_id: int) -> None:
        self._guard(lambda: self.services.restore(conversation_id))
