"""Reading and validating a Hugging Face Llama checkpoint folder, without loading weights.

Safetensors headers are parsed directly so that every file is checked (truncation,
overlapping or out-of-range offsets, impossible shapes) before anything is written, and
tensors are then read row block by row block with plain file reads: memory stays at one
block, not one file. config.json is then checked against those shapes (``_config``).
``pytorch_model.bin`` files are opened with ``torch.load(weights_only=True)``, which
refuses arbitrary pickled objects: zip-format files memory-mapped, legacy (pre-1.6,
non-zip) files read into memory, since torch cannot map those.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bllossom_core.errors import CheckpointError, ErrorCode
from converter._config import check_against_weights, check_config
from converter._json import (
    MAX_JSON_BYTES,
    check_regular_file,
    parse_json,
    read_json,
    show_value,
)

SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"
_MAX_HEADER = 100 * 2**20  # the safetensors format's own limit
_MAX_DIMS = 4
_MAX_DIM = 2**40  # far above any real dimension, far below int64 overflow in byte sizes

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
    read_into: Callable[[int, int, np.ndarray], None] | None = None
    """``read_into(start, stop, out)``: the same rows' raw bytes into the uint8 array
    ``out`` (exactly their size), so that a caller can reuse its buffers; ``None`` when
    the source can only hand out arrays."""

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
        raise CheckpointError(
            f"Checkpoint folder not found: {folder}.", path=folder, code=ErrorCode.FILE_NOT_FOUND
        )
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder} is not a folder; give the folder that holds config.json.",
            path=folder,
            code=ErrorCode.INVALID_INPUT,
        )
    config_path = folder / "config.json"
    if not (config_path.exists() or config_path.is_symlink()):  # read_json judges the rest
        raise CheckpointError(
            f"{folder} has no config.json, so it is not a Hugging Face checkpoint.",
            hint="Give the folder that holds config.json and the model weights.",
            path=config_path,
            code=ErrorCode.CHECKPOINT_INVALID,
        )
    config = read_json(config_path, CheckpointError)
    check_config(config, config_path)
    _check_card_files(folder)
    checkpoint = Checkpoint(folder, config)
    checkpoint.tensors = _index_tensors(folder)
    check_against_weights(config, checkpoint.tensors, config_path)
    return checkpoint


def _check_card_files(folder: Path) -> None:
    """Bound the files gguf's metadata reader opens on its own, whole (the model card,
    generation_config.json), so a huge or deeply nested one is refused here."""
    read_json(folder / "generation_config.json", CheckpointError, required=False)
    card = folder / "README.md"
    if card.exists() or card.is_symlink():
        check_regular_file(card, CheckpointError, max_bytes=MAX_JSON_BYTES)


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
        code=ErrorCode.CHECKPOINT_INVALID,
    )


def _merge(into: dict[str, TensorRef], new: dict[str, TensorRef], file: Path) -> None:
    for name, ref in new.items():
        if name in into:
            raise CheckpointError(
                f"Tensor {name!r} appears twice (again in {file}).",
                path=file,
                code=ErrorCode.CHECKPOINT_INVALID,
            )
        into[name] = ref


def _weight_map(index: Path) -> dict[str, str]:
    weight_map = read_json(index, CheckpointError).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(
            f"{index} has no weight_map object; the shard index is broken.",
            hint=f"Download {index.name} again.",
            path=index,
            code=ErrorCode.CHECKPOINT_INVALID,
        )
    # A shard is a file beside the index: "../x" or "/dev/zero" would read elsewhere.
    if not all(isinstance(v, str) and v and Path(v).name == v for v in weight_map.values()):
        raise CheckpointError(
            f"{index}: weight_map values must be shard file names in the same folder.",
            hint=f"Download {index.name} again.",
            path=index,
            code=ErrorCode.CHECKPOINT_INVALID,
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
                code=ErrorCode.CHECKPOINT_INVALID,
            )
        shard_tensors = _index_safetensors(path)
        for name in shard_tensors:
            if weight_map.get(name, shard) != shard:
                raise CheckpointError(
                    f"{index.name} says tensor {name!r} is in {weight_map[name]}, but it is in "
                    f"{shard}; the shard index does not match the shards.",
                    path=index,
                    code=ErrorCode.CHECKPOINT_INVALID,
                )
        _merge(tensors, shard_tensors, path)
    for name, shard in weight_map.items():
        if name not in tensors:
            raise CheckpointError(
                f"{index.name} says tensor {name!r} is in {shard}, but it is not there; "
                "the shard index does not match the shards.",
                path=index,
                code=ErrorCode.CHECKPOINT_INVALID,
            )
    for name in tensors:
        if name not in weight_map:
            raise CheckpointError(
                f"{index.name} does not list tensor {name!r}; the shard index does not "
                "match the shards.",
                path=index,
                code=ErrorCode.CHECKPOINT_INVALID,
            )
    return tensors


def _corrupt(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a valid safetensors file ({what}).",
        hint="It may be truncated or corrupt; download it again.",
        path=path,
        code=ErrorCode.CHECKPOINT_INVALID,
    )


def _index_safetensors(path: Path) -> dict[str, TensorRef]:
    size = check_regular_file(path, CheckpointError)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise _corrupt(path, "the file is shorter than a safetensors header")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > min(_MAX_HEADER, size - 8):
                raise _corrupt(path, "the header length is out of range")
            raw_header = f.read(header_len)
    except OSError as exc:
        raise CheckpointError(
            f"{path} cannot be read ({exc.strerror or exc}).",
            path=path,
            code=ErrorCode.FILE_UNREADABLE,
        ) from None
    header = parse_json(raw_header, path, CheckpointError, what="the safetensors header")
    data_start = 8 + header_len
    tensors: dict[str, TensorRef] = {}
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        ref, begin, end = _safetensors_ref(path, name, info, data_start, size)
        tensors[name] = ref
        spans.append((begin, end, name))
    spans.sort()
    for (_, previous_end, previous), (begin, _, name) in itertools.pairwise(spans):
        if begin < previous_end:
            raise _corrupt(path, f"tensors {previous!r} and {name!r} overlap")
    return tensors


def _whole_numbers(value: Any, count: int | None) -> tuple[int, ...] | None:
    """``value`` as a tuple of JSON whole numbers (of ``count`` items), else ``None``."""
    if not isinstance(value, list) or (count is not None and len(value) != count):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in value):
        return None
    return tuple(value)


def check_shape(path: Path, name: str, shape: tuple[int, ...]) -> None:
    """A tensor shape a Llama weight can have: 0 to 4 dimensions, each at least 1."""
    if len(shape) > _MAX_DIMS or any(not 1 <= n <= _MAX_DIM for n in shape):
        raise CheckpointError(
            f"{path}: tensor {name!r} has shape {list(shape)[:8]}, which no model weight "
            f"has (each of at most {_MAX_DIMS} dimensions must be from 1 to {_MAX_DIM:,}); "
            "the file is corrupt.",
            hint="Download it again.",
            path=path,
            code=ErrorCode.CHECKPOINT_INVALID,
        )


def _safetensors_ref(
    path: Path, name: str, info: Any, data_start: int, file_size: int
) -> tuple[TensorRef, int, int]:
    entry = info if isinstance(info, dict) else {}
    dtype = entry.get("dtype")
    shape = _whole_numbers(entry.get("shape"), None)
    offsets = _whole_numbers(entry.get("data_offsets"), 2)
    if not isinstance(dtype, str) or shape is None or offsets is None:
        raise _corrupt(
            path,
            f"the header entry for {name!r} needs a dtype name, a shape of whole numbers and "
            "two whole-number data offsets",
        )
    if dtype not in _DTYPES:
        raise CheckpointError(
            f"{path}: tensor {name!r} has dtype {show_value(dtype)}; only F32, F16 and BF16 "
            "are supported.",
            path=path,
            code=ErrorCode.CHECKPOINT_UNSUPPORTED,
        )
    check_shape(path, name, shape)
    np_dtype, itemsize = _DTYPES[dtype]
    nbytes = math.prod(shape) * itemsize
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != nbytes:
        raise _corrupt(
            path,
            f"tensor {name!r} of shape {list(shape)} needs {nbytes:,} bytes but its data "
            f"offsets are {begin:,}..{end:,}",
        )
    if data_start + end > file_size:
        raise CheckpointError(
            f"{path} is truncated: tensor {name!r} ends at byte {data_start + end:,} but the "
            f"file has {file_size:,} bytes.",
            hint="Download it again.",
            path=path,
            code=ErrorCode.CHECKPOINT_INVALID,
        )
    row_shape = shape[1:]
    row_bytes = math.prod(row_shape) * itemsize
    offset = data_start + begin

    def read_into(start: int, stop: int, out: np.ndarray) -> None:
        view = out.data.cast("B")
        count = len(view)
        # Unbuffered: each read goes straight from the page cache into ``out``.
        with open(path, "rb", buffering=0) as f:
            f.seek(offset + start * row_bytes)
            done = 0
            while done < count:
                got = f.readinto(view[done:])
                if not got:
                    raise CheckpointError(
                        f"{path} ended early while reading {name!r}.",
                        hint="It changed while being converted; download it again.",
                        path=path,
                        code=ErrorCode.CHECKPOINT_INVALID,
                    )
                done += got

    def read_rows(start: int, stop: int) -> np.ndarray:
        count = (stop - start) * row_bytes if shape else nbytes
        buf = np.empty(count, np.uint8)  # every byte is read over: no zero-filling
        read_into(start, stop, buf)
        rows = buf.view(np_dtype)
        return rows.reshape((stop - start, *row_shape)) if shape else rows.reshape(())

    return TensorRef(name, dtype, shape, read_rows, read_into), begin, end


def _load_torch_state(path: Path) -> Any:
    """``torch.load`` of a ``.bin`` file with the safe (weights only) unpickler."""
    import zipfile

    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path} is a PyTorch pickle file, and reading one needs torch, which is not "
            "installed.",
            hint="Install it (pip install 'bllossom-desktop[verify]'), or use the model's "
            "safetensors weights.",
            path=path,
            code=ErrorCode.CHECKPOINT_UNSUPPORTED,
        ) from None
    check_regular_file(path, CheckpointError)
    # torch can memory-map only the zip format (torch >= 1.6); a legacy file is read
    # into memory, still through the weights-only unpickler.
    mappable = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mappable)
    except MemoryError:
        raise CheckpointError(
            f"{path} is a legacy (non-zip) PyTorch file, which has to be read into memory "
            "whole, and there is not enough memory for it.",
            hint="Use the model's safetensors weights, or convert on a machine with more memory.",
            path=path,
            code=ErrorCode.OUT_OF_MEMORY,
        ) from None
    except Exception as exc:  # torch's unpickler raises many types on hostile data
        text = str(exc).strip()
        first_line = text.splitlines()[0][:200] if text else type(exc).__name__
        raise CheckpointError(
            f"{path} cannot be loaded safely ({first_line}).",
            hint="It is corrupt or contains arbitrary Python objects; use safetensors weights.",
            path=path,
            code=ErrorCode.CHECKPOINT_INVALID,
        ) from None


def _index_torch_bin(path: Path) -> dict[str, TensorRef]:
    state = _load_torch_state(path)  # first: it explains a missing torch
    import torch

    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} does not hold a dictionary of tensors.",
            hint="Use the model's safetensors weights.",
            path=path,
            code=ErrorCode.CHECKPOINT_INVALID,
        )
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
                code=ErrorCode.CHECKPOINT_UNSUPPORTED,
            )
        check_shape(path, str(name), tuple(tensor.shape))

        def read_rows(start: int, stop: int, t: Any = tensor) -> np.ndarray:
            part = t[start:stop] if t.dim() else t
            if part.dtype == torch.bfloat16:
                part = part.view(torch.int16)
                rows: np.ndarray = part.numpy().view(np.uint16).copy()
            else:
                rows = part.numpy().copy()
            return rows

        tensors[str(name)] = TensorRef(
            str(name), names[tensor.dtype], tuple(tensor.shape), read_rows
        )
    return tensors
