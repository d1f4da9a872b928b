"""The memory estimate against the buffer sizes llama.cpp itself reports.

Each fixture GGUF is loaded with llama-cpp-python at several context sizes with verbose
logging captured at the file-descriptor level; llama.cpp prints one line per buffer
("CPU_Mapped model buffer size = 31.25 MiB", "CPU KV buffer size = 2.00 MiB",
"CPU compute buffer size = ...", "CPU output buffer size = ..."). The KV cache must
match the formula to the printed precision; the whole estimate must cover everything
llama.cpp allocated, without overshooting by more than the fixed runtime reserve.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path

import pytest

from bllossom_core.gguf_inspect import read_gguf_info
from bllossom_core.hardware import RUNTIME_RESERVE, estimate_memory, gguf_shape
from tests.fixtures.gguf_models import fixture_gguf

MiB = 2**20
BUFFER_LINE = re.compile(r"(\S+)\s+(model|KV|compute|output) buffer size\s*=\s*([\d.]+) MiB")


def llama_buffers(model: Path, n_ctx: int) -> dict[str, float]:
    """MiB per buffer kind, as llama.cpp prints them while loading ``model``."""
    import llama_cpp

    sizes: dict[str, float] = {}
    # llama-cpp-python relays llama.cpp's log to sys.stderr; native code may also write
    # to file descriptor 2 directly: capture both.
    python_log = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as native_log:
        saved = os.dup(2)
        os.dup2(native_log.fileno(), 2)
        try:
            with contextlib.redirect_stderr(python_log):
                llm = llama_cpp.Llama(str(model), n_ctx=n_ctx, n_gpu_layers=0, verbose=True)
                llm.close()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        native_log.seek(0)
        text = python_log.getvalue() + native_log.read().decode("utf-8", "replace")
    for _device, kind, mib in BUFFER_LINE.findall(text):
        sizes[kind] = sizes.get(kind, 0.0) + float(mib)
    assert {"model", "KV", "compute"} <= set(sizes), text[-2000:]
    return sizes


@pytest.mark.parametrize("family", ["llama2-spm", "llama3-bpe"])
@pytest.mark.parametrize("n_ctx", [512, 4000, 8192])
def test_estimate_covers_llama_cpp_buffers(family: str, n_ctx: int) -> None:
    model = fixture_gguf(family, "F16")  # type: ignore[arg-type]
    shape = gguf_shape(read_gguf_info(model))
    assert shape is not None
    reported = llama_buffers(model, n_ctx)
    estimate = estimate_memory(model.stat().st_size, shape, n_ctx)

    assert estimate.kv_cache / MiB == pytest.approx(reported["KV"], abs=0.01)
    assert reported["model"] * MiB <= estimate.weights
    allocated = sum(reported.values()) * MiB
    assert allocated <= estimate.total
    assert estimate.total - allocated <= RUNTIME_RESERVE + 0.25 * allocated, reported
