"""One engine reply run on its own thread and read by the event loop.

The engine's stream blocks between tokens (llama.cpp runs without the GIL), so each
reply runs on a worker thread that pushes its pieces to the event loop; the loop is
never blocked and keeps serving ``/health``, ``/v1/models`` and the waiting line.

The worker owns the engine for the whole reply: it opens the stream, filters stop
strings, closes the stream (freeing the engine) and only then gives the turn back.
:meth:`ReplyRun.cancel` (a client that went away, the server stopping) sets the
stream's :class:`~bllossom_core.types.CancelToken`, which the engine checks before
every token: at most one more token is made.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

from bllossom_core.errors import ErrorCode, ModelLoadError
from bllossom_core.server.stop_strings import StopStringFilter
from bllossom_core.types import CancelToken, ChatStream, GenerationStats

PieceKind = Literal["thinking", "answer"]
FinishReason = Literal["stop", "length", "cancelled"]
StartReply = Callable[[CancelToken], ChatStream]

BUSY_RETRY_S = 0.05


@dataclass(frozen=True)
class Finished:
    finish_reason: FinishReason
    stats: GenerationStats
    tokens_after_cancel: int | None
    """Tokens the engine made after :meth:`ReplyRun.cancel` (None: not cancelled)."""


class ReplyRun:
    """Start with :meth:`start`, await :meth:`started`, then iterate :meth:`pieces`."""

    def __init__(
        self,
        start_reply: StartReply,
        stops: tuple[str, ...],
        give_back_turn: Callable[[], None],
        busy_wait_s: float,
    ) -> None:
        self._start_reply = start_reply
        self._stops = stops
        self._give_back_turn = give_back_turn
        self._busy_wait_s = busy_wait_s
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._cancel = CancelToken()
        self._stream: ChatStream | None = None
        self._tokens_at_cancel: int | None = None
        self.finished: Finished | None = None
        self.failure: BaseException | None = None

    def start(self) -> None:
        worker = threading.Thread(target=self._work, name="bllossom-server-reply", daemon=True)
        try:
            worker.start()
        except BaseException:
            self._give_back_turn()
            raise

    async def started(self) -> None:
        """Return once the engine took the prompt; raise what stopped it from starting."""
        kind, value = await self._events.get()
        if kind == "failed":
            raise value
        assert kind == "started"

    async def pieces(self) -> AsyncIterator[tuple[PieceKind, str]]:
        """The reply's text in order; consecutive pieces already waiting come merged."""
        while True:
            kind, value = await self._events.get()
            while kind in ("thinking", "answer") and not self._events.empty():
                next_kind, next_value = self._events.get_nowait()
                if next_kind != kind:
                    yield cast(PieceKind, kind), value
                    kind, value = next_kind, next_value
                    continue
                value += next_value
            if kind == "finished":
                self.finished = value
                return
            if kind == "failed":
                self.failure = value
                raise value
            yield cast(PieceKind, kind), value

    def cancel(self) -> None:
        """Stop the reply from any thread (within one token); harmless when finished."""
        if self._cancel.cancelled or self.finished is not None:
            return
        stream = self._stream
        self._tokens_at_cancel = stream.stats.generated_tokens if stream is not None else 0
        self._cancel.cancel()

    def _post(self, kind: str, value: Any = None) -> None:
        self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))

    def _open(self) -> ChatStream:
        """Start the engine's stream, waiting politely while someone else's reply runs."""
        deadline = time.monotonic() + self._busy_wait_s
        while True:
            try:
                return self._start_reply(self._cancel)
            except ModelLoadError as error:
                busy = error.code == ErrorCode.ENGINE_BUSY
                if not busy or self._cancel.cancelled or time.monotonic() > deadline:
                    raise
            time.sleep(BUSY_RETRY_S)

    def _work(self) -> None:
        try:
            try:
                stream = self._stream = self._open()
            except BaseException as error:
                self._post("failed", _as_reportable(error))
                return
            self._post("started")
            self._relay(stream)
        finally:
            self._give_back_turn()

    def _relay(self, stream: ChatStream) -> None:
        stop_filter = StopStringFilter(self._stops)
        try:
            for kind, text in stream_pieces(stream):
                if kind == "answer":
                    text = stop_filter.feed(text)
                if text:
                    self._post(kind, text)
                if stop_filter.stopped:
                    break
            tail = stop_filter.flush()
            if tail:
                self._post("answer", tail)
        except BaseException as error:
            stream.close()
            self._post("failed", _as_reportable(error))
            return
        stream.close()
        stats = stream.stats
        reason: FinishReason
        if stop_filter.stopped:
            reason = "stop"
        elif self._cancel.cancelled or stats.stop_reason == "cancelled":
            reason = "cancelled"
        else:
            reason = "length" if stats.stop_reason == "length" else "stop"
        after = None
        if self._tokens_at_cancel is not None:
            after = max(0, stats.generated_tokens - self._tokens_at_cancel)
        self._post("finished", Finished(reason, stats, after))


def stream_pieces(stream: ChatStream) -> Iterator[tuple[PieceKind, str]]:
    """(kind, text) pieces: thinking and answer apart when the stream tells them apart."""
    events = getattr(stream, "events", None)
    if callable(events):
        for piece in events():
            yield piece.kind, piece.text
    else:
        for text in stream:
            yield "answer", text


def _as_reportable(error: BaseException) -> Exception:
    """What the request handler re-raises: core errors become HTTP errors, others 500."""
    if isinstance(error, Exception):
        return error
    return RuntimeError(f"the reply stopped: {type(error).__name__}")
