"""Where sending a message happens: the chat page over a core ChatSession.

Every rule about a conversation (context check before saving, unanswered questions,
versions, branches) is :class:`bllossom_core.session.ChatSession`'s; this controller
runs its operations off the GUI thread, streams the pieces into the chat view and keeps
the page's state (the shown conversation, the message being edited, the draft).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bllossom_core.errors import BllossomError, Cancelled
from bllossom_core.session import ChatSession, ConversationOptions, Reply, ReplyPiece
from bllossom_core.store import Message
from bllossom_core.templates import DEFAULT_SYSTEM_PROMPT
from bllossom_core.types import GenerationSettings, GenerationStats
from desktop.chat_page import ChatPage
from desktop.context import AppContext
from desktop.message_widget import ShownMessage
from desktop.model_manager import ModelManager
from desktop.ops import Op, OpContext
from desktop.qt import QObject, QTimer, Signal
from desktop.settings import NEW_CONVERSATION_KEY

log = logging.getLogger(__name__)
DRAFT_SAVE_DELAY_MS = 400


def default_options() -> ConversationOptions:
    return ConversationOptions(DEFAULT_SYSTEM_PROMPT, "auto", GenerationSettings())


def shown_message(message: Message) -> ShownMessage:
    return ShownMessage(
        id=message.id,
        role=message.role,
        text=message.text,
        sibling_index=message.sibling_index,
        sibling_count=message.sibling_count,
        sibling_ids=message.sibling_ids,
        complete=message.complete,
        error=message.error,
        created_at=message.created_at,
        stop_reason=message.stop_reason,
        thinking=message.thinking,
        thinking_seconds=message.thinking_seconds,
        dropped_messages=message.dropped_messages,
    )


@dataclass(frozen=True)
class _ReplyStarted:
    """First progress of a reply op: the question and the empty reply are stored."""

    message_id: int
    conversation_id: int
    thread: list[ShownMessage]
    title: str


_WAITING_FOR_API = object()
"""Progress of a reply op: the model is answering an API request; the reply waits."""


@dataclass(frozen=True)
class _ReplyEnded:
    message: Message | None
    stats: GenerationStats
    error: BaseException | None


@dataclass(frozen=True)
class _Opened:
    session: ChatSession
    thread: list[ShownMessage]
    title: str


class ChatController(QObject):
    conversation_changed = Signal(object)
    """The conversation shown (an id, or ``None`` for a new chat not yet saved)."""
    conversations_changed = Signal()
    """A conversation was added or retitled: the list should be refreshed."""
    busy_changed = Signal(bool)

    def __init__(self, context: AppContext, page: ChatPage, models: ModelManager) -> None:
        super().__init__(context.window)
        self._context = context
        self.page = page
        self._models = models
        self.session = ChatSession(context.store, options=default_options())
        self.editing_message_id: int | None = None
        self._edit_draft: str | None = None
        self._reply_op: Op[_ReplyEnded] | None = None
        self._summary_op: Op[int] | None = None
        self._queued_text: str | None = None
        self._open_sequence = 0
        self._shown_draft_key: str | None = None
        """Whose draft the input box holds (``None`` before the first conversation shows)."""
        self.last_stats: GenerationStats | None = None
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_SAVE_DELAY_MS)
        self._draft_timer.timeout.connect(self.save_draft)
        page.input.textChanged.connect(self._draft_timer.start)
        page.input.submitted.connect(self.send)
        page.send_button.clicked.connect(self._on_send_button)
        page.cancel_edit_button.clicked.connect(self.cancel_edit)
        page.view.edit_requested.connect(self.start_edit)
        page.view.regenerate_requested.connect(self.regenerate)
        page.view.version_requested.connect(self.switch_version)
        page.view.continue_requested.connect(self.continue_reply)
        page.view.summary_chat_requested.connect(self.new_from_summary)
        models.engine_changed.connect(self._on_engine_changed)
        models.loading_changed.connect(self._on_loading_changed)

    # ------------------------------------------------------------------ state
    @property
    def conversation_id(self) -> int | None:
        return self.session.conversation_id

    @property
    def busy(self) -> bool:
        """A reply is being written (or about to start): editing actions wait."""
        return self._reply_op is not None or self._summary_op is not None

    def options(self) -> ConversationOptions:
        return self.session.options

    # ------------------------------------------------------------------ opening
    def new(self, announce: bool = True) -> None:
        """Show a new, empty chat; ``announce`` says so when no model could answer it."""
        if self.busy:
            return
        self.save_draft()
        self._end_edit()
        self.session = self._session(None)
        self.page.view.clear()
        self._show_title("")
        self._load_draft()
        self._context.settings.last_conversation = ""
        self._context.status.set_stats(None)  # the numbers belonged to the previous chat
        self.conversation_changed.emit(None)
        self._models.ensure_template(self.session.options.template)
        self.page.input.setFocus()
        if announce and self._models.engine is None and self._models.loading is None:
            self._context.status.showMessage(self._no_model_text(), 8000)

    def _no_model_text(self) -> str:
        return self.tr("No model is loaded: open one with File › Models and remote servers…")

    def open(self, conversation_id: int, then_show: int | None = None) -> None:
        """Show a saved conversation (read off the GUI thread); ``then_show`` scrolls to a
        message, switching to its branch when it is not on the one shown."""
        if self.busy and conversation_id != self.conversation_id:
            return
        self._open_sequence += 1
        sequence = self._open_sequence

        def read(_ctx: OpContext) -> _Opened:
            session = self._session(conversation_id)
            if then_show is not None and then_show not in {m.id for m in session.thread()}:
                session.switch_version(then_show)
            thread = [shown_message(m) for m in session.thread()]
            return _Opened(session, thread, session.title)

        def show(opened: _Opened) -> None:
            if sequence != self._open_sequence or (self.busy and opened.session.conversation_id
                                                   != self.conversation_id):  # fmt: skip
                return  # the user opened another one meanwhile
            self.save_draft()
            self._end_edit()
            self.session = opened.session
            self._context.status.set_stats(None)  # the numbers belonged to the previous chat
            self.page.view.set_messages(opened.thread, scroll=then_show is None)
            self._show_title(opened.title)
            self._load_draft()
            self._context.settings.last_conversation = str(conversation_id)
            self.conversation_changed.emit(conversation_id)
            self._models.ensure_template(self.session.options.template)
            if then_show is not None:
                self._scroll_to(then_show)

        self._context.ops.run("open conversation", read, show)

    def _session(self, conversation_id: int | None) -> ChatSession:
        model = self._models.model
        return ChatSession(
            self._context.store,
            self._models.engine,
            conversation_id,
            options=default_options(),
            model_name=model.key if model else None,
        )

    def _scroll_to(self, message_id: int) -> None:
        view = self.page.view
        widget = view.widget_for(message_id)
        if widget is not None:
            view.follow_bottom = False
            QTimer.singleShot(0, lambda: view.ensureWidgetVisible(widget))

    def _show_title(self, title: str) -> None:
        self.page.title_label.setText(title or self.tr("New chat"))

    def retranslate(self) -> None:
        if self.conversation_id is None:
            self._show_title("")

    # ------------------------------------------------------------------ sending
    def _on_send_button(self) -> None:
        if self.busy:
            self.stop()
        else:
            self.page.input.submit()

    def send(self, text: str) -> None:
        if self.busy:
            self.page.input.setPlainText(text)
            return
        if self._models.engine is None or self._models.loading is not None:
            self.page.input.setPlainText(text)
            if self._models.loading is not None:
                # Sent as soon as the model being loaded is ready (never to the one it
                # replaces); the text stays editable meanwhile.
                self._queued_text = text
                self._context.status.showMessage(
                    self.tr("The message will be sent when the model is ready.")
                )
            else:
                self._context.status.showMessage(self._no_model_text(), 8000)
            return
        editing = self.editing_message_id
        session = self.session

        def start(ctx: OpContext) -> Reply:
            if editing is not None:
                return session.edit(editing, text, cancel=ctx.cancel)
            return session.ask(text, cancel=ctx.cancel)

        self._run_reply(start, restore_text=text)

    def regenerate(self, message_id: int) -> None:
        if not self._can_reply():
            return
        session = self.session
        self._run_reply(lambda ctx: session.regenerate(message_id, cancel=ctx.cancel))

    def _can_reply(self) -> bool:
        """No reply is running and a model is ready (else the status bar says so)."""
        if self.busy:
            return False
        if self._models.engine is None or self._models.loading is not None:
            self._context.status.showMessage(self._no_model_text(), 8000)
            return False
        return True

    def continue_reply(self, message_id: int) -> None:
        """Write more of a reply cut at the length limit, into the same message."""
        if not self._can_reply():
            return
        session = self.session
        self._run_reply(lambda ctx: session.continue_reply(message_id, cancel=ctx.cancel))

    def new_from_summary(self, _message_id: int) -> None:
        """A conversation that no longer fits goes on in a new chat, which starts from the
        model's summary of it (its system prompt)."""
        if not self._can_reply():
            return
        session = self.session
        self.page.set_generating(True)
        self.busy_changed.emit(True)
        self._context.status.showMessage(self.tr("Summarizing the conversation…"))

        def summarize(ctx: OpContext) -> int:
            return session.start_from_summary(session.summarize(cancel=ctx.cancel))

        def opened(conversation_id: int) -> None:
            self._summary_op = None
            self.page.set_generating(False)
            self.busy_changed.emit(False)
            self.conversations_changed.emit()
            self.open(conversation_id)
            self._context.status.showMessage(
                self.tr("A new chat starts from the summary (its system prompt, in the "
                        "conversation settings)."), 10000)  # fmt: skip

        def failed(error: BaseException) -> None:
            self._summary_op = None
            self.page.set_generating(False)
            self.busy_changed.emit(False)
            self._context.status.clearMessage()
            self._context.show_error(error)

        self._summary_op = self._context.ops.run("summary", summarize, opened, failed)

    def _run_reply(
        self, start: Callable[[OpContext], Reply], restore_text: str | None = None
    ) -> None:
        session = self.session
        self.page.set_generating(True)
        self.busy_changed.emit(True)

        def run(ctx: OpContext) -> _ReplyEnded:
            # The model may be shared with the local API server: wait for its reply.
            with self._context.engine_turn(ctx.cancel, lambda: ctx.report(_WAITING_FOR_API)):
                reply = start(ctx)  # nothing is stored if this raises
                thread = [shown_message(m) for m in session.thread()]
                ctx.report(_ReplyStarted(reply.message_id, reply.conversation_id, thread,
                                         session.title))  # fmt: skip
                try:
                    message = reply.run(ctx.report)
                except BllossomError as error:  # the partial reply is kept with its error
                    return _ReplyEnded(reply.message, reply.stats, error)
                return _ReplyEnded(message, reply.stats, None)

        started: list[_ReplyStarted] = []

        def progress(value: object) -> None:
            if value is _WAITING_FOR_API:
                self._context.status.showMessage(
                    self.tr(
                        "Busy: answering an API request. Your message is sent as soon "
                        "as it is done."
                    )
                )
            elif isinstance(value, _ReplyStarted):
                self._context.status.clearMessage()
                started.append(value)
                self._on_reply_started(value, restore_text is not None)
            elif isinstance(value, ReplyPiece):
                self.page.view.add_piece(value.text, thinking=value.kind == "thinking")

        def failed(error: BaseException) -> None:
            self._end_reply()
            self._context.status.clearMessage()
            if not started and restore_text is not None:
                self.page.input.setPlainText(restore_text)  # nothing was saved: keep it
            if not (isinstance(error, Cancelled) and not started):
                self._context.show_error(error)  # stopped while waiting: nothing to say

        self._reply_op = self._context.ops.run("reply", run, self._on_reply_ended, failed, progress)

    def _on_reply_started(self, started: _ReplyStarted, clear_input: bool) -> None:
        drafts = self._context.settings.drafts
        if clear_input:
            self.page.input.clear()
            drafts.pop(NEW_CONVERSATION_KEY, None)
            drafts.pop(str(started.conversation_id), None)
        self._shown_draft_key = str(started.conversation_id)
        self._end_edit(restore_draft=False)
        view = self.page.view
        view.set_messages(started.thread)
        widget = view.widget_for(started.message_id)
        if widget is not None:
            view.begin_stream(widget)
        self._show_title(started.title)
        self._context.settings.last_conversation = str(started.conversation_id)
        self.conversation_changed.emit(started.conversation_id)
        self.conversations_changed.emit()
        QTimer.singleShot(250, self, self._context.save_settings)  # dropped with the window

    def _on_reply_ended(self, ended: _ReplyEnded) -> None:
        self._end_reply()
        self.last_stats = ended.stats
        self._context.status.set_stats(ended.stats)
        if ended.message is not None:
            widget = self.page.view.widget_for(ended.message.id)
            if widget is not None:
                widget.set_message(shown_message(ended.message))
        self.conversations_changed.emit()
        if ended.error is not None:
            self._context.show_error(ended.error)

    def _end_reply(self) -> None:
        self.page.view.stop_stream()
        self._reply_op = None
        self.page.set_generating(False)
        self.busy_changed.emit(False)

    def stop(self) -> None:
        for op in (self._reply_op, self._summary_op):
            if op is not None:
                op.cancel()

    def _on_engine_changed(self) -> None:
        model = self._models.model
        self.session.engine = self._models.engine
        self.session.model_name = model.key if model else None
        self.page.view.set_context_size(self.session.context_size)
        if self._queued_text is not None and self._models.engine is not None:
            self._queued_text = None
            self._context.status.clearMessage()
            self.page.input.submit()

    def _on_loading_changed(self) -> None:
        if self._models.loading is None and self._queued_text is not None:
            # The load ended without a new engine (it failed): the message stays unsent
            # in the input box, and the user is told.
            QTimer.singleShot(0, self._drop_queue_if_unsent)

    def _drop_queue_if_unsent(self) -> None:
        if self._queued_text is not None and self._models.loading is None:
            self._queued_text = None
            self._context.status.showMessage(
                self.tr("The model could not be loaded, so the message was not sent."), 8000
            )

    # ------------------------------------------------------------------ versions, edits
    def switch_version(self, message_id: int) -> None:
        if self.busy:
            return
        session = self.session
        self._context.ops.run(
            "switch version",
            lambda _ctx: [shown_message(m) for m in session.switch_version(message_id)],
            lambda thread: self.page.view.set_messages(thread, scroll=False),
        )

    def start_edit(self, message_id: int) -> None:
        if self.busy:
            return
        widget = self.page.view.widget_for(message_id)
        if widget is None:
            return
        if self.editing_message_id is None:
            self._edit_draft = self.page.input.toPlainText()  # restored if editing is cancelled
        self.editing_message_id = message_id
        self.page.edit_banner.show()
        self.page.input.setPlainText(widget.message.text)
        self.page.input.setFocus()

    def cancel_edit(self) -> None:
        self._end_edit(restore_draft=True)

    def _end_edit(self, restore_draft: bool = True) -> None:
        if self.editing_message_id is None:
            return
        self.editing_message_id = None
        self.page.edit_banner.hide()
        draft, self._edit_draft = self._edit_draft, None
        if restore_draft:
            self.page.input.setPlainText(draft or "")

    def escape(self) -> None:
        if self.busy:
            self.stop()
        elif self.editing_message_id is not None:
            self.cancel_edit()

    # ------------------------------------------------------------------ options
    def apply_options(self, options: ConversationOptions) -> None:
        session = self.session
        previous = session.options.template
        self._context.ops.run(
            "conversation settings",
            lambda _ctx: session.set_options(options),
            lambda applied: self._options_applied(applied, previous),
        )

    def _options_applied(self, options: ConversationOptions, previous_template: str) -> None:
        if options.template != previous_template:
            self._models.ensure_template(options.template)

    # ------------------------------------------------------------------ drafts
    def _draft_key(self) -> str:
        cid = self.conversation_id
        return str(cid) if cid is not None else NEW_CONVERSATION_KEY

    def save_draft(self) -> None:
        """Remember the input box's text for the conversation whose draft it holds."""
        self._draft_timer.stop()
        key = self._shown_draft_key
        if key is None or self.editing_message_id is not None:
            return  # nothing loaded yet, or the box holds a message being edited
        text = self.page.input.toPlainText()
        drafts = self._context.settings.drafts
        if text == drafts.get(key, ""):
            return
        if text:
            drafts[key] = text
        else:
            drafts.pop(key, None)
        self._context.save_settings()

    def _load_draft(self) -> None:
        self._shown_draft_key = self._draft_key()
        box = self.page.input
        box.blockSignals(True)
        box.setPlainText(self._context.settings.drafts.get(self._draft_key(), ""))
        box.moveCursor(box.textCursor().MoveOperation.End)
        box.blockSignals(False)
