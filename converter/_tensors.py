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
_CHUNK_BYTES = 32 * 2**20
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


# --------------------------------------------------------------------------- streaming


def _to_float32(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32, copy=False)


_SAME_STORAGE = {"F32": Q.F32, "F16": Q.F16, "BF16": Q.BF16}


def encode(raw: np.ndarray, dtype: str, qtype: gguf.GGMLQuantizationType) -> memoryview:
    """Raw source rows (bf16 as uint16) -> the bytes of ``qtype``, without a copy when
    the storage type is unchanged."""
    if _SAME_STORAGE.get(dtype) == qtype:
        return np.ascontiguousarray(raw).data.cast("B")
    data = _to_float32(raw, dtype)
    if data.ndim == 0:
        data = data.reshape(1)
    return np.ascontiguousarray(gguf.quants.quantize(data, qtype)).data.cast("B")


def _row_order(rows: int, heads: int) -> np.ndarray:
    """Source row for each output row: HF's [first halves | second halves] per head
    becomes llama.cpp's interleaved pairs."""
    if rows % (heads * 2):
        raise CheckpointError(f"A Q/K projection with {rows} rows cannot hold {heads} heads.")
    return np.arange(rows).reshape(heads, 2, rows // heads // 2).swapaxes(1, 2).reshape(-1)


def stream_bytes(tensor: PlannedTensor, on_bytes: Callable[[int], None]) -> Iterator[memoryview]:
    """The tensor's GGUF bytes in pieces of about 32 MiB; ``on_bytes`` gets source bytes."""
    if tensor.constant is not None:
        yield encode(tensor.constant, "F32", tensor.qtype)
        return
    ref = tensor.source
    assert ref is not None
    if len(ref.shape) <= 1:
        yield encode(ref.read_rows(0, ref.row_count), ref.dtype, tensor.qtype)
        on_bytes(ref.nbytes)
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
        block = ref.read_rows(start, stop)
        if order is not None:
            block = block[order[start:stop] - start]
        yield encode(block, ref.dtype, tensor.qtype)
        on_bytes(block.nbytes)
