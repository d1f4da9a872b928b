"""The safe GGUF reader: real files parse; truncated, corrupt and hostile ones fail fast."""

from __future__ import annotations

import re
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
    with pytest.raises(GGUFError, match=r"more than the remaining|needs"):
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
        (_header(kvs=1) + struct.pack("<Q", 2**50) + b"x" * 16, "claims"),
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


def _kv(key: str, kind: int, payload: bytes) -> bytes:
    return _string(key) + struct.pack("<I", kind) + payload


def _kv_str(key: str, value: str) -> bytes:
    return _kv(key, 8, _string(value))


def _str_array(key: str, items: list[str]) -> bytes:
    return _kv(key, 9, struct.pack("<IQ", 8, len(items)) + b"".join(_string(t) for t in items))


VOCAB = ["<unk>", "<s>", "</s>"]
GOOD = {
    "arch": _kv_str("general.architecture", "llama"),
    "layers": _kv("llama.block_count", 4, struct.pack("<I", 2)),
    "context": _kv("llama.context_length", 4, struct.pack("<I", 4096)),
    "tokens": _str_array("tokenizer.ggml.tokens", VOCAB),
    "bos": _kv("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 1)),
}


def _model_file(tmp_path: Path, **replace: bytes) -> Path:
    entries = {**GOOD, **replace}
    body = _header(tensors=1, kvs=len(entries)) + b"".join(entries.values())
    body += _tensor("w", (4, 2))
    body += b"\0" * (-len(body) % 32) + b"\0" * 32
    return _write(tmp_path, body)


@pytest.mark.parametrize(
    ("replace", "key"),
    [
        ({"layers": _kv_str("llama.block_count", "abc")}, "llama.block_count"),
        ({"layers": _kv("llama.block_count", 5, struct.pack("<i", -2))}, "llama.block_count"),
        ({"context": _kv("llama.context_length", 6, struct.pack("<f", float("nan")))},
         "llama.context_length"),
        ({"context": _kv("llama.context_length", 5, struct.pack("<i", -4096))},
         "llama.context_length"),
        ({"width": _kv("llama.embedding_length", 4, struct.pack("<I", 0))},
         "llama.embedding_length"),
        ({"heads": _kv_str("llama.attention.head_count", "8")}, "llama.attention.head_count"),
        ({"kv": _kv("llama.attention.head_count_kv", 12, struct.pack("<d", 2.0))},
         "llama.attention.head_count_kv"),
        ({"tokens": _kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ3I", 4, 3, 1, 2, 3))},
         "tokenizer.ggml.tokens"),
        ({"scores": _kv("tokenizer.ggml.scores", 9, struct.pack("<IQf", 6, 1, 0.0))},
         "tokenizer.ggml.scores"),
        ({"bos": _kv("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 3))},
         "tokenizer.ggml.bos_token_id"),
        ({"eos": _kv("tokenizer.ggml.eos_token_id", 5, struct.pack("<i", -1))},
         "tokenizer.ggml.eos_token_id"),
        ({"eot": _kv_str("tokenizer.ggml.eot_token_id", "2")}, "tokenizer.ggml.eot_token_id"),
        ({"pad": _kv("tokenizer.ggml.padding_token_id", 4, struct.pack("<I", 99))},
         "tokenizer.ggml.padding_token_id"),
        ({"add": _kv("tokenizer.ggml.add_bos_token", 4, struct.pack("<I", 1))},
         "tokenizer.ggml.add_bos_token"),
        ({"tmpl": _kv("tokenizer.chat_template", 4, struct.pack("<I", 7))},
         "tokenizer.chat_template"),
        ({"arch": _kv("general.architecture", 4, struct.pack("<I", 7))}, "general.architecture"),
    ],
)  # fmt: skip
def test_wrongly_typed_known_keys_are_gguf_errors(
    tmp_path: Path, replace: dict[str, bytes], key: str
) -> None:
    from bllossom_core.engine import LocalEngine

    path = _model_file(tmp_path, **replace)
    for reader in (read_gguf_info, LocalEngine.load):
        with pytest.raises(GGUFError, match=rf"metadata {re.escape(key)} should"):
            reader(path)


def test_well_typed_file_reads_its_values(tmp_path: Path) -> None:
    info = read_gguf_info(_model_file(tmp_path))
    assert (info.block_count, info.context_length, info.special_token_ids()) == (
        2,
        4096,
        {"bos": 1},
    )


def test_info_command_reports_bad_metadata_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bllossom_core.cli import main

    path = _model_file(tmp_path, layers=_kv_str("llama.block_count", "abc"))
    assert main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert "llama.block_count should be a whole number" in err and "Traceback" not in err


def test_messages_name_the_path_as_given_and_count_neutrally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "one.gguf").write_bytes(_header(kvs=1) + b"\0" * 8)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GGUFError) as caught:
        read_gguf_info("models/one.gguf")
    message = str(caught.value)
    expected = (
        "models/one.gguf is not a usable GGUF file: its count of metadata entries (1) is "
        "more than the remaining 8 bytes can hold"
    )
    assert message.startswith(expected)
    assert "1 metadata entries" not in message
