"""Chat templates: from a conversation to the exact prompt token ids.

Built-in templates ("llama2-bllossom", "llama3") are written in Python and emit special
tokens as ids, so text the user types ("<|eot_id|>", "[INST]") can never become a control
token. A template stored in the GGUF ("gguf") is Jinja and is rendered only in an
immutable sandbox (CVE-2024-34359: llama-cpp-python once ran such templates unsandboxed).

Whatever the template writes, :func:`render_prompt_ids` makes the prompt start with
exactly one BOS when the model asks for one, and none otherwise is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bllossom_core.errors import TemplateError
from bllossom_core.types import ChatMessage

TEMPLATE_NAMES = ("auto", "llama2-bllossom", "llama3", "gguf")
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. 당신은 유능한 AI 어시스턴트 입니다."
LLAMA3_HEADER_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


class PromptVocab(Protocol):
    """The tokenizer facts a template needs; the local engine adapts llama.cpp's."""

    @property
    def bos_id(self) -> int | None: ...

    @property
    def eos_id(self) -> int | None: ...

    @property
    def add_bos(self) -> bool: ...

    def token_id(self, text: str) -> int | None:
        """The id of a special token spelled ``text``, if the vocabulary has one."""

    def token_text(self, token_id: int) -> str: ...

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """Token ids of ``text`` without any BOS; ``special`` parses control tokens."""


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    template: str
    stop_ids: frozenset[int]


Segment = str | int  # text, or the id of a special token


def resolve_template(name: str, chat_template: str | None, vocab: PromptVocab) -> str:
    """The concrete template for ``name`` ("auto" looks at the GGUF)."""
    if name not in TEMPLATE_NAMES:
        raise TemplateError(
            f"Unknown chat template {name!r}.", hint=f"Choose one of: {', '.join(TEMPLATE_NAMES)}."
        )
    if name == "gguf" and not chat_template:
        raise TemplateError("This model file has no chat template of its own.",
                            hint="Use --template llama2-bllossom or llama3.")  # fmt: skip
    if name != "auto":
        return name
    has_llama3_tokens = all(vocab.token_id(t) is not None for t in LLAMA3_HEADER_TOKENS)
    if chat_template:
        if "<|start_header_id|>" in chat_template and has_llama3_tokens:
            return "llama3"
        if "[INST]" in chat_template:
            return "llama2-bllossom"
        return "gguf"
    return "llama3" if has_llama3_tokens else "llama2-bllossom"


def _split_system(messages: Sequence[ChatMessage]) -> tuple[str | None, list[ChatMessage]]:
    if messages and messages[0].role == "system":
        return messages[0].content, list(messages[1:])
    return None, list(messages)


def _required_id(vocab: PromptVocab, text: str) -> int:
    token = vocab.token_id(text)
    if token is None:
        raise TemplateError(f"The model's vocabulary has no {text} token for this template.",
                            hint="Pick another template with --template.")  # fmt: skip
    return token


def llama2_segments(messages: Sequence[ChatMessage], vocab: PromptVocab) -> list[Segment]:
    """``[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {reply} </s><s>[INST] ...``."""
    system, turns = _split_system(messages)
    system = DEFAULT_SYSTEM_PROMPT if system is None else system
    segments: list[Segment] = []
    first_user = True
    for message in turns:
        content = message.content.strip()
        if message.role == "user":
            if not first_user and vocab.bos_id is not None:
                segments.append(vocab.bos_id)
            if first_user and system.strip():
                content = f"<<SYS>>\n{system.strip()}\n<</SYS>>\n\n{content}"
            segments.append(f"[INST] {content} [/INST]")
            first_user = False
        elif message.role == "assistant":
            segments.append(f" {content} ")
            if vocab.eos_id is not None:
                segments.append(vocab.eos_id)
    return segments


def llama3_segments(messages: Sequence[ChatMessage], vocab: PromptVocab) -> list[Segment]:
    """``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>`` per message."""
    start, end, eot = (_required_id(vocab, t) for t in LLAMA3_HEADER_TOKENS)
    system, turns = _split_system(messages)
    system = DEFAULT_SYSTEM_PROMPT if system is None else system
    segments: list[Segment] = []
    if system.strip():
        segments += [start, "system", end, "\n\n" + system.strip(), eot]
    for message in turns:
        segments += [start, message.role, end, "\n\n" + message.content.strip(), eot]
    segments += [start, "assistant", end, "\n\n"]
    return segments


def render_jinja(
    template: str, messages: Sequence[ChatMessage], bos_token: str, eos_token: str
) -> str:
    """Render a GGUF's Jinja chat template in a bounded, immutable sandbox."""
    import jinja2

    from bllossom_core._jinja_sandbox import TemplateLimitError, render_untrusted

    def raise_exception(message: str) -> None:
        raise TemplateError(f"The model's chat template refused the conversation: {message}")

    context = {
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "bos_token": bos_token,
        "eos_token": eos_token,
        "add_generation_prompt": True,
        "raise_exception": raise_exception,
    }
    try:
        return render_untrusted(template, context)
    except (jinja2.exceptions.SecurityError, TemplateLimitError) as exc:
        raise TemplateError(
            f"The model's chat template tried to do something unsafe and was stopped ({exc}).",
            hint="Use --template llama2-bllossom or llama3 instead of the file's template.",
        ) from exc
    except TemplateError:
        raise
    except Exception as exc:  # any Jinja or Python error inside the template
        raise TemplateError(
            f"The model's chat template could not be rendered: {exc}.",
            hint="Use --template llama2-bllossom or llama3 instead.",
        ) from exc


def segments_to_ids(segments: Sequence[Segment], vocab: PromptVocab) -> list[int]:
    """Tokenize runs of text (no control tokens parsed) between special token ids."""
    ids: list[int] = []
    text: list[str] = []
    for segment in [*segments, -1]:
        if isinstance(segment, str):
            text.append(segment)
            continue
        if text:
            ids += vocab.tokenize("".join(text), special=False)
            text = []
        if segment >= 0:
            ids.append(segment)
    return ids


def with_single_bos(ids: Sequence[int], vocab: PromptVocab) -> list[int]:
    """Exactly one leading BOS when the model wants one; never a doubled one."""
    bos = vocab.bos_id
    if bos is None:
        return list(ids)
    start = 0
    while start < len(ids) and ids[start] == bos:
        start += 1
    if vocab.add_bos or start:
        return [bos, *ids[start:]]
    return list(ids)


def render_prompt_ids(
    messages: Sequence[ChatMessage],
    template: str,
    vocab: PromptVocab,
    chat_template: str | None = None,
) -> Prompt:
    """The prompt token ids for ``messages`` ending where the assistant's reply begins."""
    name = resolve_template(template, chat_template, vocab)
    stop_ids = {t for t in (vocab.eos_id,) if t is not None}
    if name == "llama2-bllossom":
        ids = segments_to_ids(llama2_segments(messages, vocab), vocab)
    elif name == "llama3":
        ids = segments_to_ids(llama3_segments(messages, vocab), vocab)
        stop_ids.add(_required_id(vocab, "<|eot_id|>"))
    else:
        assert chat_template is not None  # resolve_template checked
        bos = vocab.token_text(vocab.bos_id) if vocab.bos_id is not None else ""
        eos = vocab.token_text(vocab.eos_id) if vocab.eos_id is not None else ""
        text = render_jinja(chat_template, messages, bos, eos)
        ids = vocab.tokenize(text, special=True)
        eot = vocab.token_id("<|eot_id|>")
        if eot is not None:
            stop_ids.add(eot)
    return Prompt(with_single_bos(ids, vocab), name, frozenset(stop_ids))
