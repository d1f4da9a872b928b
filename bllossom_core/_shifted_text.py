"""Message text rendered shifted, so it can never spell a control token (internal).

Standard library only: the template worker process imports it (see
:mod:`bllossom_core._jinja_sandbox`).

Every character that occurs in a control token's spelling is stored as a code point of
the surrogate range (never in valid text; callers replace lone surrogates first), one
for one, so lengths and positions are kept. Whatever a template does with the text
(slicing, splitting, joining), those characters stay shifted in the output, where the
caller finds control tokens before shifting them back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

SHIFT_BASE = 0xD800
SHIFT_SLOTS = 0x800
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


class TemplateLimitError(Exception):
    """The template asked for more work or memory than a chat prompt could need."""


class Shifter:
    """A reversible, length-preserving map of ``alphabet``'s characters to surrogates."""

    def __init__(self, alphabet: str) -> None:
        chars = sorted(set(alphabet))
        if len(chars) > SHIFT_SLOTS:
            raise TemplateLimitError(f"the control tokens use {len(chars)} distinct characters")
        self.forward = {ord(c): SHIFT_BASE + i for i, c in enumerate(chars)}
        self.backward = {SHIFT_BASE + i: ord(c) for i, c in enumerate(chars)}
        self.whitespace = self.shift(_WHITESPACE) + _WHITESPACE

    def shift(self, text: str) -> str:
        return text.translate(self.forward)

    def unshift(self, text: str) -> str:
        return text.translate(self.backward)


def _shift_arg(value: Any, shifter: Shifter) -> Any:
    if isinstance(value, ShiftedText):
        return str.__str__(value)
    if isinstance(value, str):
        return shifter.shift(value)
    if isinstance(value, tuple):
        return tuple(_shift_arg(v, shifter) for v in value)
    return value


def _wrap(value: Any, shifter: Shifter) -> Any:
    if isinstance(value, str):
        return ShiftedText(value, shifter)
    if isinstance(value, list | tuple):
        return type(value)(_wrap(v, shifter) for v in value)
    return value


class ShiftedText(str):
    """Message text as stored shifted; its methods behave as on the original text.

    Methods that search or cut (``split``, ``strip``, slicing, ``in``, ``==``…) run on
    the shifted characters with shifted arguments, so they cost what they cost on a
    plain string; case mappings and ``is…`` tests look at the original text. Results
    stay shifted: text derived from a message never becomes template text.
    """

    _shifter: Shifter
    _hash: int | None

    def __new__(cls, shifted: str, shifter: Shifter) -> ShiftedText:
        text = super().__new__(cls, shifted)
        text._shifter = shifter
        text._hash = None
        return text

    def original(self) -> str:
        return self._shifter.unshift(self)

    def __getitem__(self, key: Any) -> ShiftedText:
        return ShiftedText(str.__getitem__(self, key), self._shifter)

    def __iter__(self) -> Iterator[ShiftedText]:
        shifter = self._shifter
        return (ShiftedText(c, shifter) for c in str.__str__(self))

    def __contains__(self, item: object) -> bool:
        return str.__contains__(self, _shift_arg(item, self._shifter))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented  # ``content != false`` is true, as for a plain string
        return str.__eq__(self, _shift_arg(other, self._shifter))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self) -> str:  # a list of messages printed: quoted as the original would be
        return self._shifter.shift(repr(self.original()))

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.original())
        return self._hash

    def __add__(self, other: str) -> str:
        joined = str.__add__(self, other)
        return ShiftedText(joined, self._shifter) if isinstance(other, ShiftedText) else joined

    def strip(self, chars: str | None = None) -> ShiftedText:
        return self._edge("strip", chars)

    def lstrip(self, chars: str | None = None) -> ShiftedText:
        return self._edge("lstrip", chars)

    def rstrip(self, chars: str | None = None) -> ShiftedText:
        return self._edge("rstrip", chars)

    def _edge(self, name: str, chars: str | None) -> ShiftedText:
        shifted = self._shifter.whitespace if chars is None else _shift_arg(chars, self._shifter)
        return ShiftedText(getattr(str, name)(self, shifted), self._shifter)

    def split(self, sep: str | None = None, maxsplit: int = -1) -> list[ShiftedText]:  # type: ignore[override]
        return self._split("split", sep, maxsplit)

    def rsplit(self, sep: str | None = None, maxsplit: int = -1) -> list[ShiftedText]:  # type: ignore[override]
        return self._split("rsplit", sep, maxsplit)

    def splitlines(self, keepends: bool = False) -> list[ShiftedText]:  # type: ignore[override]
        shifter = self._shifter
        return [
            ShiftedText(shifter.shift(line), shifter)
            for line in self.original().splitlines(keepends)
        ]

    def _split(self, name: str, sep: str | None, maxsplit: int) -> list[ShiftedText]:
        if sep is None:  # whitespace runs, as str.split() finds them in the original
            plain = getattr(str, name)(self.original(), None, maxsplit)
            return [ShiftedText(self._shifter.shift(p), self._shifter) for p in plain]
        parts = getattr(str, name)(self, _shift_arg(sep, self._shifter), maxsplit)
        return [ShiftedText(p, self._shifter) for p in parts]


def _searching(name: str) -> Callable[..., Any]:
    method = getattr(str, name)

    def call(self: ShiftedText, *args: Any) -> Any:
        return _wrap(method(self, *(_shift_arg(a, self._shifter) for a in args)), self._shifter)

    call.__name__ = name
    return call


def _on_original(name: str) -> Callable[..., Any]:
    method = getattr(str, name)

    def call(self: ShiftedText, *args: Any) -> Any:
        shifter = self._shifter
        result = method(self.original(), *(plain(a) for a in args))
        return ShiftedText(shifter.shift(result), shifter) if isinstance(result, str) else result

    call.__name__ = name
    return call


for _name in ("startswith", "endswith", "find", "rfind", "index", "rindex", "count",
              "partition", "rpartition", "replace", "removeprefix", "removesuffix",
              "ljust", "rjust", "center", "zfill"):  # fmt: skip
    setattr(ShiftedText, _name, _searching(_name))
for _name in ("upper", "lower", "title", "capitalize", "casefold", "swapcase", "isspace",
              "isalpha", "isdigit", "isalnum", "isupper", "islower", "istitle", "isnumeric",
              "isdecimal", "isidentifier", "isprintable", "__lt__", "__le__",
              "__gt__", "__ge__"):  # fmt: skip
    setattr(ShiftedText, _name, _on_original(_name))


def has_shifted(value: Any, depth: int = 0) -> bool:
    if depth > 32:
        raise TemplateLimitError("value nested too deeply")
    if isinstance(value, ShiftedText):
        return True
    if isinstance(value, Mapping):
        return any(has_shifted(v, depth + 1) or has_shifted(k, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_shifted(v, depth + 1) for v in value)
    return False


def plain(value: Any) -> Any:
    if isinstance(value, ShiftedText):
        return value.original()
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def shifter_of(value: Any) -> Shifter:
    if isinstance(value, ShiftedText):
        return value._shifter
    items = value.values() if isinstance(value, Mapping) else value
    return next(shifter_of(v) for v in items if has_shifted(v))
