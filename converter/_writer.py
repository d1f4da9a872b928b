"""Writing a GGUF file tensor by tensor, atomically, with clean-up on any failure."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from bllossom_core.errors import DiskFullError, StorageError
from converter._checkpoint import Checkpoint
from converter._progress import Reporter
from converter._tensors import PlannedTensor, head_counts, rope_parameters, stream_bytes
from converter._vocab import Vocabulary

_ALIGNMENT = gguf.GGUF_DEFAULT_ALIGNMENT
_HEADER_ALLOWANCE = 64 * 2**20  # metadata (a 145k-token vocabulary is ~10 MB) and padding


def _disk_error(exc: OSError, where: Path) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return DiskFullError(
            f"The disk holding {where.parent} is full; nothing was written.",
            hint="Free some space or choose another output folder with -o.",
            path=where,
        )
    return StorageError(f"Cannot write {where}: {exc.strerror or exc}.", path=where)


def check_free_space(folder: Path, needed: int) -> None:
    """Fail before any work if ``folder`` cannot hold ``needed`` bytes."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DiskFullError(
            f"Not enough free disk space in {folder}: the conversion needs about "
            f"{needed / 2**30:.2f} GiB but only {free / 2**30:.2f} GiB is free.",
            hint="Free some space or choose another output folder with -o.",
            path=folder,
        )


@contextlib.contextmanager
def temporary_beside(output: Path, tag: str) -> Iterator[Path]:
    """A temporary file name next to ``output``; the file is removed afterwards, whatever
    happens (including Ctrl-C), unless it was renamed away."""
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{output.name}.", suffix=f".{tag}.part", dir=output.parent
        )
    except OSError as exc:
        raise _disk_error(exc, output) from None
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def publish(temporary: Path, output: Path, *, force: bool) -> None:
    """fsync ``temporary`` and move it to ``output`` in one step."""
    try:
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)  # mkstemp made it private; a model file is not secret
        if not force and output.exists():
            raise StorageError(
                f"{output} already exists.", hint="Use --force to overwrite it.", path=output
            )
        os.replace(temporary, output)
        with contextlib.suppress(OSError):
            dir_fd = os.open(output.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise _disk_error(exc, output) from None


def estimated_size(plan: list[PlannedTensor], vocab: Vocabulary) -> int:
    tokens = sum(len(t) + 16 for t in vocab.tokens)
    return sum(p.nbytes + _ALIGNMENT for p in plan) + tokens + _HEADER_ALLOWANCE


def _add_hyperparameters(writer: gguf.GGUFWriter, config: dict[str, Any]) -> None:
    n_head, n_kv = head_counts(config)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_context_length(int(config.get("max_position_embeddings") or 4096))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    rope = rope_parameters(config)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    rope_type = str(rope.get("rope_type", rope.get("type", ""))).lower()
    if rope_type == "linear" and rope.get("factor") is not None:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-5)))
    writer.add_vocab_size(int(config["vocab_size"]))
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    writer.add_rope_dimension_count(int(head_dim))
    if config.get("head_dim") is not None:
        writer.add_key_length(int(head_dim))
        writer.add_value_length(int(head_dim))


def _add_general(
    writer: gguf.GGUFWriter, checkpoint: Checkpoint, file_type: gguf.LlamaFileType, name: str
) -> None:
    params = sum(math.prod(ref.shape) for ref in checkpoint.tensors.values())
    metadata = gguf.Metadata.load(None, checkpoint.path, name, params)
    metadata.set_gguf_meta_model(writer)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(int(file_type))


def write_gguf(
    checkpoint: Checkpoint,
    vocab: Vocabulary,
    plan: list[PlannedTensor],
    file_type: gguf.LlamaFileType,
    path: Path,
    reporter: Reporter,
    *,
    model_name: str,
) -> None:
    """Write the whole GGUF to ``path`` (a temporary name: the caller publishes it)."""
    writer = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    _add_general(writer, checkpoint, file_type, model_name)
    _add_hyperparameters(writer, checkpoint.config)
    vocab.add_to(writer)
    for tensor in plan:
        writer.add_tensor_info(
            tensor.name, tensor.shape, np.dtype(np.float32), tensor.nbytes, tensor.qtype
        )
    total = sum(t.source.nbytes for t in plan if t.source is not None)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        reporter.emit("convert", done, total)

    try:
        writer.open_output_file(path)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        out = writer.fout[0]
        reporter.emit("convert", 0, total, force=True)
        for tensor in plan:
            _pad(out)
            written = 0
            for piece in stream_bytes(tensor, advance):
                out.write(piece)
                written += len(piece)
            if written != tensor.nbytes:
                raise AssertionError(f"{tensor.name}: wrote {written} of {tensor.nbytes} bytes")
        _pad(out)
        out.flush()
    except OSError as exc:
        raise _disk_error(exc, path) from None
    finally:
        writer.close()


def _pad(out: Any) -> None:
    position = out.tell()
    padding = -position % _ALIGNMENT
    if padding:
        out.write(b"\0" * padding)
