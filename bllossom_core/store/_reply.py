"""Saving a reply while it streams. Internal; see :meth:`ConversationStore.start_reply`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from bllossom_core.store._records import Message
from bllossom_core.types import GenerationStats

DEFAULT_CHECKPOINT_INTERVAL_S = 0.5
"""How often a streaming reply is committed: a crash loses at most this much text."""

SaveFn = Callable[[int, str, "GenerationStats | None", bool, "str | None"], Message]
"""``save(message_id, text, stats, complete, error)`` commits the reply's current state."""


class ReplyWriter:
    """Writes one assistant reply to the database as it streams.

    ``append()`` only buffers (cheap enough to call for every token from the engine's
    thread). A background thread commits the text whenever it changed, at least every
    ``checkpoint_interval_s`` seconds, so a crash or ``kill -9`` loses at most that
    much; the row is flagged incomplete until :meth:`finish`. :meth:`fail` keeps the
    partial text and records the error. Use it as a context manager to have an
    exception inside the block recorded with :meth:`fail`.

    A checkpoint that fails (disk full) is re-raised by the next ``append``/``finish``;
    when ``finish``/``fail`` itself fails, the writer stays open so it can be retried.
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
        self._pieces: list[str] = []
        self._saved_length = 0
        self._length = 0
        self._closed = False
        self._failure: BaseException | None = None
        self._buffer_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = self._start_flusher()

    @property
    def text(self) -> str:
        """Everything appended so far (saved or not)."""
        with self._buffer_lock:
            return "".join(self._pieces)

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, piece: str) -> None:
        """Add a piece of the reply; it is committed by the next checkpoint."""
        if self._closed:
            raise RuntimeError("append() after the reply was finished")
        self._raise_checkpoint_failure()
        if piece:
            with self._buffer_lock:
                self._pieces.append(piece)
                self._length += len(piece)

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

    def _close(self, stats: GenerationStats | None, complete: bool, error: str | None) -> Message:
        if self._closed:
            raise RuntimeError("the reply was already finished")
        self._closed = True
        self._stop.set()
        self._flusher.join(timeout=30)
        try:
            saved = self._commit(stats=stats, complete=complete, error=error, force=True)
        except BaseException:
            # Still open: once the cause is fixed (disk space freed) finish() can be retried.
            self._closed = False
            self._stop = threading.Event()
            self._flusher = self._start_flusher()
            raise
        assert saved is not None
        return saved

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
                length = self._length
                if not force and length == self._saved_length:
                    return None
                text = "".join(self._pieces)
                self._pieces = [text]
            saved = self._save(self.message_id, text, stats, complete, error)
            self._saved_length = length
            return saved

    def _flush_periodically(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval):
            try:
                self._commit(stats=None, complete=False, error=None, force=False)
            except BaseException as failure:  # handed to the caller's thread
                self._failure = failure

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
