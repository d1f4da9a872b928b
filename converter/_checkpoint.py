"""Reading and validating a Hugging Face Llama checkpoint folder, without loading weights.

Safetensors headers are parsed directly so that every file is checked (truncation,
overlapping or out-of-range offsets) before anything is written, and tensors are then
read row block by row block with plain file reads: memory stays at one block, not one
file. Legacy ``pytorch_model.bin`` files are opened with ``torch.load(weights_only=True,
mmap=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bllossom_core.errors import CheckpointError
from converter._json import json_type, read_json

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"
_MAX_HEADER = 100 * 2**20

# Source dtype name -> (numpy storage dtype, element size). bf16 is stored as uint16.
_DTYPES: dict[str, tuple[np.dtype[Any], int]] = {
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),
}


@dataclass
class TensorRef:
    """Where one source tensor lives and how to read rows of it."""

    name: str
    dtype: str  # "F32", "F16" or "BF16"
    shape: tuple[int, ...]
    read_rows: Callable[[int, int], np.ndarray]
    """``read_rows(start, stop)`` -> raw rows (bf16 as uint16), shape ``(stop-start, ...)``."""

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * _DTYPES[self.dtype][1]

    @property
    def row_count(self) -> int:
        return self.shape[0] if self.shape else 1


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]
    tensors: dict[str, TensorRef] = field(default_factory=dict)

    @property
    def source_dtype(self) -> str:
        """The dtype of the matrices (the first 2-D tensor), as llama.cpp guesses it."""
        for ref in self.tensors.values():
            if len(ref.shape) >= 2:
                return ref.dtype
        return "F32"

    @property
    def weight_bytes(self) -> int:
        return sum(ref.nbytes for ref in self.tensors.values())


def open_checkpoint(folder: Path) -> Checkpoint:
    """Validate ``folder`` as a convertible Llama checkpoint and index its tensors."""
    if not folder.exists():
        raise CheckpointError(f"Checkpoint folder not found: {folder}.", path=folder)
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder} is not a folder; give the folder that holds config.json.", path=folder
        )
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(
            f"{folder} has no config.json, so it is not a Hugging Face checkpoint.",
            hint="Give the folder that holds config.json and the model weights.",
            path=config_path,
        )
    config = read_json(config_path, CheckpointError)
    _check_architecture(config, config_path)
    checkpoint = Checkpoint(folder, config)
    checkpoint.tensors = _index_tensors(folder)
    return checkpoint


def _check_architecture(config: dict[str, Any], path: Path) -> None:
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not architectures:
        architectures = [config.get("model_type", "unknown")]
    arch = architectures[0]
    if arch not in SUPPORTED_ARCHITECTURES:
        raise CheckpointError(
            f"{path}: architecture {arch!r} is not supported; only Llama checkpoints "
            f"({', '.join(SUPPORTED_ARCHITECTURES)}) can be converted.",
            path=path,
        )
    required = (
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
    )
    missing = [key for key in required if key not in config]
    if missing:
        raise CheckpointError(
            f"{path} lacks {', '.join(missing)}; it is not a complete Llama configuration.",
            hint="Download config.json again.",
            path=path,
        )
    for key in required:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CheckpointError(
                f"{path}: {key} is {json.dumps(value)[:40]} (a JSON {json_type(value)}), "
                "but it must be a positive whole number such as 4096.",
                hint="Fix that value in config.json or download the file again.",
                path=path,
            )


def _index_tensors(folder: Path) -> dict[str, TensorRef]:
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        return _index_sharded_safetensors(folder, index)
    singles = sorted(folder.glob("*.safetensors"))
    if singles:
        tensors: dict[str, TensorRef] = {}
        for file in singles:
            _merge(tensors, _index_safetensors(file), file)
        return tensors
    bin_index = folder / BIN_INDEX
    if bin_index.is_file():
        files = sorted(set(_weight_map(bin_index).values()))
        tensors = {}
        for name in files:
            _merge(tensors, _index_torch_bin(folder / name), folder / name)
        return tensors
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if bins:
        tensors = {}
        for file in bins:
            _merge(tensors, _index_torch_bin(file), file)
        return tensors
    raise CheckpointError(
        f"{folder} holds no model weights (no *.safetensors, {SAFETENSORS_INDEX} "
        "or pytorch_model.bin).",
        hint="Download the weight files too.",
        path=folder,
    )


def _merge(into: dict[str, TensorRef], new: dict[str, TensorRef], file: Path) -> None:
    for name, ref in new.items():
        if name in into:
            raise CheckpointError(f"Tensor {name!r} appears twice (again in {file}).", path=file)
        into[name] = ref


def _weight_map(index: Path) -> dict[str, str]:
    weight_map = read_json(index, CheckpointError).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(
            f"{index} has no weight_map object; the shard index is broken.",
            hint=f"Download {index.name} again.",
            path=index,
        )
    if not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(
            f"{index}: weight_map values must be shard file names (strings).",
            hint=f"Download {index.name} again.",
            path=index,
        )
    return weight_map


def _index_sharded_safetensors(folder: Path, index: Path) -> dict[str, TensorRef]:
    weight_map = _weight_map(index)
    tensors: dict[str, TensorRef] = {}
    for shard in sorted(set(weight_map.values())):
        path = folder / shard
        if not path.is_file():
            raise CheckpointError(
                f"{index.name} names shard {shard}, which is missing from {folder}.",
                hint="Download all shards of the model.",
                path=path,
            )
        shard_tensors = _index_safetensors(path)
        for name in shard_tensors:
            if weight_map.get(name, shard) != shard:
                raise CheckpointError(
                    f"{index.name} says tensor {name!r} is in {weight_map[name]}, but it is in "
                    f"{shard}; the shard index does not match the shards.",
                    path=index,
                )
        _merge(tensors, shard_tensors, path)
    for name, shard in weight_map.items():
        if name not in tensors:
            raise CheckpointError(
                f"{index.name} says tensor {name!r} is in {shard}, but it is not there; "
                "the shard index does not match the shards.",
                path=index,
            )
    for name in tensors:
        if name not in weight_map:
            raise CheckpointError(
                f"{index.name} does not list tensor {name!r}; the shard index does not "
                "match the shards.",
                path=index,
            )
    return tensors


def _index_safetensors(path: Path) -> dict[str, TensorRef]:
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("the file is shorter than a safetensors header")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > min(_MAX_HEADER, size - 8):
                raise ValueError("the header length is out of range")
            header = json.loads(f.read(header_len))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({exc}).",
            hint="It may be truncated or corrupt; download it again.",
            path=path,
        ) from None
    data_start = 8 + header_len
    tensors: dict[str, TensorRef] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _safetensors_ref(path, name, info, data_start, size)
    return tensors


def _safetensors_ref(
    path: Path, name: str, info: Any, data_start: int, file_size: int
) -> TensorRef:
    try:
        dtype = info["dtype"]
        shape = tuple(int(n) for n in info["shape"])
        begin, end = (int(n) for n in info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{path}: the header entry for {name!r} is malformed.", path=path
        ) from None
    if dtype not in _DTYPES:
        raise CheckpointError(
            f"{path}: tensor {name!r} has dtype {dtype}; only F32, F16 and BF16 are supported.",
            path=path,
        )
    np_dtype, itemsize = _DTYPES[dtype]
    nbytes = math.prod(shape) * itemsize
    if end - begin != nbytes or begin < 0:
        raise CheckpointError(
            f"{path}: tensor {name!r} has inconsistent offsets; the file is corrupt.", path=path
        )
    if data_start + end > file_size:
        raise CheckpointError(
            f"{path} is truncated: tensor {name!r} ends at byte {data_start + end:,} but the "
            f"file has {file_size:,} bytes.",
            hint="Download it again.",
            path=path,
        )
    row_shape = shape[1:]
    row_bytes = math.prod(row_shape) * itemsize
    offset = data_start + begin

    def read_rows(start: int, stop: int) -> np.ndarray:
        count = (stop - start) * row_bytes if shape else nbytes
        with open(path, "rb") as f:
            f.seek(offset + start * row_bytes)
            buf = bytearray(count)
            if f.readinto(buf) != count:
                raise CheckpointError(f"{path} ended early while reading {name!r}.", path=path)
        rows = np.frombuffer(buf, dtype=np_dtype)
        return rows.reshape((stop - start, *row_shape)) if shape else rows.reshape(())

    return TensorRef(name, dtype, shape, read_rows)


def _index_torch_bin(path: Path) -> dict[str, TensorRef]:
    import pickle
    import zipfile

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} cannot be loaded safely ({first_line}).",
            hint="It is corrupt or contains arbitrary Python objects; use safetensors weights.",
            path=path,
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a dictionary of tensors.", path=path)
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    tensors: dict[str, TensorRef] = {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        if tensor.dtype not in names:
            raise CheckpointError(
                f"{path}: tensor {name!r} has dtype {tensor.dtype}; only float32, float16 and "
                "bfloat16 are supported.",
                path=path,
            )

        def read_rows(start: int, stop: int, t: Any = tensor) -> np.ndarray:
            part = t[start:stop] if t.dim() else t
            if part.dtype == torch.bfloat16:
                part = part.view(torch.int16)
                return part.numpy().view(np.uint16).copy()
            return part.numpy().copy()

        tensors[name] = TensorRef(name, names[tensor.dtype], tuple(tensor.shape), read_rows)
    return tensors
