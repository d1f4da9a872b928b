"""The local engine: a GGUF run by llama.cpp, streamed, cancellable, with KV reuse.

Between turns the KV cache is kept: a new prompt is compared token by token with what
the context already holds and only the differing tail is evaluated, so a follow-up costs
its new tokens only. When a conversation outgrows the context, the oldest turns (never
the system prompt) are left out and :attr:`GenerationStats.dropped_messages` says so.

An engine answers one message at a time. A reply holds the engine from
:meth:`LocalEngine.stream_chat` until its stream is exhausted, closed or garbage
collected; asking for another reply meanwhile fails at once with :class:`ModelLoadError`
instead of waiting (a stream left suspended would otherwise block every later reply).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bllossom_core._device import (
    default_threads,
    describe_device,
    layer_ladder,
    load_with_fallback,
    probe_gpu,
)
from bllossom_core._utf8 import Utf8Assembler
from bllossom_core.errors import ErrorCode, InputError, ModelLoadError
from bllossom_core.gguf_inspect import GGUFInfo, check_loadable, read_gguf_info
from bllossom_core.llama_vocab import LlamaVocab
from bllossom_core.native import load_llama
from bllossom_core.reasoning import (
    THINK_CLOSE,
    THINK_OPEN,
    ThinkingSplitter,
    answer_only,
    ends_with_open_think,
    mentions_thinking,
)
from bllossom_core.templates import (
    Prompt,
    check_template_name,
    choose_template,
    fit_prompt_ids,
    render_prompt_ids,
)
from bllossom_core.types import (
    CancelToken,
    ChatMessage,
    DeviceReport,
    GenerationSettings,
    GenerationStats,
    StreamPiece,
)

DEFAULT_CONTEXT = 4096
PENALTY_LAST_N = 64  # llama-cpp-python's default repeat-penalty window
RANDOM_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: llama.cpp picks a random seed


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


BUSY_MESSAGE = "The model is still answering another message; stop it first."


def _make_sampler(settings: GenerationSettings, n_vocab: int) -> Any:
    """llama.cpp's default chain: penalties, top-k, top-p, then temperature, then a draw.

    The order (top-p *before* temperature) and the 64-token penalty window are those of
    llama.cpp and plain llama-cpp-python (whose typical-p 1.0 and min-p 0.0 are no-ops),
    so a greedy or seeded reply is token-for-token the one llama-cpp-python gives.
    """
    internals = importlib.import_module("llama_cpp._internals")  # untyped: seen as Any
    sampler = internals.LlamaSampler()
    sampler.add_penalties(n_vocab, PENALTY_LAST_N, settings.repeat_penalty, 0.0, 0.0)
    if settings.temperature <= 0:
        sampler.add_greedy()
        return sampler
    sampler.add_top_k(settings.top_k)
    sampler.add_top_p(settings.top_p, 1)
    sampler.add_temp(settings.temperature)
    sampler.add_dist(RANDOM_SEED if settings.seed is None else settings.seed & 0xFFFFFFFF)
    return sampler


class _Lease:
    """The engine's one-reply lock, held by a stream; releasing twice is harmless."""

    def __init__(self, lock: threading.Lock, on_release: Callable[[], None]) -> None:
        self._lock = lock
        self._on_release = on_release
        self._held = True
        self._guard = threading.Lock()  # the stream and its consumer thread may both release

    def release(self) -> None:
        with self._guard:
            if not self._held:
                return
            self._held = False
        self._lock.release()
        self._on_release()


class LocalStream:
    """One reply: iterate for answer text, or :meth:`events` for thinking and answer;
    :attr:`stats` is complete when iteration ends.

    The stream holds its engine until it is exhausted, closed (:meth:`close`, or leaving a
    ``with stream:`` block) or garbage collected.
    """

    def __init__(
        self,
        pieces: Iterator[StreamPiece],
        stats: GenerationStats,
        token_ids: list[int],
        lease: _Lease | None = None,
    ) -> None:
        self._pieces = pieces
        self._stats = stats
        self._lease = lease
        self.token_ids = token_ids
        """The generated token ids, stop token included, as they are sampled."""

    def __iter__(self) -> Iterator[str]:
        """The answer text (a reasoning model's thinking is left out)."""
        return answer_only(self._pieces)

    def events(self) -> Iterator[StreamPiece]:
        """Thinking and answer pieces, in order."""
        return self._pieces

    @property
    def stats(self) -> GenerationStats:
        return self._stats

    def close(self) -> None:
        """Abandon the reply early (releases the engine for the next one)."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            try:
                close()
            except ValueError:  # running in another thread, which lets go when it stops
                return
        if self._lease is not None:
            self._lease.release()

    def __enter__(self) -> LocalStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class LocalEngine:
    """A loaded GGUF model. Use :meth:`load`; one reply at a time per engine."""

    def __init__(self, llm: Any, info: GGUFInfo, device: DeviceReport, template: str) -> None:
        self._llm = llm
        self._info = info
        self._device = device
        self._vocab = LlamaVocab(llm, info)
        self._template_request = template
        choice = choose_template(template, info.chat_template, self._vocab)
        self._template = choice.name
        self.template_note = choice.note  # why this template, when the file has none
        # Think tags that are single tokens render as text even where the vocabulary marks
        # them as control tokens (llama.cpp would print nothing for those).
        self._think_tag_pieces = {
            token: tag.encode()
            for tag in (THINK_OPEN, THINK_CLOSE)
            if (token := self._vocab.token_id(tag)) is not None
        }
        self._lock = threading.Lock()
        self._close_when_free = False

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        gpu_layers: int | None = None,
        threads: int | None = None,
        context_size: int | None = None,
        template: str | None = None,
        flash_attention: bool = False,
        kv_cache_type: str = "f16",
    ) -> LocalEngine:
        """Check ``path`` with the safe GGUF reader, then load it on the best device."""
        from bllossom_core.model_settings import ModelSettings, check_model_settings

        info = read_gguf_info(path)
        check_loadable(info)
        template = template or "auto"
        check_template_name(template)
        check_model_settings(
            ModelSettings(context_size, gpu_layers, threads, flash_attention, kv_cache_type)
        )
        n_ctx = _context_size(context_size, info.context_length)
        n_threads = threads or default_threads()
        total_layers = info.block_count + 1  # llama.cpp counts the output layer too
        probe = probe_gpu()

        def open_llama(layers: int) -> Any:
            return load_llama(
                path, n_gpu_layers=layers, n_threads=n_threads, n_threads_batch=n_threads,
                n_ctx=n_ctx, n_batch=min(512, n_ctx), **_cache_arguments(flash_attention,
                                                                         kv_cache_type),
            )  # fmt: skip

        ladder = layer_ladder(total_layers, gpu_layers, probe)
        llm, layers, failures = load_with_fallback(open_llama, ladder)
        device = describe_device(probe, gpu_layers, layers, total_layers, n_threads, failures)
        return cls(llm, info, device, template)

    @property
    def device(self) -> DeviceReport:
        return self._device

    @property
    def display_name(self) -> str:
        return f"{self._info.name} ({self._info.quantization})"

    @property
    def info(self) -> GGUFInfo:
        return self._info

    @property
    def template_name(self) -> str:
        return self._template

    @property
    def vocab(self) -> LlamaVocab:
        return self._vocab

    @property
    def context_size(self) -> int:
        return int(self._llm.n_ctx())

    @property
    def reasoning(self) -> bool:
        """Whether this is a reasoning model (its template or vocabulary knows ``</think>``);
        its streams then tell thinking from answer."""
        return mentions_thinking(self._info.chat_template) or bool(self._think_tag_pieces)

    @property
    def prompt_opens_thinking(self) -> bool:
        """Whether the generation prompt ends inside a ``<think>`` block (the reply then
        starts with thinking and no opening tag)."""
        return self.reasoning and self.opens_thinking(self.prompt_ids([ChatMessage("user", "Hi")]))

    def opens_thinking(self, prompt: Prompt) -> bool:
        """Whether ``prompt`` ends inside a think block, read from its last tokens."""
        tail = self._llm.detokenize(prompt.ids[-8:], special=True)
        return ends_with_open_think(tail.decode("utf-8", "replace"))

    def prompt_ids(self, messages: Sequence[ChatMessage]) -> Prompt:
        return render_prompt_ids(messages, self._template, self._vocab, self._info.chat_template)

    def fit_prompt(self, messages: Sequence[ChatMessage], reply_room: int) -> tuple[Prompt, int]:
        """The prompt with the oldest turns left out until it fits; and how many were."""
        return fit_prompt_ids(messages, self._template, self._vocab, self._info.chat_template,
                              context_size=self.context_size, reply_room=reply_room)  # fmt: skip

    def stream_chat(
        self,
        messages: list[ChatMessage],
        settings: GenerationSettings,
        cancel: CancelToken | None = None,
    ) -> LocalStream:
        """Start a reply; a conversation that cannot fit raises :class:`InputError` here.

        A last message from the assistant is a reply to continue (one cut at the length
        limit): the prompt is the conversation before it, ending where the assistant's
        reply begins, followed by that reply's text, so the model writes on from there.
        """
        continued: list[int] = []
        if messages and messages[-1].role == "assistant":
            continued = self._vocab.tokenize(messages[-1].content, special=False)
            messages = messages[:-1]
        reply_room = max(1, min(settings.max_tokens, self.context_size // 4))
        prompt, dropped = self.fit_prompt(messages, reply_room + len(continued))
        if continued:
            # A prompt that opens a think block gets it closed: the text continued is answer.
            opened = self.opens_thinking(prompt)
            tag = self._vocab.tokenize(f"\n{THINK_CLOSE}\n\n", special=True) if opened else []
            prompt = replace(prompt, ids=[*prompt.ids, *tag, *continued])
        stream = self.stream_prompt_ids(prompt, settings, cancel)
        stream.stats.dropped_messages = dropped
        return stream

    def stream_prompt_ids(
        self,
        prompt: Prompt,
        settings: GenerationSettings,
        cancel: CancelToken | None = None,
    ) -> LocalStream:
        """Generate from prompt ids made elsewhere (benchmarks, exact-token tests)."""
        if not prompt.ids:
            raise InputError(
                "There is nothing to reply to: the prompt is empty.",
                code=ErrorCode.NOTHING_TO_REPLY,
            )
        lease = self._take()
        stats = GenerationStats(context_size=self.context_size)
        tokens: list[int] = []
        pieces = self._generate_from(prompt, settings, cancel or CancelToken(), stats, tokens,
                                     lease)  # fmt: skip
        return LocalStream(pieces, stats, tokens, lease)

    def _take(self) -> _Lease:
        self._acquire_or_fail()
        return _Lease(self._lock, self._after_reply)

    def _acquire_or_fail(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise ModelLoadError(BUSY_MESSAGE, code=ErrorCode.ENGINE_BUSY)

    def _after_reply(self) -> None:
        if self._close_when_free:
            self.close()

    def _evaluate_prompt(self, ids: list[int], cancel: CancelToken, stats: GenerationStats) -> bool:
        """Bring the context to hold ``ids``, reusing the cached prefix; False if cancelled."""
        llm = self._llm
        cached = llm.input_ids[: llm.n_tokens].tolist()
        keep = common_prefix_length(cached, ids)
        keep = max(0, min(keep, len(ids) - 1))  # the last token is evaluated for its logits
        if keep < llm.n_tokens:
            llm._ctx.kv_cache_seq_rm(-1, keep, -1)
            llm.n_tokens = keep
        todo = ids[keep:]
        stats.evaluated_prompt_tokens = len(todo)
        for start in range(0, len(todo), llm.n_batch):
            if cancel.cancelled:
                return False
            llm.eval(todo[start : start + llm.n_batch])
        return True

    def _generate_from(
        self,
        prompt: Prompt,
        settings: GenerationSettings,
        cancel: CancelToken,
        stats: GenerationStats,
        generated: list[int],
        lease: _Lease,
    ) -> Iterator[StreamPiece]:
        try:
            llm = self._llm
            stats.prompt_tokens = len(prompt.ids)
            started = time.perf_counter()
            if not self._evaluate_prompt(prompt.ids, cancel, stats):
                stats.stop_reason = "cancelled"
                return
            prompt_done = time.perf_counter()
            if stats.evaluated_prompt_tokens:
                stats.prompt_tokens_per_second = stats.evaluated_prompt_tokens / max(
                    prompt_done - started, 1e-9
                )
            sampler = _make_sampler(settings, llm.n_vocab())
            splitter = (
                ThinkingSplitter(starts_thinking=self.opens_thinking(prompt))
                if self.reasoning
                else None
            )

            def pieces_of(text: str) -> list[StreamPiece]:
                if splitter is None:
                    return [StreamPiece("answer", text)] if text else []
                return splitter.feed(text)

            try:
                assembler = Utf8Assembler()
                first_time = last_time = prompt_done
                stats.stop_reason = "length"
                while len(generated) < settings.max_tokens:
                    if cancel.cancelled:
                        stats.stop_reason = "cancelled"
                        break
                    if llm.n_tokens >= self.context_size:
                        break
                    token = int(sampler.sample(llm._ctx, -1))
                    last_time = time.perf_counter()
                    if not generated:
                        first_time = last_time
                        stats.time_to_first_token_s = last_time - started
                    generated.append(token)
                    stats.generated_tokens = len(generated)
                    if token in prompt.stop_ids or self._vocab.is_end_of_generation(token):
                        stats.stop_reason = "stop"
                        break
                    yield from pieces_of(assembler.feed(self._token_bytes(token, len(generated))))
                    if len(generated) < settings.max_tokens and not cancel.cancelled:
                        llm.eval([token])
                tail = assembler.flush()
                stats.context_used = int(llm.n_tokens)
                if len(generated) > 1:
                    stats.tokens_per_second = (len(generated) - 1) / max(
                        last_time - first_time, 1e-9
                    )
                yield from pieces_of(tail)
                if splitter is not None:
                    yield from splitter.flush()
            except GeneratorExit:  # the caller closed the stream early
                stats.stop_reason = "cancelled"
                raise
            finally:
                sampler.close()
                if splitter is not None:
                    stats.thinking_seconds = splitter.thinking_seconds
        finally:
            lease.release()

    def _token_bytes(self, token: int, position: int) -> bytes:
        """The bytes one generated token adds to the reply (``position`` counts from 1)."""
        tag = self._think_tag_pieces.get(token)
        if tag is not None:
            return tag
        strip = position == 1 and self._vocab.strips_first_space
        return bytes(self._vocab.piece(token, strip_space=strip))

    def reset(self) -> None:
        """Forget the KV cache: the next reply evaluates its whole prompt."""
        self._acquire_or_fail()
        try:
            self._llm.reset()
        finally:
            self._lock.release()

    def close(self) -> None:
        """Free the model now, or as soon as the reply in progress lets go of it."""
        if not self._lock.acquire(blocking=False):
            self._close_when_free = True
            return
        try:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
        finally:
            self._lock.release()


def _cache_arguments(flash_attention: bool, kv_cache_type: str) -> dict[str, Any]:
    """llama-cpp-python's arguments for flash attention and the KV-cache element type."""
    import llama_cpp

    kv_type = {
        "f16": llama_cpp.GGML_TYPE_F16,
        "q8_0": llama_cpp.GGML_TYPE_Q8_0,
        "q4_0": llama_cpp.GGML_TYPE_Q4_0,
    }[kv_cache_type]
    return {"flash_attn": flash_attention, "type_k": kv_type, "type_v": kv_type}


def _context_size(requested: int | None, trained: int | None) -> int:
    """The context to create: the request, checked against what the model was trained for."""
    if requested is None:
        return min(trained or DEFAULT_CONTEXT, DEFAULT_CONTEXT)
    if requested < 64:
        raise InputError(f"--context-size must be at least 64, not {requested}.")
    if trained is not None and requested > trained:
        raise InputError(
            f"--context-size {requested} is too large: this model was trained for "
            f"{trained} tokens.",
            hint=f"Use --context-size {trained} or less.",
        )
    return requested
