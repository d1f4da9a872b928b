"""Saved conversations (newest first), search with highlighted snippets, undo delete."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

from desktop.i18n import is_language_change
from desktop.qt import (
    QAbstractItemView,
    QColor,
    QDateTime,
    QEvent,
    QHBoxLayout,
    QKeyEvent,
    QKeySequence,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QLocale,
    QMenu,
    QModelIndex,
    QObject,
    QPainter,
    QPalette,
    QPersistentModelIndex,
    QPoint,
    QPushButton,
    QRect,
    QShortcut,
    QSize,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.theme import current_colors, style_clear_button

UNDO_SECONDS = 10
SEARCH_DELAY_MS = 150
ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
STAMP_ROLE = Qt.ItemDataRole.UserRole + 2
"""The muted second line of a conversation: when it was last used, and "imported"."""


@dataclass(frozen=True)
class ConversationEntry:
    id: int
    title: str
    updated_at: float = 0.0
    """Unix seconds; 0 when unknown (then no date is shown)."""
    imported: bool = False


def short_when(timestamp: float, now: float | None = None) -> str:
    """Today: the time; earlier: the date. In the UI language's format (QLocale)."""
    locale = QLocale()
    moment = QDateTime.fromSecsSinceEpoch(int(timestamp))
    today = QDateTime.fromSecsSinceEpoch(int(time.time() if now is None else now)).date()
    if moment.date() == today:
        return locale.toString(moment.time(), QLocale.FormatType.ShortFormat)
    return locale.toString(moment.date(), QLocale.FormatType.ShortFormat)


class EntryDelegate(QStyledItemDelegate):
    """Draws a conversation as its title with a small muted line (date, "imported")."""

    def _stamp(self, index: QModelIndex | QPersistentModelIndex) -> str:
        stamp = index.data(STAMP_ROLE)
        return stamp if isinstance(stamp, str) else ""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        size = super().sizeHint(option, index)
        if not self._stamp(index):
            return size
        return QSize(size.width(), size.height() + option.fontMetrics.height() + 2)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        stamp = self._stamp(index)
        if not stamp:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        title, opt.text = opt.text, ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        metrics = opt.fontMetrics
        area = opt.rect.adjusted(6, 3, -6, -3)
        line = metrics.height()
        painter.save()
        painter.setPen(opt.palette.color(role))
        painter.drawText(
            QRect(area.left(), area.top(), area.width(), line),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            metrics.elidedText(title, Qt.TextElideMode.ElideRight, area.width()),
        )
        if not selected:
            painter.setPen(QColor(current_colors().muted_text))
        small = opt.font
        small.setPointSizeF(max(6.0, small.pointSizeF() - 1))
        painter.setFont(small)
        painter.drawText(
            QRect(area.left(), area.top() + line + 2, area.width(), line),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            stamp,
        )
        painter.restore()


@dataclass(frozen=True)
class SearchEntry:
    conversation_id: int
    conversation_title: str
    message_id: int
    excerpt: str
    highlights: tuple[tuple[int, int], ...]


def highlighted_html(excerpt: str, highlights: tuple[tuple[int, int], ...], color: str) -> str:
    """Escape ``excerpt`` and wrap each highlighted range in a coloured span."""
    parts: list[str] = []
    position = 0
    for start, end in sorted(highlights):
        if start < position:
            continue
        parts.append(html.escape(excerpt[position:start]))
        match = html.escape(excerpt[start:end])
        parts.append(f'<span style="background-color: {color};"><b>{match}</b></span>')
        position = end
    parts.append(html.escape(excerpt[position:]))
    return "".join(parts)


class Sidebar(QWidget):
    conversation_selected = Signal(int)
    search_hit_selected = Signal(int, int)
    new_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    export_requested = Signal(int)
    """Export this conversation (through the window's FileActions)."""
    reveal_requested = Signal()
    """The sidebar is collapsed and something needs it (Ctrl+F): show it."""
    undo_delete_requested = Signal(int)
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.new_button = QPushButton(self)
        self.new_button.clicked.connect(self.new_requested)
        layout.addWidget(self.new_button)
        self.search_box = QLineEdit(self)
        self.search_box.setClearButtonEnabled(True)
        style_clear_button(self.search_box)
        layout.addWidget(self.search_box)
        self.list = QListWidget(self)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.list.setWordWrap(True)
        self.list.itemClicked.connect(self._on_item_activated)
        self.list.itemActivated.connect(self._on_item_activated)
        self.list.itemChanged.connect(self._on_item_renamed)
        self.list.setItemDelegate(EntryDelegate(self.list))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self.show_context_menu)
        self.context_menu = QMenu(self)
        self.rename_action = self.context_menu.addAction("", self.start_rename)
        self.export_action = self.context_menu.addAction("", self._export_current)
        self.context_menu.addSeparator()
        self.delete_action = self.context_menu.addAction("", self._delete_current)
        # Delete in the list (not while a title is being edited: the editor has the focus).
        self.delete_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        self.delete_shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        self.delete_shortcut.activated.connect(self._delete_current)
        self.search_box.installEventFilter(self)
        layout.addWidget(self.list, 1)
        actions = QHBoxLayout()
        self.rename_button = QPushButton(self)
        self.delete_button = QPushButton(self)
        self.rename_button.clicked.connect(self.start_rename)
        self.delete_button.clicked.connect(self._delete_current)
        actions.addWidget(self.rename_button)
        actions.addWidget(self.delete_button)
        layout.addLayout(actions)
        self.undo_bar = QWidget(self)
        undo_layout = QHBoxLayout(self.undo_bar)
        undo_layout.setContentsMargins(0, 0, 0, 0)
        self.undo_label = QLabel(self.undo_bar)
        self.undo_label.setWordWrap(True)
        self.undo_button = QPushButton(self.undo_bar)
        self.undo_button.clicked.connect(self._undo)
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_bar.hide()
        layout.addWidget(self.undo_bar)
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self.undo_bar.hide)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.search_changed.emit(self.query))
        self.search_box.textChanged.connect(lambda _text: self._search_timer.start())
        self._deleted_id: int | None = None
        self._current_id: int | None = None
        self._filling = False
        self.retranslate()

    @property
    def query(self) -> str:
        return self.search_box.text().strip()

    def retranslate(self) -> None:
        self.new_button.setText(self.tr("New chat"))
        self.new_button.setToolTip(self.tr("Start a new conversation (Ctrl+N)"))
        self.search_box.setPlaceholderText(self.tr("Search conversations (Ctrl+F)"))
        self.rename_button.setText(self.tr("Rename"))
        self.delete_button.setText(self.tr("Delete"))
        self.undo_label.setText(self.tr("Conversation deleted."))
        self.undo_button.setText(self.tr("Undo"))
        self.rename_action.setText(self.tr("Rename"))
        self.export_action.setText(self.tr("Export…"))
        self.delete_action.setText(self.tr("Delete"))
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.imported_mark = self.tr("imported")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc in the search box clears the search (before the window's Esc shortcut)."""
        if (
            watched is self.search_box
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
            and self.search_box.text()
        ):
            if event.type() == QEvent.Type.ShortcutOverride:
                event.accept()  # the key goes to the box, not to "stop the reply"
                return True
            if event.type() == QEvent.Type.KeyPress:
                self.search_box.clear()
                return True
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        elif event.type() == QEvent.Type.PaletteChange:
            style_clear_button(self.search_box)  # the theme changed
        super().changeEvent(event)

    # ------------------------------------------------------------------ filling
    def set_conversations(self, entries: list[ConversationEntry], current: int | None) -> None:
        self._filling = True
        self._current_id = current
        self.list.clear()
        for entry in entries:
            item = QListWidgetItem(entry.title or self.tr("New chat"))
            item.setData(ID_ROLE, entry.id)
            item.setData(STAMP_ROLE, self._stamp(entry))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
            if entry.id == current:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        self._filling = False
        self._update_buttons()

    def set_search_results(self, hits: list[SearchEntry]) -> None:
        self._filling = True
        self.list.clear()
        color = current_colors().highlight
        for hit in hits:
            item = QListWidgetItem()
            item.setData(ID_ROLE, hit.conversation_id)
            item.setData(MESSAGE_ROLE, hit.message_id)
            label = QLabel(
                f"<b>{html.escape(hit.conversation_title)}</b><br>"
                + highlighted_html(hit.excerpt, hit.highlights, color)
            )
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setContentsMargins(4, 4, 4, 4)
            item.setSizeHint(label.sizeHint())
            self.list.addItem(item)
            self.list.setItemWidget(item, label)
        if not hits:
            empty = QListWidgetItem(self.tr("No matches"))
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(empty)
        self._filling = False
        self._update_buttons()

    def _stamp(self, entry: ConversationEntry) -> str:
        parts = [short_when(entry.updated_at)] if entry.updated_at else []
        if entry.imported:
            parts.append(self.imported_mark)
        return " · ".join(parts)

    def searching(self) -> bool:
        return bool(self.query)

    # ------------------------------------------------------------------ actions
    def _on_item_activated(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(ID_ROLE)
        if conversation_id is None:
            return
        message_id = item.data(MESSAGE_ROLE)
        if message_id is not None:
            self.search_hit_selected.emit(int(conversation_id), int(message_id))
        else:
            self._current_id = int(conversation_id)
            self.conversation_selected.emit(int(conversation_id))
        self._update_buttons()

    def _on_item_renamed(self, item: QListWidgetItem) -> None:
        if self._filling or item.data(MESSAGE_ROLE) is not None or item.data(ID_ROLE) is None:
            return
        title = item.text().strip()
        if title:
            self.rename_requested.emit(int(item.data(ID_ROLE)), title)

    def start_rename(self) -> None:
        item = self.list.currentItem()
        if item is not None and item.data(MESSAGE_ROLE) is None and item.data(ID_ROLE) is not None:
            self.list.editItem(item)

    def show_context_menu(self, position: QPoint) -> None:
        item = self.list.itemAt(position)
        if item is None or item.data(ID_ROLE) is None:
            return
        self.list.setCurrentItem(item)
        in_list = item.data(MESSAGE_ROLE) is None
        self.rename_action.setEnabled(in_list)
        self.context_menu.popup(self.list.viewport().mapToGlobal(position))

    def _export_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and item.data(ID_ROLE) is not None:
            self.export_requested.emit(int(item.data(ID_ROLE)))

    def _delete_current(self) -> None:
        item = self.list.currentItem()
        if item is None or item.data(ID_ROLE) is None:
            return
        self._deleted_id = int(item.data(ID_ROLE))
        self.delete_requested.emit(self._deleted_id)
        self.undo_bar.show()
        self._undo_timer.start()

    def _undo(self) -> None:
        self.undo_bar.hide()
        self._undo_timer.stop()
        if self._deleted_id is not None:
            self.undo_delete_requested.emit(self._deleted_id)
            self._deleted_id = None

    def _update_buttons(self) -> None:
        has_item = self.list.currentItem() is not None and not self.searching()
        self.rename_button.setEnabled(has_item)
        self.delete_button.setEnabled(has_item)

    def focus_search(self) -> None:
        if not self.isVisible():
            self.reveal_requested.emit()  # collapsed: the window shows it again first
        self.search_box.setFocus()
        self.search_box.selectAll()
