"""Tokenizer extraction: SentencePiece and byte-level BPE vocabularies into GGUF keys.

The BPE pre-tokenizer is identified from the tokenizer's own definition (its
``pre_tokenizer`` structure and split regex), not from a hash of sample token ids, so
Korean-expanded vocabularies with the Llama-3 pre-tokenizer convert like the original.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from bllossom_core.errors import TokenizerError

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


def load_vocabulary(folder: Path, vocab_size: int) -> Vocabulary:
    """Read the tokenizer in ``folder`` for a model whose embedding has ``vocab_size`` rows."""
    spm_path = folder / "tokenizer.model"
    json_path = folder / "tokenizer.json"
    if spm_path.is_file():
        vocab = _sentencepiece(spm_path, folder, vocab_size)
    elif json_path.is_file():
        vocab = _byte_level_bpe(json_path, folder, vocab_size)
    else:
        raise TokenizerError(
            f"{folder} has no tokenizer (neither tokenizer.model nor tokenizer.json).",
            hint="Download the tokenizer files with the model.",
            path=folder,
        )
    return vocab


def _too_big(path: Path, size: int, vocab_size: int) -> TokenizerError:
    return TokenizerError(
        f"{path.name} has {size:,} tokens but the model's embedding matrix has only "
        f"{vocab_size:,} rows; tokenizer and weights do not belong together.",
        path=path,
    )


def _looks_special(text: str) -> bool:
    return (text.startswith("<|") and text.endswith("|>")) or text in ("<pad>", "<mask>")


def _sentencepiece(path: Path, folder: Path, vocab_size: int) -> Vocabulary:
    from sentencepiece import SentencePieceProcessor

    processor = SentencePieceProcessor()
    try:
        processor.LoadFromFile(str(path))
    except (OSError, RuntimeError) as exc:
        raise TokenizerError(
            f"{path} is not a valid SentencePiece model ({str(exc).splitlines()[0]}).",
            hint="Download tokenizer.model again.",
            path=path,
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
    added = _read_optional_json(folder / "added_tokens.json")
    for text, token_id in (added or {}).items():
        if isinstance(token_id, int) and 0 <= token_id < vocab_size:
            tokens[token_id] = text.encode("utf-8")
            scores[token_id] = -1000.0
            types[token_id] = int(T.USER_DEFINED)
    config = _read_optional_json(folder / "tokenizer_config.json") or {}
    for key, entry in (config.get("added_tokens_decoder") or {}).items():
        token_id = int(key)
        if token_id >= vocab_size or not isinstance(entry, dict):
            continue
        text = str(entry.get("content", ""))
        if entry.get("special") or _looks_special(text):
            types[token_id] = int(T.CONTROL)
        else:
            text = text.replace("\u2581", " ")
            types[token_id] = int(T.USER_DEFINED)
        tokens[token_id] = text.encode("utf-8")
        scores[token_id] = -1000.0
    special = _special_vocab(folder, vocab_size, merges=False)
    return Vocabulary("llama", "default", tokens, types, scores, special)


def _read_optional_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerError(
            f"{path} is not valid JSON ({exc}).", hint="Download it again.", path=path
        ) from None


def _special_vocab(folder: Path, vocab_size: int, *, merges: bool) -> gguf.SpecialVocab:
    try:
        special = gguf.SpecialVocab(folder, load_merges=merges, n_vocab=vocab_size)
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerError(
            f"The tokenizer files in {folder} are inconsistent ({exc}).", path=folder
        ) from None
    if isinstance(special.chat_template, list):  # named templates: keep the default
        named = {t.get("name"): t.get("template") for t in special.chat_template}
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
    if len(steps) != 2:
        return None
    split, byte_level = steps
    if (
        split.get("type") == "Split"
        and (split.get("pattern") or {}).get("Regex") == LLAMA3_SPLIT_REGEX
        and split.get("behavior") == "Isolated"
        and not split.get("invert", False)
        and byte_level.get("type") == "ByteLevel"
        and not byte_level.get("use_regex", True)
    ):
        return "llama-bpe"
    return None


def _byte_level_bpe(path: Path, folder: Path, vocab_size: int) -> Vocabulary:
    data: Any = _read_optional_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("vocab"), dict):
        raise TokenizerError(f"{path} has no model vocabulary; it is corrupt.", path=path)
    if model.get("type") != "BPE":
        raise TokenizerError(
            f"{path} holds a {model.get('type')} tokenizer; only BPE and SentencePiece "
            "tokenizers are supported.",
            path=path,
        )
    pre = identify_pre_tokenizer(data.get("pre_tokenizer"), data.get("normalizer"))
    if pre is None:
        raise TokenizerError(
            f"{path}: the pre-tokenizer is not one llama.cpp implements (only the "
            "Llama-3 and GPT-2 byte-level pre-tokenizers are supported).",
            path=path,
        )
    by_id: dict[int, str] = {}
    for text, token_id in model["vocab"].items():
        by_id[int(token_id)] = text
    added = {int(t["id"]): t for t in data.get("added_tokens", []) if isinstance(t, dict)}
    for token_id, entry in added.items():
        by_id[token_id] = str(entry.get("content", ""))
    if by_id and max(by_id) >= vocab_size:
        raise _too_big(path, max(by_id) + 1, vocab_size)
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
        raise TokenizerError(f"{path} has no BPE merges; it is incomplete.", path=path)
    extra: dict[str, int] = {}
    texts = {text: token_id for token_id, text in by_id.items()}
    if "<|eot_id|>" in texts:
        extra["eot"] = texts["<|eot_id|>"]
    return Vocabulary("gpt2", pre, tokens, types, None, special, extra)
