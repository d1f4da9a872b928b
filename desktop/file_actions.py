"""Conversations in files and the trash: export (Markdown or JSON), import (JSON) and
the "Recently deleted" list with restore; every file and store call runs off the GUI
thread.

The file dialogs are asked through :meth:`FileActions.ask_save_path` and
:meth:`FileActions.ask_open_path`, so tests can answer them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from bllossom_core.errors import BllossomError, ErrorCode, InputError
from desktop.context import AppContext
from desktop.errors import show_error
from desktop.i18n import resolve_language
from desktop.ops import OpContext
from desktop.qt import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QObject,
    QPushButton,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.sidebar import ConversationEntry

TRASH_KEEP_DAYS = 30
"""Deleted conversations stay restorable this long; older ones are erased at start."""
log = logging.getLogger(__name__)
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


def read_export(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path} is not a text file.",
            hint="Choose a .json file exported by Bllossom.",
            path=path,
            code=ErrorCode.IMPORT_INVALID,
        ) from error
    except OSError as error:
        raise InputError(
            f"{path} could not be read: {error.strerror}.",
            hint="Check that the file exists and that you may read it.",
            path=path,
            code=ErrorCode.FILE_UNREADABLE,
        ) from error


class FileActions(QObject):
    imported = Signal(int)
    """The first conversation of an import, to show it."""
    restored = Signal()
    """Conversations came back from the trash (the list should be refreshed)."""

    def __init__(self, context: AppContext, current_id: Callable[[], int | None]) -> None:
        super().__init__(context.window)
        self._context = context
        self._current_id = current_id

    # ------------------------------------------------------------------ file dialogs
    def ask_save_path(self, title: str, suggested: str) -> Path | None:
        """Where to export; the file type picks the format (``.md`` or ``.json``).

        Replacing an existing file has been confirmed by the user when a path is returned.
        """
        markdown, json = self.tr("Markdown (*.md)"), self.tr("JSON (*.json)")
        path, chosen = QFileDialog.getSaveFileName(
            self._context.window, title, str(Path.home() / suggested), f"{markdown};;{json}"
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
            self._context.window,
            self.tr("Replace the file?"),
            self.tr("%1 already exists. Replace it?").replace("%1", str(target)),
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_open_path(self, title: str) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(
            self._context.window, title, str(Path.home()), self.tr("Bllossom export (*.json)")
        )
        return Path(path) if path else None

    # ------------------------------------------------------------------ export, import
    def export_conversation(self) -> None:
        """File › Export conversation: the one shown."""
        conversation_id = self._current_id()
        if conversation_id is None:
            self._context.status.showMessage(
                self.tr("Open a conversation to export it."), STATUS_MS
            )
            return
        self.export_conversation_by_id(conversation_id)

    def export_conversation_by_id(self, conversation_id: int) -> None:
        """Export one conversation (the sidebar's right-click menu names it)."""
        store = self._context.store
        self._context.ops.run(
            "conversation title",
            lambda _ctx: store.get_conversation(conversation_id).title,
            lambda title: self._export_as(title, conversation_id),
        )

    def _export_as(self, title: str, conversation_id: int) -> None:
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
        store = self._context.store

        def failed(error: BaseException) -> None:
            # A full disk keeps its own advice; otherwise the chosen folder is the issue.
            disk_full = isinstance(error, BllossomError) and error.code is ErrorCode.DISK_FULL
            advice = (
                None
                if disk_full
                else self.tr("Choose a folder you can write to, then export again.")
            )
            show_error(
                self._context.window, error, self.tr("The export could not be written."), advice
            )

        def written(target: Path) -> None:
            self._context.status.showMessage(
                self.tr("Exported to %1").replace("%1", str(target)), 8000
            )

        # Headings in the UI's language; ask_save_path had the user confirm replacing.
        language = resolve_language(self._context.settings.language)
        self._context.ops.run(
            "export",
            lambda _ctx: store.export_file(
                path, conversation_ids, overwrite=True, language=language
            ),
            written,
            failed,
        )

    def import_conversations(self) -> None:
        path = self.ask_open_path(self.tr("Import conversations"))
        if path is None:
            return
        store = self._context.store

        def failed(error: BaseException) -> None:
            if isinstance(error, InputError):  # not an export, damaged, or unreadable
                show_error(
                    self._context.window,
                    error,
                    self.tr("The file could not be imported."),
                    self.tr("Choose a .json file exported by Bllossom."),
                )
            else:
                self._context.show_error(error)

        def done(imported: list[int]) -> None:
            self.restored.emit()
            if imported:
                self.imported.emit(imported[0])
            self._context.status.showMessage(
                self.tr("Imported %1 conversation(s).").replace("%1", str(len(imported))),
                STATUS_MS,
            )

        self._context.ops.run(
            "import", lambda _ctx: store.import_json(read_export(path)), done, failed
        )

    # ------------------------------------------------------------------ trash
    def show_recently_deleted(self) -> None:
        store = self._context.store
        self._context.ops.run(
            "list trash",
            lambda _ctx: [
                ConversationEntry(c.id, c.title) for c in store.list_conversations(deleted=True)
            ],
            self._show_trash,
        )

    def _show_trash(self, entries: list[ConversationEntry]) -> None:
        dialog = RecentlyDeletedDialog(entries, self._context.window)
        dialog.restore_button.clicked.connect(lambda: self._restore_from(dialog))
        dialog.open()

    def _restore_from(self, dialog: RecentlyDeletedDialog) -> None:
        chosen = dialog.chosen_ids()
        store = self._context.store

        def restore(_ctx: OpContext) -> None:
            for conversation_id in chosen:
                store.restore_conversation(conversation_id)

        dialog.remove_chosen()
        self._context.ops.run("restore", restore, lambda _result: self.restored.emit())

    def purge_old_trash(self) -> None:
        """Housekeeping: erase conversations in the trash for over :data:`TRASH_KEEP_DAYS`."""
        store = self._context.store
        self._context.ops.run(
            "purge trash",
            lambda _ctx: store.purge_deleted(TRASH_KEEP_DAYS * 24 * 3600.0),
            on_failure=lambda error: log.warning("could not empty the old trash: %s", error),
        )
