"""llama.cpp's tokenizer seen through :class:`~bllossom_core.templates.PromptVocab`."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from bllossom_core.gguf_inspect import GGUFInfo, read_gguf_info
from bllossom_core.native import load_llama


class LlamaVocab:
    """Tokenize, detokenize and look up special tokens of a loaded ``llama_cpp.Llama``."""

    def __init__(self, llm: Any, info: GGUFInfo) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._info = info
        self._special: dict[str, int | None] = {}
        self._control_texts: tuple[str, ...] | None = None
        bos, eos = llm.token_bos(), llm.token_eos()
        self._bos = bos if bos >= 0 else None
        self._eos = eos if eos >= 0 else None
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        # SentencePiece vocabularies prefix text with a space; llama.cpp drops it again
        # from the first piece of a detokenized sequence, and so do we when streaming.
        self.strips_first_space = info.get("tokenizer.ggml.model") == "llama" and bool(
            info.get("tokenizer.ggml.add_space_prefix", True)
        )

    @property
    def bos_id(self) -> int | None:
        return self._bos

    @property
    def eos_id(self) -> int | None:
        return self._eos

    @property
    def add_bos(self) -> bool:
        return self._add_bos

    def token_id(self, text: str) -> int | None:
        if text not in self._special:
            tokens = self._info.tokens
            try:
                self._special[text] = tokens.index(text)
            except ValueError:
                self._special[text] = None
        return self._special[text]

    def control_token_texts(self) -> tuple[str, ...]:
        """Tokens llama.cpp parses only with ``special=True`` (control and unknown types)."""
        if self._control_texts is None:
            tokens = self._info.tokens
            kinds = self._info.get("tokenizer.ggml.token_type")
            if isinstance(kinds, list) and len(kinds) == len(tokens):
                texts = [t for t, kind in zip(tokens, kinds, strict=True) if kind in (2, 3)]
            else:  # no token types stored: the roles named in the metadata
                texts = [tokens[i] for i in self._info.special_token_ids().values()
                         if i < len(tokens)]  # fmt: skip
            self._control_texts = tuple(texts)
        return self._control_texts

    def token_text(self, token_id: int) -> str:
        return self._info.token_text(token_id) or ""

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        if not text:
            return []
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def piece(self, token: int, *, strip_space: bool = False) -> bytes:
        """The bytes of one generated token (control tokens render as nothing)."""
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = self._lib.llama_token_to_piece(
                self._vocab, token, buffer, size, 1 if strip_space else 0, False
            )
            if n >= 0:
                return buffer.raw[:n]
            size = -n

    def detokenize(self, tokens: list[int]) -> bytes:
        """llama.cpp's own detokenization of a whole sequence, for comparisons."""
        size = max(64, len(tokens) * 16)
        array = (self._lib.llama_token * max(len(tokens), 1))(*tokens)
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = self._lib.llama_detokenize(
                self._vocab, array, len(tokens), buffer, size, False, False
            )
            if n >= 0:
                return buffer.raw[:n]
            size = -n


def open_vocab(path: str | Path) -> LlamaVocab:
    """Only the tokenizer of a GGUF (no weights), after the safe header check; a failed
    load raises ``ValueError``/``RuntimeError`` with llama.cpp's reason (see
    :func:`~bllossom_core.native.load_llama`)."""
    info = read_gguf_info(path)
    return LlamaVocab(load_llama(path, vocab_only=True), info)
