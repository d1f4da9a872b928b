"""Plain data passed between the engines, the store, the CLI and the desktop app.

These are the contract between ``bllossom_core`` and its callers: engines (local
llama.cpp or a remote OpenAI-compatible server) implement :class:`ChatEngine`; the
desktop app and the CLI only ever see these types.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
CpuCause = Literal["gpu_failed", "offload_off", "no_gpu", "cpu_build", "gpu_unused"]
StopReason = Literal["stop", "length", "cancelled", "error"]
PieceKind = Literal["thinking", "answer"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class StreamPiece:
    """A piece of a reply: the model's thinking (reasoning models) or its answer."""

    kind: PieceKind
    text: str


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings; the defaults are the Bllossom model card's."""

    temperature: float = 0.2
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.1
    max_tokens: int = 1024
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GenerationSettings:
        """Build from saved JSON, ignoring unknown keys (newer versions may add some)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


def check_settings(
    settings: GenerationSettings, *, context_size: int | None = None
) -> GenerationSettings:
    """Refuse sampling values outside their meaningful range, naming the allowed one.

    The one check for every front end (CLI, settings dialog, server). Messages name the
    setting by its CLI option (``--top-p``), which is also the key front ends translate;
    ``context_size``, when known, bounds ``max_tokens``.
    """
    from bllossom_core.errors import InvalidSettingError

    def refuse(option: str, value: object, allowed: str) -> InvalidSettingError:
        field_name = option.lstrip("-").replace("-", "_")
        return InvalidSettingError(f"{option} must be {allowed}, not {value}.", field_name)

    if not (math.isfinite(settings.temperature) and settings.temperature >= 0):
        raise refuse("--temperature", settings.temperature, "0 or more (0 = greedy)")
    if not (math.isfinite(settings.top_p) and 0 < settings.top_p <= 1):
        raise refuse("--top-p", settings.top_p, "above 0 and at most 1")
    if settings.top_k < 0:
        raise refuse("--top-k", settings.top_k, "0 (all tokens) or more")
    if not (math.isfinite(settings.repeat_penalty) and settings.repeat_penalty > 0):
        raise refuse("--repeat-penalty", settings.repeat_penalty, "above 0 (1 = none)")
    if settings.max_tokens < 1:
        raise refuse("--max-tokens", settings.max_tokens, "at least 1")
    if context_size is not None and settings.max_tokens > context_size:
        raise refuse(
            "--max-tokens", settings.max_tokens, f"at most the context size ({context_size})"
        )
    if settings.seed is not None and settings.seed < 0:
        raise refuse("--seed", settings.seed, "0 or more")
    return settings


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    """Tokens in the whole prompt."""
    evaluated_prompt_tokens: int = 0
    """Prompt tokens actually evaluated (the rest came from the reused KV cache)."""
    generated_tokens: int = 0
    time_to_first_token_s: float | None = None
    tokens_per_second: float | None = None
    """Decode speed: generated tokens after the first, per second."""
    prompt_tokens_per_second: float | None = None
    context_used: int = 0
    context_size: int = 0
    dropped_messages: int = 0
    """Oldest messages left out because the conversation outgrew the context."""
    stop_reason: StopReason = "stop"
    thinking_seconds: float | None = None
    """Time spent inside the ``<think>`` block; None when the reply had none."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceReport:
    """Where a model runs, and why there."""

    backend: Literal["cuda", "cpu", "remote"]
    summary: str
    """One line for people, e.g. "GPU: NVIDIA H100, 33/33 layers" or
    "CPU: this llama-cpp-python was built without CUDA — run scripts/setup ..."."""
    gpu_name: str | None = None
    gpu_layers: int = 0
    total_layers: int = 0
    threads: int | None = None
    fallback_reason: str | None = None
    """Why not (all) on the GPU, in English words (``summary`` repeats it)."""
    cpu_cause: CpuCause | None = None
    """The same reason as a code, for front ends that word it in their own language."""
    cpu_variant: str | None = None
    """The instruction set of the CPU backend ggml chose for this CPU ("AVX2"), in a
    build that carries one per x86-64 level (the installed package); None otherwise."""


@dataclass
class CancelToken:
    """Set from any thread to stop a generation within one token."""

    _event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class ChatStream(Protocol):
    """Iterates over text pieces (never a split UTF-8 character); stats when done.

    Plain iteration yields the *answer* only; :meth:`events` yields the same reply as
    :class:`StreamPiece` s, the thinking of a reasoning model included. Use one or the
    other on a stream, not both. ``close()`` frees the engine for the next reply; call
    it (or use ``contextlib.closing``) when leaving the loop early.
    """

    def __iter__(self) -> Iterator[str]: ...

    def events(self) -> Iterator[StreamPiece]: ...

    @property
    def stats(self) -> GenerationStats: ...

    def close(self) -> None: ...


class ChatEngine(Protocol):
    """What the CLI and the desktop need from an engine, local or remote."""

    @property
    def device(self) -> DeviceReport: ...

    @property
    def display_name(self) -> str: ...

    def stream_chat(
        self,
        messages: list[ChatMessage],
        settings: GenerationSettings,
        cancel: CancelToken | None = None,
    ) -> ChatStream: ...

    def close(self) -> None: ...
