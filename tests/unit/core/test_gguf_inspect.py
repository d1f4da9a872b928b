"""The safe GGUF reader: real files parse; truncated, corrupt and hostile ones fail fast."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bllossom_core.errors import GGUFError
from bllossom_core.gguf_inspect import read_gguf_info
from tests.fixtures.gguf_models import fixture_gguf


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv_u32(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<II", 4, value)


def _header(version: int = 3, tensors: int = 0, kvs: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs)


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "hostile.gguf"
    path.write_bytes(data)
    return path


def test_reads_real_fixture_metadata() -> None:
    info = read_gguf_info(fixture_gguf("llama3-bpe-ko"))
    assert info.architecture == "llama"
    assert info.vocab_size == 145_088  # padded like the real embedding
    assert info.special_token_ids()["bos"] == 144_782
    assert info.token_text(144_782) == "<|begin_of_text|>"
    assert info.quantization == "F16"
    assert info.block_count == 2
    assert info.add_bos_token is True
    assert "<|start_header_id|>" in (info.chat_template or "")
    assert info.parameter_count > 60_000_000


def test_crafted_43_byte_file_with_huge_count(tmp_path: Path) -> None:
    # The shape of the file that makes gguf.GGUFReader allocate forever: one key whose
    # array claims 2**62 items.
    data = _header(kvs=1) + _string("a") + struct.pack("<IIQ", 9, 4, 2**62)
    data = data[:43].ljust(43, b"\0")
    with pytest.raises(GGUFError, match=r"claims|needs"):
        read_gguf_info(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGUF\x03\x00", "too short"),
        (b"NOPE" + b"\0" * 40, "not a GGUF"),
        (_header(version=1) + b"\0" * 8, "version 1"),
        (_header(version=99) + b"\0" * 8, "version 99"),
        (_header(kvs=2**40), "metadata entries"),
        (_header(tensors=2**40), "tensors"),
        (_header(kvs=1) + struct.pack("<Q", 2**50) + b"xx", "claims"),
        (_header(kvs=1) + _string("k") + struct.pack("<IQ", 8, 2**33), "claims"),
        (_header(kvs=1) + _string("k") + struct.pack("<I", 77), "unknown value type"),
        (_header(kvs=1) + _string("k") + struct.pack("<II", 9, 9) + b"\0" * 8, "unsupported"),
    ],
)
def test_hostile_headers_raise(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(GGUFError, match=message):
        read_gguf_info(_write(tmp_path, data))


def _tensor(name: str, dims: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d)
            for d in dims) + struct.pack("<IQ", ggml_type, offset))  # fmt: skip


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (_tensor("w", (4, 4, 4, 4, 4)), "dimensions"),
        (_tensor("w", (2**40, 2**40)), "absurd shape"),
        (_tensor("w", (4,), ggml_type=999), "unknown type"),
        (_tensor("w", (1000, 1000)), "outside the file"),
        (_tensor("w", (33,), ggml_type=2), "multiple of 32"),
    ],
)
def test_hostile_tensor_tables_raise(tmp_path: Path, tensor: bytes, message: str) -> None:
    data = _header(tensors=1, kvs=1) + _kv_u32("general.alignment", 32) + tensor
    with pytest.raises(GGUFError, match=message):
        read_gguf_info(_write(tmp_path, data + b"\0" * 64))


def test_valid_minimal_file_parses(tmp_path: Path) -> None:
    body = _header(tensors=1, kvs=1) + _kv_u32("general.alignment", 32) + _tensor("w", (4, 2))
    body += b"\0" * (-len(body) % 32) + b"\0" * 32
    info = read_gguf_info(_write(tmp_path, body))
    assert info.tensors[0].shape == (4, 2) and info.tensors[0].n_bytes == 32


def test_truncated_real_file_raises(tmp_path: Path) -> None:
    whole = fixture_gguf("llama2-spm").read_bytes()
    for cut in (30, 1000, 300_000, len(whole) - 10):
        with pytest.raises(GGUFError):
            read_gguf_info(_write(tmp_path, whole[:cut]))


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="does not exist"):
        read_gguf_info(tmp_path / "nothing.gguf")
