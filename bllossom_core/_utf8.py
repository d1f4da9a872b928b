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
        """Whatever is left at the end; a truncated character becomes U+FFFD."""
        return str(self._decoder.decode(b"", final=True))

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished character are held back."""
        return bool(self._decoder.getstate()[0])
