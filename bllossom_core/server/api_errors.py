"""OpenAI-style error replies, and the HTTP meaning of each core :class:`ErrorCode`.

Every refusal the server sends has the body OpenAI clients expect::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "top_p",
               "code": "invalid_value"}}

Core errors are mapped by their stable ``code`` (never by class or English text), so
a new raise site with a precise code gets the right HTTP status without touching this.
"""

from __future__ import annotations

import json
from typing import Any

from bllossom_core.errors import BllossomError, ErrorCode, InputError, InvalidSettingError

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ApiError(Exception):
    """A request the server refuses: HTTP status plus an OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=False).encode("utf-8")


# status, OpenAI type, OpenAI code (None: the core code's own value)
_BY_CODE: dict[ErrorCode, tuple[int, str, str | None]] = {
    ErrorCode.MESSAGE_TOO_LONG: (400, INVALID_REQUEST, "context_length_exceeded"),
    ErrorCode.NOTHING_TO_REPLY: (400, INVALID_REQUEST, "invalid_value"),
    ErrorCode.INVALID_SETTING: (400, INVALID_REQUEST, "invalid_value"),
    ErrorCode.INVALID_INPUT: (400, INVALID_REQUEST, "invalid_value"),
    ErrorCode.ENCODING_INVALID: (400, INVALID_REQUEST, "invalid_value"),
    # The GGUF's own Jinja template refusing the conversation (roles not alternating…).
    ErrorCode.TEMPLATE_INVALID: (400, INVALID_REQUEST, None),
    ErrorCode.TEMPLATE_LIMIT: (400, INVALID_REQUEST, None),
    ErrorCode.ENGINE_BUSY: (503, SERVER_ERROR, "engine_busy"),
    ErrorCode.OUT_OF_MEMORY: (503, SERVER_ERROR, None),
}


def from_core_error(error: BllossomError, param: str | None = None) -> ApiError:
    """The HTTP reply for a core error, chosen by its code."""
    status, kind, code = _BY_CODE.get(error.code, (500, SERVER_ERROR, None))
    if status == 500 and isinstance(error, InputError):
        status, kind = 400, INVALID_REQUEST  # a new input code not listed above yet
    headers = {"Retry-After": "1"} if status == 503 else None
    return ApiError(status, str(error), type=kind, code=code or error.code.value,
                    param=param, headers=headers)  # fmt: skip


def from_setting_error(error: InvalidSettingError, sent_as: dict[str, str]) -> ApiError:
    """A sampling value outside its range, named as the client sent it.

    :func:`~bllossom_core.types.check_settings` words its messages for the CLI
    (``--top-p must be…``); an API client sent ``top_p`` (or ``max_completion_tokens``
    for ``max_tokens``), so the message and ``param`` use the client's field name.
    """
    field = sent_as.get(error.setting, error.setting)
    option = "--" + error.setting.replace("_", "-")
    message = str(error).replace(option, field, 1)
    return from_core_error(InputError(message, code=error.code), param=field)


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "Incorrect or missing API key: send it as 'Authorization: Bearer KEY'.",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def line_full(retry_after_s: int, max_waiting: int) -> ApiError:
    return ApiError(
        503,
        f"The server is answering another request and {max_waiting} more are waiting; "
        f"retry in about {retry_after_s} s.",
        type=SERVER_ERROR,
        code="server_overloaded",
        headers={"Retry-After": str(retry_after_s)},
    )
