"""Saving a reply while it streams. Internal; see :meth:`ConversationStore.start_reply`."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from bllossom_core.store._records import Message
from bllossom_core.types import GenerationStats

DEFAULT_CHECKPOINT_INTERVAL_S = 0.5
"""How often a streaming reply is committed: a crash loses at most this much text."""


@dataclass(frozen=True)
class ReplyDraft:
    """A reply's state as one commit writes it."""

    text: str
    thinking: str
    thinking_seconds: float | None
    stats: GenerationStats | None
    complete: bool
    error: str | None


SaveFn = Callable[[int, ReplyDraft], Message]
"""``save(message_id, draft)`` commits the reply's current state."""


class _Part:
    """One growing text (the answer or the thinking), joined only when committed."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0

    def add(self, piece: str) -> None:
        self.pieces.append(piece)
        self.length += len(piece)

    def joined(self) -> str:
        text = "".join(self.pieces)
        self.pieces = [text]
        return text


class ReplyWriter:
    """Writes one assistant reply to the database as it streams.

    ``append()`` (the answer) and ``append_thinking()`` (a reasoning model's thinking)
    only buffer, cheap enough to call for every token from the engine's thread. A
    background thread commits both whenever they changed, at least every
    ``checkpoint_interval_s`` seconds, so a crash or ``kill -9`` loses at most that
    much; the row is flagged incomplete until :meth:`finish`. :meth:`fail` keeps the
    partial text and records the error. Use it as a context manager to have an
    exception inside the block recorded with :meth:`fail`.

    Nothing appended is ever dropped because saving failed: a checkpoint that fails
    (disk full, database locked) is re-raised by the next ``append``/``finish``, and
    when ``finish``/``fail`` itself fails the text stays in memory, the background
    thread keeps retrying that final commit, and ``finish``/``fail`` may be called
    again (after the user freed space, say).
    """

    def __init__(
        self,
        message: Message,
        save: SaveFn,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    ):
        self.message_id = message.id
        self.conversation_id = message.conversation_id
        self.parent_id = message.parent_id
        self._save = save
        self._interval = checkpoint_interval_s
        self._answer = _Part()
        self._thinking = _Part()
        self._thinking_started: float | None = None
        # A reply being continued starts from what it already holds (see
        # ConversationStore.continue_reply); a new one is empty.
        self._answer.add(message.text)
        self._thinking.add(message.thinking)
        self._thinking_seconds = message.thinking_seconds
        self._earlier_tokens = message.generated_tokens  # a continued reply counts them all
        self._saved_lengths = (self._answer.length, self._thinking.length)
        self._closed = False
        self._final: Message | None = None
        self._retried = False
        self._pending_close: tuple[GenerationStats | None, bool, str | None] | None = None
        self._failure: BaseException | None = None
        self._buffer_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = self._start_flusher()

    @property
    def text(self) -> str:
        """The answer appended so far (saved or not)."""
        with self._buffer_lock:
            return self._answer.joined()

    @property
    def thinking(self) -> str:
        """The thinking appended so far (saved or not)."""
        with self._buffer_lock:
            return self._thinking.joined()

    @property
    def closed(self) -> bool:
        """Finished or failed, and that final state is saved."""
        return self._closed

    @property
    def unsaved(self) -> bool:
        """Some appended text, or the final state, is not in the database yet."""
        with self._buffer_lock:
            lengths = (self._answer.length, self._thinking.length)
        return lengths != self._saved_lengths or self._pending_close is not None

    def append(self, piece: str) -> None:
        """Add a piece of the answer; it is committed by the next checkpoint."""
        self._check_open()
        if piece:
            with self._buffer_lock:
                self._end_thinking()
                self._answer.add(piece)

    def append_thinking(self, piece: str) -> None:
        """Add a piece of the model's thinking (kept apart from the answer)."""
        self._check_open()
        if piece:
            with self._buffer_lock:
                if self._thinking_started is None:
                    self._thinking_started = time.monotonic()
                self._thinking.add(piece)

    def checkpoint(self) -> None:
        """Commit the text appended so far, now."""
        self._commit(stats=None, complete=False, error=None, force=False)
        self._raise_checkpoint_failure()

    def finish(self, stats: GenerationStats | None = None) -> Message:
        """Commit the whole reply, flag it complete, record token counts and stop reason."""
        return self._close(stats, complete=True, error=None)

    def fail(self, error: str | BaseException, stats: GenerationStats | None = None) -> Message:
        """Commit what arrived, flag the reply incomplete and remember why it stopped."""
        return self._close(stats, complete=False, error=str(error) or type(error).__name__)

    def _check_open(self) -> None:
        if self._closed or self._pending_close is not None:
            raise RuntimeError("append() after the reply was finished")
        self._raise_checkpoint_failure()

    def _end_thinking(self) -> None:
        if self._thinking_started is not None and self._thinking_seconds is None:
            self._thinking_seconds = time.monotonic() - self._thinking_started

    def _close(self, stats: GenerationStats | None, complete: bool, error: str | None) -> Message:
        if self._closed:
            if self._final is not None and self._pending_close is None and self._retried:
                return self._final  # a background retry already saved it
            raise RuntimeError("the reply was already finished")
        with self._buffer_lock:
            self._end_thinking()
        if stats is not None and self._earlier_tokens:
            total = stats.generated_tokens + self._earlier_tokens
            stats = dataclasses.replace(stats, generated_tokens=total)
        self._pending_close = (stats, complete, error)
        self._stop.set()
        self._flusher.join(timeout=30)
        try:
            saved = self._commit(stats=stats, complete=complete, error=error, force=True)
        except BaseException:
            # Keep retrying in the background; finish()/fail() may also be called again.
            self._stop = threading.Event()
            self._flusher = self._start_flusher()
            raise
        assert saved is not None
        self._settle(saved, retried=False)
        return saved

    def _settle(self, saved: Message, *, retried: bool) -> None:
        self._final = saved
        self._retried = retried
        self._pending_close = None
        self._closed = True
        self._failure = None

    def _start_flusher(self) -> threading.Thread:
        flusher = threading.Thread(
            target=self._flush_periodically,
            args=(self._stop,),
            name=f"reply-{self.message_id}-checkpoint",
            daemon=True,
        )
        flusher.start()
        return flusher

    def _commit(
        self,
        stats: GenerationStats | None,
        complete: bool,
        error: str | None,
        force: bool,
    ) -> Message | None:
        with self._save_lock:
            with self._buffer_lock:
                lengths = (self._answer.length, self._thinking.length)
                if not force and lengths == self._saved_lengths:
                    return None
                draft = ReplyDraft(
                    text=self._answer.joined(),
                    thinking=self._thinking.joined(),
                    thinking_seconds=self._thinking_seconds_for(stats),
                    stats=stats,
                    complete=complete,
                    error=error,
                )
            saved = self._save(self.message_id, draft)
            self._saved_lengths = lengths
            return saved

    def _thinking_seconds_for(self, stats: GenerationStats | None) -> float | None:
        """The engine's own measure when it gives one, else the time between pieces."""
        if stats is not None and stats.thinking_seconds is not None and self._thinking.length:
            return stats.thinking_seconds
        if self._thinking_seconds is not None or self._thinking_started is None:
            return self._thinking_seconds
        return time.monotonic() - self._thinking_started  # still thinking

    def _flush_periodically(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval):
            pending = self._pending_close
            try:
                if pending is None:
                    self._commit(stats=None, complete=False, error=None, force=False)
                    continue
                saved = self._commit(*pending, force=True)
            except BaseException as failure:  # handed to the caller's thread
                self._failure = failure
                continue
            assert saved is not None
            if self._pending_close is pending:
                self._settle(saved, retried=True)
                return

    def _raise_checkpoint_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def __enter__(self) -> ReplyWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        if exc is not None:
            self.fail(exc)
        else:
            self.finish()
