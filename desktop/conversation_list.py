"""The conversations list: listing, search, rename, delete and undo, all read and
written off the GUI thread. Opening a conversation is asked of the chat controller
through :attr:`ConversationList.open_requested`."""

from __future__ import annotations

from collections.abc import Callable

from bllossom_core.store import ConversationStore
from desktop.context import AppContext
from desktop.ops import OpContext
from desktop.qt import QObject, Signal
from desktop.sidebar import ConversationEntry, SearchEntry, Sidebar


def list_entries(store: ConversationStore) -> list[ConversationEntry]:
    return [
        ConversationEntry(c.id, c.title, c.updated_at, c.imported)
        for c in store.list_conversations()
    ]


def search_entries(store: ConversationStore, query: str) -> list[SearchEntry]:
    return [
        SearchEntry(h.conversation_id, h.conversation_title, h.message_id, h.excerpt, h.highlights)
        for h in store.search(query)
    ]


class ConversationList(QObject):
    open_requested = Signal(int, object)
    """``(conversation_id, message_id or None)``: show it (scrolled to that message)."""
    new_requested = Signal()
    deleted = Signal(int)
    """A conversation went to the trash (the chat page may be showing it)."""
    export_requested = Signal(int)
    """Export this conversation (the window's FileActions does it)."""

    def __init__(
        self,
        context: AppContext,
        sidebar: Sidebar,
        is_protected: Callable[[int], bool] = lambda _cid: False,
    ) -> None:
        super().__init__(context.window)
        self._context = context
        self.sidebar = sidebar
        self._is_protected = is_protected
        """True for a conversation that must not be deleted now (a reply is being written)."""
        self.current_id: int | None = None
        self._shown_when_deleted: set[int] = set()
        """Deleted conversations that were open: Undo opens them again."""
        self._search_sequence = 0
        sidebar.new_requested.connect(self.new_requested)
        sidebar.conversation_selected.connect(lambda cid: self.open_requested.emit(cid, None))
        sidebar.search_hit_selected.connect(self.open_requested.emit)
        sidebar.rename_requested.connect(self.rename)
        sidebar.delete_requested.connect(self.delete)
        sidebar.export_requested.connect(self.export_requested)
        sidebar.undo_delete_requested.connect(self.restore)
        sidebar.search_changed.connect(self.search)

    def set_current(self, conversation_id: int | None) -> None:
        self.current_id = conversation_id
        self.refresh()

    def refresh(self) -> None:
        if self.sidebar.searching():
            self.search(self.sidebar.query)
            return
        store = self._context.store
        self._context.ops.run(
            "list conversations",
            lambda _ctx: list_entries(store),
            lambda entries: self.sidebar.set_conversations(entries, self.current_id),
        )

    def search(self, query: str) -> None:
        if not query:
            self.refresh()
            return
        self._search_sequence += 1
        sequence = self._search_sequence
        store = self._context.store

        def show(hits: list[SearchEntry]) -> None:
            # Typing runs several searches; only the newest one's results are shown.
            if sequence == self._search_sequence and self.sidebar.query == query:
                self.sidebar.set_search_results(hits)

        self._context.ops.run("search", lambda _ctx: search_entries(store, query), show)

    def rename(self, conversation_id: int, title: str) -> None:
        store = self._context.store
        self._context.ops.run(
            "rename",
            lambda _ctx: store.rename_conversation(conversation_id, title),
            lambda _conversation: self.refresh(),
        )

    def delete(self, conversation_id: int) -> None:
        if self._is_protected(conversation_id):
            self.sidebar.undo_bar.hide()
            self._context.status.showMessage(
                self.tr("Stop the reply before deleting this conversation."), 6000
            )
            return
        store = self._context.store
        if conversation_id == self.current_id:
            self._shown_when_deleted.add(conversation_id)

        def done(_result: None) -> None:
            self.deleted.emit(conversation_id)
            self.refresh()

        self._context.ops.run(
            "delete", lambda _ctx: store.delete_conversation(conversation_id), done
        )

    def restore(self, conversation_id: int) -> None:
        store = self._context.store

        def restore(_ctx: OpContext) -> None:
            store.restore_conversation(conversation_id)

        def restored(_result: None) -> None:
            self.refresh()
            if conversation_id in self._shown_when_deleted:
                self._shown_when_deleted.discard(conversation_id)
                self.open_requested.emit(conversation_id, None)

        self._context.ops.run("restore", restore, restored)
