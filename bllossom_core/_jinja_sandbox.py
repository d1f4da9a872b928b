"""Rendering untrusted Jinja chat templates (internal).

A GGUF's ``tokenizer.chat_template`` comes from whoever made the file. Jinja's
immutable sandbox already stops attribute tricks (``__class__``, ``__globals__``) and
mutation (CVE-2024-34359 was llama-cpp-python rendering such templates unsandboxed);
on top of it this module bounds the work a template may cause: huge number or
width literals are refused before rendering, ``*``/``**``/``%`` may not build huge
values, all ``range`` loops of one render share an iteration budget, and the output
is cut off at a maximum length.
"""

from __future__ import annotations

import re
from typing import Any

MAX_NUMBER = 1_000_000
MAX_SEQUENCE = 1_000_000
MAX_RANGE_ITEMS = 100_000
MAX_OUTPUT_CHARS = 4_000_000
_BIG_WIDTH = re.compile(r"\d{7,}")


class TemplateLimitError(Exception):
    """The template asked for more work or memory than a chat prompt could need."""


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "**":
        if isinstance(right, int | float) and abs(right) > 64:
            raise TemplateLimitError("exponent too large")
    elif operator == "*":
        for seq, count in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(count, int) and size * count > MAX_SEQUENCE:
                raise TemplateLimitError("repetition too large")
        numbers = isinstance(left, int | float) and isinstance(right, int | float)
        if numbers and abs(left * right) > MAX_NUMBER * MAX_NUMBER:
            raise TemplateLimitError("number too large")
    elif operator == "%" and isinstance(left, str) and _BIG_WIDTH.search(left):
        raise TemplateLimitError("format width too large")


def _check_literals(environment: Any, source: str) -> None:
    from jinja2 import nodes

    for const in environment.parse(source).find_all(nodes.Const):
        value = const.value
        if isinstance(value, int | float) and abs(value) > MAX_NUMBER:
            raise TemplateLimitError(f"number literal {value} too large")
        if isinstance(value, str) and _BIG_WIDTH.search(value):
            raise TemplateLimitError("width in a string literal too large")


def render_untrusted(source: str, context: dict[str, Any]) -> str:
    """Render ``source`` with ``context``; Jinja's ``SecurityError`` or
    :class:`TemplateLimitError` for anything unsafe, other exceptions for broken templates.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

    budget = [MAX_RANGE_ITEMS]

    def bounded_range(*args: int) -> range:
        items = range(*args)
        budget[0] -= len(items)
        if budget[0] < 0:
            raise TemplateLimitError("too many loop iterations")
        return items

    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True)
    env.globals["range"] = bounded_range
    _check_literals(env, source)
    template = env.from_string(source)
    out: list[str] = []
    total = 0
    for chunk in template.generate(**context):
        total += len(chunk)
        if total > MAX_OUTPUT_CHARS:
            raise TemplateLimitError("output too long")
        out.append(chunk)
    return "".join(out)
