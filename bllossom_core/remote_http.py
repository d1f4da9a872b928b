"""HTTP for :mod:`bllossom_core.remote`: requests a user can stop, statuses and bodies
from servers that are not trusted.

- :func:`open_request` waits for the response headers in a helper thread, so that a
  :class:`~bllossom_core.types.CancelToken` (or Ctrl-C in the main thread) stops the
  wait at once, even during the TCP connect; the abandoned request is closed when it
  ends.
- Only ``2xx`` answers are read as replies: a redirect (to ``file://`` or anywhere) is
  refused with what it pointed at, ``401``/``403`` are ``AUTH_FAILED``.
- :func:`guarded_readline` turns whatever ``http.client`` raises on a malformed body
  (a chunk size of ``ffffffffffffffff`` gives ``OverflowError``) into :class:`WireError`.
- :class:`ReplyBudget` bounds a reply by ``max_tokens`` whatever the server sends.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bllossom_core.errors import ErrorCode, RemoteError
from bllossom_core.remote_protocol import Endpoint, error_detail
from bllossom_core.types import CancelToken, StreamPiece

ERROR_BODY_LIMIT = 64 * 1024
_POLL_S = 0.05
MAX_CHARS_PER_TOKEN = 64
"""Generous: real tokens are a few characters; a reply longer than this per token is a
server ignoring ``max_tokens``."""
_CHAR_SLACK = 4096


@dataclass(frozen=True)
class Opened:
    """A request whose ``2xx`` response headers have arrived."""

    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse
    sock: socket.socket
    """The socket the body arrives on (``http.client`` may drop ``connection.sock``)."""

    def abort(self) -> None:
        """Wake a thread blocked reading the body (``close()`` alone may not)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


def open_request(
    endpoint: Endpoint,
    method: str,
    path: str,
    payload: bytes | None,
    *,
    api_key: str | None,
    connect_timeout_s: float,
    read_timeout_s: float,
    cancel: CancelToken | None,
) -> Opened | None:
    """Send a request and wait for its headers; ``None`` when cancelled meanwhile.

    Ctrl-C while waiting cancels ``cancel`` and returns ``None`` (it is re-raised when
    there is no token). Errors are :class:`RemoteError` with their code.
    """
    connection: http.client.HTTPConnection
    if endpoint.scheme == "https":
        connection = http.client.HTTPSConnection(
            endpoint.host, endpoint.port, timeout=connect_timeout_s
        )
    else:
        connection = http.client.HTTPConnection(
            endpoint.host, endpoint.port, timeout=connect_timeout_s
        )
    outcome: dict[str, Any] = {}
    finished = threading.Event()
    abandoned = threading.Event()
    lock = threading.Lock()

    def send() -> None:
        try:
            outcome["opened"] = _send(
                connection, endpoint, method, path, payload, api_key, read_timeout_s
            )
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error
        with lock:
            finished.set()
            if abandoned.is_set():
                connection.close()

    threading.Thread(target=send, name="remote-request", daemon=True).start()
    interrupted = False
    try:
        while not finished.wait(_POLL_S):
            if cancel is not None and cancel.cancelled:
                break
    except KeyboardInterrupt:
        interrupted = True
        if cancel is not None:
            cancel.cancel()
    with lock:
        if not finished.is_set() or (cancel is not None and cancel.cancelled):
            abandoned.set()
            _abort(connection)
            if finished.is_set():
                connection.close()
            if interrupted and cancel is None:
                raise KeyboardInterrupt
            return None
    if "error" in outcome:
        raise outcome["error"]
    opened: Opened = outcome["opened"]
    return opened


def _abort(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _send(
    connection: http.client.HTTPConnection,
    endpoint: Endpoint,
    method: str,
    path: str,
    payload: bytes | None,
    api_key: str | None,
    read_timeout_s: float,
) -> Opened:
    headers = {"Accept": "text/event-stream" if payload else "application/json"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        connection.connect()
        sock = connection.sock
        assert sock is not None
        sock.settimeout(read_timeout_s)
        connection.request(method, endpoint.base_path + path, body=payload, headers=headers)
        response = connection.getresponse()
    except (OSError, http.client.HTTPException, ValueError) as error:
        connection.close()
        raise _unreachable(endpoint, error) from error
    status = response.status
    if 200 <= status < 300:
        return Opened(connection, response, sock)
    try:
        if 300 <= status < 400:
            raise _redirect_error(endpoint, status, response.getheader("Location") or "")
        try:
            detail = error_detail(response.read(ERROR_BODY_LIMIT))
        except (OSError, http.client.HTTPException, ValueError, OverflowError):
            detail = ""
        raise _http_error(endpoint, status, detail)
    finally:
        connection.close()


_UNREACHABLE: tuple[tuple[type[BaseException], str, str], ...] = (
    # (error type, why, hint); the first that matches words the failure. ``{host}`` and
    # ``{error}`` are filled in.
    (ConnectionRefusedError, "nothing is listening there",
     "Start the server (vLLM, llama-server, Ollama) or check the address."),
    (socket.gaierror, "the server name '{host}' was not found",
     "Check the address and your network connection."),
    (TimeoutError, "the server did not answer in time",
     "Check that it is running and reachable from this PC."),
    (ssl.SSLError, "a secure connection could not be set up ({error})",
     "Check the https address, or use http:// for a server on your network."),
)  # fmt: skip


def _unreachable(endpoint: Endpoint, error: BaseException) -> RemoteError:
    where = endpoint.address
    code = ErrorCode.SERVER_UNREACHABLE
    for kind, why, hint in _UNREACHABLE:
        if isinstance(error, kind):
            reason = why.format(host=endpoint.host, error=error)
            return RemoteError(f"Could not connect to {where}: {reason}.", hint=hint, code=code)
    if isinstance(error, (OSError, http.client.RemoteDisconnected)):
        return RemoteError(
            f"Could not connect to {where} ({type(error).__name__}: {error}).",
            hint="Check that the server is running and reachable.",
            code=code,
        )
    return RemoteError(
        f"The server at {where} did not answer with valid HTTP ({type(error).__name__}).",
        hint="Check that the address and port are those of an OpenAI-compatible API.",
        code=ErrorCode.SERVER_ERROR,
    )


def _redirect_error(endpoint: Endpoint, status: int, location: str) -> RemoteError:
    where = endpoint.url
    shown = location[:200]
    scheme = urllib.parse.urlsplit(location).scheme.lower() if location else ""
    if location and scheme not in ("", "http", "https"):
        return RemoteError(
            f"The server at {where} tried to redirect Bllossom to {shown!r} (HTTP {status}), "
            "which is not a web address; Bllossom refused.",
            hint="Check the server address; an API server should not do this.",
            code=ErrorCode.SERVER_ERROR,
        )
    target = repr(shown) if location else "another address"
    return RemoteError(
        f"The server at {where} redirects to {target} (HTTP {status}); Bllossom does not "
        "follow redirects.",
        hint="If that is the API's real address, enter it as the server address.",
        code=ErrorCode.SERVER_ERROR,
    )


def _http_error(endpoint: Endpoint, status: int, detail: str) -> RemoteError:
    where = endpoint.url
    said = f" The server said: {detail}" if detail else ""
    if status in (401, 403):
        return RemoteError(
            f"The server at {where} refused the API key (HTTP {status}).{said}",
            hint="Enter the server's API key in the endpoint settings.",
            code=ErrorCode.AUTH_FAILED,
        )
    if status == 404:
        return RemoteError(
            f"There is no OpenAI-compatible API at {where} (HTTP 404).{said}",
            hint="Check the base URL; it usually ends in /v1 (e.g. http://host:8000/v1).",
            code=ErrorCode.SERVER_ERROR,
        )
    if status < 400:
        return RemoteError(
            f"The server at {where} answered with an unexpected HTTP status {status}.{said}",
            hint="Check that the address is an OpenAI-compatible API.",
            code=ErrorCode.SERVER_ERROR,
        )
    return RemoteError(
        f"The server at {where} answered with an error (HTTP {status}).{said}",
        hint="Check the server's log and the chosen model.",
        code=ErrorCode.SERVER_ERROR,
    )


class WireError(Exception):
    """Reading the body failed; ``__cause__`` is what ``http.client`` raised.
    ``malformed``: the server broke the protocol (rather than the connection dying)."""

    def __init__(self, message: str, *, malformed: bool) -> None:
        super().__init__(message)
        self.malformed = malformed


def guarded_readline(response: http.client.HTTPResponse) -> Callable[[int], bytes]:
    """``response.readline`` raising only :class:`WireError` on failure."""

    def readline(limit: int) -> bytes:
        try:
            return response.readline(limit)
        except http.client.IncompleteRead as error:  # the connection died mid-chunk
            raise WireError(f"IncompleteRead: {error}", malformed=False) from error
        except OSError as error:
            raise WireError(f"{type(error).__name__}: {error}", malformed=False) from error
        except OverflowError as error:
            raise WireError("a chunk size larger than any reply", malformed=True) from error
        except (http.client.HTTPException, ValueError) as error:
            raise WireError(f"{type(error).__name__}: {error}", malformed=True) from error

    return readline


class ReplyBudget:
    """Bounds a streamed reply by ``max_tokens``, whatever the server sends.

    Each event carrying text counts as at least one token (as do the server's own
    ``completion_tokens``, when it reports them as it goes), and the text may hold at
    most :data:`MAX_CHARS_PER_TOKEN` characters per token: memory stays proportional
    to ``max_tokens`` even when a server ignores it.
    """

    def __init__(self, max_tokens: int) -> None:
        self.max_events = max(1, max_tokens)
        self.max_chars = self.max_events * MAX_CHARS_PER_TOKEN + _CHAR_SLACK
        self.events = 0
        self.chars = 0
        self.exhausted = False

    def count_event(self, usage: dict[str, Any] | None) -> bool:
        """Whether one more event with text fits (else the budget is exhausted)."""
        completion = (usage or {}).get("completion_tokens")
        over_usage = isinstance(completion, int) and completion > self.max_events
        if self.events >= self.max_events or over_usage:
            self.exhausted = True
            return False
        self.events += 1
        return True

    def take(self, piece: StreamPiece) -> StreamPiece | None:
        """``piece``, cut to what still fits; ``None`` when nothing does (or it is empty)."""
        room = self.max_chars - self.chars
        if not piece.text:
            return None
        if room <= 0:
            self.exhausted = True
            return None
        text = piece.text
        if len(text) >= room:
            text = text[:room]
            self.exhausted = True
        self.chars += len(text)
        return StreamPiece(piece.kind, text)
