"""The wire side of :mod:`bllossom_core.remote` (internal): base URLs, Server-Sent
Events, and OpenAI-style events and error bodies.

SSE parsing covers what chat completions use: ``data:`` fields joined per event,
comments and other fields ignored, events ending at a blank line. Lines are decoded
whole, so a UTF-8 character split across network packets is never split in the text.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bllossom_core.errors import ErrorCode, InputError, RemoteError

_TEXT_LIMIT = 200

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSEError(ValueError):
    """The byte stream is not valid Server-Sent Events."""


def iter_sse_data(readline: Callable[[int], bytes]) -> Iterator[str]:
    """Yield the ``data`` of each event until the stream ends (``readline`` returns b"").

    ``readline(limit)`` is a binary file's ``readline``. A final event without its
    blank line is still delivered (some servers close right after ``data: [DONE]``).
    """
    data_lines: list[str] = []
    size = 0
    while True:
        raw = readline(MAX_LINE_BYTES + 1)
        if not raw:
            break
        if len(raw) > MAX_LINE_BYTES:
            raise SSEError("an event line is longer than 4 MiB")
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise SSEError(f"the event stream is not UTF-8 ({error})") from error
        if not line:
            if data_lines:
                yield "\n".join(data_lines)
            data_lines, size = [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            value = value[1:] if value.startswith(" ") else value
            size += len(value)
            if size > MAX_EVENT_BYTES:
                raise SSEError("an event is larger than 16 MiB")
            data_lines.append(value)
    if data_lines:
        yield "\n".join(data_lines)


@dataclass(frozen=True)
class Endpoint:
    """A parsed base URL: ``http://host:8000`` and ``http://host:8000/v1`` mean the same."""

    scheme: str
    host: str
    port: int
    base_path: str
    """Path prefix of the API, ending in ``/v1`` (no trailing slash)."""

    @classmethod
    def parse(cls, base_url: str) -> Endpoint:
        url = base_url.strip()
        if "://" not in url:
            url = "http://" + url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(
                f"'{base_url}' is not a server address.",
                hint="Use a URL like http://192.168.0.10:8000/v1.",
                code=ErrorCode.INVALID_INPUT,
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:
            raise InputError(
                f"'{base_url}' has an invalid port ({error}).", code=ErrorCode.INVALID_INPUT
            ) from error
        path = parts.path.rstrip("/")
        for suffix in ("/chat/completions", "/completions", "/models"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        if not path.endswith("/v1"):
            path += "/v1"
        return cls(parts.scheme, parts.hostname, port, path)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"


def decode_event(data: str, endpoint: Endpoint, *, started: bool) -> dict[str, Any]:
    """One event's JSON object; an unreadable or error event raises :class:`RemoteError`
    (``REPLY_INTERRUPTED`` once some of the reply arrived, ``started``)."""
    code = ErrorCode.REPLY_INTERRUPTED if started else ErrorCode.SERVER_ERROR
    kept = " The part that arrived was kept." if started else ""
    try:
        event = json.loads(data)
    except ValueError as error:
        raise RemoteError(
            f"The server at {endpoint.address} sent a reply Bllossom cannot read "
            f"({data[:_TEXT_LIMIT]!r}).{kept}",
            hint="Check that the address is an OpenAI-compatible API.",
            code=code,
        ) from error
    if not isinstance(event, dict):
        raise RemoteError(
            f"The server at {endpoint.address} sent an unexpected event "
            f"{data[:_TEXT_LIMIT]!r}.{kept}",
            code=code,
        )
    if event.get("error"):
        raise RemoteError(
            f"The server at {endpoint.address} reported an error mid-reply: "
            f"{error_detail(json.dumps(event))}",
            hint="The part that arrived was kept." if started else "Check the server's log.",
            code=code,
        )
    return event


@dataclass(frozen=True)
class Delta:
    """What one event adds to the reply."""

    thinking: str = ""
    """``reasoning_content`` (DeepSeek, vLLM, llama-server) or ``reasoning``."""
    answer: str = ""
    finish_reason: str | None = None


def event_delta(event: dict[str, Any]) -> Delta:
    """The first choice's additions (Bllossom asks for one choice)."""
    for choice in event.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        thinking = delta.get("reasoning_content") or delta.get("reasoning")
        answer = delta.get("content")
        finish = choice.get("finish_reason")
        return Delta(
            thinking=thinking if isinstance(thinking, str) else "",
            answer=answer if isinstance(answer, str) else "",
            finish_reason=finish if isinstance(finish, str) else None,
        )
    return Delta()


def error_detail(body: bytes | str) -> str:
    """The message from an OpenAI-style error body, else the body's start."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else error
        if message is None and isinstance(data, dict):
            message = data.get("detail")
        text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    except ValueError:
        pass
    text = " ".join(text.split())
    return text[:_TEXT_LIMIT] + ("…" if len(text) > _TEXT_LIMIT else "")
