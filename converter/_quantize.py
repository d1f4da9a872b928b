"""Quantization types, and llama.cpp's own quantizer run in a child process.

F32, F16, BF16 and Q8_0 are written directly. Every other type goes through
``llama_model_quantize`` from llama-cpp-python, so the bytes are exactly llama.cpp's.
It runs in a child process: the C call cannot be interrupted, but a process can be
stopped when the user cancels, and its output file's growth gives the progress.

The child never outlives the converter: the parent kills it on any exit it lives
through (cancel, Ctrl-C, SIGTERM, SIGHUP, an error), and the child asks Linux to kill it
when the parent dies without that chance (``kill -9``, a crash), or watches its parent
elsewhere. Otherwise it would run on for minutes writing gigabytes nobody will use.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bllossom_core.errors import (
    BllossomError,
    Cancelled,
    DiskFullError,
    ErrorCode,
    InputError,
    StorageError,
)
from converter._progress import Reporter

if TYPE_CHECKING:
    import gguf


@dataclass(frozen=True)
class QuantType:
    """An output type, named as llama.cpp names it. The gguf enums are looked up on use,
    so that the command's help (which lists these names) does not import gguf and numpy."""

    name: str
    bits_per_weight: float
    direct: bool = False
    """True when our own writer produces it; otherwise llama.cpp's quantizer does."""

    @property
    def file_type(self) -> gguf.LlamaFileType:
        import gguf

        return gguf.LlamaFileType[
            f"ALL_{self.name}" if self.name == "F32" else f"MOSTLY_{self.name}"
        ]

    @property
    def tensor_type(self) -> gguf.GGMLQuantizationType:
        """What our writer writes (only for ``direct`` types)."""
        import gguf

        assert self.direct, f"{self.name} is made by llama.cpp's quantizer"
        return gguf.GGMLQuantizationType[self.name]


_TYPES = (
    QuantType("F32", 32.0, direct=True),
    QuantType("F16", 16.0, direct=True),
    QuantType("BF16", 16.0, direct=True),
    QuantType("Q8_0", 8.5, direct=True),
    QuantType("Q6_K", 6.56),
    QuantType("Q5_K_M", 5.7),
    QuantType("Q5_K_S", 5.54),
    QuantType("Q5_1", 6.0),
    QuantType("Q5_0", 5.5),
    QuantType("Q4_K_M", 4.89),
    QuantType("Q4_K_S", 4.58),
    QuantType("Q4_1", 5.0),
    QuantType("Q4_0", 4.5),
    QuantType("IQ4_NL", 4.5),
    QuantType("IQ4_XS", 4.25),
    QuantType("Q3_K_L", 4.27),
    QuantType("Q3_K_M", 3.91),
    QuantType("Q3_K_S", 3.5),
    QuantType("IQ3_M", 3.7),
    QuantType("IQ3_S", 3.44),
    QuantType("Q2_K", 3.35),
)
QUANT_TYPES: dict[str, QuantType] = {t.name: t for t in _TYPES}
SUPPORTED_QUANTS: tuple[str, ...] = tuple(QUANT_TYPES)
DEFAULT_QUANT = "Q4_K_M"
IMATRIX_ONLY_QUANTS: tuple[str, ...] = (
    "IQ3_XS",
    "IQ3_XXS",
    "IQ2_M",
    "IQ2_S",
    "IQ2_XS",
    "IQ2_XXS",
    "IQ1_M",
    "IQ1_S",
    "Q2_K_S",
)
"""llama.cpp only makes these usable with an importance matrix computed from sample
text (``llama-imatrix``); without one it refuses or produces a broken model."""


def quant_type(name: str) -> QuantType:
    found = QUANT_TYPES.get(name.upper())
    if found is None and name.upper() in IMATRIX_ONLY_QUANTS:
        raise InputError(
            f"{name.upper()} is not offered: llama.cpp needs an importance matrix (imatrix) "
            "computed from sample text for it, and the converter does not compute one.",
            hint="Choose IQ3_S, IQ3_M or Q2_K for a small file (or Q4_K_M for quality).",
            code=ErrorCode.INVALID_INPUT,
        )
    if found is None:
        raise InputError(
            f"Unknown quantization type {name!r}.",
            hint=f"Choose one of: {', '.join(SUPPORTED_QUANTS)}.",
            code=ErrorCode.INVALID_INPUT,
        )
    return found


def intermediate_type(source_dtype: str) -> QuantType:
    """The lossless float type the quantizer reads: the checkpoint's own dtype."""
    return QUANT_TYPES[source_dtype]


_WRITE_FAILED = re.compile(r"iostream error|No space left|failed to write|File too large", re.I)
"""How llama.cpp's quantizer reports a failed write (its C++ stream only says
``basic_ios::clear: iostream error``)."""


def run_quantizer(
    source: Path, target: Path, quant: QuantType, expected_bytes: int, reporter: Reporter
) -> None:
    """Quantize the GGUF ``source`` into ``target`` with llama.cpp, in a child process."""
    step = f"2/2: llama.cpp, {quantizer_threads()} threads"  # 1/2 wrote ``source``
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-m",
        "converter._quantize",
        str(source),
        str(target),
        str(int(quant.file_type)),
        str(os.getpid()),
    ]
    with tempfile.TemporaryFile() as log:
        process: subprocess.Popen[bytes] | None = None
        try:
            with _signals_deferred():  # see there: a stop mid-Popen would orphan the child
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            while process.poll() is None:
                if reporter.cancelled:
                    raise Cancelled("Conversion cancelled; no output was written.")
                size = target.stat().st_size if target.exists() else 0
                reporter.emit(
                    "quantize", min(size, expected_bytes - 1), expected_bytes, message=step
                )
                time.sleep(0.1)
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
            raise _quantizer_error(process.returncode, text, target, quant, expected_bytes)
    reporter.emit("quantize", expected_bytes, expected_bytes, message=step, force=True)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP for the block, then deliver them.

    A handler that raises while ``Popen`` waits for the child's ``exec`` leaves no
    ``process`` to kill: the child runs on, and until it has armed its death signal
    (:func:`_die_with_parent`) nothing ends it. Python runs signal handlers in the main
    thread only, so elsewhere there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    numbers = [getattr(signal, n) for n in names if hasattr(signal, n)]
    held = [n for n in numbers if signal.getsignal(n) is not None]  # None: set outside Python
    arrived: list[int] = []
    previous = {n: signal.signal(n, lambda signum, _frame: arrived.append(signum)) for n in held}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in arrived:
            signal.raise_signal(number)


def quantizer_threads() -> int:
    """One thread per physical core, as the engine runs llama.cpp: hyper-threads share
    a core's vector units, so they only slow the quantizer's arithmetic down."""
    # TODO(lead): use the public name once bllossom_core exports default_threads.
    from bllossom_core.engine import default_threads  # type: ignore[attr-defined]

    return int(default_threads())


def _quantizer_error(
    returncode: int, log: str, target: Path, quant: QuantType, expected_bytes: int
) -> BllossomError:
    """The error for a failed quantizer: out of space, another write failure, or a crash."""
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    # llama.cpp logs every tensor before failing; the line that says why is the last one
    # mentioning a failure or an error.
    reasons = [line for line in lines if re.search(r"fail|error", line, re.I)]
    tail = reasons[-1] if reasons else " / ".join(lines[-3:])
    folder = target.parent
    if returncode > 0 and _WRITE_FAILED.search(log):
        written = target.stat().st_size if target.is_file() else 0
        still_needed = max(expected_bytes - written, 0)
        if shutil.disk_usage(folder).free <= still_needed:
            return DiskFullError(
                f"The disk holding {folder} ran out of space while llama.cpp was writing the "
                f"{quant.name} file (it said: {tail}); nothing was written.",
                hint=f"Free at least {expected_bytes / 2**30:.2f} GiB in {folder} (more if "
                "other programs are writing there), or choose another output folder with -o.",
                path=folder,
                code=ErrorCode.DISK_FULL,
            )
        return StorageError(
            f"llama.cpp could not write the {quant.name} file in {folder} (it said: {tail}); "
            "nothing was written.",
            hint="Check that the drive is still connected and writable, then try again.",
            path=folder,
            code=ErrorCode.STORAGE_FAILED,
        )
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        cause = f"it was killed by {name or f'signal {-returncode}'}"
        if -returncode == signal.SIGKILL:
            cause += " (usually the system running out of memory)"
        return StorageError(
            f"llama.cpp's quantizer stopped before finishing the {quant.name} file: {cause}; "
            "nothing was written.",
            hint="Close other programs and try again, or choose Q8_0 or F16, which need no "
            "quantizer.",
            path=target,
            code=ErrorCode.QUANTIZER_FAILED,
        )
    return StorageError(
        f"llama.cpp could not quantize to {quant.name}: {tail or 'no output'}.",
        hint="Try another --quant; if it keeps failing, please report it with the model name.",
        path=target,
        code=ErrorCode.QUANTIZER_FAILED,
    )


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Make this child end when ``parent`` does, however the parent ends."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    else:  # no death signal elsewhere: watch for being handed to another parent

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)


def _main(argv: list[str]) -> int:
    source, target, file_type = argv[0], argv[1], int(argv[2])
    if len(argv) > 3:
        _die_with_parent(int(argv[3]))
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type
    params.nthread = quantizer_threads()
    with contextlib.suppress(Exception):
        llama_cpp.llama_log_set(None, None)
    return int(llama_cpp.llama_model_quantize(source.encode(), target.encode(), params) != 0)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
