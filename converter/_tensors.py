"""Which GGUF tensors a Llama checkpoint becomes, and how each is streamed into bytes.

The plan follows what llama.cpp's own conversion produces, so that its quantizer sees
exactly the same input: Hugging Face names mapped with gguf's ``TensorNameMap``, the
rotary Q/K rows re-ordered from the HF half-split layout to llama.cpp's interleaved
one, 1-D tensors and norms kept in F32, and Llama-3.1 rope scaling stored as a
``rope_freqs`` tensor.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gguf
import numpy as np

from bllossom_core.errors import CheckpointError
from converter._checkpoint import Checkpoint, TensorRef

_compiled: ModuleType | None
try:  # Q8_0 and bf16 -> f16 in one pass (converter/_kernels.c); the same bytes as numpy's
    from converter import _kernels as _compiled
except ImportError:  # built without a C compiler: numpy writes them, more slowly
    _compiled = None

Q = gguf.GGMLQuantizationType
_IGNORED_SUFFIXES = (".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias")


@dataclass
class PlannedTensor:
    name: str
    shape: tuple[int, ...]
    qtype: gguf.GGMLQuantizationType
    source: TensorRef | None
    head_count: int = 0
    """Non-zero for Q/K projections: rows are permuted in groups of ``head_count``."""
    constant: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        byte_shape = gguf.quant_shape_to_byte_shape(self.shape, self.qtype)
        return math.prod(byte_shape)


def head_counts(config: dict[str, Any]) -> tuple[int, int]:
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_head)
    return n_head, n_kv


def plan_tensors(checkpoint: Checkpoint, target: gguf.GGMLQuantizationType) -> list[PlannedTensor]:
    """The GGUF tensors for ``checkpoint`` with matrices stored as ``target``."""
    config = checkpoint.config
    n_layers = int(config["num_hidden_layers"])
    n_head, n_kv = head_counts(config)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    planned: list[PlannedTensor] = []
    rope = rope_freqs(config)
    if rope is not None:
        rope_name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
        planned.append(PlannedTensor(rope_name, rope.shape, Q.F32, None, constant=rope))
    for hf_name, ref in checkpoint.tensors.items():
        if hf_name.endswith(_IGNORED_SUFFIXES):
            continue
        new_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise CheckpointError(
                f"Tensor {hf_name!r} in {checkpoint.path} is not part of a Llama model; "
                "this checkpoint cannot be converted.",
                path=checkpoint.path,
            )
        heads = 0
        if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            heads = n_head
        elif hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            heads = n_kv
        planned.append(
            PlannedTensor(new_name, ref.shape, _storage_type(new_name, ref, target), ref, heads)
        )
    _check_complete(checkpoint, {p.name for p in planned}, n_layers)
    return planned


def _storage_type(
    name: str, ref: TensorRef, target: gguf.GGMLQuantizationType
) -> gguf.GGMLQuantizationType:
    if len(ref.shape) <= 1 or name.endswith("_norm.weight"):
        return Q.F32
    if target in (Q.F32, Q.F16, Q.BF16):
        return target
    block, _ = gguf.GGML_QUANT_SIZES[target]
    if ref.shape[-1] % block:
        return Q.F16  # as llama.cpp does for rows that do not fill whole blocks
    return target


def _check_complete(checkpoint: Checkpoint, names: set[str], n_layers: int) -> None:
    config = checkpoint.config
    expected = ["token_embd.weight", "output_norm.weight"]
    for layer in range(n_layers):
        expected += [
            f"blk.{layer}.{part}.weight"
            for part in (
                "attn_norm",
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_norm",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
            )
        ]
    missing = [name for name in expected if name not in names]
    if missing:
        raise CheckpointError(
            f"{checkpoint.path} lacks {len(missing)} required tensor(s), e.g. GGUF "
            f"{missing[0]!r}; the weights are incomplete.",
            hint="Download all weight files again.",
            path=checkpoint.path,
        )
    embed = checkpoint.tensors.get("model.embed_tokens.weight")
    vocab_size = int(config["vocab_size"])
    if embed is not None and embed.shape[0] != vocab_size:
        raise CheckpointError(
            f"config.json says vocab_size is {vocab_size:,} but the embedding matrix has "
            f"{embed.shape[0]:,} rows; the checkpoint is inconsistent.",
            path=checkpoint.path / "config.json",
        )
    if embed is not None and embed.shape[1] != int(config["hidden_size"]):
        raise CheckpointError(
            f"config.json says hidden_size is {config['hidden_size']} but the embedding "
            f"matrix is {embed.shape[1]} wide; the checkpoint is inconsistent.",
            path=checkpoint.path / "config.json",
        )


def rope_parameters(config: dict[str, Any]) -> dict[str, Any]:
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    merged = dict(params) if isinstance(params, dict) else {}
    merged.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    return merged


def rope_freqs(config: dict[str, Any]) -> np.ndarray | None:
    """Llama-3.1 frequency factors, computed in float32 as the reference does."""
    params = rope_parameters(config)
    if str(params.get("rope_type", params.get("type", ""))).lower() != "llama3":
        return None
    f32 = np.float32
    dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    base = float(params.get("rope_theta", 10000.0))
    freqs = f32(1.0) / (f32(base) ** (np.arange(0, dim, 2, dtype=f32) / f32(dim)))
    factor = float(params.get("factor", 8.0))
    low = float(params.get("low_freq_factor", 1.0))
    high = float(params.get("high_freq_factor", 4.0))
    old_context = float(params.get("original_max_position_embeddings", 8192))
    low_wavelen = old_context / low
    high_wavelen = old_context / high
    factors: list[Any] = []
    for freq in freqs:
        wavelen = f32(2 * math.pi) / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (f32(old_context) / wavelen - f32(low)) / f32(high - low)
            factors.append(f32(1) / ((f32(1) - smooth) / f32(factor) + smooth))
    return np.array(factors, dtype=f32)


# --------------------------------------------------------------------------- encoding
#
# Every conversion below gives exactly the bytes gguf-py (and so llama.cpp's own
# convert_hf_to_gguf.py) gives; it only avoids the temporaries. Work goes in pieces of
# a few MiB (what the writer's pipeline hands to one thread), read into a buffer the
# thread reuses and encoded straight into the writer's output buffer; inside a piece,
# in runs of _CACHE_ELEMENTS, so that the source, the float32 scratch and the output
# of a run stay in the CPU cache while the next step reads them.

_CACHE_ELEMENTS = 128 * 1024  # per run: fewer runs cost less numpy call overhead
_SAME_STORAGE = {"F32": Q.F32, "F16": Q.F16, "BF16": Q.BF16}
_SOURCE_DTYPES: dict[str, np.dtype[Any]] = {
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(np.uint16),
}
_Q8_0_BLOCK, _Q8_0_BYTES = gguf.GGML_QUANT_SIZES[Q.Q8_0]


class _Scratch(threading.local):
    """Each encoding thread's own buffers, grown on demand and reused from piece to
    piece: no allocation, and no page faults on fresh memory, per piece."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, nbytes: int) -> np.ndarray:
        """At least ``nbytes`` bytes (uint8, contiguous) under ``name``."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < nbytes:
            buffer = self._buffers[name] = np.empty(nbytes, np.uint8)
        return buffer[:nbytes]


_scratch = _Scratch()


_BF16_TO_F16: np.ndarray | None = None


def _bf16_to_f16_table() -> np.ndarray:
    """float16 for each of the 65,536 bfloat16 bit patterns, as numpy casts it: a
    lookup is exact by construction and several times faster than the float cast."""
    global _BF16_TO_F16
    if _BF16_TO_F16 is None:
        as_f32 = (np.arange(2**16, dtype=np.uint32) << 16).view(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            _BF16_TO_F16 = as_f32.astype(np.float16)
    return _BF16_TO_F16


_F16_TO_F32: np.ndarray | None = None


def _f16_to_f32_table() -> np.ndarray:
    """float32 for each of the 65,536 float16 bit patterns (exact)."""
    global _F16_TO_F32
    if _F16_TO_F32 is None:
        _F16_TO_F32 = np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32)
    return _F16_TO_F32


_Q8_0_TABLES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _q8_0_tables(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """For a 16-bit source (BF16 or F16), every possible block maximum |x| is one of
    32,768 bit patterns: Q8_0's scale as float16 bits, and its float32 inverse, for each,
    computed with exactly the expressions of :func:`_q8_0_into` (so, of gguf-py)."""
    tables = _Q8_0_TABLES.get(dtype)
    if tables is None:
        magnitudes = np.arange(2**15, dtype=np.uint16)
        if dtype == "BF16":
            maxima = (magnitudes.astype(np.uint32) << 16).view(np.float32)
        else:
            maxima = magnitudes.view(np.float16).astype(np.float32)
        with np.errstate(all="ignore"):
            scale = maxima / np.float32(127)
            inverse = np.where(scale == 0, np.float32(0), np.float32(1) / scale)
            tables = (scale.astype(np.float16).view(np.uint16), inverse.astype(np.float32))
        _Q8_0_TABLES[dtype] = tables
    return tables


_LARGEST_FINITE_OR_INF = {"BF16": np.uint16(0x7F80), "F16": np.uint16(0x7C00)}
"""Magnitude bits above these are NaN."""


def encoded_nbytes(elements: int, qtype: gguf.GGMLQuantizationType) -> int:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return elements // block * size


def _to_float32(raw: np.ndarray, dtype: str, out: np.ndarray) -> np.ndarray:
    """Source values (bf16 as uint16) as float32, in ``out`` unless already float32."""
    if dtype == "BF16":
        shifted: np.ndarray = np.left_shift(raw, 16, out=out.view(np.uint32), dtype=np.uint32)
        return shifted.view(np.float32)
    if dtype == "F32":
        return raw
    np.copyto(out, raw, casting="safe")
    return out


_SIGN_BIT = np.uint32(0x80000000)
_MAGNITUDE_BITS = np.uint32(0x7FFFFFFF)
_MAGNITUDE_BITS_16 = np.uint16(0x7FFF)
_INFINITY_BITS = np.uint32(0x7F800000)
_JUST_BELOW_HALF = np.nextafter(np.float32(0.5), np.float32(0)).view(np.uint32)


def _block_maxima(blocks: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """max(|x|) of each row of ``blocks`` (float32, one Q8_0 block per row).

    Without NaN, the order of |x| is the order of x's bits without the sign, so the
    maxima are integer maxima, taken down the columns of the transposed blocks: 31
    vector operations instead of one short reduction per block. A run holding NaN
    takes gguf-py's own expression, so that even the NaN it keeps is the same."""
    magnitudes = scratch[: blocks.size].view(np.uint32).reshape(blocks.shape[::-1])
    np.bitwise_and(blocks.view(np.uint32).T, _MAGNITUDE_BITS, out=magnitudes)
    top: np.ndarray = np.maximum.reduce(magnitudes, axis=0)
    if top.max(initial=0) <= _INFINITY_BITS:
        return top.view(np.float32).reshape(-1, 1)
    maxima: np.ndarray = abs(blocks).max(axis=1, keepdims=True)
    return maxima


def _q8_0_quants(
    blocks: np.ndarray, inverse: np.ndarray, packed: np.ndarray, bits: np.ndarray
) -> None:
    """The int8 quants of ``blocks`` (float32, scaled in place) into ``packed[:, 2:]``.

    gguf-py rounds half away from zero with floor(|v|) + floor(2 * frac) and the sign;
    here v + copysign(0.49999997, v) is cast to int8, which truncates. Both give the
    same int8 for every float32 v with |v| < 256 (a scaled value is at most ~127) and
    for every NaN and infinity: checked exhaustively over those bit patterns."""
    scaled = np.multiply(blocks, inverse, out=blocks)
    bias = np.bitwise_and(scaled.view(np.uint32), _SIGN_BIT, out=bits.reshape(blocks.shape))
    np.bitwise_or(bias, _JUST_BELOW_HALF, out=bias)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled += bias.view(np.float32)
        np.copyto(packed[:, 2:].view(np.int8), scaled, casting="unsafe")


def _q8_0_into(values: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """gguf-py's Q8_0 (bit-exact with ggml's reference quantize_row_q8_0) on one
    cache-sized run of float32 ``values`` (overwritten), without its temporaries."""
    blocks = values.reshape(-1, _Q8_0_BLOCK)
    scale = _block_maxima(blocks, scratch) / np.float32(127)
    with np.errstate(divide="ignore"):
        inverse = np.where(scale == 0, np.float32(0), np.float32(1) / scale)
    packed = out.reshape(-1, _Q8_0_BYTES)
    with np.errstate(over="ignore", invalid="ignore"):
        packed[:, :2] = scale.astype(np.float16).view(np.uint8)
    _q8_0_quants(blocks, inverse, packed, scratch[: values.size].view(np.uint32))


_MAGNITUDE_BITS_4X16 = np.uint64(0x7FFF7FFF7FFF7FFF)


def _q8_0_16bit_into(
    raw: np.ndarray, dtype: str, out: np.ndarray, values: np.ndarray, scratch: np.ndarray
) -> bool:
    """Q8_0 of one run of a BF16 or F16 source, the same bytes as :func:`_q8_0_into`,
    cheaper: the block maxima are taken on the 16-bit patterns, and scale and inverse
    are looked up (:func:`_q8_0_tables`). ``False`` (nothing written) when the run holds
    NaN, which only the float32 path treats as gguf-py does.

    The maxima: a block's 32 values are 8 words of 4; the words' magnitudes, transposed
    (8 rows of one word per block), reduce lane by lane down the rows with long vector
    operations, and the last 4 lanes of each block pairwise."""
    bits = raw.view(np.uint16)
    if _compiled is not None:
        scales, inverses = _q8_0_tables(dtype)
        f16_values = _f16_to_f32_table() if dtype == "F16" else None
        if _compiled.q8_0_16bit(bits, dtype == "BF16", scales, inverses, f16_values, out):
            return True  # else an infinity, a NaN or a tiny scale: numpy below decides
    count = bits.size // _Q8_0_BLOCK
    words = scratch.view(np.uint64)[: count * 8].reshape(8, count)
    np.bitwise_and(bits.view(np.uint64).reshape(count, 8).T, _MAGNITUDE_BITS_4X16, out=words)
    lanes = np.maximum.reduce(words.view(np.uint16).reshape(8, count * 4), axis=0)
    lanes = lanes.reshape(count, 4)
    top = np.maximum(np.maximum(lanes[:, 0], lanes[:, 2]), np.maximum(lanes[:, 1], lanes[:, 3]))
    if top.max(initial=0) > _LARGEST_FINITE_OR_INF[dtype]:
        return False
    scales, inverses = _q8_0_tables(dtype)
    # a block is 17 uint16: the float16 scale, then 32 int8 quants
    np.take(scales, top, out=out.view(np.uint16).reshape(count, 17)[:, 0])
    packed = out.reshape(count, _Q8_0_BYTES)
    blocks = _to_float32(raw, dtype, values[: bits.size]).reshape(count, _Q8_0_BLOCK)
    inverse = np.take(inverses, top).reshape(count, 1)
    _q8_0_quants(blocks, inverse, packed, scratch[: bits.size].view(np.uint32))
    return True


def encode_into(
    raw: np.ndarray, dtype: str, qtype: gguf.GGMLQuantizationType, out: np.ndarray
) -> None:
    """Encode contiguous source values (bf16 as uint16) as ``qtype`` into the bytes
    ``out`` (a uint8 array of :func:`encoded_nbytes` elements)."""
    flat = raw.reshape(-1)
    if _SAME_STORAGE.get(dtype) == qtype:
        np.copyto(out, flat.view(np.uint8))
        return
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    run = max(block, _CACHE_ELEMENTS // block * block)
    size = min(run, flat.size)
    scratch = _scratch.get("run", size * 4).view(np.float32)
    q8_scratch = _scratch.get("q8", size * 4).view(np.float32) if qtype == Q.Q8_0 else scratch
    for start in range(0, flat.size, run):
        stop = min(flat.size, start + run)
        first, last = encoded_nbytes(start, qtype), encoded_nbytes(stop, qtype)
        target = out[first:last]
        if dtype == "BF16" and qtype == Q.F16:
            if _compiled is not None:
                _compiled.lookup16(_bf16_to_f16_table(), flat[start:stop], target)
                continue
            # uint16 indices become intp ones inside take(): a run keeps them in cache
            np.take(
                _bf16_to_f16_table(), flat[start:stop], out=target.view(np.float16), mode="clip"
            )
            continue
        if (
            qtype == Q.Q8_0
            and dtype != "F32"
            and _q8_0_16bit_into(flat[start:stop], dtype, target, scratch, q8_scratch)
        ):
            continue
        values = _to_float32(flat[start:stop], dtype, scratch[: stop - start])
        if qtype == Q.F32:
            np.copyto(target.view(np.float32), values)
        elif qtype == Q.F16:
            with np.errstate(over="ignore"):
                np.copyto(target.view(np.float16), values, casting="same_kind")
        elif qtype == Q.Q8_0:
            if dtype == "F32":  # the caller's own values: scale a copy of them
                np.copyto(scratch[: stop - start], values)
                values = scratch[: stop - start]
            _q8_0_into(values, target, q8_scratch)
        else:  # BF16 from a float32 or float16 source, and any other block type
            target[:] = gguf.quants.quantize(values.reshape(1, -1), qtype).reshape(-1)


def encode(raw: np.ndarray, dtype: str, qtype: gguf.GGMLQuantizationType) -> memoryview:
    """Raw source rows (bf16 as uint16) -> the bytes of ``qtype``, without a copy when
    the storage type is unchanged."""
    if _SAME_STORAGE.get(dtype) == qtype:
        return np.ascontiguousarray(raw).data.cast("B")
    source = np.ascontiguousarray(raw).reshape(-1)
    out = np.empty(encoded_nbytes(source.size, qtype), np.uint8)
    encode_into(source, dtype, qtype, out)
    return out.data.cast("B")


# --------------------------------------------------------------------------- pieces

_CHUNK_BYTES = 4 * 2**20
"""Source bytes per piece: writes large enough for the disk, while the pipeline's
buffers (each thread's source buffer, the pieces in flight) stay a few tens of MiB."""


def _row_order(rows: int, heads: int) -> np.ndarray:
    """Source row for each output row: HF's [first halves | second halves] per head
    becomes llama.cpp's interleaved pairs."""
    if rows % (heads * 2):
        raise CheckpointError(f"A Q/K projection with {rows} rows cannot hold {heads} heads.")
    order: np.ndarray = np.arange(rows).reshape(heads, 2, rows // heads // 2).swapaxes(1, 2)
    return order.reshape(-1)


def _read(ref: TensorRef, start: int, stop: int, into: np.ndarray | None) -> np.ndarray:
    """Raw rows ``start:stop`` of ``ref`` (bf16 as uint16), read into the uint8 buffer
    ``into`` (their exact size) when given and the source can do that."""
    if into is not None and ref.read_into is not None:
        ref.read_into(start, stop, into)
        rows: np.ndarray = into.view(_SOURCE_DTYPES[ref.dtype])
        return rows.reshape((stop - start, *ref.shape[1:])) if ref.shape else rows.reshape(())
    return ref.read_rows(start, stop)


@dataclass(frozen=True, eq=False)
class Piece:
    """Rows ``start:stop`` of one planned tensor: the unit one pipeline thread encodes."""

    tensor: PlannedTensor
    start: int
    stop: int
    source_bytes: int
    first: bool
    """The tensor's first piece (the writer aligns the file before it)."""
    last: bool
    order: np.ndarray | None = None
    """For Q/K projections: the source row of each output row of the whole tensor."""
    nbytes: int = 0
    """Bytes it encodes to."""

    def encode(self) -> memoryview:
        out = np.empty(self.nbytes, np.uint8)
        self.encode_into(out)
        return out.data.cast("B")

    def encode_into(self, out: np.ndarray) -> None:
        """Encode into ``out`` (uint8, exactly :attr:`nbytes`): an unchanged type is read
        straight into it; otherwise the source goes through this thread's buffer."""
        tensor = self.tensor
        if tensor.constant is not None:
            encode_into(tensor.constant, "F32", tensor.qtype, out)
            return
        ref = tensor.source
        assert ref is not None
        start, stop = (0, ref.row_count) if len(ref.shape) <= 1 else (self.start, self.stop)
        same = _SAME_STORAGE.get(ref.dtype) == tensor.qtype
        if same and self.order is None:
            if ref.read_into is not None:
                ref.read_into(start, stop, out)
            else:
                encode_into(
                    np.ascontiguousarray(ref.read_rows(start, stop)), ref.dtype, tensor.qtype, out
                )
            return
        raw = _read(ref, start, stop, _scratch.get("source", self.source_bytes))
        if self.order is not None:
            permuted = out if same else _scratch.get("permuted", self.source_bytes)
            rows = permuted.view(raw.dtype).reshape(raw.shape)
            np.take(raw, self.order[start:stop] - start, axis=0, out=rows)
            if same:
                return
            raw = rows
        encode_into(np.ascontiguousarray(raw), ref.dtype, tensor.qtype, out)


def tensor_pieces(tensor: PlannedTensor) -> Iterator[Piece]:
    """The pieces of ``tensor`` in file order, each about _CHUNK_BYTES of source."""
    ref = tensor.source
    if ref is None or len(ref.shape) <= 1:
        source = ref.nbytes if ref is not None else 0
        yield Piece(tensor, 0, 1, source, True, True, nbytes=tensor.nbytes)
        return
    rows = ref.shape[0]
    row_bytes = max(1, ref.nbytes // rows)
    row_elements = math.prod(ref.shape[1:])
    step = max(1, _CHUNK_BYTES // row_bytes)
    order = None
    if tensor.head_count:
        order = _row_order(rows, tensor.head_count)
        head_rows = rows // tensor.head_count
        step = max(head_rows, step // head_rows * head_rows)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        yield Piece(
            tensor,
            start,
            stop,
            (stop - start) * row_bytes,
            start == 0,
            stop == rows,
            order,
            encoded_nbytes((stop - start) * row_elements, tensor.qtype),
        )


def stream_bytes(tensor: PlannedTensor, on_bytes: Callable[[int], None]) -> Iterator[memoryview]:
    """The tensor's GGUF bytes piece by piece, in one thread; ``on_bytes`` gets source
    bytes. (The writer runs the same pieces through a thread pipeline.)"""
    for piece in tensor_pieces(tensor):
        data = piece.encode()
        on_bytes(piece.source_bytes)
        yield data
