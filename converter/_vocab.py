"""Tokenizer extraction: SentencePiece and byte-level BPE vocabularies into GGUF keys.

The BPE pre-tokenizer is identified from the tokenizer's own definition (its
``pre_tokenizer`` structure and split regex), not from a hash of sample token ids, so
Korean-expanded vocabularies with the Llama-3 pre-tokenizer convert like the original.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from bllossom_core.errors import ErrorCode, TokenizerError
from converter._json import (
    MAX_JSON_BYTES,
    MAX_TOKENIZER_JSON_BYTES,
    check_regular_file,
    json_type,
    read_json,
)

T = gguf.TokenType

LLAMA3_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass
class Vocabulary:
    model: str  # "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    pre: str
    tokens: list[bytes]
    token_types: list[int]
    scores: list[float] | None
    special: gguf.SpecialVocab
    extra_ids: dict[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "spm" if self.model == "llama" else "bpe"

    def add_to(self, writer: gguf.GGUFWriter) -> None:
        writer.add_tokenizer_model(self.model)
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.token_types)
        self.special.add_to_gguf(writer, quiet=True)
        for kind, token_id in self.extra_ids.items():
            getattr(writer, f"add_{kind}_token_id")(token_id)


MAX_SPM_BYTES = 64 * 2**20  # a 256k-piece SentencePiece model is about 5 MB
_SIDE_FILES = ("special_tokens_map.json", "added_tokens.json", "chat_template.json")
"""JSON files that gguf's SpecialVocab reads on its own, unbounded: checked first."""
_TEMPLATE_FILES = ("chat_template.jinja",)


def _check_side_files(folder: Path) -> None:
    """Bound and parse every tokenizer file that a library reads after us, so that a link
    to /dev/zero, a FIFO or a deeply nested file is refused here with a message."""
    for name in _SIDE_FILES:
        read_json(folder / name, TokenizerError, required=False, object_only=False)
    for name in _TEMPLATE_FILES:
        if (folder / name).exists() or (folder / name).is_symlink():
            check_regular_file(folder / name, TokenizerError, max_bytes=MAX_JSON_BYTES)


def load_vocabulary(folder: Path, vocab_size: int) -> Vocabulary:
    """Read the tokenizer in ``folder`` for a model whose embedding has ``vocab_size`` rows."""
    spm_path = folder / "tokenizer.model"
    json_path = folder / "tokenizer.json"
    decoder = _added_tokens_decoder(folder / "tokenizer_config.json", vocab_size)
    _check_side_files(folder)
    if spm_path.exists() or spm_path.is_symlink():  # not a regular file: refused there
        vocab = _sentencepiece(spm_path, folder, vocab_size, decoder)
    elif json_path.exists() or json_path.is_symlink():
        vocab = _byte_level_bpe(json_path, folder, vocab_size)
    else:
        raise TokenizerError(
            f"{folder} has no tokenizer (neither tokenizer.model nor tokenizer.json).",
            hint="Download the tokenizer files with the model.",
            path=folder,
            code=ErrorCode.TOKENIZER_INVALID,
        )
    return vocab


def _too_big(path: Path, size: int, vocab_size: int) -> TokenizerError:
    return TokenizerError(
        f"{path.name} has {size:,} tokens but the model's embedding matrix has only "
        f"{vocab_size:,} rows; tokenizer and weights do not belong together.",
        hint="Use the tokenizer files that came with these weights.",
        path=path,
        code=ErrorCode.TOKENIZER_INVALID,
    )


def _looks_special(text: str) -> bool:
    return (text.startswith("<|") and text.endswith("|>")) or text in ("<pad>", "<mask>")


def token_id_in_range(value: Any, vocab_size: int, path: Path, where: str) -> int:
    """``value`` as a token id of a ``vocab_size`` vocabulary, or a TokenizerError.

    A negative id would silently index from the end of the token list in Python, so it is
    refused like any other id outside the embedding.
    """
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenizerError(
            f"{path}: {where} {json.dumps(value)[:40]}, which is not a whole number.",
            hint=f"Fix it in {path.name} or download the file again.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        )
    if not 0 <= value < vocab_size:
        raise TokenizerError(
            f"{path}: {where} {value}, outside 0..{vocab_size - 1} (the model's embedding "
            f"has {vocab_size:,} rows).",
            hint=f"Fix it in {path.name}, or use the tokenizer files that came with the weights.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        )
    return value


def _added_tokens_decoder(path: Path, vocab_size: int) -> dict[int, dict[str, Any]]:
    """``added_tokens_decoder`` of ``tokenizer_config.json``, checked entry by entry."""
    config = read_json(path, TokenizerError, required=False) or {}
    decoder = config.get("added_tokens_decoder", {})
    if not isinstance(decoder, dict):
        raise TokenizerError(
            f"{path}: added_tokens_decoder is a JSON {json_type(decoder)}, but it must be an "
            'object like {"32000": {"content": "<tok>"}}.',
            hint="Fix it in tokenizer_config.json or download the file again.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        )
    entries: dict[int, dict[str, Any]] = {}
    for key, entry in decoder.items():
        token_id = token_id_in_range(key, vocab_size, path, "added_tokens_decoder has key")
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise TokenizerError(
                f"{path}: added_tokens_decoder key {json.dumps(key)} must map to an object "
                'with a string "content".',
                hint="Fix it in tokenizer_config.json or download the file again.",
                path=path,
                code=ErrorCode.TOKENIZER_INVALID,
            )
        entries[token_id] = entry
    return entries


def _added_tokens(path: Path, vocab_size: int) -> dict[str, int]:
    """``added_tokens.json`` (token text -> id), checked entry by entry."""
    added = read_json(path, TokenizerError, required=False) or {}
    return {
        text: token_id_in_range(token_id, vocab_size, path, f"token {text!r} has id")
        for text, token_id in added.items()
    }


def _sentencepiece(
    path: Path, folder: Path, vocab_size: int, decoder: dict[int, dict[str, Any]]
) -> Vocabulary:
    from sentencepiece import SentencePieceProcessor

    check_regular_file(path, TokenizerError, max_bytes=MAX_SPM_BYTES)
    processor = SentencePieceProcessor()
    try:
        processor.LoadFromFile(str(path))
    except (OSError, RuntimeError) as exc:
        raise TokenizerError(
            f"{path} is not a valid SentencePiece model ({str(exc).splitlines()[0]}).",
            hint="Download tokenizer.model again.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        ) from None
    size = processor.vocab_size()
    if size > vocab_size:
        raise _too_big(path, size, vocab_size)
    tokens = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    types = [int(T.UNUSED)] * vocab_size
    for token_id in range(size):
        tokens[token_id] = processor.IdToPiece(token_id).encode("utf-8")
        scores[token_id] = processor.GetScore(token_id)
        kind = T.NORMAL
        if processor.IsUnknown(token_id):
            kind = T.UNKNOWN
        elif processor.IsControl(token_id):
            kind = T.CONTROL
        elif processor.IsUnused(token_id):
            kind = T.UNUSED
        elif processor.IsByte(token_id):
            kind = T.BYTE
        types[token_id] = int(kind)
    for text, token_id in _added_tokens(folder / "added_tokens.json", vocab_size).items():
        tokens[token_id] = text.encode("utf-8")
        scores[token_id] = -1000.0
        types[token_id] = int(T.USER_DEFINED)
    for token_id, entry in decoder.items():
        text = entry["content"]
        if entry.get("special") or _looks_special(text):
            types[token_id] = int(T.CONTROL)
        else:
            text = text.replace("\u2581", " ")
            types[token_id] = int(T.USER_DEFINED)
        tokens[token_id] = text.encode("utf-8")
        scores[token_id] = -1000.0
    special = _special_vocab(folder, vocab_size, merges=False)
    return Vocabulary("llama", "default", tokens, types, scores, special)


def _special_vocab(folder: Path, vocab_size: int, *, merges: bool) -> gguf.SpecialVocab:
    try:
        special = gguf.SpecialVocab(folder, load_merges=merges, n_vocab=vocab_size)
    except (ValueError, TypeError, AttributeError, KeyError, UnicodeDecodeError) as exc:
        raise TokenizerError(
            f"The tokenizer files in {folder} are inconsistent ({exc}).",
            hint="Download tokenizer_config.json and special_tokens_map.json again.",
            path=folder,
            code=ErrorCode.TOKENIZER_INVALID,
        ) from None
    if isinstance(special.chat_template, list):  # named templates: keep the default
        named = {
            t.get("name"): t.get("template") for t in special.chat_template if isinstance(t, dict)
        }
        special.chat_template = named.get("default")
    return special


def identify_pre_tokenizer(pre_tokenizer: Any, normalizer: Any) -> str | None:
    """The llama.cpp pre-tokenizer name for a ``tokenizer.json`` definition, if known."""
    if normalizer not in (None, {}):
        return None
    if not isinstance(pre_tokenizer, dict):
        return None
    kind = pre_tokenizer.get("type")
    if kind == "ByteLevel" and pre_tokenizer.get("use_regex", True):
        return "gpt-2"
    if kind != "Sequence":
        return None
    steps = pre_tokenizer.get("pretokenizers") or []
    if not isinstance(steps, list) or len(steps) != 2:
        return None
    split, byte_level = steps
    if not isinstance(split, dict) or not isinstance(byte_level, dict):
        return None
    pattern = split.get("pattern")
    if (
        isinstance(pattern, dict)
        and pattern.get("Regex") == LLAMA3_SPLIT_REGEX
        and split.get("type") == "Split"
        and split.get("behavior") == "Isolated"
        and not split.get("invert", False)
        and byte_level.get("type") == "ByteLevel"
        and not byte_level.get("use_regex", True)
    ):
        return "llama-bpe"
    return None


def _byte_level_bpe(path: Path, folder: Path, vocab_size: int) -> Vocabulary:
    data = read_json(path, TokenizerError, max_bytes=MAX_TOKENIZER_JSON_BYTES)
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("vocab"), dict):
        raise TokenizerError(
            f"{path} has no model vocabulary; it is corrupt.",
            hint="Download tokenizer.json again.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        )
    if model.get("type") != "BPE":
        raise TokenizerError(
            f"{path} holds a {str(model.get('type'))[:40]} tokenizer; only BPE and "
            "SentencePiece tokenizers are supported.",
            path=path,
            code=ErrorCode.CHECKPOINT_UNSUPPORTED,
        )
    pre = identify_pre_tokenizer(data.get("pre_tokenizer"), data.get("normalizer"))
    if pre is None:
        raise TokenizerError(
            f"{path}: the pre-tokenizer is not one llama.cpp implements (only the "
            "Llama-3 and GPT-2 byte-level pre-tokenizers are supported).",
            path=path,
            code=ErrorCode.CHECKPOINT_UNSUPPORTED,
        )
    by_id: dict[int, str] = {}
    for text, token_id in model["vocab"].items():
        by_id[token_id_in_range(token_id, 2**31, path, f"vocabulary entry {text!r} has id")] = text
    if by_id and max(by_id) >= vocab_size:
        raise _too_big(path, max(by_id) + 1, vocab_size)
    added_list = data.get("added_tokens", [])
    if not isinstance(added_list, list):
        raise TokenizerError(
            f"{path}: added_tokens is a JSON {json_type(added_list)}, but it must be an array.",
            hint="Download tokenizer.json again.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        )
    added: dict[int, dict[str, Any]] = {}
    for entry in added_list:
        if isinstance(entry, dict):
            where = f"added token {str(entry.get('content'))[:40]!r} has id"
            added[token_id_in_range(entry.get("id"), vocab_size, path, where)] = entry
    for token_id, entry in added.items():
        by_id[token_id] = str(entry.get("content", ""))
    tokens: list[bytes] = []
    types: list[int] = []
    for token_id in range(vocab_size):
        text = by_id.get(token_id)
        if text is None:
            tokens.append(f"[PAD{token_id}]".encode())
            types.append(int(T.UNUSED))
            continue
        added_entry = added.get(token_id)
        if added_entry is None:
            types.append(int(T.NORMAL))
        elif added_entry.get("special") or _looks_special(text):
            types.append(int(T.CONTROL))
        else:
            text = text.replace("\u2581", " ")
            types.append(int(T.USER_DEFINED))
        tokens.append(text.encode("utf-8"))
    special = _special_vocab(folder, vocab_size, merges=True)
    if not special.merges:
        raise TokenizerError(
            f"{path} has no BPE merges; it is incomplete.",
            hint="Download tokenizer.json again.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        )
    extra: dict[str, int] = {}
    texts = {text: token_id for token_id, text in by_id.items()}
    if "<|eot_id|>" in texts:
        extra["eot"] = texts["<|eot_id|>"]
    return Vocabulary("gpt2", pre, tokens, types, None, special, extra)
