"""The chat templates Bllossom ships (internal; trusted, rendered in this process).

"llama2-bllossom" and "llama3" are written in Python and emit special tokens as ids;
they equal the Jinja templates of the Hugging Face checkpoints, ids for ids
(``apply_chat_template``): Llama-2 trims every message (the first user message only at
its end, because the system block precedes it), Llama-3 trims every message, and both
write the BOS the way those templates do. "chatml" and "gemma" are short Jinja templates
for model files that carry none (see :func:`bllossom_core.templates.choose_template`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bllossom_core.errors import TemplateError
from bllossom_core.types import ChatMessage

if TYPE_CHECKING:
    from bllossom_core.templates import PromptVocab

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. 당신은 유능한 AI 어시스턴트 입니다."
LLAMA3_HEADER_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Gemma has no system role: the system prompt opens the first user turn, as in Gemma 3's.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set prefix = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
JINJA_BUILTINS = {"chatml": CHATML_TEMPLATE, "gemma": GEMMA_TEMPLATE}

Segment = str | int  # text, or the id of a special token


def split_system(messages: Sequence[ChatMessage]) -> tuple[str | None, list[ChatMessage]]:
    if messages and messages[0].role == "system":
        return messages[0].content, list(messages[1:])
    return None, list(messages)


def required_id(vocab: PromptVocab, text: str) -> int:
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
    system, turns = split_system(messages)
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
    """``<|begin_of_text|>`` then ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}
    <|eot_id|>`` per message and the assistant header, as Meta's Llama-3 template writes."""
    start, end, eot = (required_id(vocab, t) for t in LLAMA3_HEADER_TOKENS)
    segments: list[Segment] = [] if vocab.bos_id is None else [vocab.bos_id]
    for message in messages:
        segments += [start, message.role, end, "\n\n" + message.content.strip(), eot]
    segments += [start, "assistant", end, "\n\n"]
    return segments
