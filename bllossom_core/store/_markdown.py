"""Markdown export of a conversation, in English or Korean. Internal; see
:meth:`ConversationStore.export_markdown`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from bllossom_core.errors import ErrorCode, InputError
from bllossom_core.store._records import Conversation, Message

EXPORT_LANGUAGES = ("en", "ko")
"""The languages an export's headings and labels can be written in."""


@dataclass(frozen=True)
class Labels:
    untitled: str
    created: str
    """``{when}`` is the date and time in UTC."""
    model: str
    roles: dict[str, str]
    version: str
    """``{index}`` and ``{count}``."""
    thinking: str
    thought_for: str
    """``{seconds}``."""
    interrupted: str
    incomplete: str


_LABELS = {
    "en": Labels(
        untitled="Untitled conversation",
        created="Created {when} UTC",
        model="model",
        roles={"system": "System", "user": "User", "assistant": "Assistant"},
        version="version {index} of {count}",
        thinking="Thinking",
        thought_for="Thought for {seconds} s",
        interrupted="Reply interrupted:",
        incomplete="Reply incomplete.",
    ),
    "ko": Labels(
        untitled="제목 없는 대화",
        created="{when} UTC에 만듦",
        model="모델",
        roles={"system": "시스템", "user": "사용자", "assistant": "어시스턴트"},
        version="버전 {index}/{count}",
        thinking="생각",
        thought_for="{seconds}초 동안 생각함",
        interrupted="답변이 중단됨:",
        incomplete="답변이 끝나지 않았습니다.",
    ),
}


def labels_for(language: str) -> Labels:
    """The labels for ``language`` (``"en"`` or ``"ko"``; ``"ko-KR"`` works too)."""
    labels = _LABELS.get(language.lower().replace("_", "-").split("-")[0])
    if labels is None:
        raise InputError(
            f"Exports can be written in {' or '.join(EXPORT_LANGUAGES)}, not {language!r}.",
            code=ErrorCode.INVALID_INPUT,
        )
    return labels


def model_file_name(model: str | None) -> str | None:
    """A model file's name without its folder (exports never reveal the user's folders);
    a remote model id such as ``org/model`` is kept as it is."""
    if not model:
        return model
    looks_like_path = (
        model.lower().endswith(".gguf")
        or model.startswith(("/", "~", "\\\\"))
        or (len(model) > 2 and model[1] == ":" and model[2] in "/\\")
    )
    if not looks_like_path:
        return model
    return model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or model


def conversation_markdown(conversation: Conversation, thread: list[Message], labels: Labels) -> str:
    lines = [f"# {conversation.title or labels.untitled}", ""]
    created = datetime.fromtimestamp(conversation.created_at, timezone.utc)
    details = [labels.created.format(when=f"{created:%Y-%m-%d %H:%M}")]
    model = model_file_name(conversation.model)
    if model:
        details.append(f"{labels.model} `{model}`")
    lines += ["_" + ", ".join(details) + "_", ""]
    if conversation.system_prompt:
        lines += [f"## {labels.roles['system']}", "", conversation.system_prompt, ""]
    for message in thread:
        heading = labels.roles.get(message.role, message.role)
        if message.sibling_count > 1:
            version = labels.version.format(
                index=message.sibling_index + 1, count=message.sibling_count
            )
            heading += f" ({version})"
        lines += [f"## {heading}", ""]
        if message.thinking:
            lines += [*_thinking_section(message, labels), ""]
        lines += [message.text, ""]
        if message.error:
            lines += [f"> {labels.interrupted} {message.error}", ""]
        elif not message.complete:
            lines += [f"> {labels.incomplete}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _thinking_section(message: Message, labels: Labels) -> list[str]:
    """A collapsed ``<details>`` block; the thinking is quoted line by line with ``<``
    escaped, so nothing in it (a stray ``</details>``, a heading) can break out."""
    summary = labels.thinking
    if message.thinking_seconds is not None:
        summary = labels.thought_for.format(seconds=f"{message.thinking_seconds:.0f}")
    thinking = message.thinking.strip("\n").replace("<", "&lt;")
    quoted = [f"> {line}".rstrip() for line in thinking.splitlines()]
    return ["<details>", f"<summary>{summary}</summary>", "", *quoted, "", "</details>"]
