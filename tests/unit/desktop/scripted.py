"""A scripted chat engine: a test double for the *UI's* logic (streaming, stop,
versions, branches). The real llama.cpp engine is exercised by
``test_main_window.py::test_real_model_loads_in_background_and_queued_message_is_sent``
and ``tests/e2e/test_desktop_app.py`` with fixture GGUF models.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from bllossom_core.errors import ModelLoadError
from bllossom_core.types import (
    CancelToken,
    ChatMessage,
    DeviceReport,
    GenerationSettings,
    GenerationStats,
)


@dataclass
class ScriptedStream:
    pieces: list[str]
    cancel: CancelToken | None
    gate: threading.Event | None
    fail_after: int | None = None
    """Raise :class:`ModelLoadError` after this many pieces (an engine failing mid-reply)."""
    stats: GenerationStats = field(default_factory=GenerationStats)
    closed: bool = False

    def __iter__(self) -> Iterator[str]:
        for index, piece in enumerate(self.pieces):
            if self.cancel is not None and self.cancel.cancelled:
                self.stats.stop_reason = "cancelled"
                return
            if self.gate is not None and index > 0:
                self.gate.wait(5)
            if self.fail_after is not None and index >= self.fail_after:
                raise ModelLoadError("The scripted model failed.")
            self.stats.generated_tokens += 1
            yield piece
        self.stats.tokens_per_second = 42.0
        self.stats.context_used = 10 + len(self.pieces)
        self.stats.context_size = 2048

    def close(self) -> None:
        self.closed = True


class ScriptedEngine:
    """Replies with ``replies[n]`` (split in pieces) to the n-th request; records prompts."""

    def __init__(
        self,
        replies: list[list[str]],
        gate: threading.Event | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.replies = replies
        self.gate = gate
        self.fail_after = fail_after
        self.prompts: list[list[ChatMessage]] = []
        self.streams: list[ScriptedStream] = []
        self.closed = False

    @property
    def device(self) -> DeviceReport:
        return DeviceReport(backend="cpu", summary="CPU: 2 threads", threads=2)

    @property
    def display_name(self) -> str:
        return "scripted"

    def stream_chat(
        self,
        messages: list[ChatMessage],
        settings: GenerationSettings,
        cancel: CancelToken | None = None,
    ) -> ScriptedStream:
        self.prompts.append(list(messages))
        pieces = self.replies[min(len(self.prompts) - 1, len(self.replies) - 1)]
        stream = ScriptedStream(list(pieces), cancel, self.gate, self.fail_after)
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        self.closed = True


def use_engine(window, engine: ScriptedEngine, name: str = "tiny") -> None:  # type: ignore[no-untyped-def]
    from desktop.settings import RegisteredModel

    window._on_model_loaded(RegisteredModel(name=name, path=f"/models/{name}.gguf"), engine)
