"""Keeping llama.cpp's native log lines off the user's terminal (internal, shared).

llama.cpp and ggml write diagnostics straight to file descriptor 2 from C, past Python's
``sys.stderr``. :func:`quiet_native_output` points fd 2 at a temporary file while native
code runs and hands back what was written, so a failure can still quote the native
reason in a proper :class:`~bllossom_core.errors.BllossomError` message. fd 2 is shared by
the whole process: keep the quiet section short (one load or one conversion step).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

MAX_KEPT_BYTES = 64 * 1024


@dataclass
class NativeOutput:
    """What native code wrote to stderr inside :func:`quiet_native_output`."""

    text: str = ""

    @property
    def last_line(self) -> str:
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return lines[-1] if lines else ""


@contextlib.contextmanager
def quiet_native_output() -> Iterator[NativeOutput]:
    """Silence fd 2 for the block; the captured text is on the yielded object afterwards."""
    captured = NativeOutput()
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (a windowed app): nothing to silence
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            size = sink.seek(0, os.SEEK_END)
            sink.seek(max(0, size - MAX_KEPT_BYTES))
            captured.text = sink.read().decode("utf-8", errors="replace")
