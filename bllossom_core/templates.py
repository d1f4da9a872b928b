"""Chat templates: from a conversation to the exact prompt token ids.

Built-in templates ("llama2-bllossom", "llama3") are written in Python and emit special
tokens as ids. A template stored in the GGUF ("gguf") is Jinja, rendered only in an
immutable sandbox (CVE-2024-34359: llama-cpp-python once ran such templates unsandboxed).
For every template, control tokens come only from text the *template* wrote: message
contents are always tokenized with special tokens off, so a user typing "<|eot_id|>" or
"<s>[INST]" gets plain text, never a control token.

The built-ins equal the Jinja templates shipped in Hugging Face checkpoints, ids for ids
(``apply_chat_template``): Llama-2 trims every message (the first user message only at
its end, because the system block precedes it), Llama-3 trims every message.

System prompt: only the Llama-2 Bllossom format has a default (the model card's), because
that format always carries a ``<<SYS>>`` block. Llama-3 and "gguf" add no system turn
unless the caller passes one.

BOS, one rule for every template: the prompt starts with exactly one BOS when the model
asks for one (``add_bos_token``) and with none when it does not, whatever the template
wrote there. BOS/EOS *between* turns belong to the format and stay as it defines them:
Llama-2 separates turns with ``</s><s>[INST]`` whatever ``add_bos_token`` says.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bllossom_core.errors import TemplateError
from bllossom_core.types import ChatMessage

TEMPLATE_NAMES = ("auto", "llama2-bllossom", "llama3", "gguf")
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. 당신은 유능한 AI 어시스턴트 입니다."
LLAMA3_HEADER_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
# Private-use characters that fence message contents while a Jinja template renders.
_OPEN, _CLOSE = "\ue000", "\ue001"


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

    def control_token_texts(self) -> Sequence[str]:
        """The spellings of the control tokens, which only template text may produce."""

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """Token ids of ``text`` without any BOS; ``special`` parses control tokens."""


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    template: str
    stop_ids: frozenset[int]


Segment = str | int  # text, or the id of a special token


def check_template_name(name: str) -> None:
    """Refuse a template name that is not one of :data:`TEMPLATE_NAMES`."""
    if name not in TEMPLATE_NAMES:
        raise TemplateError(
            f"Unknown chat template {name!r}.", hint=f"Choose one of: {', '.join(TEMPLATE_NAMES)}."
        )


def resolve_template(name: str, chat_template: str | None, vocab: PromptVocab) -> str:
    """The concrete template for ``name`` ("auto" looks at the GGUF)."""
    check_template_name(name)
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
    """``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {reply} </s><s>[INST] ...``.

    Whitespace as in the Hugging Face Llama-2 template: the system block is prepended to
    the first message and the result trimmed, so the first user message keeps its
    leading whitespace; every other message is trimmed on both sides.
    """
    system, turns = _split_system(messages)
    system = DEFAULT_SYSTEM_PROMPT if system is None else system
    segments: list[Segment] = []
    for index, message in enumerate(turns):
        content = message.content
        if index == 0:
            content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{content}"
        if message.role == "user":
            if vocab.bos_id is not None:
                segments.append(vocab.bos_id)
            segments.append(f"[INST] {content.strip()} [/INST]")
        elif message.role == "assistant":
            segments.append(f" {content.strip()} ")
            if vocab.eos_id is not None:
                segments.append(vocab.eos_id)
    return segments


def llama3_segments(messages: Sequence[ChatMessage], vocab: PromptVocab) -> list[Segment]:
    """``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>`` per message."""
    start, end, eot = (_required_id(vocab, t) for t in LLAMA3_HEADER_TOKENS)
    segments: list[Segment] = []
    for message in messages:
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


def _authored_mask(fenced: str, plain: str) -> list[bool]:
    """For each character of ``plain``: did the template write it (not a message)?

    ``fenced`` is the same render with every message content fenced by markers. A template
    may have changed a content (``| trim``), so the two are aligned; any character that
    cannot be matched counts as message text, the safe side.
    """
    chars: list[str] = []
    flags: list[bool] = []
    depth = 0
    for ch in fenced:
        if ch == _OPEN:
            depth += 1
        elif ch == _CLOSE:
            depth = max(0, depth - 1)
        else:
            chars.append(ch)
            flags.append(depth == 0)
    mask = [False] * len(plain)
    i = j = 0
    while i < len(chars) and j < len(plain):  # fast path: only whitespace was trimmed
        if chars[i] == plain[j]:
            mask[j] = flags[i]
            i, j = i + 1, j + 1
        elif chars[i].isspace():
            i += 1
        else:
            break
    if j == len(plain):
        return mask
    mask = [False] * len(plain)
    matcher = difflib.SequenceMatcher(None, "".join(chars), plain, autojunk=False)
    for block in matcher.get_matching_blocks():
        mask[block.b : block.b + block.size] = flags[block.a : block.a + block.size]
    return mask


@functools.lru_cache(maxsize=8)
def _control_pattern(texts: tuple[str, ...]) -> re.Pattern[str] | None:
    if not texts:
        return None
    longest_first = sorted(texts, key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in longest_first))


def jinja_segments(
    chat_template: str, messages: Sequence[ChatMessage], vocab: PromptVocab
) -> list[Segment]:
    """The GGUF's own template, with control tokens taken only from its own text."""
    bos = vocab.token_text(vocab.bos_id) if vocab.bos_id is not None else ""
    eos = vocab.token_text(vocab.eos_id) if vocab.eos_id is not None else ""
    plain = render_jinja(chat_template, messages, bos, eos)
    fenced_messages = [
        ChatMessage(m.role, _OPEN + m.content.replace(_OPEN, "?").replace(_CLOSE, "?") + _CLOSE)
        for m in messages
    ]
    authored = _authored_mask(render_jinja(chat_template, fenced_messages, bos, eos), plain)
    pattern = _control_pattern(tuple(t for t in vocab.control_token_texts() if t))
    segments: list[Segment] = []
    done = 0
    for match in pattern.finditer(plain) if pattern else ():
        token = vocab.token_id(match.group())
        if token is None or not all(authored[match.start() : match.end()]):
            continue
        segments += [plain[done : match.start()], token]
        done = match.end()
    segments.append(plain[done:])
    return segments


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
    """One leading BOS when the model asks for one, none when it does not."""
    bos = vocab.bos_id
    if bos is None:
        return list(ids)
    start = 0
    while start < len(ids) and ids[start] == bos:
        start += 1
    return [bos, *ids[start:]] if vocab.add_bos else list(ids[start:])


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
        segments = llama2_segments(messages, vocab)
    elif name == "llama3":
        segments = llama3_segments(messages, vocab)
        stop_ids.add(_required_id(vocab, "<|eot_id|>"))
    else:
        assert chat_template is not None  # resolve_template checked
        segments = jinja_segments(chat_template, messages, vocab)
        eot = vocab.token_id("<|eot_id|>")
        if eot is not None:
            stop_ids.add(eot)
    return Prompt(with_single_bos(segments_to_ids(segments, vocab), vocab), name,
                  frozenset(stop_ids))  # fmt: skip
