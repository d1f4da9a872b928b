"""A chat engine that talks to an OpenAI-compatible server (vLLM, llama-server, Ollama).

For models too big for one PC (Bllossom 70B/405B) the user serves them elsewhere and
points Bllossom at the server's base URL. :class:`RemoteEngine` implements the same
:class:`~bllossom_core.types.ChatEngine` protocol as the local llama.cpp engine: text
pieces stream from ``POST {base}/chat/completions`` with ``"stream": true`` (Server-Sent
Events), a :class:`CancelToken` stops it within one chunk (also while waiting for the
server to answer), and the stream's ``stats`` carry token counts and speeds. A
reasoning model's thinking (``reasoning_content`` deltas, or a ``<think>`` block in the
content) comes out of :meth:`RemoteChatStream.events` apart from the answer.

A server is not trusted: the reply is cut at ``max_tokens`` whatever the server sends
(memory stays bounded), JSON surrogate escapes never reach the text unpaired,
redirects are refused, and every failure is a :class:`RemoteError` whose code says
what happened: ``SERVER_UNREACHABLE`` (no answer at all), ``AUTH_FAILED``,
``REPLY_INTERRUPTED`` (cut off mid-reply; the part that arrived is kept) or
``SERVER_ERROR``. Only the standard library is used for HTTP.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from bllossom_core._utf8 import SurrogateJoiner, valid_text
from bllossom_core.errors import ErrorCode, RemoteError
from bllossom_core.reasoning import ThinkingSplitter, answer_only
from bllossom_core.remote_http import (
    ERROR_BODY_LIMIT,
    Opened,
    ReplyBudget,
    WireError,
    guarded_readline,
    open_request,
)
from bllossom_core.remote_protocol import (
    Endpoint,
    SSEError,
    decode_event,
    event_delta,
    iter_sse_data,
)
from bllossom_core.types import (
    CancelToken,
    ChatMessage,
    DeviceReport,
    GenerationSettings,
    GenerationStats,
    StopReason,
    StreamPiece,
)

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 300.0
"""Longest silence allowed from the server; a huge model may think long before the
first token."""
_CANCEL_POLL_S = 0.05
_MODEL_LIST_LIMIT = 16 * ERROR_BODY_LIMIT


class RemoteChatStream:
    """One streaming reply. Iterate for the answer's text pieces, or use :meth:`events`
    for thinking and answer pieces; :attr:`text` and :attr:`thinking` keep what arrived.

    When the server fails mid-reply, iteration raises :class:`RemoteError` and
    :attr:`text` still holds the partial reply (``stats.stop_reason == "error"``).
    Cancelling (the token, or :meth:`cancel`) ends the iteration quietly with
    ``stats.stop_reason == "cancelled"``; a stream cancelled before the server
    answered yields nothing.
    """

    def __init__(
        self,
        opened: Opened | None,
        endpoint: Endpoint,
        cancel: CancelToken | None,
        started_at: float,
        read_timeout_s: float,
        max_tokens: int,
    ):
        self._opened = opened
        self._endpoint = endpoint
        self._read_timeout_s = read_timeout_s
        self._cancel_token = cancel or CancelToken()
        self._started_at = started_at
        self._budget = ReplyBudget(max_tokens)
        self._answer: list[str] = []
        self._thinking: list[str] = []
        self._stats = GenerationStats()
        self._done = threading.Event()
        self._iterated = False
        self._final = False
        self._first_at: float | None = None
        self._last_at = started_at
        self._chunks = 0
        self._usage: dict[str, Any] | None = None
        self._thinking_began: float | None = None
        self._thinking_ended: float | None = None
        if opened is None:
            self._fill_stats("cancelled")

    @property
    def text(self) -> str:
        """The answer so far."""
        return "".join(self._answer)

    @property
    def thinking(self) -> str:
        """The thinking so far (reasoning models)."""
        return "".join(self._thinking)

    @property
    def stats(self) -> GenerationStats:
        """Up to date after every piece, so a caller that stops iterating early (after
        cancelling) still gets the counts and speeds so far."""
        if not self._final and self._cancel_token.cancelled:
            self._stats.stop_reason = "cancelled"
        return self._stats

    def cancel(self) -> None:
        """Stop the reply from any thread; the iterating thread ends within one chunk."""
        self._cancel_token.cancel()
        self._abort_socket()

    def close(self) -> None:
        self._done.set()
        if self._opened is not None:
            self._opened.connection.close()

    def __iter__(self) -> Iterator[str]:
        """The answer's text pieces (thinking left out)."""
        return answer_only(self.events())

    def events(self) -> Iterator[StreamPiece]:
        """Thinking and answer pieces, in order."""
        if self._iterated:
            raise RuntimeError("a chat stream can be iterated only once")
        self._iterated = True
        return self._events()

    def _events(self) -> Iterator[StreamPiece]:
        if self._opened is None:
            return
        watcher = threading.Thread(target=self._watch_cancel, name="remote-cancel", daemon=True)
        watcher.start()
        try:
            yield from self._pieces_from_server(self._opened)
        finally:
            if not self._final:  # the caller stopped iterating early
                self._stats.stop_reason = "cancelled"
            self.close()
            watcher.join(timeout=5)

    def _pieces_from_server(self, opened: Opened) -> Iterator[StreamPiece]:
        answer_joiner, thinking_joiner = SurrogateJoiner(), SurrogateJoiner()
        splitter = ThinkingSplitter()  # a <think> block at the start of the content
        finish_reason: str | None = None
        finished = False
        try:
            for data in iter_sse_data(guarded_readline(opened.response)):
                if self._cancel_token.cancelled:
                    break
                if data.strip() == "[DONE]":
                    finished = True
                    break
                event = decode_event(data, self._endpoint, started=self._chunks > 0)
                self._usage = event.get("usage") or self._usage
                delta = event_delta(event)
                finish_reason = delta.finish_reason or finish_reason
                if not (delta.thinking or delta.answer):
                    continue
                if not self._budget.count_event(self._usage):
                    break  # the server ignores max_tokens: stop reading
                pieces = []
                if delta.thinking:
                    pieces.append(StreamPiece("thinking", thinking_joiner.feed(delta.thinking)))
                pieces += splitter.feed(answer_joiner.feed(delta.answer))
                yield from self._accepted(pieces)
                if self._budget.exhausted:
                    break
            else:
                finished = finish_reason is not None
            tail = [StreamPiece("thinking", thinking_joiner.flush())]
            tail += splitter.feed(answer_joiner.flush()) + splitter.flush()
            yield from self._accepted(tail)
        except RemoteError:  # an error event or an unreadable one
            self._fill_stats("error")
            raise
        except (WireError, SSEError) as error:
            if not self._cancel_token.cancelled:
                self._fill_stats("error")
                raise self._died(error) from error
        if self._cancel_token.cancelled:
            self._fill_stats("cancelled")
        elif self._budget.exhausted or finish_reason == "length":
            self._fill_stats("length")
        elif not finished:
            self._fill_stats("error")
            raise self._died(None)
        else:
            self._fill_stats("stop")

    def _accepted(self, pieces: list[StreamPiece]) -> Iterator[StreamPiece]:
        """Record and yield ``pieces``, cut where the reply reaches its size limit."""
        for whole in pieces:
            piece = self._budget.take(whole)
            if piece is None:
                continue
            now = time.perf_counter()
            self._last_at = now
            if self._first_at is None:
                self._first_at = now
            if piece.kind == "thinking":
                self._thinking_began = self._thinking_began or now
                self._thinking.append(piece.text)
            else:
                if self._thinking_began is not None and self._thinking_ended is None:
                    self._thinking_ended = now
                self._answer.append(piece.text)
            self._chunks += 1
            self._fill_stats("stop", final=False)
            yield piece

    def _died(self, cause: BaseException | None) -> RemoteError:
        where = self._endpoint.address
        started = self._chunks > 0
        code = ErrorCode.REPLY_INTERRUPTED if started else ErrorCode.SERVER_ERROR
        kept = "The part that arrived was kept; " if started else ""

        def advice(action: str) -> str:
            text = kept + action
            return text[0].upper() + text[1:]

        reason = cause.__cause__ if isinstance(cause, WireError) else cause
        if isinstance(reason, TimeoutError):
            what = "stopped sending the reply" if started else "sent no reply"
            return RemoteError(
                f"The server at {where} {what} (nothing arrived for {self._read_timeout_s:g} s).",
                hint=advice("check the server, then regenerate."),
                code=code,
            )
        if isinstance(cause, SSEError) or (isinstance(cause, WireError) and cause.malformed):
            return RemoteError(
                f"The server at {where} sent a malformed reply ({cause}).",
                hint=advice("check that the address is an OpenAI-compatible API."),
                code=code,
            )
        detail = f" ({type(reason).__name__}: {reason})" if reason is not None else ""
        if started:
            message = f"The server at {where} stopped in the middle of the reply{detail}."
        else:
            message = f"The server at {where} closed the connection without a reply{detail}."
        return RemoteError(
            message, hint=advice("check the server's log, then regenerate."), code=code
        )

    def _fill_stats(self, stop_reason: StopReason, final: bool = True) -> None:
        stats = self._stats
        stats.stop_reason = stop_reason
        self._final = final
        usage = self._usage or {}
        with contextlib.suppress(TypeError, ValueError):
            stats.generated_tokens = int(usage.get("completion_tokens") or self._chunks)
            stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            details = usage.get("prompt_tokens_details") or {}
            cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
            stats.evaluated_prompt_tokens = max(0, stats.prompt_tokens - cached)
        stats.context_used = stats.prompt_tokens + stats.generated_tokens
        if self._thinking_began is not None:
            end = self._thinking_ended if self._thinking_ended is not None else self._last_at
            stats.thinking_seconds = max(0.0, end - self._thinking_began)
        first_at, last_at = self._first_at, self._last_at
        if first_at is not None:
            stats.time_to_first_token_s = first_at - self._started_at
            if stats.evaluated_prompt_tokens and stats.time_to_first_token_s > 0:
                stats.prompt_tokens_per_second = (
                    stats.evaluated_prompt_tokens / stats.time_to_first_token_s
                )
            if stats.generated_tokens > 1 and last_at > first_at:
                stats.tokens_per_second = (stats.generated_tokens - 1) / (last_at - first_at)

    def _watch_cancel(self) -> None:
        while not self._done.wait(_CANCEL_POLL_S):
            if self._cancel_token.cancelled:
                self._abort_socket()
                return

    def _abort_socket(self) -> None:
        if self._opened is not None:
            self._opened.abort()


class RemoteEngine:
    """Chat with a model served by any OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``base_url`` may be given with or without the trailing ``/v1``. ``api_key`` is sent
    as a Bearer token. ``model`` is the served model's id; when ``None`` the first one
    from :meth:`list_models` is used (or none is sent, for single-model servers).
    ``send_extra_sampling`` also sends ``top_k`` and the repeat penalty, which vLLM,
    llama.cpp and Ollama understand but api.openai.com rejects.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        send_extra_sampling: bool = True,
    ):
        self.endpoint = Endpoint.parse(base_url)
        self.api_key = api_key or None
        self.model = model or None
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.send_extra_sampling = send_extra_sampling
        self._model_resolved = self.model is not None
        self._lock = threading.Lock()
        self._open_streams: set[RemoteChatStream] = set()

    @property
    def device(self) -> DeviceReport:
        return DeviceReport(
            backend="remote",
            summary=f"Remote: {self.endpoint.host} ({self._model_label})",
        )

    @property
    def display_name(self) -> str:
        return f"{self._model_label} @ {self.endpoint.address}"

    @property
    def _model_label(self) -> str:
        # llama.cpp servers name the model by its file path; the file name says enough.
        if not self.model:
            return "server's default model"
        return self.model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or self.model

    def list_models(self, cancel: CancelToken | None = None) -> list[str]:
        """Test the connection and list the model ids the server offers (``GET /models``).

        What the desktop calls when the user adds a server: a :class:`RemoteError`
        says why it cannot be used (``SERVER_UNREACHABLE``, ``AUTH_FAILED``,
        ``SERVER_ERROR``); an empty list means it serves a single unnamed model.
        Cancelling returns ``[]``.
        """
        opened = self._open("GET", "/models", None, cancel)
        if opened is None:
            return []
        try:
            body = opened.response.read(_MODEL_LIST_LIMIT)
        except (OSError, http.client.HTTPException, ValueError, OverflowError) as error:
            raise RemoteError(
                f"The server at {self.endpoint.address} stopped while listing its models "
                f"({type(error).__name__}: {error}).",
                hint="Check the server's log, then try again.",
                code=ErrorCode.SERVER_ERROR,
            ) from error
        finally:
            opened.connection.close()
        try:
            listing = json.loads(body)
            return [item["id"] for item in listing["data"] if isinstance(item["id"], str)]
        except (ValueError, KeyError, TypeError) as error:
            raise RemoteError(
                f"The server at {self.endpoint.address} answered /models with something "
                "that is not an OpenAI model list.",
                hint="Check that the address is an OpenAI-compatible API.",
                code=ErrorCode.SERVER_ERROR,
            ) from error

    def stream_chat(
        self,
        messages: list[ChatMessage],
        settings: GenerationSettings,
        cancel: CancelToken | None = None,
    ) -> RemoteChatStream:
        """Send the conversation; connection and HTTP errors are raised here, at once.

        Cancelling ``cancel`` (or Ctrl-C in the main thread) while the server has not
        answered yet returns a stream that yields nothing, with ``stop_reason``
        ``"cancelled"``: it stops the reply, not the program.
        """
        cancel = cancel or CancelToken()
        self._resolve_model(cancel)
        payload = self._payload(messages, settings)
        started_at = time.perf_counter()
        opened = self._open("POST", "/chat/completions", payload, cancel)
        if opened is not None:
            content_type = opened.response.getheader("Content-Type") or ""
            if "text/event-stream" not in content_type:
                opened.connection.close()
                raise RemoteError(
                    f"The server at {self.endpoint.address} did not stream its reply "
                    f"(it sent {content_type[:100] or 'no content type'}).",
                    hint="Check that the address is an OpenAI-compatible API with streaming.",
                    code=ErrorCode.SERVER_ERROR,
                )
        stream = RemoteChatStream(
            opened, self.endpoint, cancel, started_at, self.read_timeout_s, settings.max_tokens
        )
        with self._lock:
            self._open_streams = {s for s in self._open_streams if not s._done.is_set()}
            self._open_streams.add(stream)
        return stream

    def close(self) -> None:
        """Stop every reply still streaming from this engine."""
        with self._lock:
            streams, self._open_streams = self._open_streams, set()
        for stream in streams:
            stream.cancel()

    def _resolve_model(self, cancel: CancelToken) -> None:
        if self._model_resolved:
            return
        try:
            offered = self.list_models(cancel)
        except RemoteError as error:
            if error.code is ErrorCode.SERVER_UNREACHABLE:
                return  # the reply fails the same way; ask again once the server is back
            offered = []
        if cancel.cancelled:
            return  # ask again next time
        self.model = offered[0] if offered else None
        self._model_resolved = True

    def _payload(self, messages: list[ChatMessage], settings: GenerationSettings) -> bytes:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": valid_text(m.content)} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_tokens,
        }
        if self.model:
            body["model"] = self.model
        if settings.seed is not None:
            body["seed"] = settings.seed
        if self.send_extra_sampling:
            body["top_k"] = settings.top_k
            body["repeat_penalty"] = settings.repeat_penalty  # llama.cpp, Ollama
            body["repetition_penalty"] = settings.repeat_penalty  # vLLM
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _open(
        self, method: str, path: str, payload: bytes | None, cancel: CancelToken | None
    ) -> Opened | None:
        return open_request(
            self.endpoint,
            method,
            path,
            payload,
            api_key=self.api_key,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            cancel=cancel,
        )
