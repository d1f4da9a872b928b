"""llama.cpp from Python without its log lines on the user's terminal.

llama.cpp and ggml write diagnostics straight to file descriptor 2 from C, past Python's
``sys.stderr``. :func:`quiet_native_output` points fd 2 at a temporary file while native
code runs and hands back what was written, so a failure can still quote the native
reason in a proper :class:`~bllossom_core.errors.BllossomError` message. fd 2 is shared by
the whole process: keep the quiet section short (one load or one conversion step).
:func:`load_llama` is the one way the project loads a ``llama_cpp.Llama`` (the engine, the
converter's verification, the tokenizer-only vocabularies).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def load_llama(path: str | Path, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(model_path=path, verbose=False, **kwargs)``, quietly.

    llama.cpp explains a failed load only in its log, which is silenced; so a failure is
    raised again as the same exception type (``ValueError`` or ``RuntimeError``) with
    llama.cpp's last log line appended, for the caller to turn into its own error.
    """
    from llama_cpp import Llama

    with quiet_native_output() as native:
        try:
            return Llama(model_path=str(path), verbose=False, **kwargs)
        except (ValueError, RuntimeError) as exc:
            failure = exc
    reason = native.last_line
    raise type(failure)(f"{failure}: {reason}" if reason else str(failure)) from failure
