"""Which GGUF tensors a Llama checkpoint becomes, and how each is streamed into bytes.

The plan follows what llama.cpp's own conversion produces, so that its quantizer sees
exactly the same input: Hugging Face names mapped with gguf's ``TensorNameMap``, the
rotary Q/K rows re-ordered from the HF half-split layout to llama.cpp's interleaved
one, 1-D tensors and norms kept in F32, and Llama-3.1 rope scaling stored as a
``rope_freqs`` tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gguf
import numpy as np

from bllossom_core.errors import CheckpointError
from converter._checkpoint import Checkpoint, TensorRef

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
# a few MiB (what the writer's pipeline hands to one thread) and, inside a piece, in
# runs of _CACHE_ELEMENTS so that the source, the float32 scratch and the output of a
# run stay in the CPU cache while the next step reads them.

_CACHE_ELEMENTS = 64 * 1024  # 256 KiB per float32 scratch: two fit a 512 KiB L2
_SAME_STORAGE = {"F32": Q.F32, "F16": Q.F16, "BF16": Q.BF16}
_Q8_0_BLOCK, _Q8_0_BYTES = gguf.GGML_QUANT_SIZES[Q.Q8_0]


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


def _q8_0_into(values: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """gguf-py's Q8_0 (bit-exact with ggml's reference quantize_row_q8_0) on one
    cache-sized run, without its temporaries.

    gguf-py rounds half away from zero with floor(|v|) + floor(2 * frac) and the sign;
    here v + copysign(0.49999997, v) is cast to int8, which truncates. Both give the
    same int8 for every float32 v with |v| < 256 (a scaled value is at most ~127) and
    for every NaN and infinity: checked exhaustively over those bit patterns."""
    blocks = values.reshape(-1, _Q8_0_BLOCK)
    scale = _block_maxima(blocks, scratch) / np.float32(127)
    with np.errstate(divide="ignore"):
        inverse = np.where(scale == 0, np.float32(0), np.float32(1) / scale)
    scaled = np.multiply(blocks, inverse, out=values.reshape(blocks.shape))
    bias = np.bitwise_and(
        scaled.view(np.uint32),
        _SIGN_BIT,
        out=scratch[: values.size].view(np.uint32).reshape(blocks.shape),
    )
    np.bitwise_or(bias, _JUST_BELOW_HALF, out=bias)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled += bias.view(np.float32)
        packed = out.reshape(-1, _Q8_0_BYTES)
        packed[:, :2] = scale.astype(np.float16).view(np.uint8)
        np.copyto(packed[:, 2:].view(np.int8), scaled, casting="unsafe")


def encode_into(
    raw: np.ndarray, dtype: str, qtype: gguf.GGMLQuantizationType, out: np.ndarray
) -> None:
    """Encode contiguous source values (bf16 as uint16) as ``qtype`` into the bytes
    ``out`` (a uint8 array of :func:`encoded_nbytes` elements)."""
    flat = raw.reshape(-1)
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    run = max(block, _CACHE_ELEMENTS // block * block)
    scratch = np.empty(min(run, flat.size), np.float32)
    q8_scratch = np.empty_like(scratch) if qtype == Q.Q8_0 else scratch
    for start in range(0, flat.size, run):
        stop = min(flat.size, start + run)
        first, last = encoded_nbytes(start, qtype), encoded_nbytes(stop, qtype)
        target = out[first:last]
        if dtype == "BF16" and qtype == Q.F16:
            # uint16 indices become intp ones inside take(): a run keeps them in cache
            np.take(
                _bf16_to_f16_table(), flat[start:stop], out=target.view(np.float16), mode="clip"
            )
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

_CHUNK_BYTES = 8 * 2**20
"""Source bytes per piece: large writes, yet a pipeline of a few pieces stays small
(and below glibc's mmap threshold cap, so their buffers are reused, not re-faulted)."""


def _row_order(rows: int, heads: int) -> np.ndarray:
    """Source row for each output row: HF's [first halves | second halves] per head
    becomes llama.cpp's interleaved pairs."""
    if rows % (heads * 2):
        raise CheckpointError(f"A Q/K projection with {rows} rows cannot hold {heads} heads.")
    order: np.ndarray = np.arange(rows).reshape(heads, 2, rows // heads // 2).swapaxes(1, 2)
    return order.reshape(-1)


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

    def encode(self) -> memoryview:
        tensor = self.tensor
        if tensor.constant is not None:
            return encode(tensor.constant, "F32", tensor.qtype)
        ref = tensor.source
        assert ref is not None
        if len(ref.shape) <= 1:
            return encode(ref.read_rows(0, ref.row_count), ref.dtype, tensor.qtype)
        block = ref.read_rows(self.start, self.stop)
        if self.order is not None:
            block = block[self.order[self.start : self.stop] - self.start]
        return encode(block, ref.dtype, tensor.qtype)


def tensor_pieces(tensor: PlannedTensor) -> Iterator[Piece]:
    """The pieces of ``tensor`` in file order, each about _CHUNK_BYTES of source."""
    ref = tensor.source
    if ref is None or len(ref.shape) <= 1:
        yield Piece(tensor, 0, 1, ref.nbytes if ref is not None else 0, True, True)
        return
    rows = ref.shape[0]
    row_bytes = max(1, ref.nbytes // rows)
    step = max(1, _CHUNK_BYTES // row_bytes)
    order = None
    if tensor.head_count:
        order = _row_order(rows, tensor.head_count)
        head_rows = rows // tensor.head_count
        step = max(head_rows, step // head_rows * head_rows)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        yield Piece(
            tensor, start, stop, (stop - start) * row_bytes, start == 0, stop == rows, order
        )


def stream_bytes(tensor: PlannedTensor, on_bytes: Callable[[int], None]) -> Iterator[memoryview]:
    """The tensor's GGUF bytes piece by piece, in one thread; ``on_bytes`` gets source
    bytes. (The writer runs the same pieces through a thread pipeline.)"""
    for piece in tensor_pieces(tensor):
        data = piece.encode()
        on_bytes(piece.source_bytes)
        yield data
