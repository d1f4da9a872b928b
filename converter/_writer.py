"""Writing a GGUF file tensor by tensor, atomically, with clean-up on any failure.

Tensor data streams through a small pipeline: a few threads read and encode pieces
of a few MiB (file reads and numpy release the GIL, so they run in parallel), while
this thread writes the finished pieces in file order and asks the OS to start
putting them on the disk. At most _PIPELINE_DEPTH pieces are in flight, so memory
stays bounded whatever the model size; the file is fsync'ed once, when published.
"""

from __future__ import annotations

import collections
import math
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import gguf
import numpy as np

from bllossom_core import fileio
from bllossom_core.errors import DiskFullError
from converter._checkpoint import Checkpoint
from converter._progress import Reporter
from converter._tensors import Piece, PlannedTensor, head_counts, rope_parameters, tensor_pieces
from converter._vocab import Vocabulary

_ALIGNMENT = gguf.GGUF_DEFAULT_ALIGNMENT
_HEADER_ALLOWANCE = 64 * 2**20  # metadata (a 145k-token vocabulary is ~10 MB) and padding
_ENCODE_THREADS = max(2, min(4, os.cpu_count() or 2))
_PIPELINE_DEPTH = _ENCODE_THREADS + 2  # pieces queued or encoded ahead of the writer
_WRITEBACK_BYTES = 64 * 2**20  # start disk writes every this many bytes


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


def publish(temporary: Path, output: Path, *, force: bool) -> None:
    """fsync ``temporary`` and move it to ``output`` in one step (see bllossom_core.fileio:
    an existing output keeps its permissions, a new one gets the usual ones)."""
    fileio.publish(temporary, output, overwrite=force)


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
    message: str = "",
) -> None:
    """Write the whole GGUF to ``path`` (a temporary name: the caller publishes it);
    ``message`` goes with each progress event (e.g. which step of a two-step
    conversion this is)."""
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
        reporter.emit("convert", done, total, message=message)

    try:
        writer.open_output_file(path)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        out = writer.fout[0]
        reporter.emit("convert", 0, total, message=message, force=True)
        _write_tensor_data(out, plan, advance)
        _pad(out)
        out.flush()
    except OSError as exc:
        raise fileio.storage_error(exc, path) from None
    finally:
        writer.close()


def _write_tensor_data(
    out: BinaryIO, plan: list[PlannedTensor], advance: Callable[[int], None]
) -> None:
    """Every tensor's bytes, encoded by a pool of threads and written here in order.

    ``advance`` (which raises Cancelled when the user cancels) runs on this thread
    after each piece; on any exception the queued pieces are dropped and the pool
    finishes only the pieces already being encoded before the error propagates.
    """
    pieces: Iterator[Piece] = (piece for tensor in plan for piece in tensor_pieces(tensor))
    pending: collections.deque[tuple[Piece, Future[memoryview]]] = collections.deque()
    writeback = _Writeback(out)
    written = 0
    with ThreadPoolExecutor(_ENCODE_THREADS, thread_name_prefix="gguf-encode") as pool:
        try:
            while True:
                while len(pending) < _PIPELINE_DEPTH:
                    piece = next(pieces, None)
                    if piece is None:
                        break
                    pending.append((piece, pool.submit(piece.encode)))
                if not pending:
                    break
                piece, encoded = pending.popleft()
                data = encoded.result()
                if piece.first:
                    _pad(out)
                    written = 0
                out.write(data)
                written += len(data)
                if piece.last and written != piece.tensor.nbytes:
                    raise AssertionError(
                        f"{piece.tensor.name}: wrote {written} of {piece.tensor.nbytes} bytes"
                    )
                del data, encoded
                writeback.advance()
                advance(piece.source_bytes)
        finally:
            for _, future in pending:
                future.cancel()


class _Writeback:
    """Starts the disk writing what has been written so far, every _WRITEBACK_BYTES."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._started = out.tell()

    def advance(self) -> None:
        position = self._out.tell()
        if position - self._started >= _WRITEBACK_BYTES:
            self._out.flush()
            fileio.start_writeback(self._out.fileno(), self._started, position - self._started)
            self._started = position


def _pad(out: Any) -> None:
    position = out.tell()
    padding = -position % _ALIGNMENT
    if padding:
        out.write(b"\0" * padding)
