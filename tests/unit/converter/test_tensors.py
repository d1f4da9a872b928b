"""Small pure functions of the tensor pipeline, against independent formulations."""

from __future__ import annotations

import math
from typing import Any

import gguf
import numpy as np
import pytest

from converter._checkpoint import TensorRef
from converter._tensors import PlannedTensor, encode, rope_freqs, stream_bytes
from converter._vocab import LLAMA3_SPLIT_REGEX, identify_pre_tokenizer


def _hf_to_gguf_permute(w: np.ndarray, heads: int) -> np.ndarray:
    # The published HF->Meta inverse: rows of each head go from [x0..x(d/2-1), y0..] to
    # interleaved (x0, y0, x1, y1, ...).
    rows = w.shape[0]
    d = rows // heads
    out = np.empty_like(w)
    for h in range(heads):
        block = w[h * d : (h + 1) * d]
        out[h * d : (h + 1) * d : 2] = block[: d // 2]
        out[h * d + 1 : (h + 1) * d : 2] = block[d // 2 :]
    return out


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_qk_permutation_streamed_in_chunks(heads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from converter import _tensors

    monkeypatch.setattr(_tensors, "_CHUNK_BYTES", 64)  # force many chunks
    w = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    ref = TensorRef("q", "F32", w.shape, lambda a, b: w[a:b])
    planned = PlannedTensor(
        "blk.0.attn_q.weight", w.shape, gguf.GGMLQuantizationType.F32, ref, heads
    )
    data = b"".join(bytes(piece) for piece in stream_bytes(planned, lambda _: None))
    got = np.frombuffer(data, dtype=np.float32).reshape(w.shape)
    np.testing.assert_array_equal(got, _hf_to_gguf_permute(w, heads))


def test_bf16_to_f16_and_f32_are_exact() -> None:
    values = np.array([1.0, -2.5, 3.140625, 65504.0, 1e-3], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype(np.uint16)
    as_f32 = np.frombuffer(encode(bf16, "BF16", gguf.GGMLQuantizationType.F32), np.float32)
    np.testing.assert_array_equal(as_f32.view(np.uint32), bf16.astype(np.uint32) << 16)
    as_f16 = np.frombuffer(encode(bf16, "BF16", gguf.GGMLQuantizationType.F16), np.float16)
    np.testing.assert_array_equal(as_f16, as_f32.astype(np.float16))
    same = encode(bf16, "BF16", gguf.GGMLQuantizationType.BF16)
    assert bytes(same) == bf16.tobytes()


def test_rope_freqs_follow_llama31_formula() -> None:
    config = {
        "hidden_size": 256,
        "num_attention_heads": 4,
        "rope_theta": 500000.0,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    }
    factors = rope_freqs(config)
    assert factors is not None and factors.dtype == np.float32 and factors.shape == (32,)
    for i, factor in enumerate(factors):
        wavelen = 2 * math.pi * 500000.0 ** (2 * i / 64)
        if wavelen < 8192 / 4:
            assert factor == 1.0
        elif wavelen > 8192:
            assert factor == 8.0
        else:
            assert 1.0 < factor < 8.0
    assert rope_freqs({**config, "rope_scaling": None}) is None


def test_pre_tokenizer_identified_from_definition() -> None:
    split: dict[str, Any] = {
        "type": "Split",
        "pattern": {"Regex": LLAMA3_SPLIT_REGEX},
        "behavior": "Isolated",
        "invert": False,
    }
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}
    llama3 = {"type": "Sequence", "pretokenizers": [split, byte_level]}
    assert identify_pre_tokenizer(llama3, None) == "llama-bpe"
    assert identify_pre_tokenizer({"type": "ByteLevel", "use_regex": True}, None) == "gpt-2"
    other_split = {**split, "pattern": {"Regex": "\\s+"}}
    other = {"type": "Sequence", "pretokenizers": [other_split, byte_level]}
    assert identify_pre_tokenizer(other, None) is None
    assert identify_pre_tokenizer(llama3, {"type": "NFC"}) is None
