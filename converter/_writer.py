"""Writing a GGUF file tensor by tensor, atomically, with clean-up on any failure.

Tensor data streams through a small pipeline: a few threads read and encode pieces
of a few MiB (file reads and numpy release the GIL, so they run in parallel), each
straight into its place in an output buffer, while this thread writes the finished
buffers in file order. At most _PIPELINE_DEPTH pieces are in flight, and buffers are
reused, so memory stays bounded whatever the model size.

The final file is written with direct I/O (``O_DIRECT``, where the system has it) in
large blocks aligned to _BLOCK: the data goes from our buffers to the disk without
being copied into the page cache, which on a small machine costs as much CPU time as
the conversion itself. Consecutive pieces are gathered into one write of about
_GATHER_BYTES (``pwritev``). The last partial block, and anything on a system without
direct I/O, goes through the page cache, with writeback started early. The file is
fsync'ed once, when published. An intermediate file that llama.cpp's quantizer reads
right away is written through the page cache, where the quantizer then finds it.
"""

from __future__ import annotations

import collections
import errno
import math
import os
import shutil
import struct
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
_PIPELINE_DEPTH = _ENCODE_THREADS + 6
"""Pieces queued, being encoded or encoded ahead of the writer: while one gathered write
(_GATHER_BYTES: four pieces of Q8_0, the smallest output per piece) goes to the disk, the
encoders keep working on the next four and two more wait ready (with only two beyond
the encoders, they stalled through every write)."""
_WRITEBACK_BYTES = 64 * 2**20  # start disk writes every this many bytes
_BLOCK = 4096
"""Direct I/O writes start, end and sit in memory at multiples of this (the page size,
and a multiple of every disk's logical block size)."""
_GATHER_BYTES = 8 * 2**20
"""Bytes of consecutive pieces handed to the disk in one write. With both cores of a
small machine encoding, a direct write of one 2 MiB piece at a time reached ~70% of the
disk's speed (each write's completion waits for a core to wake the writer); 8 MiB at a
time, all of it (benchmarks/convert.py)."""
_GATHER_PIECES = 8
"""At most this many pieces per write (buffers held until written: memory stays bounded
when pieces are small)."""


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


_ARRAY_PACKINGS: dict[type, tuple[gguf.GGUFValueType, str]] = {
    float: (gguf.GGUFValueType.FLOAT32, "<f4"),
    int: (gguf.GGUFValueType.INT32, "<i4"),
}


class _Writer(gguf.GGUFWriter):
    """gguf's writer, with long arrays (a vocabulary's tokens, scores and types) packed
    in bulk: gguf packs them value by value, which for a 128k-token vocabulary takes
    longer than writing a gigabyte of tensors. The bytes are gguf's own; any array this
    cannot pack exactly as gguf does (mixed or other types, big-endian files, a value
    out of range, where gguf raises) goes to gguf's own code."""

    def _pack_val(
        self,
        val: Any,
        vtype: gguf.GGUFValueType,
        add_vtype: bool,
        sub_type: gguf.GGUFValueType | None = None,
    ) -> bytes:
        if (
            vtype == gguf.GGUFValueType.ARRAY
            and sub_type is None
            and isinstance(val, list)
            and len(val) > 256
            and self.endianess == gguf.GGUFEndian.LITTLE
        ):
            packed = _pack_array(val)
            if packed is not None:
                head = struct.pack("<I", vtype) if add_vtype else b""
                return head + packed
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def _pack_array(values: list[Any]) -> bytes | None:
    """A GGUF array (element type, count, elements) of strings, floats or ints, as gguf
    packs it; None where gguf's own code must decide."""
    kinds = set(map(type, values))
    if kinds <= {str, bytes}:
        length = struct.Struct("<Q").pack
        encoded = (v.encode("utf-8") if type(v) is str else v for v in values)
        body = b"".join(length(len(e)) + e for e in encoded)
        ltype = gguf.GGUFValueType.STRING
    elif len(kinds) == 1 and (kind := next(iter(kinds))) in _ARRAY_PACKINGS:
        ltype, dtype = _ARRAY_PACKINGS[kind]
        try:
            wide = np.array(values, dtype=np.float64 if kind is float else np.int64)
        except OverflowError:  # an int beyond int64
            return None
        with np.errstate(over="ignore"):
            narrow = wide.astype(dtype)
        if kind is float and np.any(np.isinf(narrow) & ~np.isinf(wide)):
            return None  # struct.pack refuses a finite float beyond float32's range
        if kind is int and np.any(narrow != wide):
            return None  # ... and an int beyond int32's
        body = narrow.tobytes()
    else:
        return None
    return struct.pack("<IQ", ltype, len(values)) + body


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
    final: bool = True,
) -> None:
    """Write the whole GGUF to ``path`` (a temporary name: the caller publishes it);
    ``message`` goes with each progress event (e.g. which step of a two-step
    conversion this is). ``final=False``: an intermediate file, read back at once and
    then deleted, kept in the page cache rather than sent to the disk."""
    writer = _Writer(path=None, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
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
        _write_tensor_data(out, plan, advance, direct=final, writeback=final)
    except OSError as exc:
        raise fileio.storage_error(exc, path) from None
    finally:
        writer.close()


def _write_tensor_data(
    out: BinaryIO,
    plan: list[PlannedTensor],
    advance: Callable[[int], None],
    *,
    direct: bool = True,
    writeback: bool = True,
) -> None:
    """Every tensor's bytes (each aligned as GGUF wants, and the file padded after the
    last), encoded by a pool of threads into buffers written here in order; ``out`` is
    left at the end of the file.

    ``advance`` (which raises Cancelled when the user cancels) runs on this thread
    after each piece; on any exception the queued pieces are dropped and the pool
    finishes only the pieces already being encoded before the error propagates.
    """
    pieces: Iterator[Piece] = (piece for tensor in plan for piece in tensor_pieces(tensor))
    pending: collections.deque[tuple[Piece, _Placed, Future[None]]] = collections.deque()
    out.flush()
    sink = _BlockSink(out, direct=direct, writeback=writeback)
    position = tensor_start = sink.position  # where the next piece goes
    try:
        with ThreadPoolExecutor(_ENCODE_THREADS, thread_name_prefix="gguf-encode") as pool:
            try:
                while True:
                    while len(pending) < _PIPELINE_DEPTH:
                        piece = next(pieces, None)
                        if piece is None:
                            break
                        if piece.first:
                            position += -position % _ALIGNMENT
                            tensor_start = position
                        placed = sink.place(position, piece.nbytes)
                        position += piece.nbytes
                        if piece.last and position - tensor_start != piece.tensor.nbytes:
                            raise AssertionError(
                                f"{piece.tensor.name}: pieces of {position - tensor_start} "
                                f"bytes, not {piece.tensor.nbytes}"
                            )
                        pending.append((piece, placed, pool.submit(piece.encode_into, placed.data)))
                    if not pending:
                        break
                    piece, placed, encoded = pending.popleft()
                    encoded.result()
                    sink.write(placed)
                    del placed, encoded
                    advance(piece.source_bytes)
            finally:
                for _, _, future in pending:
                    future.cancel()
        sink.finish()
    finally:
        sink.close()


class _Placed:
    """One piece's place in the file and in an aligned buffer: ``data`` (what the piece
    encodes into) is ``buffer[offset - base : end - base]``."""

    __slots__ = ("base", "buffer", "data", "end", "offset")

    def __init__(self, buffer: np.ndarray, base: int, offset: int, end: int) -> None:
        self.buffer, self.base, self.offset, self.end = buffer, base, offset, end
        self.data = buffer[offset - base : end - base]


class _BlockSink:
    """Writes placed pieces, in file order, in whole _BLOCK-aligned blocks at aligned
    offsets from aligned memory, as direct I/O requires.

    A piece's buffer starts at the block holding its first byte; the bytes of that block
    before the piece (the end of what came before it, and GGUF's alignment padding) are
    filled in when it is written, from the ``carry``: the written-so-far tail that did
    not fill a block. The last partial block is written through the page cache.
    """

    def __init__(self, out: BinaryIO, *, direct: bool, writeback: bool) -> None:
        self._out = out
        self._fd = out.fileno()
        self.position = out.tell()
        self._direct = _open_direct(out) if direct else None
        self._block = _BLOCK if self._direct is not None else 1
        self._flushed = self.position - self.position % self._block
        self._carry = _read_back(out, self._flushed, self.position)
        self._free: list[np.ndarray] = []
        # Whole blocks handed over but not yet written: views into the buffers in
        # ``_held``, contiguous in the file and ending at ``_flushed``.
        self._gathered: list[np.ndarray] = []
        self._gathered_bytes = 0
        self._held: list[np.ndarray] = []
        self._writeback = _Writeback(self._fd, self._flushed) if writeback else None

    def place(self, offset: int, nbytes: int) -> _Placed:
        base = offset - offset % self._block
        end = offset + nbytes
        size = end - base + self._block - 1
        size -= size % self._block
        return _Placed(self._buffer(max(size, self._block)), base, offset, end)

    def _buffer(self, size: int) -> np.ndarray:
        """An aligned buffer of at least ``size`` bytes: the smallest free one that is
        big enough, else a new one (dropping the smallest free one when there are as
        many free as the pipeline is deep, so memory stays bounded)."""
        sizes = [buffer.size for buffer in self._free]
        fitting = [index for index, free in enumerate(sizes) if free >= size]
        if fitting:
            return self._free.pop(min(fitting, key=sizes.__getitem__))
        if len(self._free) >= _PIPELINE_DEPTH:
            self._free.pop(sizes.index(min(sizes)))
        raw = np.empty(size + _BLOCK, np.uint8)
        skip = -raw.ctypes.data % _BLOCK
        return raw[skip : skip + size]

    def write(self, placed: _Placed) -> None:
        """Write ``placed`` (encoded, and the next in the file) up to its last whole
        block, and keep the rest as the carry."""
        buffer, base = placed.buffer, placed.base
        while self._flushed < base:  # the carry's block is complete: the rest is padding
            padding = self._buffer(self._block)
            block = padding[: self._block]
            block[: len(self._carry)] = self._carry
            block[len(self._carry) :] = 0
            self._flushed += self._block
            self._gather(block, padding)
            self._carry = np.empty(0, np.uint8)
        carried = len(self._carry)
        buffer[:carried] = self._carry
        buffer[carried : placed.offset - base] = 0
        whole = placed.end - placed.end % self._block
        self._carry = buffer[max(whole, base) - base : placed.end - base].copy()
        if whole > base:
            self._flushed = whole
            self._gather(buffer[: whole - base], buffer)
        else:
            self._free.append(buffer)

    def _gather(self, blocks: np.ndarray, buffer: np.ndarray) -> None:
        """Queue ``blocks`` (the file's whole blocks up to ``_flushed``, in ``buffer``,
        which is reused once they are written) and write the queue once it is large
        enough."""
        self._gathered.append(blocks)
        self._gathered_bytes += len(blocks)
        self._held.append(buffer)
        if self._gathered_bytes >= _GATHER_BYTES or len(self._gathered) >= _GATHER_PIECES:
            self._write_gathered()

    def _write_gathered(self) -> None:
        if not self._gathered:
            return
        self._put(self._gathered, self._flushed - self._gathered_bytes)
        self._gathered, self._gathered_bytes = [], 0
        self._free.extend(self._held)
        self._held = []
        if self._writeback is not None:
            self._writeback.advance(self._flushed)

    def finish(self) -> None:
        """Write the last partial block through ``out``, which is left at the end of
        the file, padded to GGUF's alignment."""
        self._write_gathered()
        self._out.seek(self._flushed)
        self._out.write(self._carry.data)
        _pad(self._out)

    def _put(self, views: list[np.ndarray], offset: int) -> None:
        """Write ``views`` one after the other from ``offset``: by direct I/O where it
        works, the rest (after a short or refused direct write) through the page cache."""
        if self._direct is not None:
            try:
                written = _pwritev(self._direct, views, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                written = 0  # this file system refuses direct I/O after all
                self._close_direct()
            views, offset = _after(views, written), offset + written
        while views:
            written = _pwritev(self._fd, views, offset)
            if written <= 0:  # pragma: no cover - the OS raises instead
                raise OSError(errno.EIO, "nothing was written")
            views, offset = _after(views, written), offset + written

    def _close_direct(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None

    def close(self) -> None:
        self._close_direct()
        self._free.clear()


def _open_direct(out: BinaryIO) -> int | None:
    """A second, direct-I/O descriptor for ``out``'s file, or ``None`` where the system
    or the file system has no direct I/O (or ``out`` has no path)."""
    flag = getattr(os, "O_DIRECT", 0)
    name = getattr(out, "name", None)
    if not flag or not isinstance(name, (str, bytes, os.PathLike)):
        return None
    try:
        fd = os.open(name, os.O_WRONLY | flag | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    same = os.fstat(fd), os.fstat(out.fileno())
    if (same[0].st_dev, same[0].st_ino) != (same[1].st_dev, same[1].st_ino):
        os.close(fd)
        return None
    return fd


def _read_back(out: BinaryIO, start: int, stop: int) -> np.ndarray:
    """Bytes ``start:stop`` already written to ``out`` (less than a block)."""
    if stop <= start:
        return np.empty(0, np.uint8)
    name = getattr(out, "name", None)
    assert isinstance(name, (str, bytes, os.PathLike))
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        data = os.pread(fd, stop - start, start)
    finally:
        os.close(fd)
    if len(data) != stop - start:
        raise OSError(errno.EIO, "the file being written was cut short")
    copied: np.ndarray = np.frombuffer(data, np.uint8).copy()
    return copied


def _pwritev(fd: int, views: list[np.ndarray], offset: int) -> int:
    """One write of ``views`` at ``offset`` (one system call where the system has
    pwritev); the bytes written, which may be fewer."""
    if hasattr(os, "pwritev"):
        return os.pwritev(fd, [view.data for view in views], offset)
    return os.pwrite(fd, views[0].data, offset)


def _after(views: list[np.ndarray], written: int) -> list[np.ndarray]:
    """What of ``views`` is left after its first ``written`` bytes."""
    rest = list(views)
    while rest and written >= len(rest[0]):
        written -= len(rest.pop(0))
    if rest and written:
        rest[0] = rest[0][written:]
    return rest


class _Writeback:
    """Starts the disk writing what has been written so far, every _WRITEBACK_BYTES."""

    def __init__(self, fd: int, start: int) -> None:
        self._fd = fd
        self._started = start

    def advance(self, position: int) -> None:
        if position - self._started >= _WRITEBACK_BYTES:
            fileio.start_writeback(self._fd, self._started, position - self._started)
            self._started = position


def _pad(out: Any) -> None:
    position = out.tell()
    padding = -position % _ALIGNMENT
    if padding:
        out.write(b"\0" * padding)
