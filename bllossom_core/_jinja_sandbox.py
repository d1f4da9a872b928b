"""Rendering Jinja chat templates in a bounded sandbox (internal).

This module imports only the standard library, Jinja and :mod:`bllossom_core._shifted_text`,
because it is also the program of the template worker process (:func:`serve`, see
:mod:`bllossom_core._template_worker`), which renders the untrusted templates of GGUF
files under an address-space limit and a wall-clock timeout.

The environment is Hugging Face's ``apply_chat_template`` one (immutable sandbox,
``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``, its ``tojson``, ``raise_exception``
and ``strftime_now``), plus size checks that refuse, *before* the work is done, whatever
would build a huge value: repetition and concatenation, padding and format widths,
joins, loops, ``lipsum``, numbers with thousands of digits. What the checks miss, the
worker's limits stop.

Message contents are rendered as :class:`ShiftedText`: every character that occurs in
a control token's spelling is stored as a code point of the surrogate range, so nothing
a message contains can spell a control token in the output, whatever the template does
with it (slicing, splitting, joining); the string methods a template calls see the
original text. The caller finds control tokens in the rendered text, then shifts the
characters back (:meth:`Shifter.unshift`): one render, linear time.
"""

from __future__ import annotations

import datetime
import json
import re
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

from bllossom_core._shifted_text import (
    ShiftedText,
    Shifter,
    TemplateLimitError,
    has_shifted,
    plain,
    shifter_of,
)

__all__ = ["Shifter", "TemplateLimitError", "TemplateRaised", "classify", "render_chat"]

MAX_OUTPUT_CHARS = 4_000_000  # plus twice the characters of the messages
MAX_LOOP_ITEMS = 1_000_000  # all loops of one render together
MAX_INT_BITS = 4096
MAX_LIPSUM = 100
_PERCENT_FIELD = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_NUMBERS = re.compile(r"\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


class TemplateRaised(Exception):
    """The template called ``raise_exception``: it refuses this conversation."""


class _Bounds:
    """The limits of one render; ``size`` scales with the conversation's length."""

    def __init__(self) -> None:
        self.reset(0)

    def reset(self, input_chars: int) -> None:
        self.size = MAX_OUTPUT_CHARS + 2 * input_chars
        self.loop_items = MAX_LOOP_ITEMS

    def weight(self, value: Any) -> int:
        if isinstance(value, str | bytes):
            return len(value)
        if isinstance(value, list | tuple):
            return len(value) + sum(len(v) for v in value if isinstance(v, str))
        return 0

    def check_size(self, value: Any, what: str) -> None:
        if self.weight(value) > self.size:
            raise TemplateLimitError(f"{what} too large")

    def charge_loop(self, items: int) -> None:
        self.loop_items -= items
        if self.loop_items < 0:
            raise TemplateLimitError("too many loop iterations")

    def check_int(self, value: Any, what: str) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > self.size:
            raise TemplateLimitError(f"{what} {value} too large")

    def check_binop(self, operator: str, left: Any, right: Any) -> None:
        both_ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**":
            if both_ints and right > 0 and max(abs(left).bit_length(), 1) * right > MAX_INT_BITS:
                raise TemplateLimitError("power too large")
        elif operator == "*":
            if both_ints and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                raise TemplateLimitError("number too large")
            for seq, count in ((left, right), (right, left)):
                if isinstance(count, int) and self.weight(seq) * max(count, 0) > self.size:
                    raise TemplateLimitError("repetition too large")
        elif operator == "+":
            if self.weight(left) + self.weight(right) > self.size:
                raise TemplateLimitError("concatenation too large")
        elif operator == "%" and isinstance(left, str):
            self.check_percent(left, right)

    def check_percent(self, text: str, args: Any) -> None:
        values = args if isinstance(args, tuple) else (args,)
        for match in _PERCENT_FIELD.finditer(text):
            for width in match.groups():
                if width and width != "*":
                    self.check_int(int(width), "format width")
        if "*" in text:
            for value in values:
                self.check_int(value, "format width")

    def check_format(self, text: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        for match in _FORMAT_NUMBERS.finditer(text):
            self.check_int(int(match.group(1)), "format width")
        if _NESTED_FIELD.search(text):
            for value in [*args, *kwargs.values()]:
                self.check_int(value, "format width")

    def check_call(self, obj: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        for value in [*args, *kwargs.values()]:
            self.check_size(value, "argument")
        obj = getattr(obj, "__wrapped__", obj)  # Jinja wraps str.format in a function
        owner = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", "")
        if not isinstance(owner, str):
            return
        if name in _WIDTH_METHODS and args:
            self.check_int(args[0], "width")
        elif name == "expandtabs":
            tabsize = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(tabsize, int) and tabsize * owner.count("\t") > self.size:
                raise TemplateLimitError("tab expansion too large")
        elif name in ("format", "format_map"):
            self.check_format(owner, args, kwargs)
        elif name == "join" and args and isinstance(args[0], list | tuple | str):
            parts = args[0]
            total = sum(len(p) for p in parts if isinstance(p, str)) + len(owner) * len(parts)
            if total > self.size:
                raise TemplateLimitError("join too large")
        elif name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            if isinstance(old, str) and isinstance(new, str):
                hits = owner.count(old) if old else len(owner) + 1
                if len(owner) + hits * max(0, len(new) - len(old)) > self.size:
                    raise TemplateLimitError("replacement too large")


def _environment(bounds: _Bounds) -> Any:
    """A Hugging Face chat-template environment with ``bounds`` enforced."""
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import Namespace, generate_lorem_ipsum

    class BoundedCodeGenerator(CodeGenerator):
        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # the ``~`` operator
            self.write("environment.bounded_concat((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class GenerationTag(jinja2.ext.Extension):
        """``{% generation %}`` marks assistant text for training; it renders its body."""

        tags = {"generation"}  # noqa: RUF012  (Jinja's own attribute)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body).set_lineno(lineno)

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        code_generator_class = BoundedCodeGenerator
        intercepted_binops = frozenset({"*", "**", "%", "+"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            bounds.check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            bounds.check_call(__obj, args, kwargs)
            result = super().call(__context, __obj, *args, **kwargs)
            bounds.check_size(result, "result")
            return result

        def bounded_concat(self, parts: Sequence[Any]) -> str:
            texts = [p if isinstance(p, str) else str(p) for p in parts]
            if sum(len(t) for t in texts) > bounds.size:
                raise TemplateLimitError("concatenation too large")
            return "".join(texts)

    class BoundedNamespace(Namespace):
        def __setitem__(self, name: str, value: Any) -> None:
            bounds.check_size(value, "namespace value")
            super().__setitem__(name, value)

    def bounded_range(*args: int) -> range:
        items = range(*args)
        bounds.charge_loop(len(items))
        return items

    def bounded_loop(iterable: Any) -> Any:
        if hasattr(iterable, "__len__"):
            bounds.charge_loop(len(iterable))
            return iterable
        return _charged(iterable, bounds)

    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        if n > MAX_LIPSUM or max > MAX_LIPSUM or min > MAX_LIPSUM:
            raise TemplateLimitError("lipsum too long")
        return str(generate_lorem_ipsum(n, html, min, max))

    def raise_exception(message: str) -> None:
        raise TemplateRaised(message)

    def strftime_now(date_format: str) -> str:
        return datetime.datetime.now().strftime(date_format)

    def tojson(value: Any, ensure_ascii: bool = False, indent: Any = None,
               separators: Any = None, sort_keys: bool = False) -> str:  # fmt: skip
        text = json.dumps(plain(value), ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)  # fmt: skip
        if has_shifted(value):  # message text stays message text
            return ShiftedText(shifter_of(value).shift(text), shifter_of(value))
        return text

    def replace(value: Any, old: str, new: str, count: int | None = None) -> str:
        text = value if isinstance(value, str) else str(value)
        bounds.check_call(text.replace, (old, new), {})
        return text.replace(old, new, -1 if count is None else count)

    def bounded_filter(name: str, width_arg: int) -> Callable[..., Any]:
        original = env.filters[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            if len(args) > width_arg:
                bounds.check_int(args[width_arg], f"{name} width")
            for value in kwargs.values():
                bounds.check_int(value, f"{name} width")
            return original(*args, **kwargs)

        return call

    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True,
                         extensions=[jinja2.ext.loopcontrols, GenerationTag])  # fmt: skip
    percent_format = env.filters["format"]

    def format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
        bounds.check_percent(str(value), args)
        return str(percent_format(value, *args, **kwargs))

    env.filters.update(tojson=tojson, replace=replace, format=format_filter)
    for name, width_arg in (("center", 1), ("indent", 1), ("batch", 1), ("slice", 1),
                            ("wordwrap", 1), ("truncate", 1)):  # fmt: skip
        env.filters[name] = bounded_filter(name, width_arg)
    env.globals.update(range=bounded_range, namespace=BoundedNamespace, lipsum=lipsum,
                       raise_exception=raise_exception, strftime_now=strftime_now,
                       bounded_loop=bounded_loop)  # fmt: skip
    return env


def _charged(iterable: Any, bounds: _Bounds) -> Iterator[Any]:
    for item in iterable:
        bounds.charge_loop(1)
        yield item


def _compile(env: Any, source: str) -> Any:
    """Parse ``source`` and charge every ``for`` loop's items to the loop budget."""
    from jinja2 import nodes

    tree = env.parse(source)
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(nodes.Name("bounded_loop", "load"), [loop.iter], [], None, None)
    return env.from_string(tree)


_CACHE_SIZE = 8
_compiled: dict[str, tuple[_Bounds, Any]] = {}
_render_lock = threading.Lock()


def _compiled_template(source: str) -> tuple[_Bounds, Any]:
    """One environment and compiled template per source, so a warm render costs little."""
    if source not in _compiled:
        bounds = _Bounds()
        template = _compile(_environment(bounds), source)
        if len(_compiled) >= _CACHE_SIZE:
            _compiled.pop(next(iter(_compiled)))
        _compiled[source] = (bounds, template)
    return _compiled[source]


def render_chat(
    source: str,
    messages: Sequence[Mapping[str, str]],
    bos_token: str,
    eos_token: str,
    alphabet: str,
) -> str:
    """Render ``source`` as ``apply_chat_template`` does, message contents shifted.

    Returns the rendered text with message characters still shifted (see
    :class:`Shifter`); :class:`TemplateRaised`, :class:`TemplateLimitError`, Jinja's
    ``SecurityError`` or any other exception for a template that cannot render.
    """
    shifter = Shifter(alphabet)
    context = {
        "messages": [
            {"role": m["role"], "content": ShiftedText(shifter.shift(m["content"]), shifter)}
            for m in messages
        ],
        "bos_token": bos_token,
        "eos_token": eos_token,
        "add_generation_prompt": True,
        "tools": None,
        "documents": None,
    }
    with _render_lock:
        bounds, template = _compiled_template(source)
        bounds.reset(sum(len(m["content"]) for m in messages))
        out: list[str] = []
        total = 0
        for chunk in template.generate(**context):
            total += len(chunk)
            if total > bounds.size:
                raise TemplateLimitError("output too long")
            out.append(chunk)
        return "".join(out)


def classify(exc: BaseException) -> tuple[str, str]:
    """``(kind, message)`` of a render failure: raised, limit, unsafe or invalid."""
    from jinja2.exceptions import SecurityError

    if isinstance(exc, TemplateRaised):
        return "raised", str(exc)
    if isinstance(exc, TemplateLimitError | MemoryError | RecursionError | OverflowError):
        return "limit", str(exc) or type(exc).__name__
    if isinstance(exc, SecurityError):
        return "unsafe", str(exc)
    return "invalid", f"{type(exc).__name__}: {exc}"


# --- the worker process's side of the pipe protocol: length-prefixed JSON frames ---

_HEADER = struct.Struct(">I")


def write_frame(stream: IO[bytes], payload: Any) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def decode_frame(data: bytes) -> Any:
    return json.loads(data.decode("utf-8", "surrogatepass"))


def _read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    size = _HEADER.unpack(header)[0]
    return decode_frame(stream.read(size))


def serve(memory_limit: int) -> None:
    """The worker's main loop: one render per request until stdin closes."""
    import resource

    import jinja2.sandbox  # noqa: F401  (imported before the limit is set)

    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    write_frame(stdout, {"ready": True})
    while (request := _read_frame(stdin)) is not None:
        try:
            reply = {"ok": True, "text": render_chat(**request)}
        except MemoryError:
            request = None
            write_frame(stdout, {"ok": False, "kind": "limit", "message": "out of memory",
                                 "exited": True})  # fmt: skip
            return  # a fresh process for the next render
        except Exception as exc:
            kind, message = classify(exc)
            reply = {"ok": False, "kind": kind, "message": message[:500]}
        write_frame(stdout, reply)
