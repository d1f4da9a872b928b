"""Turning a stream of token bytes into text pieces that never split a character.

Korean syllables are three bytes in UTF-8 and a tokenizer often spreads one over two or
three tokens, so decoding each token's bytes on its own prints U+FFFD. The local engine
pushes each token's raw bytes through :class:`Utf8Assembler`, which holds back an
incomplete character until its last byte arrives.
"""

from __future__ import annotations

import codecs


class Utf8Assembler:
    """Feed bytes in any split; get back only whole characters."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """The characters completed by ``data`` (possibly ``""``)."""
        return str(self._decoder.decode(data, final=False))

    def flush(self) -> str:
        """The end of the stream: the bytes of an unfinished character are dropped.

        They can only be the start of a character the reply never finished (it stopped
        at the length limit, a stop string or a cancel); decoding them would end the
        saved reply in U+FFFD ("고려\ufffd").
        """
        self._decoder.reset()
        return ""

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished character are held back."""
        return bool(self._decoder.getstate()[0])


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds UTF-16 surrogates, which UTF-8 cannot encode.

    They come from JSON ``\\ud83d`` escapes and from bytes Python could not decode
    (``surrogateescape`` turns ``b"\\xff"`` into ``"\\udcff"``).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def valid_text(text: str) -> str:
    """``text`` with surrogate pairs joined into their character and every lone
    surrogate replaced by U+FFFD, so that it can always be encoded as UTF-8."""
    if not has_surrogates(text):
        return text
    # UTF-16 knows surrogates: a pair decodes to its character, a lone one fails.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class SurrogateJoiner:
    """Joins a surrogate pair split across two pieces of streamed text.

    JSON escapes an emoji as two ``\\uXXXX`` surrogates, and a server may send them in
    two events. :meth:`feed` holds back a high surrogate at the end of a piece until
    the next piece shows whether its partner follows; lone surrogates become U+FFFD.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        self._held = ""
        if text and "\ud800" <= text[-1] <= "\udbff":
            text, self._held = text[:-1], text[-1]
        return valid_text(text)

    def flush(self) -> str:
        """What is held back at the end: a high surrogate with no partner is U+FFFD."""
        held, self._held = self._held, ""
        return valid_text(held)
