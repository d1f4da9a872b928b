"""Chat templates: from a conversation to the exact prompt token ids.

The prompt is the template rendered as Hugging Face's ``apply_chat_template`` renders it
(sandboxed Jinja with ``trim_blocks`` and ``lstrip_blocks``, ``add_generation_prompt``,
``bos_token``/``eos_token`` from the vocabulary), then tokenized, with two rules:

* Control tokens come only from the template's own text. Message contents are rendered
  shifted (:mod:`bllossom_core._jinja_sandbox`), so whatever the template does with them
  (trim, slice, split, join) a user typing ``<|eot_id|>`` or ``</s><s>`` gets plain
  text; found in one render, in linear time.
* A BOS is *added* only when the model asks for one (``add_bos_token``) and the
  rendered prompt does not already start with it. Nothing the template wrote is ever
  removed (SmolLM2's BOS is its ``<|im_start|>``).

Templates: "gguf" is the model file's own, rendered in a bounded worker process
(:mod:`bllossom_core._template_worker`). The built-ins ("llama2-bllossom", "llama3",
"chatml", "gemma", see :mod:`bllossom_core._builtin_templates`) are ours and render
here. "auto" uses the file's template, or a built-in where that one gives the very same
ids, or, for a file with none, a built-in chosen from its vocabulary, with a note.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bllossom_core import _jinja_sandbox
from bllossom_core._builtin_templates import (
    DEFAULT_SYSTEM_PROMPT,
    JINJA_BUILTINS,
    LLAMA3_HEADER_TOKENS,
    Segment,
    llama2_segments,
    llama3_segments,
    required_id,
)
from bllossom_core._template_worker import WorkerFailure, shared_worker
from bllossom_core.errors import ErrorCode, InputError, TemplateError
from bllossom_core.types import ChatMessage

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "TEMPLATE_CHOICES",
    "TEMPLATE_NAMES",
    "Prompt",
    "PromptVocab",
    "TemplateChoice",
    "check_template_name",
    "choose_template",
    "fit_prompt_ids",
    "render_jinja",
    "render_prompt_ids",
    "resolve_template",
]

# The one list of templates: (name, label). Front ends show the labels.
TEMPLATE_CHOICES: tuple[tuple[str, str], ...] = (
    ("auto", "Automatic (the model file's own template)"),
    ("llama2-bllossom", "Llama-2 Bllossom ([INST] <<SYS>>, the model card's system prompt)"),
    ("llama3", "Llama-3 (<|start_header_id|>)"),
    ("chatml", "ChatML (<|im_start|>)"),
    ("gemma", "Gemma (<start_of_turn>)"),
    ("gguf", "The model file's own template, always"),
)
TEMPLATE_NAMES = tuple(name for name, _ in TEMPLATE_CHOICES)
# Tokens that end an assistant turn in the common formats (llama.cpp also stops at its EOG set).
_END_OF_TURN = ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<｜end▁of▁sentence｜>", "<|end|>")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Conversations on which a file's template must give a built-in's very ids for "auto" to
# use the built-in: whitespace at both ends, with and without a system prompt, Korean.
_PROBES = (
    (ChatMessage("user", " 안녕하세요?  "),),
    (ChatMessage("system", " 시스템\n"), ChatMessage("user", "질문 "),
     ChatMessage("assistant", "\n답변 "), ChatMessage("user", " 다시\n")),
)  # fmt: skip


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


@dataclass(frozen=True)
class TemplateChoice:
    """The template a request resolves to, and a note for the user when it is a guess."""

    name: str
    note: str | None = None


def check_template_name(name: str) -> None:
    """Refuse a template name that is not one of :data:`TEMPLATE_NAMES`."""
    if name not in TEMPLATE_NAMES:
        raise TemplateError(
            f"Unknown chat template {name!r}.", hint=f"Choose one of: {', '.join(TEMPLATE_NAMES)}."
        )


def choose_template(request: str, chat_template: str | None, vocab: PromptVocab) -> TemplateChoice:
    """The concrete template for ``request`` ("auto" looks at the GGUF)."""
    check_template_name(request)
    if request == "gguf" and not chat_template:
        raise TemplateError("This model file has no chat template of its own.",
                            hint="Choose another template with --template.")  # fmt: skip
    if request != "auto":
        return TemplateChoice(request)
    if chat_template:
        return TemplateChoice(_builtin_equal_to(chat_template, vocab) or "gguf")
    name = _default_for(vocab)
    label = dict(TEMPLATE_CHOICES)[name]
    return TemplateChoice(name, f"This model file has no chat template; using {label}, chosen "
                                "from its vocabulary. Choose another with --template or in "
                                "the settings if its replies look wrong.")  # fmt: skip


def resolve_template(name: str, chat_template: str | None, vocab: PromptVocab) -> str:
    """The name :func:`choose_template` picks."""
    return choose_template(name, chat_template, vocab).name


def _has(vocab: PromptVocab, *texts: str) -> bool:
    return all(vocab.token_id(t) is not None for t in texts)


def _default_for(vocab: PromptVocab) -> str:
    """A template for a file without one, by the chat tokens its vocabulary has."""
    if _has(vocab, *LLAMA3_HEADER_TOKENS):
        return "llama3"
    if _has(vocab, "<start_of_turn>", "<end_of_turn>"):
        return "gemma"
    if _has(vocab, "<|im_start|>", "<|im_end|>"):
        return "chatml"
    bos, eos = vocab.bos_id, vocab.eos_id
    llama2_spelling = bos is not None and eos is not None and (
        vocab.token_text(bos), vocab.token_text(eos)) == ("<s>", "</s>")  # fmt: skip
    return "llama2-bllossom" if llama2_spelling else "chatml"


def _builtin_equal_to(chat_template: str, vocab: PromptVocab) -> str | None:
    """A built-in whose ids equal the file's template's on every probe, if there is one."""
    candidates = []
    if "<|start_header_id|>" in chat_template and _has(vocab, *LLAMA3_HEADER_TOKENS):
        candidates.append("llama3")
    if "[INST]" in chat_template and "<<SYS>>" in chat_template:
        candidates.append("llama2-bllossom")
    for name in candidates:
        try:
            if all(_ids(list(p), name, vocab, chat_template) == _ids(list(p), "gguf", vocab,
                   chat_template) for p in _PROBES):  # fmt: skip
                return name
        except TemplateError:
            continue
    return None


def render_prompt_ids(
    messages: Sequence[ChatMessage],
    template: str,
    vocab: PromptVocab,
    chat_template: str | None = None,
) -> Prompt:
    """The prompt token ids for ``messages`` ending where the assistant's reply begins."""
    name = resolve_template(template, chat_template, vocab)
    stop_ids = {t for t in (vocab.eos_id,) if t is not None}
    if name == "llama3":
        stop_ids.add(required_id(vocab, "<|eot_id|>"))
    elif name != "llama2-bllossom":
        stop_ids.update(t for t in map(vocab.token_id, _END_OF_TURN) if t is not None)
    return Prompt(_ids(messages, name, vocab, chat_template), name, frozenset(stop_ids))


def _ids(
    messages: Sequence[ChatMessage], name: str, vocab: PromptVocab, chat_template: str | None
) -> list[int]:
    messages = [ChatMessage(m.role, _valid_text(m.content)) for m in messages]
    if name == "llama2-bllossom":
        segments = llama2_segments(messages, vocab)
    elif name == "llama3":
        segments = llama3_segments(messages, vocab)
    elif name in JINJA_BUILTINS:
        segments = _jinja_segments(JINJA_BUILTINS[name], messages, vocab, trusted=True)
    else:
        assert chat_template is not None  # choose_template checked
        segments = _jinja_segments(chat_template, messages, vocab, trusted=False)
    ids = _segments_to_ids(segments, vocab)
    bos = vocab.bos_id
    if vocab.add_bos and bos is not None and (not ids or ids[0] != bos):
        ids.insert(0, bos)
    return ids


def _valid_text(text: str) -> str:
    """Lone surrogates (never valid UTF-8) become U+FFFD; they also carry shifted text."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def fit_prompt_ids(
    messages: Sequence[ChatMessage],
    template: str,
    vocab: PromptVocab,
    chat_template: str | None = None,
    *,
    context_size: int,
    reply_room: int,
) -> tuple[Prompt, int]:
    """The prompt with the oldest exchanges left out until it fits; and how many messages were.

    The system prompt always stays and the conversation still starts with a user turn.
    Fewer turns never make a longer prompt, so the cut is found by binary search:
    O(log n) renders. A last message that does not fit on its own is
    :class:`InputError` with ``ErrorCode.MESSAGE_TOO_LONG``.
    """
    messages = list(messages)
    system = messages[:1] if messages and messages[0].role == "system" else []
    turns = messages[len(system) :]
    cuts = [0, *(i for i in range(1, len(turns)) if turns[i].role == "user")]
    if len(turns) > 1 and cuts == [0]:
        cuts.append(len(turns) - 1)
    budget = context_size - reply_room
    if turns and (count := _obviously_too_long(turns[-1], vocab, context_size)) is not None:
        raise _too_long(f"more than {count}", context_size)
    rendered: dict[int, Prompt] = {}

    def prompt(k: int) -> Prompt:
        if k not in rendered:
            rendered[k] = render_prompt_ids(system + turns[cuts[k] :], template, vocab,
                                            chat_template)  # fmt: skip
        return rendered[k]

    if len(prompt(0).ids) <= budget:
        return prompt(0), 0
    fits, too_long = len(cuts) - 1, 0
    if len(prompt(fits).ids) > budget:
        raise _too_long(str(len(prompt(fits).ids)), context_size)
    while fits - too_long > 1:
        middle = (fits + too_long) // 2
        if len(prompt(middle).ids) <= budget:
            fits = middle
        else:
            too_long = middle
    return prompt(fits), cuts[fits]


def _obviously_too_long(message: ChatMessage, vocab: PromptVocab, context_size: int) -> int | None:
    """The tokens of the start of a huge message, when they alone are twice the context.

    Saves rendering and tokenizing a pasted megabyte (twice) just to refuse it; a prefix
    of 16 characters per context token always holds that many tokens for real text.
    """
    if len(message.content) <= 2 * context_size:
        return None
    count = len(vocab.tokenize(message.content[: 16 * context_size], special=False))
    return count if count > 2 * context_size else None


def _too_long(needed: str, context_size: int) -> InputError:
    return InputError(
        f"The message is too long: its prompt needs {needed} tokens but the context holds "
        f"{context_size}.",
        hint="Shorten it or load the model with a larger context size.",
        code=ErrorCode.MESSAGE_TOO_LONG,
    )


def _template_error(kind: str, message: str) -> TemplateError:
    hint = "Choose another template with --template or in the settings."
    if kind == "raised":
        return TemplateError(
            f"The model's chat template refused the conversation: {message}", hint=hint
        )
    if kind == "limit":
        return TemplateError(
            f"The model's chat template was stopped: {message}. A chat prompt never needs "
            "that much work or memory, so the file's template is broken or hostile.",
            hint=hint,
            code=ErrorCode.TEMPLATE_LIMIT,
        )
    if kind == "unsafe":
        return TemplateError(
            f"The model's chat template tried to do something unsafe and was stopped ({message}).",
            hint=hint,
        )
    return TemplateError(f"The model's chat template could not be rendered: {message}.", hint=hint)


def _render_shifted(
    source: str, messages: Sequence[ChatMessage], vocab: PromptVocab, alphabet: str, trusted: bool
) -> str:
    bos = vocab.token_text(vocab.bos_id) if vocab.bos_id is not None else ""
    eos = vocab.token_text(vocab.eos_id) if vocab.eos_id is not None else ""
    payload = [{"role": m.role, "content": m.content} for m in messages]
    if not trusted:
        try:
            return shared_worker().render(source, payload, bos, eos, alphabet)
        except WorkerFailure as failure:
            raise _template_error(failure.kind, str(failure)) from None
    try:
        return _jinja_sandbox.render_chat(source, payload, bos, eos, alphabet)
    except Exception as exc:  # a built-in's failure is reported like a file's
        raise _template_error(*_jinja_sandbox.classify(exc)) from None


def render_jinja(
    template: str, messages: Sequence[ChatMessage], bos_token: str, eos_token: str
) -> str:
    """The text an untrusted Jinja chat template renders (in the bounded worker)."""
    payload = [{"role": m.role, "content": _valid_text(m.content)} for m in messages]
    try:
        return shared_worker().render(template, payload, bos_token, eos_token, "")
    except WorkerFailure as failure:
        raise _template_error(failure.kind, str(failure)) from None


@functools.lru_cache(maxsize=8)
def _control_pattern(texts: tuple[str, ...]) -> re.Pattern[str] | None:
    if not texts:
        return None
    longest_first = sorted(texts, key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in longest_first))


def _jinja_segments(
    source: str, messages: Sequence[ChatMessage], vocab: PromptVocab, *, trusted: bool
) -> list[Segment]:
    """A Jinja template's text, with control tokens found only in what it wrote itself."""
    texts = tuple(sorted({t for t in vocab.control_token_texts() if t}))
    alphabet = "".join(sorted(set("".join(texts))))
    shifted = _render_shifted(source, messages, vocab, alphabet, trusted)
    shifter = _jinja_sandbox.Shifter(alphabet)
    pattern = _control_pattern(texts)
    segments: list[Segment] = []
    done = 0
    for match in pattern.finditer(shifted) if pattern else ():
        token = vocab.token_id(match.group())
        if token is None:
            continue
        segments += [shifter.unshift(shifted[done : match.start()]), token]
        done = match.end()
    segments.append(shifter.unshift(shifted[done:]))
    return segments


def _segments_to_ids(segments: Sequence[Segment], vocab: PromptVocab) -> list[int]:
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
