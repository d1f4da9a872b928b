"""Run the API server on a background thread, over an engine the caller already loaded.

Used by ``bllossom serve`` and by the desktop app's "Local API server" switch::

    server = LocalServer(engine, port=8080, api_key=None,
                         on_busy_change=lambda busy: ...)  # called from server threads
    server.start()            # raises InputError (code API_KEY_REQUIRED, PORT_IN_USE, ...)
    print(server.url)         # http://127.0.0.1:8080/v1
    with server.app_turn():   # the app's own reply: waits for the API reply in progress
        stream = engine.stream_chat(...)
        ...
    server.stop()             # stops replies in progress; the engine stays loaded
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from bllossom_core.engine import LocalEngine
from bllossom_core.errors import BllossomError, Cancelled, ErrorCode, ModelLoadError
from bllossom_core.server.app import ServerState, build_app
from bllossom_core.server.gate import Owner, ReplyGate
from bllossom_core.server.options import (
    DEFAULT_BUSY_WAIT_S,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_WAITING,
    DEFAULT_PORT,
    ServerOptions,
    default_alias,
    open_listening_socket,
)

if TYPE_CHECKING:
    import uvicorn

    from bllossom_core.types import CancelToken

START_TIMEOUT_S = 30.0
GIL_SWITCH_INTERVAL_S = 0.0005
GRACEFUL_SHUTDOWN_S = 5
API_BUSY_MESSAGE = "The model is busy answering an API request."


class LocalServer:
    """An OpenAI-compatible HTTP server over ``engine``; see the module docstring.

    ``on_busy_change(busy)`` is called (from a server thread) whenever an API request
    starts or stops holding the engine. The server never closes the engine.
    """

    def __init__(
        self,
        engine: LocalEngine,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        api_key: str | None = None,
        model_alias: str | None = None,
        cors_origins: tuple[str, ...] = (),
        max_waiting: int = DEFAULT_MAX_WAITING,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        busy_wait_s: float = DEFAULT_BUSY_WAIT_S,
        log_prompts: bool = False,
        on_busy_change: Callable[[bool], None] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.options = ServerOptions(
            host=host, port=port, api_key=api_key or None,
            model_alias=model_alias or default_alias(engine.info.path),
            cors_origins=tuple(cors_origins), max_waiting=max_waiting,
            max_body_bytes=max_body_bytes, busy_wait_s=busy_wait_s, log_prompts=log_prompts,
        )  # fmt: skip
        self.options.check()
        self._on_busy_change = on_busy_change
        self.gate = ReplyGate(max_waiting, self._gate_changed)
        alias = self.options.model_alias or "model"
        self._state = ServerState(engine, self.options, alias, self.gate)
        self._sock = sock
        self._thread: threading.Thread | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._failure: BaseException | None = None
        self.port = port

    # -- state for front ends -------------------------------------------------------

    @property
    def model_alias(self) -> str:
        return self._state.alias

    @property
    def address(self) -> str:
        """``host:port`` actually listened on (the port is known after :meth:`start`)."""
        host = self.options.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. ``http://127.0.0.1:8080/v1``."""
        return f"http://{self.address}/v1"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """An API request is using the engine right now."""
        return self.gate.holder == "api"

    @property
    def waiting(self) -> int:
        """Requests waiting for the engine."""
        return self.gate.waiting

    @contextlib.contextmanager
    def app_turn(
        self,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Iterator[None]:
        """Hold the engine for the app's own reply (the app goes before waiting requests).

        Waits for the API reply in progress to end, calling ``on_wait()`` first if it has
        to wait (the app says "busy: answering an API request"). After ``timeout`` seconds
        raises :class:`ModelLoadError` with code ``ENGINE_BUSY``; once ``cancel`` is set,
        :class:`Cancelled`.
        """
        should_stop = (lambda: cancel.cancelled) if cancel is not None else None
        turn = self.gate.wait_blocking("app", timeout, should_stop=should_stop, on_wait=on_wait)
        if turn is None:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("Stopped while waiting for an API request to finish.")
            raise ModelLoadError(API_BUSY_MESSAGE, code=ErrorCode.ENGINE_BUSY)
        try:
            yield
        finally:
            self.gate.leave(turn)

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve on a background thread; returns once requests are accepted."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError("a LocalServer starts only once")
        # The reply's worker thread and the event loop share the GIL: after each token
        # the worker waits for the loop (which sent the previous one) to let go of it, up
        # to the switch interval (5 ms by default, half a token's time on a CPU).
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        sock = self._sock or open_listening_socket(self.options.host, self.options.port)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            build_app(self._state), log_config=None, access_log=False, lifespan="off",
            ws="none", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, server_header=False,
        )  # fmt: skip
        server = uvicorn.Server(config)
        self._uvicorn = server
        self._thread = threading.Thread(target=self._serve, args=(server, sock),
                                        name="bllossom-api-server", daemon=True)  # fmt: skip
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                cause = f" ({self._failure})" if self._failure else ""
                raise BllossomError(f"The API server could not start on {self.address}{cause}.",
                                    code=ErrorCode.INTERNAL)  # fmt: skip
            time.sleep(0.01)

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as error:  # SystemExit from uvicorn included: report, not die
            self._failure = error

    def stop(self, timeout: float = GRACEFUL_SHUTDOWN_S + 5) -> None:
        """Stop every reply in progress (within one token) and stop listening."""
        self._state.closing = True
        self._state.cancel_all()
        server = self._uvicorn
        if server is not None:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _gate_changed(self, holder: Owner | None) -> None:
        if self._on_busy_change is not None:
            self._on_busy_change(holder == "api")
