"""Conversation actions: open, create, rename, delete and undo, search, versions.
Internal."""

from __future__ import annotations

from bllossom_core.errors import BllossomError
from desktop._window_base import default_options
from desktop._window_models import ModelController
from desktop.errors import show_error
from desktop.qt import QApplication, QTimer


class ConversationActions(ModelController):
    # ------------------------------------------------------------------ conversations
    def refresh_conversations(self) -> None:
        if self.sidebar.searching():
            self._search(self.sidebar.query)
            return
        try:
            entries = self.services.conversations()
        except BllossomError as error:
            show_error(self, error)
            return
        self.sidebar.set_conversations(entries, self.conversation_id)

    def _open_initial_conversation(self) -> None:
        last = self.settings.last_conversation
        if last.isdigit():
            try:
                self.open_conversation(int(last))
                return
            except BllossomError:
                pass
        self.new_conversation()

    def new_conversation(self) -> None:
        if self.busy:
            return
        self.save_draft()
        self.conversation_id = None
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.new_options = default_options()
        self.chat.view.clear()
        self._load_draft()
        self.settings.last_conversation = ""
        self.refresh_conversations()
        self._update_title()
        self._update_page()
        self._ensure_template()
        self.chat.input.setFocus()

    def open_conversation(self, conversation_id: int) -> None:
        if self.busy and conversation_id != self.conversation_id:
            self.refresh_conversations()
            return
        self.save_draft()
        messages = self.services.thread(conversation_id)
        self.conversation_id = conversation_id
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.chat.view.set_messages(messages)
        self._load_draft()
        self.settings.last_conversation = str(conversation_id)
        self._update_title()
        self._update_page()
        if not self.sidebar.searching():
            self.sidebar.set_conversations(self.services.conversations(), conversation_id)
        self._ensure_template()

    def _open_search_hit(self, conversation_id: int, message_id: int) -> None:
        self.open_conversation(conversation_id)
        widget = self.chat.view.widget_for(message_id)
        if widget is not None:
            self.chat.view.follow_bottom = False
            QTimer.singleShot(0, lambda: self.chat.view.ensureWidgetVisible(widget))

    def _rename(self, conversation_id: int, title: str) -> None:
        self._guard(lambda: self.services.rename(conversation_id, title))
        self._update_title()
        QTimer.singleShot(0, self.refresh_conversations)

    def _delete(self, conversation_id: int) -> None:
        if self.busy and conversation_id == self.conversation_id:
            return
        self._guard(lambda: self.services.delete(conversation_id))
        if conversation_id == self.conversation_id:
            self.new_conversation()
        self.refresh_conversations()

    def _undo_delete(self, conversation_id: int) -> None:
        self._guard(lambda: self.services.restore(conversation_id))
        self.refresh_conversations()

    def _search(self, query: str) -> None:
        if not query:
            self.sidebar.set_conversations(self.services.conversations(), self.conversation_id)
            return
        try:
            hits = self.services.search(query)
        except BllossomError as error:
            show_error(self, error)
            return
        self.sidebar.set_search_results(hits)

    def _switch_version(self, message_id: int) -> None:
        if self.busy:
            return
        messages = self._guard(lambda: self.services.switch_version(message_id))
        if messages is not None:
            self.chat.view.set_messages(messages, scroll=False)

    def _copy(self, text: str) -> None:
        clipboard = QApplication.clipboard()
        clipboard.setText(text)
        self.status.showMessage(self.tr("Copied to the clipboard."), 3000)
