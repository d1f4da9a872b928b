"""Small pure functions of the tensor pipeline, against independent formulations."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from bllossom_core.errors import Cancelled, CheckpointError
from converter import _tensors
from converter._checkpoint import TensorRef
from converter._tensors import PlannedTensor, encode, rope_freqs, stream_bytes
from converter._vocab import LLAMA3_SPLIT_REGEX, identify_pre_tokenizer

Q = gguf.GGMLQuantizationType


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


def _special_values() -> np.ndarray:
    """Random weights plus what breaks naive conversions: zeros (a zero Q8_0 block),
    infinities, NaN, float16's overflow edge, subnormals, exact rounding ties."""
    rng = np.random.default_rng(3)
    values = rng.standard_normal(32 * 512).astype(np.float32) * 0.02
    values[:32] = 0.0
    values[32:64] = [np.inf, -np.inf, np.nan, 65504, 65520, -65520, 1e-8, -6e-8] * 4
    values[64:96] *= 1e6
    values[96:128] *= 1e-30
    values[128:160] = np.arange(-16, 16) + 0.5  # ties for Q8_0's round-away-from-zero
    values[160:192] = np.arange(32) * 127 / 31  # scale exactly 1: every quant a tie case
    return values


def _sources(values: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as each source dtype, bf16 as uint16, plus every 16-bit pattern."""
    every_pattern = np.arange(2**16, dtype=np.uint16)
    return {
        "F32": values,
        "F16": values.astype(np.float16),
        "BF16": (values.view(np.uint32) >> 16).astype(np.uint16),
        "BF16-all": every_pattern,
        "F16-all": every_pattern.view(np.float16),
    }


@pytest.mark.parametrize("kernel", ["compiled", "numpy"])
@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.BF16, Q.Q8_0])
def test_encode_equals_gguf_quantize_of_float32(
    qtype: gguf.GGMLQuantizationType, kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What llama.cpp's convert_hf_to_gguf.py does: float32 values through gguf-py; with
    the compiled kernels (Q8_0, bf16 -> f16 of every pattern) and without them."""
    if kernel == "numpy":
        monkeypatch.setattr(_tensors, "_compiled", None)
    with np.errstate(all="ignore"):
        for name, raw in _sources(_special_values()).items():
            dtype = name.split("-")[0]
            if dtype == "BF16":
                as_f32 = (raw.astype(np.uint32) << 16).view(np.float32)
            else:
                as_f32 = raw.astype(np.float32)
            rows = as_f32.reshape(-1, 256)
            expected = gguf.quants.quantize(rows, qtype).tobytes()
            if qtype.name == dtype:  # stored unchanged: the checkpoint's own bits, NaN
                expected = raw.tobytes()  # payloads included (float32 would quiet them)
            got = bytes(encode(raw.reshape(-1, 256), dtype, qtype))
            assert got == expected, f"{name} -> {qtype.name}"


def test_the_compiled_kernels_are_built() -> None:
    """pip install -e . builds converter/_kernels.c; without it conversions to Q8_0 and
    bf16 -> F16 are correct but slower, so a broken build must not pass unnoticed."""
    assert _tensors._compiled is not None, "converter/_kernels.c was not built (setup.py)"


@pytest.mark.parametrize("kernel", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", ["BF16", "F16"])
def test_q8_0_of_every_16bit_block_maximum_equals_gguf_py(
    dtype: str, kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One block per 16-bit magnitude (zero, subnormals, the largest finite, infinity,
    NaN), holding it once among random smaller values of both signs: the Q8_0 bytes of
    the compiled kernel and of the numpy path, each against gguf-py's on float32."""
    if kernel == "numpy":
        monkeypatch.setattr(_tensors, "_compiled", None)
    rng = np.random.default_rng(7)
    magnitudes = np.arange(2**15, dtype=np.uint32)[:, None]
    blocks = rng.integers(0, 2**15, (2**15, 32), dtype=np.uint32) % (magnitudes + 1)
    blocks[:, 9] = magnitudes[:, 0]
    bits = (blocks | rng.integers(0, 2, blocks.shape, dtype=np.uint32) << 15).astype(np.uint16)
    if dtype == "BF16":
        raw, as_f32 = bits, (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        raw = bits.view(np.float16)
        as_f32 = raw.astype(np.float32)
    with np.errstate(all="ignore"):
        expected = gguf.quants.quantize(as_f32.reshape(-1, 1024), Q.Q8_0).tobytes()
        assert bytes(encode(raw.reshape(-1, 1024), dtype, Q.Q8_0)) == expected


def _tensor(
    name: str, values: np.ndarray, qtype: gguf.GGMLQuantizationType, heads: int = 0
) -> PlannedTensor:
    ref = TensorRef(name, "F32", values.shape, lambda a, b: values[a:b])
    return PlannedTensor(name, values.shape, qtype, ref, heads)


def _plan() -> list[PlannedTensor]:
    rng = np.random.default_rng(5)
    big = rng.standard_normal((96, 64)).astype(np.float32)
    q = rng.standard_normal((64, 64)).astype(np.float32)
    norm = rng.standard_normal(64).astype(np.float32)
    constant = np.arange(8, dtype=np.float32)
    return [
        PlannedTensor("rope_freqs.weight", constant.shape, Q.F32, None, constant=constant),
        _tensor("token_embd.weight", big, Q.F16),
        _tensor("blk.0.attn_q.weight", q, Q.Q8_0, heads=4),
        _tensor("output_norm.weight", norm, Q.F32),
        _tensor("output.weight", big[:, :33], Q.F32),  # odd size: padding after it
        _tensor("blk.0.ffn_down.weight", big, Q.BF16),
    ]


def _write(path: Path, plan: list[PlannedTensor], advance: Any = lambda _: None) -> bytes:
    from converter import _writer

    with open(path, "wb+") as out:
        _writer._write_tensor_data(out, plan, advance)
        _writer._pad(out)
    return path.read_bytes()


def _single_threaded(plan: list[PlannedTensor]) -> bytes:
    data = b""
    for tensor in plan:
        data += b"\0" * (-len(data) % gguf.GGUF_DEFAULT_ALIGNMENT)
        data += b"".join(bytes(piece) for piece in stream_bytes(tensor, lambda _: None))
    return data + b"\0" * (-len(data) % gguf.GGUF_DEFAULT_ALIGNMENT)


def test_pipeline_writes_the_single_threaded_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from converter import _tensors

    monkeypatch.setattr(_tensors, "_CHUNK_BYTES", 1024)  # many pieces per tensor
    plan = _plan()
    assert _write(tmp_path / "out", plan) == _single_threaded(plan)


def test_pipeline_keeps_few_pieces_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from converter import _tensors, _writer

    monkeypatch.setattr(_tensors, "_CHUNK_BYTES", 256)
    values = np.ones((512, 64), np.float32)
    read, written, most = [0], [0], [0]
    lock = threading.Lock()

    def read_rows(start: int, stop: int) -> np.ndarray:
        with lock:
            read[0] += 1
            most[0] = max(most[0], read[0] - written[0])
        return values[start:stop]

    ref = TensorRef("x", "F32", values.shape, read_rows)
    plan = [PlannedTensor("token_embd.weight", values.shape, Q.F16, ref)]

    def advance(_: int) -> None:
        with lock:
            written[0] += 1

    _write(tmp_path / "out", plan, advance)
    assert written[0] == 512 * 64 * 4 // 256
    assert most[0] <= _writer._PIPELINE_DEPTH + 1


@pytest.mark.parametrize("failure", ["read", "cancel"])
def test_pipeline_stops_cleanly(tmp_path: Path, failure: str) -> None:
    """A read error in a worker, or a cancel seen by the writer, ends the whole pipeline
    with that error, and no encoding thread outlives it."""
    values = np.ones((4096, 64), np.float32)
    calls = [0]

    def read_rows(start: int, stop: int) -> np.ndarray:
        calls[0] += 1
        if failure == "read" and start >= 1024:
            raise CheckpointError("the checkpoint ended early")
        return values[start:stop]

    def advance(_: int) -> None:
        if failure == "cancel":
            raise Cancelled("Conversion cancelled; no output was written.")

    from converter import _tensors

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_tensors, "_CHUNK_BYTES", 16 * 1024)
        ref = TensorRef("x", "F32", values.shape, read_rows)
        plan = [PlannedTensor("token_embd.weight", values.shape, Q.F16, ref)]
        before = threading.active_count()
        with pytest.raises(CheckpointError if failure == "read" else Cancelled):
            _write(tmp_path / "out", plan, advance)
    assert threading.active_count() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("gguf-encode")]
    assert calls[0] < 4096 * 64 * 4 // (16 * 1024), "queued pieces were still encoded"


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
