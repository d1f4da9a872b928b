"""OpenAI request bodies in, engine inputs out: parsing and checking, nothing else.

Unknown fields are ignored (clients send many); known fields with a wrong type or a
value out of range are refused with a 400 naming the field. Sampling values go through
the one shared check, :func:`~bllossom_core.types.check_settings`.

Field mapping (documented in the README):

- ``max_tokens`` or ``max_completion_tokens``: longest reply; default the model card's
  1024, never more than the context size.
- ``temperature``, ``top_p``, ``top_k``, ``seed``: as in llama.cpp; defaults from the
  Bllossom model card (0.2, 0.9, 40, random).
- ``repeat_penalty`` (llama.cpp's multiplicative penalty over the last 64 tokens) when
  given; else ``frequency_penalty`` f in [-2, 2] becomes ``repeat_penalty = 2 ** (f / 2)``
  (0 = none, 2 = twice as unlikely, -2 = twice as likely); else the card's 1.1.
  ``presence_penalty`` is checked for range and has no effect.
- ``stop``: a string or up to 16 strings; the reply ends before the first one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bllossom_core.errors import InvalidSettingError
from bllossom_core.server.api_errors import ApiError, from_setting_error
from bllossom_core.types import ChatMessage, GenerationSettings, check_settings

MAX_STOP_STRINGS = 16
MAX_STOP_LENGTH = 256

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Lenient):
    type: str
    text: str | None = None


class MessageIn(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class _SamplingRequest(_Lenient):
    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    logprobs: bool | int | None = None


class ChatRequest(_SamplingRequest):
    messages: Annotated[list[MessageIn], Field(min_length=1)]


class CompletionRequest(_SamplingRequest):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None


@dataclass(frozen=True)
class ReplySpec:
    """What the engine is asked for, whichever endpoint asked."""

    settings: GenerationSettings
    stops: tuple[str, ...]
    stream: bool
    include_usage: bool


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(
            400, f"The request body is not valid JSON ({error}).", code="invalid_json"
        ) from error
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    return data


def validate(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"Invalid '{param}': {first['msg']}.", code="invalid_value",
                       param=param) from error  # fmt: skip


def chat_messages(request: ChatRequest) -> list[ChatMessage]:
    """The conversation as the engine takes it (text only; ``developer`` is ``system``)."""
    messages: list[ChatMessage] = []
    for index, message in enumerate(request.messages):
        where = f"messages.{index}"
        if message.role in ("tool", "function"):
            raise ApiError(400, f"'{where}': tool messages are not supported by this server.",
                           code="invalid_value", param=f"{where}.role")  # fmt: skip
        content = message.content
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.type != "text" or part.text is None:
                    raise ApiError(
                        400, f"'{where}.content': only text parts are supported, not "
                        f"'{part.type}'.", code="invalid_value", param=f"{where}.content",
                    )  # fmt: skip
                texts.append(part.text)
            content = "\n".join(texts)
        if content is None:
            if message.role != "assistant":
                raise ApiError(400, f"'{where}.content' is missing.", code="invalid_value",
                               param=f"{where}.content")  # fmt: skip
            content = ""
        role = "system" if message.role == "developer" else message.role
        messages.append(ChatMessage(role, content))  # type: ignore[arg-type]
    return messages


def reply_spec(request: _SamplingRequest, context_size: int) -> ReplySpec:
    """Sampling settings checked by the shared check, plus stop strings and stream flags."""
    if request.n not in (None, 1):
        raise ApiError(400, "Only n = 1 is supported.", code="invalid_value", param="n")
    if request.logprobs:
        raise ApiError(400, "logprobs are not supported by this server.", code="invalid_value",
                       param="logprobs")  # fmt: skip
    card = GenerationSettings()
    sent_as = {"max_tokens": "max_tokens", "repeat_penalty": "repeat_penalty"}
    max_tokens = request.max_tokens
    if max_tokens is None and request.max_completion_tokens is not None:
        max_tokens, sent_as["max_tokens"] = request.max_completion_tokens, "max_completion_tokens"
    repeat_penalty = request.repeat_penalty
    if repeat_penalty is None and request.frequency_penalty is not None:
        repeat_penalty = 2 ** (request.frequency_penalty / 2)
        sent_as["repeat_penalty"] = "frequency_penalty"
    settings = GenerationSettings(
        temperature=_or(request.temperature, card.temperature),
        top_p=_or(request.top_p, card.top_p),
        top_k=_or(request.top_k, card.top_k),
        repeat_penalty=_or(repeat_penalty, card.repeat_penalty),
        max_tokens=_or(max_tokens, min(card.max_tokens, context_size)),
        seed=request.seed,
    )
    try:
        check_settings(settings, context_size=context_size)
    except InvalidSettingError as error:
        raise from_setting_error(error, sent_as) from error
    stream_options = request.stream_options
    return ReplySpec(
        settings=settings,
        stops=_stop_strings(request.stop),
        stream=request.stream,
        include_usage=bool(stream_options and stream_options.include_usage and request.stream),
    )


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _stop_strings(stop: str | list[str] | None) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOP_STRINGS or any(len(s) > MAX_STOP_LENGTH for s in stops):
        raise ApiError(
            400, f"'stop' takes at most {MAX_STOP_STRINGS} strings of at most "
            f"{MAX_STOP_LENGTH} characters.", code="invalid_value", param="stop",
        )  # fmt: skip
    return tuple(s for s in stops if s)
