"""Telling a reasoning model's thinking from its answer, as the reply streams.

DeepSeek-R1-distilled models (Bllossom's 2025 releases among them) write their reasoning
in a ``<think>…</think>`` block, then the answer. Two things make this harder than a
string search:

- the chat template may end the generation prompt with ``<think>\\n``, so the reply
  starts *inside* the block and never contains the opening tag
  (``ThinkingSplitter(starts_thinking=True)``);
- the tags arrive in pieces: ``</think>`` may be one token, or ``</``, ``think``, ``>``
  from a tokenizer (or a remote server) that splits it.

:class:`ThinkingSplitter` is fed text pieces as they arrive and returns
:class:`~bllossom_core.types.StreamPiece` s. It holds back only text that may still turn
out to be part of a tag, so thinking streams live. An opening tag counts only at the very
start of the reply (after whitespace); a ``<think>`` later in an answer is text.
Whitespace around the thinking and at the start of the answer is dropped, since the
template puts it there, not the model's content.

The splitter also times the thinking (:attr:`ThinkingSplitter.thinking_seconds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from bllossom_core.types import PieceKind, StreamPiece

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def ends_with_open_think(prompt_text: str) -> bool:
    """Whether a rendered generation prompt leaves the model inside a think block."""
    stripped = prompt_text.rstrip()
    if not stripped.endswith(THINK_OPEN):
        return False
    return stripped.rfind(THINK_OPEN) > stripped.rfind(THINK_CLOSE)


def mentions_thinking(*texts: str | None) -> bool:
    """Whether a template or token list speaks of think blocks (a reasoning model)."""
    return any(text is not None and THINK_CLOSE in text for text in texts)


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper beginning of ``tag``."""
    for length in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-length:]):
            return length
    return 0


class ThinkingSplitter:
    """Incremental thinking/answer splitter; see the module docstring.

    ``feed(text)`` returns the pieces that are certain so far (possibly none); call
    ``flush()`` once at the end for whatever was held back.
    """

    def __init__(
        self,
        *,
        starts_thinking: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._clock = clock
        # "start": nothing decided yet (a reply may still open a block);
        # "thinking": inside the block; "answer": after it, or a reply without one.
        self._state = "thinking" if starts_thinking else "start"
        self._pending = ""
        """Text held back: a possible tag beginning, or whitespace not yet placed."""
        self._answer_started = False
        self._thinking_started = False
        self._think_began: float | None = None
        self._think_ended: float | None = None
        self._last_feed: float | None = None

    @property
    def in_thinking(self) -> bool:
        return self._state == "thinking"

    @property
    def thinking_seconds(self) -> float | None:
        """From the first piece of thinking to the closing tag (or the last piece, if the
        reply stopped while thinking); None when there was no thinking."""
        if self._think_began is None:
            return None
        end = self._think_ended if self._think_ended is not None else self._last_feed
        return max(0.0, (end or self._think_began) - self._think_began)

    def feed(self, text: str) -> list[StreamPiece]:
        now = self._clock()
        self._last_feed = now
        if self._state == "thinking" and self._think_began is None:
            self._think_began = now
        out: list[StreamPiece] = []
        self._pending += text
        while self._pending:
            before = self._state
            if self._state == "start":
                self._step_start(out, now)
            elif self._state == "thinking":
                self._step_thinking(out, now)
            else:
                self._emit_answer(self._pending, out)
                self._pending = ""
            if self._state == before:
                break  # waiting for more text
        return _merged(out)

    def flush(self) -> list[StreamPiece]:
        """The text held back at the end of the reply (a tag that never completed)."""
        self._last_feed = self._clock()
        out: list[StreamPiece] = []
        rest, self._pending = self._pending, ""
        if self._state == "thinking":
            self._emit_thinking(rest.rstrip(), out)
        else:
            self._emit_answer(rest, out)
        return out

    def split(self, pieces: Iterable[str]) -> Iterator[StreamPiece]:
        """Convenience: the pieces of a whole stream of text, flushed at the end."""
        for text in pieces:
            yield from self.feed(text)
        yield from self.flush()

    def _step_start(self, out: list[StreamPiece], now: float) -> None:
        head = self._pending.lstrip()
        if head.startswith(THINK_OPEN):
            self._state = "thinking"
            self._think_began = now
            self._pending = head[len(THINK_OPEN) :]
        elif not THINK_OPEN.startswith(head):  # not a tag after all: a plain answer
            self._state = "answer"
        # else: whitespace or the beginning of "<think>" so far: wait

    def _step_thinking(self, out: list[StreamPiece], now: float) -> None:
        if not self._thinking_started:
            # The prompt opened the block, yet some models open it again: drop that tag.
            head = self._pending.lstrip()
            if head.startswith(THINK_OPEN):
                self._pending = head[len(THINK_OPEN) :]
            elif head and THINK_OPEN.startswith(head):
                return  # wait: it may be that tag
        close_at = self._pending.find(THINK_CLOSE)
        if close_at >= 0:
            self._emit_thinking(self._pending[:close_at].rstrip(), out)
            self._pending = self._pending[close_at + len(THINK_CLOSE) :]
            self._state = "answer"
            self._think_ended = now
            return
        keep = _partial_tag_suffix(self._pending, THINK_CLOSE)
        certain = self._pending[: len(self._pending) - keep]
        body = certain.rstrip()  # trailing whitespace waits: it may precede the tag
        self._emit_thinking(body, out)
        self._pending = self._pending[len(body) :]

    def _emit_thinking(self, text: str, out: list[StreamPiece]) -> None:
        if not self._thinking_started:
            text = text.lstrip()
        if text:
            self._thinking_started = True
            out.append(StreamPiece("thinking", text))

    def _emit_answer(self, text: str, out: list[StreamPiece]) -> None:
        if not self._answer_started and self._think_began is not None:
            text = text.lstrip()  # the blank line a template puts after </think>
        if text:
            self._answer_started = True
            out.append(StreamPiece("answer", text))


def _merged(pieces: list[StreamPiece]) -> list[StreamPiece]:
    merged: list[StreamPiece] = []
    for piece in pieces:
        if merged and merged[-1].kind == piece.kind:
            merged[-1] = StreamPiece(piece.kind, merged[-1].text + piece.text)
        else:
            merged.append(piece)
    return merged


def answer_only(pieces: Iterable[StreamPiece]) -> Iterator[str]:
    """The answer text of a stream of pieces (what plain iteration of a stream gives)."""
    for piece in pieces:
        if piece.kind == "answer":
            yield piece.text


def collect(pieces: Iterable[StreamPiece]) -> dict[PieceKind, str]:
    """The whole thinking and the whole answer of a finished stream."""
    texts: dict[PieceKind, list[str]] = {"thinking": [], "answer": []}
    for piece in pieces:
        texts[piece.kind].append(piece.text)
    return {"thinking": "".join(texts["thinking"]), "answer": "".join(texts["answer"])}
