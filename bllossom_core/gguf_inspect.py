"""A defensive GGUF header and metadata reader that never loads the weights.

llama.cpp's GGUF parser has had heap-overflow CVEs, and ``gguf.GGUFReader`` hangs and
eats memory on a 43-byte file that claims billions of entries. Every model therefore
passes through :func:`read_gguf_info` first: each count, length and dimension is checked
against the bytes actually left in the file *before* anything is allocated, so a
truncated, corrupt or hostile file fails with :class:`GGUFError` in milliseconds.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bllossom_core.errors import GGUFError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_KEY_BYTES = 65_536
MAX_STRING_BYTES = 64 * 1024 * 1024
MAX_TENSOR_ELEMENTS = 1 << 50
DEFAULT_ALIGNMENT = 32

_HINT = "Convert the model again or download it anew; the file may be incomplete or not a GGUF."

# value type -> (struct format, size)
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING, _ARRAY = 8, 9

MAX_LAYERS = 1 << 16
MAX_WIDTH = 1 << 24
MAX_CONTEXT = (1 << 31) - 1
# Architecture keys read by Bllossom or llama.cpp's loader: (inclusive range).
_ARCH_INTS: dict[str, tuple[int, int]] = {
    "block_count": (0, MAX_LAYERS),
    "context_length": (1, MAX_CONTEXT),
    "embedding_length": (1, MAX_WIDTH),
    "feed_forward_length": (1, MAX_WIDTH),
    "attention.head_count": (1, MAX_WIDTH),
    "attention.head_count_kv": (1, MAX_WIDTH),
    "attention.key_length": (1, MAX_WIDTH),
    "attention.value_length": (1, MAX_WIDTH),
    "rope.dimension_count": (0, MAX_WIDTH),
    "vocab_size": (0, 1 << 31),
}
_PER_LAYER = ("feed_forward_length", "attention.head_count", "attention.head_count_kv")
_ARCH_FLOATS = ("rope.freq_base", "attention.layer_norm_rms_epsilon", "rope.scaling.factor")
_TOKEN_ID_ROLES = ("bos", "eos", "eot", "eom", "unknown", "padding", "seperator", "sep")
_BOOL_KEYS = ("tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
              "tokenizer.ggml.add_space_prefix")  # fmt: skip
_STRING_KEYS = ("general.architecture", "general.name", "tokenizer.ggml.model",
                "tokenizer.ggml.pre", "tokenizer.chat_template")  # fmt: skip


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_bytes: int


@dataclass
class GGUFInfo:
    """What a GGUF file says about itself; see :func:`read_gguf_info`."""

    path: Path
    version: int
    file_size: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str:
        return str(self.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.get("general.name") or self.path.stem)

    def arch_value(self, suffix: str, default: Any = None) -> Any:
        return self.get(f"{self.architecture}.{suffix}", default)

    @property
    def context_length(self) -> int | None:
        value = self.arch_value("context_length")
        return int(value) if value is not None else None

    @property
    def block_count(self) -> int:
        return int(self.arch_value("block_count", 0))

    @property
    def tokens(self) -> list[str]:
        value = self.get("tokenizer.ggml.tokens", [])
        return value if isinstance(value, list) else []

    @property
    def vocab_size(self) -> int:
        return len(self.tokens) or int(self.arch_value("vocab_size", 0))

    @property
    def chat_template(self) -> str | None:
        value = self.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def add_bos_token(self) -> bool:
        value = self.get("tokenizer.ggml.add_bos_token")
        if value is None:  # llama.cpp's default: SentencePiece and Llama-3 BPE add one
            return self.get("tokenizer.ggml.model") in ("llama", "gpt2")
        return bool(value)

    def special_token_ids(self) -> dict[str, int]:
        ids = {}
        for role in ("bos", "eos", "eot", "unknown", "padding", "eom"):
            value = self.get(f"tokenizer.ggml.{role}_token_id")
            if isinstance(value, int) and 0 <= value < max(self.vocab_size, 1):
                ids[role] = value
        return ids

    def token_text(self, token_id: int) -> str | None:
        tokens = self.tokens
        return tokens[token_id] if 0 <= token_id < len(tokens) else None

    @property
    def parameter_count(self) -> int:
        total = 0
        for tensor in self.tensors:
            count = 1
            for dim in tensor.shape:
                count *= dim
            total += count
        return total

    @property
    def quantization(self) -> str:
        file_type = self.get("general.file_type")
        if isinstance(file_type, int):
            try:
                from gguf import LlamaFileType

                name = LlamaFileType(file_type).name
                return name.removeprefix("MOSTLY_").removeprefix("ALL_")
            except (ImportError, ValueError):
                return f"file type {file_type}"
        return _dominant_tensor_type(self.tensors)


def _ggml_type_sizes() -> dict[int, tuple[int, int]]:
    from gguf import GGML_QUANT_SIZES

    return {int(kind): sizes for kind, sizes in GGML_QUANT_SIZES.items()}


def _dominant_tensor_type(tensors: list[TensorInfo]) -> str:
    if not tensors:
        return "unknown"
    from gguf import GGMLQuantizationType

    counts: dict[int, int] = {}
    for tensor in tensors:
        counts[tensor.ggml_type] = counts.get(tensor.ggml_type, 0) + tensor.n_bytes
    kind = max(counts, key=counts.__getitem__)
    try:
        return GGMLQuantizationType(kind).name
    except ValueError:
        return f"type {kind}"


class _Cursor:
    """Reads little-endian values from a buffer, refusing to run past its end."""

    def __init__(self, data: mmap.mmap | bytes, path: str) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def fail(self, what: str) -> GGUFError:
        return GGUFError(
            f"{self.path} is not a usable GGUF file: {what} (at byte {self.pos}).",
            hint=_HINT,
            path=self.path,
        )

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.remaining:
            raise self.fail(f"{what} needs {_plural(n, 'byte')} but only {self.remaining} remain")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def scalar(self, fmt: str, size: int, what: str) -> Any:
        return struct.unpack(fmt, self.take(size, what))[0]

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", 8, what))

    def string(self, what: str, limit: int = MAX_STRING_BYTES) -> str:
        length = self.u64(f"length of {what}")
        if length > limit:
            raise self.fail(f"{what} claims {_plural(length, 'byte')} (limit {limit})")
        return self.take(length, what).decode("utf-8", errors="replace")

    def count(self, what: str, min_item_bytes: int) -> int:
        n = self.u64(f"number of {what}")
        if n * min_item_bytes > self.remaining:
            raise self.fail(
                f"its count of {what} ({n}) is more than the remaining "
                f"{_plural(self.remaining, 'byte')} can hold"
            )
        return n


_U64 = struct.Struct("<Q")


def _read_string_array(cur: _Cursor, n: int, key: str) -> list[str]:
    """The hot path (vocabularies of 150k tokens and 300k merges), bounds-checked inline."""
    data, pos, end = cur.data, cur.pos, len(cur.data)
    unpack = _U64.unpack_from
    items = []
    for _ in range(n):
        if pos + 8 > end:
            cur.pos = pos
            raise cur.fail(f"an item of {key} is cut off")
        (length,) = unpack(data, pos)
        pos += 8
        if length > MAX_STRING_BYTES or pos + length > end:
            cur.pos = pos
            raise cur.fail(
                f"an item of {key} claims {_plural(length, 'byte')}, more than the file holds"
            )
        items.append(data[pos : pos + length].decode("utf-8", errors="replace"))
        pos += length
    cur.pos = pos
    return items


def _read_value(cur: _Cursor, kind: int, key: str, in_array: bool = False) -> Any:
    if kind in _SCALARS:
        fmt, size = _SCALARS[kind]
        return cur.scalar(fmt, size, f"value of {key}")
    if kind == _STRING:
        return cur.string(f"value of {key}")
    if kind == _ARRAY and not in_array:
        item_kind = cur.u32(f"array type of {key}")
        if item_kind in _SCALARS:
            fmt, size = _SCALARS[item_kind]
            n = cur.count(f"items in {key}", size)
            raw = cur.take(n * size, f"items of {key}")
            return list(struct.unpack(f"<{n}{fmt[1]}", raw))
        if item_kind == _STRING:
            return _read_string_array(cur, cur.count(f"items in {key}", 8), key)
        raise cur.fail(f"array {key} has unsupported item type {item_kind}")
    raise cur.fail(f"metadata {key} has unknown value type {kind}")


def _read_tensor_infos(
    cur: _Cursor, count: int, type_sizes: dict[int, tuple[int, int]]
) -> list[tuple[str, tuple[int, ...], int, int]]:
    raw = []
    for index in range(count):
        name = cur.string(f"name of tensor {index}", MAX_KEY_BYTES)
        n_dims = cur.u32(f"dimension count of {name}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise cur.fail(f"tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
        shape = tuple(cur.u64(f"dimension of {name}") for _ in range(n_dims))
        elements = 1
        for dim in shape:
            elements *= dim
        if elements > MAX_TENSOR_ELEMENTS:
            raise cur.fail(f"tensor {name} has an absurd shape {shape}")
        ggml_type = cur.u32(f"type of {name}")
        if ggml_type not in type_sizes:
            raise cur.fail(f"tensor {name} has unknown type {ggml_type}")
        block = type_sizes[ggml_type][0]
        if shape[0] % block:
            raise cur.fail(f"tensor {name} row length {shape[0]} is not a multiple of {block}")
        raw.append((name, shape, ggml_type, cur.u64(f"offset of {name}")))
    return raw


def _parse(cur: _Cursor, path: Path) -> GGUFInfo:
    if cur.take(4, "magic") != GGUF_MAGIC:
        raise GGUFError(
            f"{cur.path} is not a GGUF file (it does not start with 'GGUF').",
            hint="Pick a .gguf model file, or convert a checkpoint with `bllossom convert`.",
            path=path,
        )
    version = cur.u32("version")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(
            f"{cur.path} is GGUF version {version}; only versions 2 and 3 are supported.",
            hint="Convert the model again with a current converter.",
            path=path,
        )
    tensor_count = cur.count("tensors", 8 + 4 + 8 + 4 + 8)
    kv_count = cur.count("metadata entries", 8 + 4 + 1)
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = cur.string("metadata key", MAX_KEY_BYTES)
        kind = cur.u32(f"type of {key}")
        metadata[key] = _read_value(cur, kind, key)
    _check_known_keys(metadata, cur.path)

    type_sizes = _ggml_type_sizes()
    raw = _read_tensor_infos(cur, tensor_count, type_sizes)
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise cur.fail(f"general.alignment {alignment!r} is not a power of two")
    data_start = -(-cur.pos // alignment) * alignment
    data_size = len(cur.data) - data_start
    tensors = []
    for name, shape, ggml_type, offset in raw:
        block, type_size = type_sizes[ggml_type]
        elements = 1
        for dim in shape:
            elements *= dim
        n_bytes = elements // block * type_size
        if offset % alignment or offset + n_bytes > data_size:
            raise cur.fail(
                f"tensor {name} ({n_bytes} bytes at offset {offset}) lies outside the "
                f"file's {max(data_size, 0)} bytes of tensor data"
            )
        tensors.append(TensorInfo(name, shape, ggml_type, offset, n_bytes))
    return GGUFInfo(path, version, len(cur.data), metadata, tensors)


def read_gguf_info(path: Path | str) -> GGUFInfo:
    """Read and bounds-check a GGUF file's header, metadata and tensor table.

    Raises :class:`GGUFError` for anything missing, truncated, corrupt or hostile.
    """
    shown = os.fspath(path)  # messages name the file as the user did
    path = Path(path)
    if not path.is_file():
        raise GGUFError(f"{shown} does not exist or is not a file.", path=path)
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 24:
                raise GGUFError(
                    f"{shown} is only {_plural(size, 'byte')} long: too short to be a GGUF file.",
                    hint=_HINT,
                    path=path,
                )
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse(_Cursor(data, shown), path)
    except OSError as exc:
        raise GGUFError(f"Could not read {shown}: {exc.strerror or exc}.", path=path) from exc


def check_loadable(info: GGUFInfo) -> None:
    """Refuse files that parse but that llama.cpp could not make a chat model of."""
    problems = []
    if "general.architecture" not in info.metadata:
        problems.append("it names no architecture")
    if not info.tensors:
        problems.append("it holds no tensors")
    if info.block_count <= 0:
        problems.append("it has no transformer layers")
    if not info.tokens:
        problems.append("it has no vocabulary")
    if problems:
        raise GGUFError(
            f"{info.path} is a GGUF file but not a usable language model: {', '.join(problems)}.",
            hint="It may be an adapter, a vocabulary-only file or damaged; convert the model "
            "again.",
            path=info.path,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_known_keys(metadata: dict[str, Any], shown: str) -> None:
    """Refuse wrongly typed or out-of-range values of every key Bllossom or llama.cpp reads."""

    def bad(key: str, why: str) -> GGUFError:
        return GGUFError(f"{shown} is not a usable GGUF file: metadata {key} {why}.",
                         hint=_HINT, path=shown)  # fmt: skip

    for key in _STRING_KEYS:
        if key in metadata and not isinstance(metadata[key], str):
            raise bad(key, f"should be text but is {metadata[key]!r:.40}")
    for key in _BOOL_KEYS:
        if key in metadata and not isinstance(metadata[key], bool):
            raise bad(key, f"should be true or false but is {metadata[key]!r:.40}")
    arch = metadata.get("general.architecture", "")
    for suffix, (low, high) in _ARCH_INTS.items():
        key = f"{arch}.{suffix}"
        if key not in metadata:
            continue
        value = metadata[key]
        values = value if isinstance(value, list) and suffix in _PER_LAYER else [value]
        if not values or not all(_is_int(v) and low <= v <= high for v in values):
            raise bad(key, f"should be a whole number from {low} to {high} but is {value!r:.40}")
    for suffix in _ARCH_FLOATS:
        key = f"{arch}.{suffix}"
        value = metadata.get(key, 1.0)
        if not (isinstance(value, int | float) and not isinstance(value, bool)) or not (
            math.isfinite(value) and value > 0
        ):
            raise bad(key, f"should be a positive number but is {value!r:.40}")
    tokens = metadata.get("tokenizer.ggml.tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise bad("tokenizer.ggml.tokens", "should be a list of texts")
    for key, kind in (("tokenizer.ggml.scores", float), ("tokenizer.ggml.token_type", int)):
        value = metadata.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or len(value) != len(tokens):
            raise bad(key, f"should list one entry per token ({len(tokens)})")
        if value and not isinstance(value[0], kind):
            raise bad(key, f"should hold {'numbers' if kind is float else 'token types'}")
    merges = metadata.get("tokenizer.ggml.merges", [])
    if not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
        raise bad("tokenizer.ggml.merges", "should be a list of texts")
    for role in _TOKEN_ID_ROLES:
        key = f"tokenizer.ggml.{role}_token_id"
        if key not in metadata:
            continue
        value = metadata[key]
        if not _is_int(value) or not 0 <= value < len(tokens):
            raise bad(key, f"should be a token id below {len(tokens)} but is {value!r:.40}")
