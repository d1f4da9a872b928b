"""One conversation's operations, the same for every front end.

:class:`ChatSession` is where a message is asked, a reply regenerated, a message
edited, a version switched and the conversation's options changed. ``bllossom chat``
and the desktop app are thin layers over it, so both follow one rule set:

* **Nothing is saved before the reply can start.** The engine renders the prompt and
  checks that it fits the context (a remote engine also reaches its server) first;
  only then are the question and the empty reply stored. A message that is too long is
  refused with ``ErrorCode.MESSAGE_TOO_LONG`` and leaves the conversation unchanged.
* **The engine is always released.** If storing fails after the engine took the
  reply (disk full, database locked), the stream is closed before the error
  propagates; a :class:`Reply` closes its stream on every way out of its loop.
* **An unanswered question is not repeated.** When the shown branch ends in a
  question whose reply has no text (failed, or stopped before its first word), the
  next message becomes a new version of that question, so the model never sees two
  user turns in a row.
* **A partial reply is never lost.** Pieces are checkpointed while they stream;
  a failure records the error beside the text that had arrived.

Everything here may run on a worker thread (the store is thread safe); only
:meth:`Reply.cancel` is meant to be called from another thread while a reply streams.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bllossom_core.errors import BllossomError, Cancelled, ErrorCode, InputError
from bllossom_core.types import (
    CancelToken,
    ChatEngine,
    ChatMessage,
    ChatStream,
    GenerationSettings,
    GenerationStats,
    StreamPiece,
    check_settings,
)

if TYPE_CHECKING:
    from bllossom_core.store import ConversationStore, Message, ReplyWriter


@dataclass(frozen=True)
class ConversationOptions:
    """What a conversation is asked with: system prompt, chat template, sampling."""

    system_prompt: str | None = None
    template: str = "auto"
    settings: GenerationSettings = field(default_factory=GenerationSettings)


ReplyPiece = StreamPiece
"""A piece of a streaming reply; ``kind`` tells a reasoning model's thinking apart."""


class Reply:
    """A reply being generated and saved. Iterate for its pieces, or :meth:`run` it.

    Created by :class:`ChatSession`; the question (if any) and the empty reply are
    already stored. Iterating streams the engine's pieces into the store and yields
    them; when the loop ends (finished, stopped, failed or abandoned) the stream is
    closed and the reply is finished or its error recorded, exactly once.
    """

    def __init__(
        self,
        stream: ChatStream,
        writer: ReplyWriter,
        cancel: CancelToken,
        question_id: int | None,
    ) -> None:
        self._stream = stream
        self._writer = writer
        self._cancel = cancel
        self.question_id = question_id
        """The user message this reply answers, when it was added by this operation."""
        self.message_id = writer.message_id
        self.conversation_id = writer.conversation_id
        self.message: Message | None = None
        """The saved reply, once the loop has ended."""
        self.error: BaseException | None = None
        self._started = False

    @property
    def stats(self) -> GenerationStats:
        return self._stream.stats

    @property
    def cancelled(self) -> bool:
        return self._cancel.cancelled

    @property
    def cancel_token(self) -> CancelToken:
        """The token the engine watches: set it (e.g. from a signal handler) to stop."""
        return self._cancel

    def cancel(self) -> None:
        """Stop within one token (safe from any thread); what arrived is kept."""
        self._cancel.cancel()

    def __iter__(self) -> Iterator[ReplyPiece]:
        if self._started:
            raise RuntimeError("a reply can be streamed only once")
        self._started = True
        writer = self._writer
        try:
            for piece in _pieces(self._stream):
                if piece.kind == "thinking":
                    writer.append_thinking(piece.text)
                else:
                    writer.append(piece.text)
                yield piece
                if self._cancel.cancelled:
                    break
        except Cancelled:
            pass  # the engine stopped on our token: a normal end, the text is kept
        except GeneratorExit:
            self._cancel.cancel()  # the consumer left the loop: a stop, not a failure
            raise
        except BaseException as error:
            self.error = error
            self._stream.close()
            self.message = _record_failure(writer, error)
            raise
        finally:
            # Leaving the loop early (break, GeneratorExit) must free the engine too.
            self._stream.close()
            if self.message is None and self.error is None and not writer.closed:
                # Reached on a normal end, a stop, and when the consumer abandons the loop.
                stats = self._stream.stats
                if self._cancel.cancelled and stats.stop_reason == "stop":
                    stats.stop_reason = "cancelled"  # left the loop before the engine saw it
                self.message = writer.finish(stats)

    def run(self, on_piece: Callable[[ReplyPiece], None] | None = None) -> Message:
        """Stream the whole reply, calling ``on_piece`` for each piece; the saved reply."""
        for piece in self:
            if on_piece is not None:
                on_piece(piece)
        assert self.message is not None
        return self.message

    def abandon(self) -> None:
        """Never streamed (the front end is closing): free the engine, keep the empty reply
        flagged incomplete so the question counts as unanswered."""
        if self._started:
            return
        self._started = True
        self._stream.close()
        if not self._writer.closed:
            self.message = self._writer.fail(Cancelled("The reply was stopped before it started."))


def _pieces(stream: ChatStream) -> Iterator[ReplyPiece]:
    """The stream's pieces with their kind (a reasoning model's thinking, the answer)."""
    yield from stream.events()


def _record_failure(writer: ReplyWriter, error: BaseException) -> Message | None:
    """Keep the partial text with the error; a store that cannot even do that is logged
    by the caller through the original error, which is what the user must see."""
    if writer.closed:
        return None
    try:
        return writer.fail(error)
    except BllossomError:
        return None


class ChatSession:
    """The operations on one conversation (or on a new one, saved with its first message).

    ``engine`` may be ``None`` while no model is loaded (reading and switching versions
    still work; asking raises :class:`InputError` with ``ErrorCode.NO_MODEL``).
    """

    def __init__(
        self,
        store: ConversationStore,
        engine: ChatEngine | None = None,
        conversation_id: int | None = None,
        *,
        options: ConversationOptions | None = None,
        model_name: str | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.model_name = model_name
        """Recorded on new conversations: the model that answers them."""
        self._conversation_id = conversation_id
        self._new_options = options or ConversationOptions()
        if conversation_id is not None:
            store.get_conversation(conversation_id)  # fails now if it does not exist

    # ------------------------------------------------------------------ state
    @property
    def conversation_id(self) -> int | None:
        """``None`` until the first message of a new conversation is saved."""
        return self._conversation_id

    @property
    def options(self) -> ConversationOptions:
        if self._conversation_id is None:
            return self._new_options
        conversation = self.store.get_conversation(self._conversation_id)
        return ConversationOptions(
            conversation.system_prompt, conversation.template or "auto", conversation.settings
        )

    @property
    def title(self) -> str:
        if self._conversation_id is None:
            return ""
        return self.store.get_conversation(self._conversation_id).title

    def thread(self) -> list[Message]:
        """The branch shown, first message to active leaf."""
        if self._conversation_id is None:
            return []
        return self.store.thread(self._conversation_id)

    def set_options(self, options: ConversationOptions) -> ConversationOptions:
        """Change system prompt, template and sampling, checked the one way every front
        end checks them (``max_tokens`` against the loaded model's context)."""
        check_settings(options.settings, context_size=self.context_size)
        options = replace(options, system_prompt=options.system_prompt or None)
        if self._conversation_id is None:
            self._new_options = options
        else:
            self.store.update_conversation(
                self._conversation_id,
                system_prompt=options.system_prompt,
                template=options.template,
                settings=options.settings,
            )
        return options

    def set_system_prompt(self, system_prompt: str | None) -> None:
        self.set_options(replace(self.options, system_prompt=system_prompt))

    # ------------------------------------------------------------------ operations
    def ask(self, text: str, cancel: CancelToken | None = None) -> Reply:
        """Send ``text`` and start the reply; nothing is stored if the reply cannot start.

        ``cancel`` (optional) is the token that stops the reply, e.g. the one of the
        front end's background operation.
        """
        self._check_text(text)
        parent: int | object | None = _ACTIVE_LEAF
        history = self._system_messages()
        if self._conversation_id is not None:
            unanswered = self._unanswered_question()
            if unanswered is None:
                history = self.store.chat_messages(self._conversation_id)
            else:
                parent = unanswered.parent_id
                history = self._history_up_to(unanswered.parent_id)
        return self._start([*history, ChatMessage("user", text)], text, parent, cancel)

    def edit(self, message_id: int, text: str, cancel: CancelToken | None = None) -> Reply:
        """Save ``text`` as a new version of user message ``message_id`` (a new branch;
        the old one is kept) and answer it."""
        self._check_text(text)
        original = self.store.get_message(message_id)
        if original.role != "user":
            raise InputError(
                f"Message {message_id} is a {original.role} message; only your own messages "
                "can be edited."
            )
        self._require_own(original.conversation_id)
        history = self._history_up_to(original.parent_id)
        return self._start([*history, ChatMessage("user", text)], text, original.parent_id, cancel)

    def regenerate(self, message_id: int, cancel: CancelToken | None = None) -> Reply:
        """A new version of reply ``message_id``; the old one is kept beside it."""
        original = self.store.get_message(message_id)
        if original.role != "assistant":
            raise InputError(
                f"Message {message_id} is a {original.role} message; only replies can be "
                "generated again."
            )
        self._require_own(original.conversation_id)
        history = self._history_up_to(original.parent_id)
        return self._rewrite(original, history, self.store.regenerate, cancel)

    def continue_reply(self, message_id: int, cancel: CancelToken | None = None) -> Reply:
        """Write more of reply ``message_id`` (one cut at the length limit), appended to it.

        The model gets the conversation up to the reply and the reply's text so far as
        the start of its answer (a reasoning model's earlier thinking is not sent back).
        """
        original = self.store.get_message(message_id)
        if original.role != "assistant" or not original.text:
            raise InputError(
                f"Message {message_id} is not a reply with text, so there is nothing to continue.",
                code=ErrorCode.NOTHING_TO_REPLY,
            )
        self._require_own(original.conversation_id)
        history = self._history_up_to(original.parent_id)
        history.append(ChatMessage("assistant", original.text))
        return self._rewrite(original, history, self.store.continue_reply, cancel)

    def _rewrite(
        self,
        original: Message,
        history: list[ChatMessage],
        open_writer: Callable[[int], ReplyWriter],
        cancel: CancelToken | None,
    ) -> Reply:
        """Start a reply that writes into (or beside) the stored reply ``original``."""
        engine = self._engine()
        cancel = cancel or CancelToken()
        stream = engine.stream_chat(history, self.options.settings, cancel)
        try:
            self._record_model(original.conversation_id, engine)
            writer = open_writer(original.id)
        except BaseException:
            stream.close()
            raise
        return Reply(stream, writer, cancel, None)

    def summarize(self, cancel: CancelToken | None = None) -> str:
        """The model's summary of the branch shown (nothing is stored): for a conversation
        that no longer fits the context, to start a new one from (see
        :meth:`start_from_summary`)."""
        if self._conversation_id is None:
            raise InputError("There is nothing to summarize yet.", code=ErrorCode.NOTHING_TO_REPLY)
        history = self.store.chat_messages(self._conversation_id)
        stream = self._engine().stream_chat(
            [*history, ChatMessage("user", SUMMARY_REQUEST)], self.options.settings, cancel
        )
        try:
            answer = [piece.text for piece in _pieces(stream) if piece.kind == "answer"]
        finally:
            stream.close()
        return "".join(answer).strip()

    def start_from_summary(self, summary: str) -> int:
        """A new conversation with this one's options whose system prompt carries
        ``summary``; its id (open it with a new session)."""
        if self._conversation_id is None:
            raise InputError("There is nothing to summarize yet.", code=ErrorCode.NOTHING_TO_REPLY)
        conversation = self.store.get_conversation(self._conversation_id)
        options = self.options
        system = f"{SUMMARY_HEADING}\n{summary}"
        if options.system_prompt:
            system = f"{options.system_prompt}\n\n{system}"
        title = f"{conversation.title} (…)" if conversation.title else ""
        return self.store.create_conversation(
            title, model=conversation.model, template=options.template, system_prompt=system,
            settings=options.settings,
        ).id  # fmt: skip

    def switch_version(self, message_id: int) -> list[Message]:
        """Show the branch through ``message_id``; returns the new thread."""
        message = self.store.get_message(message_id)
        self._require_own(message.conversation_id)
        return self.store.switch_version(message_id)

    # ------------------------------------------------------------------ internals
    def _start(
        self,
        prompt: list[ChatMessage],
        text: str,
        parent: int | object | None,
        cancel: CancelToken | None,
    ) -> Reply:
        engine = self._engine()
        options = self.options
        cancel = cancel or CancelToken()
        # The engine first: it renders the prompt, refuses one that cannot fit and takes
        # the reply; only a reply that can start gets its question stored.
        stream = engine.stream_chat(prompt, options.settings, cancel)
        try:
            if self._conversation_id is None:
                self._conversation_id = self.store.create_conversation(
                    model=self.model_name or engine.display_name,
                    template=options.template,
                    system_prompt=options.system_prompt,
                    settings=options.settings,
                ).id
            conversation_id = self._conversation_id
            self._record_model(conversation_id, engine)
            if parent is _ACTIVE_LEAF:
                question = self.store.add_message(conversation_id, "user", text)
            else:
                assert parent is None or isinstance(parent, int)
                question = self.store.add_message(conversation_id, "user", text, parent_id=parent)
            writer = self.store.start_reply(conversation_id)
        except BaseException:
            stream.close()  # never leave the engine taken (see the module's rules)
            raise
        return Reply(stream, writer, cancel, question.id)

    def _record_model(self, conversation_id: int, engine: ChatEngine) -> None:
        """The conversation names the model that answers it now (the user may have
        switched models since it began)."""
        model = self.model_name or engine.display_name
        if self.store.get_conversation(conversation_id).model != model:
            self.store.update_conversation(conversation_id, model=model)

    def _unanswered_question(self) -> Message | None:
        thread = self.thread()
        if not thread:
            return None
        last = thread[-1]
        if last.role == "user":
            return last
        if last.role == "assistant" and not last.text and len(thread) >= 2:
            previous = thread[-2]
            return previous if previous.role == "user" else None
        return None

    def _history_up_to(self, message_id: int | None) -> list[ChatMessage]:
        if message_id is None or self._conversation_id is None:
            return self._system_messages()
        return self.store.chat_messages(self._conversation_id, up_to=message_id)

    def _system_messages(self) -> list[ChatMessage]:
        system = self.options.system_prompt
        return [ChatMessage("system", system)] if system else []

    def _engine(self) -> ChatEngine:
        if self.engine is None:
            raise InputError(
                "No model is loaded.",
                hint="Open a GGUF file or a remote server first.",
                code=ErrorCode.NO_MODEL,
            )
        return self.engine

    @property
    def context_size(self) -> int | None:
        """The loaded model's context in tokens, when the engine knows it (a remote
        server's is not reported)."""
        size = getattr(self.engine, "context_size", None)
        return size if isinstance(size, int) else None

    def _require_own(self, conversation_id: int) -> None:
        if conversation_id != self._conversation_id:
            raise InputError(f"That message belongs to another conversation ({conversation_id}).")

    @staticmethod
    def _check_text(text: str) -> None:
        if not text.strip():
            raise InputError("The message is empty.", code=ErrorCode.NOTHING_TO_REPLY)


SUMMARY_REQUEST = (
    "Summarize our conversation so far so that it can go on in a new chat: the topics, "
    "facts, names, numbers and decisions that matter, in a few short paragraphs, in the "
    "language we have been using."
)
SUMMARY_HEADING = "Summary of the earlier conversation:"

_ACTIVE_LEAF = object()
"""``parent`` placeholder: below the conversation's active leaf (the store's default)."""
