"""A chat engine that talks to an OpenAI-compatible server (vLLM, llama-server, Ollama).

For models too big for one PC (Bllossom 70B/405B) the user serves them elsewhere and
points Bllossom at the server's base URL. :class:`RemoteEngine` implements the same
:class:`~bllossom_core.types.ChatEngine` protocol as the local llama.cpp engine: text
pieces stream from ``POST {base}/chat/completions`` with ``"stream": true`` (Server-Sent
Events), a :class:`CancelToken` stops it within one chunk, and the stream's ``stats``
carry token counts and speeds. Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

from bllossom_core.errors import RemoteError
from bllossom_core.remote_protocol import (
    Endpoint,
    SSEError,
    decode_event,
    error_detail,
    iter_sse_data,
)
from bllossom_core.types import (
    CancelToken,
    ChatMessage,
    DeviceReport,
    GenerationSettings,
    GenerationStats,
)

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 300.0
"""Longest silence allowed from the server; a huge model may think long before the
first token."""
_CANCEL_POLL_S = 0.05
_ERROR_BODY_LIMIT = 64 * 1024


class RemoteChatStream:
    """One streaming reply. Iterate for text pieces; ``text`` keeps what arrived.

    When the server fails mid-reply, iteration raises :class:`RemoteError` and
    :attr:`text` still holds the partial reply (``stats.stop_reason == "error"``).
    Cancelling (the token, or :meth:`cancel`) ends the iteration quietly with
    ``stats.stop_reason == "cancelled"``.
    """

    def __init__(
        self,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        endpoint: Endpoint,
        cancel: CancelToken | None,
        started_at: float,
        read_timeout_s: float,
        sock: socket.socket | None = None,
    ):
        self._connection = connection
        # http.client drops ``connection.sock`` once a response reads until the server
        # closes (no length, not chunked); the response still reads from this socket.
        self._sock = sock if sock is not None else connection.sock
        self._read_timeout_s = read_timeout_s
        self._response = response
        self._endpoint = endpoint
        self._cancel_token = cancel or CancelToken()
        self._started_at = started_at
        self._pieces: list[str] = []
        self._stats = GenerationStats()
        self._done = threading.Event()
        self._iterated = False
        self._final = False

    @property
    def text(self) -> str:
        return "".join(self._pieces)

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
        self._connection.close()

    def __iter__(self) -> Iterator[str]:
        if self._iterated:
            raise RuntimeError("a chat stream can be iterated only once")
        self._iterated = True
        watcher = threading.Thread(target=self._watch_cancel, name="remote-cancel", daemon=True)
        watcher.start()
        try:
            yield from self._pieces_from_server()
        finally:
            if not self._final:  # the caller stopped iterating early
                self._stats.stop_reason = "cancelled"
            self.close()
            watcher.join(timeout=5)

    def _pieces_from_server(self) -> Iterator[str]:
        first_at: float | None = None
        last_at = self._started_at
        chunks = 0
        usage: dict[str, Any] | None = None
        finish_reason: str | None = None
        finished = False
        try:
            for data in iter_sse_data(self._response.readline):
                if self._cancel_token.cancelled:
                    break
                if data.strip() == "[DONE]":
                    finished = True
                    break
                event = decode_event(data, self._endpoint)
                usage = event.get("usage") or usage
                for choice in event.get("choices") or ():
                    finish_reason = choice.get("finish_reason") or finish_reason
                    piece = (choice.get("delta") or {}).get("content")
                    if isinstance(piece, str) and piece:
                        last_at = time.perf_counter()
                        first_at = first_at or last_at
                        chunks += 1
                        self._pieces.append(piece)
                        self._fill_stats(first_at, last_at, chunks, usage, "stop", final=False)
                        yield piece
            else:
                finished = finish_reason is not None
        except RemoteError:  # an error event or an unreadable one
            self._fill_stats(first_at, last_at, chunks, usage, "error")
            raise
        except (OSError, http.client.HTTPException, SSEError) as error:
            if not self._cancel_token.cancelled:
                self._fill_stats(first_at, last_at, chunks, usage, "error")
                raise self._died(error) from error
        if self._cancel_token.cancelled:
            self._fill_stats(first_at, last_at, chunks, usage, "cancelled")
            return
        if not finished:
            self._fill_stats(first_at, last_at, chunks, usage, "error")
            raise self._died(None)
        self._fill_stats(
            first_at, last_at, chunks, usage, "length" if finish_reason == "length" else "stop"
        )

    def _died(self, cause: BaseException | None) -> RemoteError:
        if isinstance(cause, TimeoutError):
            return RemoteError(
                f"The server at {self._endpoint.address} stopped sending the reply "
                f"(nothing arrived for {self._read_timeout_s:g} s).",
                hint="The part that arrived was kept; check the server, then regenerate.",
            )
        detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        return RemoteError(
            f"The server at {self._endpoint.address} stopped in the middle of the reply{detail}.",
            hint="The part that arrived was kept; check the server's log, then regenerate.",
        )

    def _fill_stats(
        self,
        first_at: float | None,
        last_at: float,
        chunks: int,
        usage: dict[str, Any] | None,
        stop_reason: Any,
        final: bool = True,
    ) -> None:
        stats = self._stats
        stats.stop_reason = stop_reason
        self._final = final
        usage = usage or {}
        stats.generated_tokens = int(usage.get("completion_tokens") or chunks)
        stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        stats.evaluated_prompt_tokens = max(0, stats.prompt_tokens - cached)
        stats.context_used = stats.prompt_tokens + stats.generated_tokens
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
        sock = self._sock
        if sock is not None:
            # shutdown() wakes a thread blocked in recv(); close() alone may not.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


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

    def list_models(self) -> list[str]:
        """The model ids the server offers (``GET {base}/models``)."""
        connection, response, _ = self._request("GET", "/models", None)
        try:
            body = response.read(_ERROR_BODY_LIMIT * 16)
        except (OSError, http.client.HTTPException) as error:
            raise self._unreachable(error) from error
        finally:
            connection.close()
        try:
            listing = json.loads(body)
            return [str(item["id"]) for item in listing["data"]]
        except (ValueError, KeyError, TypeError) as error:
            raise RemoteError(
                f"The server at {self.endpoint.address} answered /models with something "
                "that is not an OpenAI model list.",
                hint="Check that the address is an OpenAI-compatible API.",
            ) from error

    def stream_chat(
        self,
        messages: list[ChatMessage],
        settings: GenerationSettings,
        cancel: CancelToken | None = None,
    ) -> RemoteChatStream:
        """Send the conversation; connection and HTTP errors are raised here, at once."""
        self._resolve_model()
        payload = self._payload(messages, settings)
        started_at = time.perf_counter()
        connection, response, sock = self._request("POST", "/chat/completions", payload)
        content_type = response.getheader("Content-Type") or ""
        if "text/event-stream" not in content_type:
            connection.close()
            raise RemoteError(
                f"The server at {self.endpoint.address} did not stream its reply "
                f"(it sent {content_type or 'no content type'}).",
                hint="Check that the address is an OpenAI-compatible API with streaming.",
            )
        stream = RemoteChatStream(
            connection, response, self.endpoint, cancel, started_at, self.read_timeout_s, sock
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

    def _resolve_model(self) -> None:
        if self._model_resolved:
            return
        try:
            offered = self.list_models()
        except RemoteError:
            offered = []
        self.model = offered[0] if offered else None
        self._model_resolved = True

    def _payload(self, messages: list[ChatMessage], settings: GenerationSettings) -> bytes:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
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

    def _request(
        self, method: str, path: str, payload: bytes | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, socket.socket]:
        """Send a request; returns the connection, the response and the socket it
        arrives on (``connection.sock`` may be cleared while the response is read)."""
        endpoint = self.endpoint
        connection: http.client.HTTPConnection
        if endpoint.scheme == "https":
            connection = http.client.HTTPSConnection(
                endpoint.host, endpoint.port, timeout=self.connect_timeout_s
            )
        else:
            connection = http.client.HTTPConnection(
                endpoint.host, endpoint.port, timeout=self.connect_timeout_s
            )
        headers = {"Accept": "text/event-stream" if payload else "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            connection.connect()
            sock = connection.sock
            assert sock is not None
            sock.settimeout(self.read_timeout_s)
            connection.request(method, endpoint.base_path + path, body=payload, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise self._unreachable(error) from error
        if response.status >= 400:
            try:
                detail = error_detail(response.read(_ERROR_BODY_LIMIT))
            except (OSError, http.client.HTTPException):
                detail = ""
            finally:
                connection.close()
            raise self._http_error(response.status, detail)
        return connection, response, sock

    def _unreachable(self, error: BaseException) -> RemoteError:
        where = self.endpoint.address
        if isinstance(error, ConnectionRefusedError):
            return RemoteError(
                f"Could not connect to {where}: nothing is listening there.",
                hint="Start the server (vLLM, llama-server, Ollama) or check the address.",
            )
        if isinstance(error, socket.gaierror):
            return RemoteError(
                f"The server name '{self.endpoint.host}' could not be found.",
                hint="Check the address and your network connection.",
            )
        if isinstance(error, TimeoutError):
            return RemoteError(
                f"The server at {where} did not answer in time.",
                hint="Check that it is running and reachable from this PC.",
            )
        if isinstance(error, ssl.SSLError):
            return RemoteError(
                f"A secure connection to {where} could not be set up ({error}).",
                hint="Check the https address, or use http:// for a server on your network.",
            )
        return RemoteError(
            f"The connection to {where} failed ({type(error).__name__}: {error}).",
            hint="Check that the server is running and reachable.",
        )

    def _http_error(self, status: int, detail: str) -> RemoteError:
        where = self.endpoint.url
        said = f" The server said: {detail}" if detail else ""
        if status in (401, 403):
            return RemoteError(
                f"The server at {where} refused the API key (HTTP {status}).{said}",
                hint="Enter the server's API key in the endpoint settings.",
            )
        if status == 404:
            return RemoteError(
                f"There is no OpenAI-compatible API at {where} (HTTP 404).{said}",
                hint="Check the base URL; it usually ends in /v1 (e.g. http://host:8000/v1).",
            )
        return RemoteError(
            f"The server at {where} answered with an error (HTTP {status}).{said}",
            hint="Check the server's log and the chosen model.",
        )
