"""Every bad input gets a specific error and leaves no files behind."""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bllossom_core.errors import (
    BllossomError,
    CheckpointError,
    DiskFullError,
    InputError,
    RemoteError,
    StorageError,
    TokenizerError,
)
from converter import convert


def _fails(
    source: Path | str, out_dir: Path, error: type[BllossomError], match: str, **kwargs: Any
) -> BllossomError:
    out_dir.mkdir(exist_ok=True)
    before = sorted(out_dir.iterdir())
    with pytest.raises(error, match=match) as caught:
        convert(source, out_dir / "out.gguf", kwargs.pop("quant", "F16"), **kwargs)
    assert sorted(out_dir.iterdir()) == before, "files were left behind"
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return caught.value


def _edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_missing_folder(tmp_path: Path) -> None:
    _fails(tmp_path / "nope", tmp_path / "out", CheckpointError, "not found")


def test_folder_without_config(spm_copy: Path, tmp_path: Path) -> None:
    (spm_copy / "config.json").unlink()
    _fails(spm_copy, tmp_path / "out", CheckpointError, "no config.json")


def test_unsupported_architecture(spm_copy: Path, tmp_path: Path) -> None:
    _edit_json(spm_copy / "config.json", lambda c: {**c, "architectures": ["GPT2LMHeadModel"]})
    _fails(spm_copy, tmp_path / "out", CheckpointError, "'GPT2LMHeadModel' is not supported")


def test_truncated_safetensors(spm_copy: Path, tmp_path: Path) -> None:
    weights = spm_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    _fails(spm_copy, tmp_path / "out", CheckpointError, "model.safetensors is truncated")


def test_corrupt_safetensors_header(spm_copy: Path, tmp_path: Path) -> None:
    weights = spm_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"#" * 32
    weights.write_bytes(bytes(data))
    _fails(
        spm_copy, tmp_path / "out", CheckpointError, "safetensors header of .* is not valid JSON"
    )


def test_inconsistent_shard_index(sharded_copy: Path, tmp_path: Path) -> None:
    index = sharded_copy / "model.safetensors.index.json"

    def break_index(data: Any) -> Any:
        name = next(iter(data["weight_map"]))
        data["weight_map"][name] = "model-00003-of-00003.safetensors"
        return data

    original = index.read_text()
    _edit_json(index, break_index)
    _fails(sharded_copy, tmp_path / "out", CheckpointError, "shard index does not match")
    index.write_text(original)
    next(sharded_copy.glob("model-00002-*.safetensors")).unlink()
    _fails(sharded_copy, tmp_path / "out", CheckpointError, "names shard .* which is missing")


def test_missing_tokenizer(spm_copy: Path, tmp_path: Path) -> None:
    (spm_copy / "tokenizer.model").unlink()
    _fails(spm_copy, tmp_path / "out", TokenizerError, "has no tokenizer")


def test_corrupt_tokenizer(spm_copy: Path, tmp_path: Path) -> None:
    (spm_copy / "tokenizer.model").write_bytes(b"\x00garbage" * 10)
    _fails(spm_copy, tmp_path / "out", TokenizerError, "not a valid SentencePiece model")


def test_corrupt_bpe_tokenizer_json(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    folder = tmp_path / "bpe"
    shutil.copytree(make_checkpoint(family="llama3-bpe"), folder)
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab"')
    _fails(folder, tmp_path / "out", TokenizerError, "tokenizer.json is not valid JSON")


def test_vocab_size_disagrees_with_embedding(spm_copy: Path, tmp_path: Path) -> None:
    """config.json is checked against the weights before the tokenizer is read."""
    _edit_json(spm_copy / "config.json", lambda c: {**c, "vocab_size": 32_100})
    _fails(spm_copy, tmp_path / "out", CheckpointError, "vocab_size is 32,100, but tensor")
    _edit_json(spm_copy / "config.json", lambda c: {**c, "vocab_size": 31_000})
    _fails(spm_copy, tmp_path / "out", CheckpointError, "vocab_size is 31,000, but tensor")


def test_unknown_quant(spm_copy: Path, tmp_path: Path) -> None:
    _fails(spm_copy, tmp_path / "out", InputError, "Unknown quantization type 'Q9_9'", quant="Q9_9")


def test_existing_output_needs_force(spm_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "out.gguf").write_bytes(b"precious")
    _fails(spm_copy, out, InputError, "already exists")
    assert (out / "out.gguf").read_bytes() == b"precious"
    convert(spm_copy, out / "out.gguf", "F16", force=True, verify_tokenizer=False)
    assert (out / "out.gguf").read_bytes()[:4] == b"GGUF"


def test_output_not_writable(
    spm_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real_access = os.access
    out = tmp_path / "readonly"
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == out else real_access(p, mode)
    )
    _fails(spm_copy, out, StorageError, "not writable")


def test_not_enough_space_detected_up_front(
    spm_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 10**6, 10**6))
    error = _fails(spm_copy, tmp_path / "out", DiskFullError, "Not enough free disk space")
    assert "GiB" in str(error)


def test_disk_full_while_writing(
    spm_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from converter import _writer

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_writer, "_pad", full)
    _fails(spm_copy, tmp_path / "out", DiskFullError, "disk .* is full")


def test_unsafe_pickle_is_refused(spm_copy: Path, tmp_path: Path) -> None:
    import pickle

    (spm_copy / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pwned",))

    (spm_copy / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Evil()}))
    _fails(spm_copy, tmp_path / "out", CheckpointError, "cannot be loaded safely")


def test_hub_id_offline_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    _fails("MLP-KTLim/llama-3-Korean-Bllossom-8B", tmp_path / "out", RemoteError, "internet")


def test_unknown_pre_tokenizer_refused(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "bpe"
    shutil.copytree(make_checkpoint(family="llama3-bpe"), folder)

    def change_regex(data: Any) -> Any:
        data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+|\\w+"
        return data

    _edit_json(folder / "tokenizer.json", change_regex)
    _fails(folder, tmp_path / "out", TokenizerError, "pre-tokenizer is not one llama.cpp")


@pytest.mark.parametrize("stage", ["convert", "quantize"])
def test_ctrl_c_leaves_no_files(stage: str, spm_copy: Path, tmp_path: Path) -> None:
    from converter import ProgressEvent

    def interrupt(event: ProgressEvent) -> None:
        if event.stage == stage and event.done > 0:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        convert(spm_copy, out / "out.gguf", "Q4_0", progress=interrupt)
    assert list(out.iterdir()) == []
