"""OpenAI response bodies: whole replies, Server-Sent Event chunks and usage.

``/v1/chat/completions`` and ``/v1/completions`` differ only in the names of things
(``message``/``delta`` versus ``text``), so one :class:`ReplyShape` per endpoint builds
every body the server sends for it. Thinking from reasoning models goes in
``reasoning_content`` beside ``content``, as other OpenAI-compatible servers send it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from bllossom_core.types import GenerationStats


def usage(stats: GenerationStats) -> dict[str, Any]:
    """Token counts; ``cached_tokens`` are prompt tokens reused from the KV cache."""
    cached = max(0, stats.prompt_tokens - stats.evaluated_prompt_tokens)
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.generated_tokens,
        "total_tokens": stats.prompt_tokens + stats.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def timings(stats: GenerationStats) -> dict[str, Any]:
    """The engine's own measurements of this reply, named as llama.cpp's server names
    them (plus ``first_token_ms``), so a client can tell the engine's time from HTTP's."""
    return {
        "prompt_n": stats.evaluated_prompt_tokens,
        "prompt_per_second": stats.prompt_tokens_per_second,
        "predicted_n": stats.generated_tokens,
        "predicted_per_second": stats.tokens_per_second,
        "first_token_ms": None
        if stats.time_to_first_token_s is None
        else stats.time_to_first_token_s * 1e3,
    }


def sse(payload: dict[str, Any] | str) -> bytes:
    data = (
        payload
        if isinstance(payload, str)
        else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    )
    return f"data: {data}\n\n".encode()


class ReplyShape:
    """The bodies of one reply to one endpoint (``chat`` or ``completion``)."""

    def __init__(self, endpoint: str, model: str, include_usage: bool = False) -> None:
        self.chat = endpoint == "chat"
        prefix = "chatcmpl" if self.chat else "cmpl"
        self.id = f"{prefix}-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def whole(
        self, answer: str, thinking: str, finish_reason: str, stats: GenerationStats
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": answer}
            if thinking:
                message["reasoning_content"] = thinking
            choice["message"] = message
        else:
            choice["text"] = answer
        choice.update(logprobs=None, finish_reason=finish_reason)
        return {**self._head(whole=True), "choices": [choice], "usage": usage(stats),
                "timings": timings(stats)}  # fmt: skip

    def opening(self) -> bytes | None:
        """The chunk announcing the assistant role (chat only)."""
        if not self.chat:
            return None
        return self._chunk({"role": "assistant", "content": ""}, None)

    def piece(self, kind: str, text: str) -> bytes:
        if self.chat:
            field = "reasoning_content" if kind == "thinking" else "content"
            return self._chunk({field: text}, None)
        return self._chunk(text, None)

    def closing(self, finish_reason: str, stats: GenerationStats) -> bytes:
        """The chunk with ``finish_reason``, the usage chunk when asked, and ``[DONE]``."""
        closing = self._chunk({} if self.chat else "", finish_reason, timings(stats))
        if self.include_usage:
            closing += sse({**self._head(whole=False), "choices": [], "usage": usage(stats)})
        return closing + sse("[DONE]")

    def _head(self, whole: bool) -> dict[str, Any]:
        if self.chat:
            kind = "chat.completion" if whole else "chat.completion.chunk"
        else:
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None}  # fmt: skip

    def _chunk(
        self,
        content: dict[str, str] | str,
        finish_reason: str | None,
        reply_timings: dict[str, Any] | None = None,
    ) -> bytes:
        choice: dict[str, Any] = {"index": 0}
        if isinstance(content, dict):
            choice["delta"] = content
        else:
            choice["text"] = content
        choice.update(logprobs=None, finish_reason=finish_reason)
        chunk = {**self._head(whole=False), "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        if reply_timings is not None:
            chunk["timings"] = reply_timings
        return sse(chunk)
