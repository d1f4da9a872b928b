"""The HTTP side: an OpenAI-compatible Starlette app over one loaded engine.

Endpoints: ``GET /health`` (no key needed), ``GET /v1/models``, ``POST
/v1/chat/completions`` and ``POST /v1/completions`` (raw prompt, special tokens
parsed). Every request takes its turn at the engine through the shared
:class:`~bllossom_core.server.gate.ReplyGate`; a client that goes away stops its
reply within one token, whether it was streaming, waiting for a whole reply or still
waiting in line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bllossom_core.engine import LocalEngine
from bllossom_core.errors import BllossomError, ErrorCode, InputError
from bllossom_core.server import protocol
from bllossom_core.server.api_errors import (
    SERVER_ERROR,
    ApiError,
    from_core_error,
    line_full,
    unauthorized,
)
from bllossom_core.server.gate import LineFull, ReplyGate, Turn
from bllossom_core.server.options import ServerOptions
from bllossom_core.server.replies import Finished, ReplyRun, StartReply
from bllossom_core.server.responses import ReplyShape
from bllossom_core.templates import Prompt
from bllossom_core.types import CancelToken, ChatMessage, ChatStream, GenerationSettings

log = logging.getLogger("bllossom_core.server")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ServerState:
    """What the request handlers share: the engine, its gate, the replies running."""

    def __init__(self, engine: LocalEngine, options: ServerOptions, alias: str,
                 gate: ReplyGate) -> None:  # fmt: skip
        self.engine = engine
        self.options = options
        self.alias = alias
        self.gate = gate
        self.runs: set[ReplyRun] = set()
        self.closing = False
        self.background: set[asyncio.Future[None]] = set()
        """Set when the server stops: requests still waiting in line get 503."""
        self.created = int(time.time())
        self._key = options.api_key.encode("utf-8") if options.api_key else None

    def authorize(self, request: Request) -> None:
        if self._key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # compare_digest takes as long whatever the key's first wrong byte: no timing leak
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), self._key
        ):
            raise unauthorized()

    def cancel_all(self) -> None:
        for run in list(self.runs):
            run.cancel()

    def add_run(self, run: ReplyRun) -> None:
        """Track ``run`` so that :meth:`cancel_all` reaches it.

        :meth:`LocalServer.stop` (another thread) sets ``closing`` before it calls
        :meth:`cancel_all`: a run added after that loop is cancelled here instead.
        """
        self.runs.add(run)
        if self.closing:
            run.cancel()


def build_app(state: ServerState) -> ASGIApp:
    routes = [
        Route("/health", _guarded(health), methods=["GET"]),
        Route("/v1/models", _guarded(models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", _guarded(model), methods=["GET"]),
        Route("/v1/chat/completions", _guarded(chat_completions), methods=["POST"]),
        Route("/v1/completions", _guarded(completions), methods=["POST"]),
    ]
    middleware = []
    if state.options.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=list(state.options.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        ))  # fmt: skip
    app = Starlette(
        routes=routes, middleware=middleware,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )  # fmt: skip
    app.state.server = state
    return AccessLog(app)


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Every refusal as an OpenAI error body; a bug as a 500 with one log line."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as error:
            return _json_error(error)
        except Exception as error:
            return _json_error(_internal(error))

    return guarded


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


async def health(request: Request) -> Response:
    gate = _state(request).gate
    return JSONResponse({"status": "ok", "busy": gate.holder is not None,
                         "waiting": gate.waiting})  # fmt: skip


async def models(request: Request) -> Response:
    state = _state(request)
    state.authorize(request)
    return JSONResponse({"object": "list", "data": [_model_card(state)]})


async def model(request: Request) -> Response:
    state = _state(request)
    state.authorize(request)
    if request.path_params["model_id"] != state.alias:
        raise ApiError(404, f"The model '{request.path_params['model_id']}' does not exist; "
                       f"this server serves '{state.alias}'.", code="model_not_found")  # fmt: skip
    return JSONResponse(_model_card(state))


def _model_card(state: ServerState) -> dict[str, Any]:
    return {"id": state.alias, "object": "model", "created": state.created,
            "owned_by": "bllossom"}  # fmt: skip


async def chat_completions(request: Request) -> Response:
    state = _state(request)
    state.authorize(request)
    body = protocol.validate(protocol.ChatRequest, protocol.parse_json(await _body(request)))
    messages = protocol.chat_messages(body)
    spec = protocol.reply_spec(body, state.engine.context_size)
    if state.options.log_prompts:
        log.info("prompt: %s", json.dumps([m.__dict__ for m in messages], ensure_ascii=False))
    engine = state.engine

    def start(cancel: CancelToken) -> ChatStream:
        return _start_chat(engine, messages, spec.settings, cancel)

    shape = ReplyShape("chat", state.alias, spec.include_usage)
    return await _answer(request, state, start, spec, shape)


async def completions(request: Request) -> Response:
    state = _state(request)
    state.authorize(request)
    body = protocol.validate(protocol.CompletionRequest, protocol.parse_json(await _body(request)))
    if body.echo or body.suffix or body.best_of not in (None, 1):
        raise ApiError(400, "echo, suffix and best_of are not supported by this server.",
                       code="invalid_value")  # fmt: skip
    text = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    spec = protocol.reply_spec(body, state.engine.context_size)
    if state.options.log_prompts:
        log.info("prompt: %s", json.dumps(text, ensure_ascii=False))
    engine = state.engine

    def start(cancel: CancelToken) -> ChatStream:
        return _start_raw(engine, text, spec.settings, cancel)

    shape = ReplyShape("completion", state.alias, spec.include_usage)
    return await _answer(request, state, start, spec, shape)


def _start_chat(engine: LocalEngine, messages: list[ChatMessage], settings: GenerationSettings,
                cancel: CancelToken) -> ChatStream:  # fmt: skip
    """The engine's reply, refused when the conversation would not fit whole.

    In the app the engine leaves the oldest turns out of a long conversation; an API
    client expects its messages to be used as sent, so that is an error here.
    """
    stream = engine.stream_chat(messages, settings, cancel)
    if stream.stats.dropped_messages:
        stream.close()
        raise InputError(
            f"The messages and room for the reply ({settings.max_tokens} tokens, at most a "
            f"quarter of the context) do not fit the context of {engine.context_size} tokens.",
            hint="Send fewer or shorter messages, or ask for a smaller max_tokens.",
            code=ErrorCode.MESSAGE_TOO_LONG,
        )
    return stream


def _start_raw(engine: LocalEngine, text: str, settings: GenerationSettings,
               cancel: CancelToken) -> ChatStream:  # fmt: skip
    vocab = engine.vocab
    ids = vocab.tokenize(text, special=True)  # a raw prompt spells its own control tokens
    # The templates' BOS rule: add one when the model asks for it, unless already there.
    if vocab.add_bos and vocab.bos_id is not None and (not ids or ids[0] != vocab.bos_id):
        ids.insert(0, vocab.bos_id)
    if len(ids) >= engine.context_size:
        raise InputError(
            f"The prompt needs {len(ids)} tokens but the context holds {engine.context_size}.",
            hint="Shorten it or load the model with a larger context size.",
            code=ErrorCode.MESSAGE_TOO_LONG,
        )
    return engine.stream_prompt_ids(Prompt(ids, "raw", frozenset()), settings, cancel)


async def _body(request: Request) -> bytes:
    limit = _state(request).options.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {limit // 1024} KiB.",
                    code="request_too_large")  # fmt: skip


class ClientWatch:
    """Notices the client going away (while it waits in line or while its reply runs)."""

    def __init__(self, request: Request) -> None:
        self.gone = asyncio.Event()
        self.run: ReplyRun | None = None
        self._receive = request.receive
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                if self.run is not None:
                    self.run.cancel()
                return

    def close(self) -> None:
        self._task.cancel()


async def _take_turn(gate: ReplyGate, watch: ClientWatch, max_waiting: int) -> Turn | None:
    """The engine's turn, or None when the client left while waiting in line."""
    waiting = asyncio.ensure_future(gate.wait("api"))
    gone = asyncio.ensure_future(watch.gone.wait())
    await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    gone.cancel()
    if not waiting.done():
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        return None
    try:
        turn = waiting.result()
    except LineFull as full:
        raise line_full(full.retry_after_s, max_waiting) from full
    if watch.gone.is_set():
        gate.leave(turn)
        return None
    return turn


async def _answer(request: Request, state: ServerState, start: StartReply,
                  spec: protocol.ReplySpec, shape: ReplyShape) -> Response:  # fmt: skip
    watch = ClientWatch(request)
    run: ReplyRun | None = None
    try:
        turn = await _take_turn(state.gate, watch, state.options.max_waiting)
        if turn is None:
            watch.close()
            return Response(status_code=499)  # nobody is listening any more
        if state.closing:
            state.gate.leave(turn)
            raise ApiError(503, "The server is stopping.", type=SERVER_ERROR,
                           code="server_stopping")  # fmt: skip
        run = ReplyRun(start, spec.stops, lambda: state.gate.leave(turn),
                       state.options.busy_wait_s)  # fmt: skip
        watch.run = run
        run.start()
        state.add_run(run)
        try:
            await run.started()
        except BllossomError as error:
            raise from_core_error(error) from error
    except BaseException:  # refused, failed to start, or this request was cancelled
        watch.close()
        if run is not None:
            run.cancel()
            state.runs.discard(run)
        raise
    finish = _Finisher(request, state, run, watch)
    if spec.stream:
        return StreamingResponse(_stream(shape, run, finish), media_type="text/event-stream",
                                 headers=SSE_HEADERS)  # fmt: skip
    answer: list[str] = []
    thinking: list[str] = []
    try:
        async for kind, text in run.pieces():
            (thinking if kind == "thinking" else answer).append(text)
    except BllossomError as error:
        raise from_core_error(error) from error
    finally:
        finish()
    done = run.finished
    assert done is not None
    return JSONResponse(shape.whole("".join(answer), "".join(thinking), done.finish_reason,
                                    done.stats))  # fmt: skip


async def _stream(
    shape: ReplyShape, run: ReplyRun, finish: Callable[[], None]
) -> AsyncIterator[bytes]:
    try:
        opening = shape.opening()
        if opening:
            yield opening
        try:
            async for kind, text in run.pieces():
                yield shape.piece(kind, text)
        except Exception as error:  # headers are sent: the error goes in the stream
            failure = (from_core_error(error) if isinstance(error, BllossomError)
                       else _internal(error))  # fmt: skip
            yield b"data: " + failure.body_bytes() + b"\n\n"
            return
        done = run.finished
        assert done is not None
        yield shape.closing(done.finish_reason, done.stats)
    finally:
        finish()


class _Finisher:
    """End of a reply's request: stop the reply if still running, note usage for the log."""

    def __init__(self, request: Request, state: ServerState, run: ReplyRun,
                 watch: ClientWatch) -> None:  # fmt: skip
        self._request, self._state, self._run, self._watch = request, state, run, watch

    def __call__(self) -> None:
        self._run.cancel()
        self._watch.close()
        self._state.runs.discard(self._run)
        done = self._run.finished
        if done is not None:
            self._request.state.usage = _usage_note(done)
        else:  # the client left mid-reply: log how the reply ended once it has
            self._request.state.usage = "client gone"
            task = asyncio.ensure_future(
                self._log_end(self._request.method, self._request.url.path)
            )
            self._state.background.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._state.background.discard)

    async def _log_end(self, method: str, path: str) -> None:
        with contextlib.suppress(Exception):
            async for _ in self._run.pieces():
                pass
        done = self._run.finished
        if done is not None:
            log.info("%s %s reply ended: %s", method, path, _usage_note(done))


def _usage_note(done: Finished) -> str:
    stats = done.stats
    note = (f"prompt={stats.prompt_tokens} "
            f"cached={stats.prompt_tokens - stats.evaluated_prompt_tokens} "
            f"completion={stats.generated_tokens} finish={done.finish_reason}")  # fmt: skip
    if done.tokens_after_cancel is not None:
        note += f" tokens_after_disconnect={done.tokens_after_cancel}"
    return note


def _json_error(error: ApiError) -> Response:
    return Response(error.body_bytes(), status_code=error.status, headers=error.headers,
                    media_type="application/json")  # fmt: skip


async def _not_found(request: Request, exc: Exception) -> Response:
    return _json_error(ApiError(404, f"There is no {request.url.path} here; the API is under "
                                "/v1 (e.g. /v1/chat/completions).", code="not_found"))  # fmt: skip


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _json_error(ApiError(405, f"{request.method} is not allowed on {request.url.path}.",
                                code="method_not_allowed"))  # fmt: skip


def _internal(error: BaseException) -> ApiError:
    log.error("internal error: %s: %s", type(error).__name__, error)
    return ApiError(500, f"The server failed: {type(error).__name__}: {error}",
                    type=SERVER_ERROR, code="internal_error")  # fmt: skip


class AccessLog:
    """One line per request: method, path, status, tokens, seconds (never the prompt)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            usage = scope.get("state", {}).get("usage", "")
            log.info("%s %s %d %s%.3fs", scope["method"], scope["path"], status,
                     f"{usage} " if usage else "", time.perf_counter() - started)  # fmt: skip
