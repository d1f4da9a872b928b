"""Sending and streaming: the question is saved at once, the reply is written by a
worker thread into the store and shown piece by piece. Internal."""

from __future__ import annotations

from bllossom_core.errors import BllossomError
from bllossom_core.store import ReplyWriter
from bllossom_core.types import ChatMessage
from desktop._window_files import ConversationFiles
from desktop.errors import show_error
from desktop.qt import QTimer, Slot
from desktop.services import shown_message
from desktop.settings import NEW_CONVERSATION_KEY
from desktop.workers import GenerationOutcome, GenerationWorker


class GenerationController(ConversationFiles):
    # ------------------------------------------------------------------ sending
    def _on_send_button(self) -> None:
        if self.busy:
            self.stop_generation()
        else:
            self.chat.input.submit()

    def _on_escape(self) -> None:
        if self.busy:
            self.stop_generation()
        elif self.editing_message_id is not None:
            self.cancel_edit()

    @Slot(str)
    def send(self, text: str) -> None:
        if self.engine is None:
            self.chat.input.setPlainText(text)
            if self.loading_model is not None:
                # Sent as soon as the model is ready; the text stays editable meanwhile.
                self._send_when_loaded = True
                self.status.showMessage(
                    self.tr("The message will be sent when the model is ready.")
                )
            else:
                self.status.showMessage(
                    self.tr("Open a model first: File › Open a GGUF file…"), 8000
                )
            return
        try:
            if self.conversation_id is None:
                options = self.new_options
                conversation = self.services.create_conversation(
                    self.engine_model.key if self.engine_model else None,
                    options.template,
                    options.system_prompt or None,
                    options.settings,
                )
                self.settings.drafts.pop(NEW_CONVERSATION_KEY, None)
                self.conversation_id = conversation.id
                self.settings.last_conversation = str(conversation.id)
            if self.editing_message_id is not None:
                self.services.edit_user_message(self.editing_message_id, text)
            else:
                self.services.add_user_message(self.conversation_id, text)
        except BllossomError as error:
            self.chat.input.setPlainText(text)
            show_error(self, error)
            return
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.settings.drafts.pop(self._draft_key(), None)
        # The question shows at once; the reply starts in the next event-loop turn, and
        # the bookkeeping runs in turns of its own, so no single turn blocks for long.
        self.chat.set_generating(True)
        self.chat.view.set_messages(self.services.thread(self.conversation_id))
        conversation_id = self.conversation_id
        # Staggered, so that repaints and input are served between them.
        QTimer.singleShot(1, lambda: self._begin_reply(conversation_id))
        QTimer.singleShot(20, self.refresh_conversations)
        QTimer.singleShot(30, self._update_title)
        QTimer.singleShot(250, self._save_settings)

    def _begin_reply(self, conversation_id: int) -> None:
        if self._closing:  # the window closed in between: the question is saved, no reply
            return
        try:
            messages, writer = self.services.prepare_reply(conversation_id)
        except BllossomError as error:
            self.chat.set_generating(False)
            show_error(self, error)
            return
        self._start_generation(messages, writer)

    def regenerate(self, message_id: int) -> None:
        if self.busy or self.engine is None:
            if self.engine is None:
                self.status.showMessage(
                    self.tr("Open a model first: File › Open a GGUF file…"), 8000
                )
            return
        prepared = self._guard(lambda: self.services.prepare_regeneration(message_id))
        if prepared is not None:
            self._start_generation(*prepared)

    def start_edit(self, message_id: int) -> None:
        if self.busy:
            return
        widget = self.chat.view.widget_for(message_id)
        if widget is None:
            return
        self.editing_message_id = message_id
        self.chat.edit_banner.show()
        self.chat.input.setPlainText(widget.message.text)
        self.chat.input.setFocus()

    def cancel_edit(self) -> None:
        self.editing_message_id = None
        self.chat.edit_banner.hide()
        self.chat.input.clear()

    def _start_generation(self, messages: list[ChatMessage], writer: ReplyWriter) -> None:
        assert self.engine is not None and self.conversation_id is not None
        settings = self.services.conversation(self.conversation_id).settings
        self.writer = writer
        view = self.chat.view
        view.set_messages(self.services.thread(self.conversation_id))
        stream_widget = view.widget_for(writer.message_id)
        assert stream_widget is not None
        view.begin_stream(stream_widget)
        worker = GenerationWorker(self.engine, messages, settings, writer)
        worker.pieces.connect(self._on_pieces)
        self.generation = worker
        self.chat.set_generating(True)
        self.runner.start(worker, self._on_generation_finished, self._on_generation_failed)

    @Slot(str)
    def _on_pieces(self, text: str) -> None:
        self.chat.view.add_piece(text)

    def stop_generation(self) -> None:
        if self.generation is not None:
            self.generation.cancel.cancel()

    def _end_generation(self) -> None:
        self.chat.view.stop_stream()
        self.generation = None
        self.chat.set_generating(False)

    def _on_generation_finished(self, outcome: object) -> None:
        self.writer = None
        self._end_generation()
        assert isinstance(outcome, GenerationOutcome)
        if outcome.stats is not None:
            self.last_stats = outcome.stats
            self.status.set_stats(outcome.stats)
        self._show_final(outcome.message.id)

    def _on_generation_failed(self, error: BaseException) -> None:
        writer = self.writer
        self.writer = None
        self._end_generation()
        if writer is not None:
            self._show_final(writer.message_id)
        show_error(self, error)

    def _show_final(self, message_id: int) -> None:
        widget = self.chat.view.widget_for(message_id)
        if widget is not None:
            stored = self._guard(lambda: self.services.store.get_message(message_id))
            if stored is not None:
                widget.set_message(shown_message(stored))
        QTimer.singleShot(0, self.refresh_conversations)
