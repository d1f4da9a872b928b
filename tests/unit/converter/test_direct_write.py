"""The direct-write path's own pieces: the 16-bit Q8_0 kernel, and block-aligned
writing after a header of any length, with and without direct I/O."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest

from converter import _tensors, _writer
from converter._checkpoint import TensorRef
from converter._tensors import PlannedTensor, encode, stream_bytes

Q = gguf.GGMLQuantizationType


def _values() -> np.ndarray:
    rng = np.random.default_rng(11)
    values = rng.standard_normal(32 * 1024).astype(np.float32) * 0.02
    values[:32] = 0.0  # a zero block
    values[32:64] = np.arange(32) * 127 / 31  # scale exactly 1: every quant a tie
    values[64:96] *= 1e6  # float16's overflow for a float16 source
    values[96:128] = [np.inf, -np.inf, 65504, -65520] * 8  # infinite scale, no NaN
    values[160] = np.nan  # one block with NaN, among blocks without
    return values


@pytest.mark.parametrize("run", [32, 64, 4096, 128 * 1024])
@pytest.mark.parametrize("dtype", ["BF16", "F16"])
def test_q8_0_of_16_bit_sources_equals_gguf(
    run: int, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short runs put most blocks in runs without NaN (the looked-up scales) and the
    NaN block in one that takes the float32 path; every 16-bit pattern as well."""
    monkeypatch.setattr(_tensors, "_CACHE_ELEMENTS", run)
    values = _values()
    every = np.arange(2**16, dtype=np.uint16)
    if dtype == "BF16":
        sources = [(values.view(np.uint32) >> 16).astype(np.uint16), every]
    else:
        with np.errstate(over="ignore"):
            sources = [values.astype(np.float16), every.view(np.float16)]
    with np.errstate(all="ignore"):
        for raw in sources:
            if dtype == "BF16":
                as_f32 = (raw.astype(np.uint32) << 16).view(np.float32)
            else:
                as_f32 = raw.astype(np.float32)
            expected = gguf.quants.quantize(as_f32.reshape(-1, 256), Q.Q8_0).tobytes()
            assert bytes(encode(raw.reshape(-1, 256), dtype, Q.Q8_0)) == expected


def _rows_of(values: np.ndarray) -> Callable[[int, int], np.ndarray]:
    return lambda start, stop: values[start:stop]


def _plan() -> list[PlannedTensor]:
    rng = np.random.default_rng(7)
    tensors = []
    for index, (rows, cols, qtype) in enumerate(
        [(3, 5, Q.F32), (700, 64, Q.F16), (96, 64, Q.Q8_0), (1, 7, Q.F32), (333, 32, Q.BF16)]
    ):
        values = rng.standard_normal((rows, cols)).astype(np.float32)
        ref = TensorRef(f"t{index}", "F32", values.shape, _rows_of(values))
        tensors.append(PlannedTensor(f"blk.{index}.ffn_up.weight", values.shape, qtype, ref))
    return tensors


@pytest.mark.parametrize("header", [0, 24, 4095, 4096, 10_001])
@pytest.mark.parametrize("direct", [True, False])
def test_data_after_any_header_is_the_single_threaded_bytes(
    header: int, direct: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tensors, "_CHUNK_BYTES", 3000)  # pieces across block boundaries
    plan = _plan()
    prefix = bytes(range(256)) * (header // 256) + bytes(header % 256)
    path = tmp_path / "out.gguf"
    with open(path, "wb") as out:
        out.write(prefix)
        _writer._write_tensor_data(out, plan, lambda _: None, direct=direct)
        out.flush()
        assert out.tell() == os.path.getsize(path)
    expected = prefix
    for tensor in plan:
        expected += b"\0" * (-len(expected) % gguf.GGUF_DEFAULT_ALIGNMENT)
        expected += b"".join(bytes(p) for p in stream_bytes(tensor, lambda _: None))
    expected += b"\0" * (-len(expected) % gguf.GGUF_DEFAULT_ALIGNMENT)
    assert path.read_bytes() == expected


def _record_direct_descriptors(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The direct-I/O descriptors the writer opens from now on."""
    direct: list[int] = []
    real_open = _writer._open_direct

    def open_direct(out: object) -> int | None:
        fd = real_open(out)  # type: ignore[arg-type]
        if fd is not None:
            direct.append(fd)
        return fd

    monkeypatch.setattr(_writer, "_open_direct", open_direct)
    return direct


def _written_and_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    """Tensor data after a 100-byte header, written with the patches in place, and
    through the page cache with none of them (pieces across block boundaries)."""
    monkeypatch.setattr(_tensors, "_CHUNK_BYTES", 3000)
    plan = _plan()
    path, reference = tmp_path / "out.gguf", tmp_path / "ref.gguf"
    with open(path, "wb") as out:
        out.write(b"h" * 100)
        _writer._write_tensor_data(out, plan, lambda _: None)
    monkeypatch.undo()
    monkeypatch.setattr(_tensors, "_CHUNK_BYTES", 3000)
    with open(reference, "wb") as out:
        out.write(b"h" * 100)
        _writer._write_tensor_data(out, plan, lambda _: None, direct=False)
    return path.read_bytes(), reference.read_bytes()


def test_direct_io_refused_at_write_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that opens with O_DIRECT but refuses the writes (EINVAL) gets the
    same bytes through the page cache."""
    real_pwrite, real_pwritev = os.pwrite, os.pwritev
    direct = _record_direct_descriptors(monkeypatch)

    def pwrite(fd: int, data: object, offset: int) -> int:
        if fd in direct:
            raise OSError(22, "Invalid argument")
        return real_pwrite(fd, data, offset)  # type: ignore[arg-type]

    def pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
        if fd in direct:
            raise OSError(22, "Invalid argument")
        return real_pwritev(fd, buffers, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "pwritev", pwritev)
    written, reference = _written_and_reference(tmp_path, monkeypatch)
    assert direct and written == reference


def test_buffers_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many pieces, the writer allocates a bounded number of output buffers."""
    monkeypatch.setattr(_tensors, "_CHUNK_BYTES", 4096)
    allocated = [0]
    real = _writer._BlockSink._buffer

    def counting(self: _writer._BlockSink, size: int) -> np.ndarray:
        free = len(self._free)
        buffer = real(self, size)
        if len(self._free) >= free:  # nothing reused: a new buffer
            allocated[0] += 1
        return buffer

    monkeypatch.setattr(_writer._BlockSink, "_buffer", counting)
    values = np.ones((4096, 256), np.float32)
    ref = TensorRef("x", "F32", values.shape, lambda a, b: values[a:b])
    plan = [PlannedTensor("token_embd.weight", values.shape, Q.F16, ref)]
    with open(tmp_path / "out.gguf", "wb") as out:
        _writer._write_tensor_data(out, plan, lambda _: None)
    pieces = values.nbytes // 4096
    assert pieces > 100
    assert allocated[0] <= 2 * _writer._PIPELINE_DEPTH + 1 + _writer._GATHER_PIECES


def test_a_short_direct_write_is_finished_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gathered direct write that stops part-way (one block, or in the middle of a
    piece's buffer) is finished through the page cache: the same bytes, none twice."""
    real_pwritev = os.pwritev
    direct = _record_direct_descriptors(monkeypatch)
    calls = [0]

    def pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
        if fd in direct and sum(len(b) for b in buffers) > 4096:
            calls[0] += 1
            return real_pwritev(fd, [buffers[0][:4096]], offset)  # one block only
        return real_pwritev(fd, buffers, offset)

    monkeypatch.setattr(os, "pwritev", pwritev)
    written, reference = _written_and_reference(tmp_path, monkeypatch)
    assert calls[0] > 0, "no gathered direct write of more than a block"
    assert written == reference
