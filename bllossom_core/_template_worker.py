"""A warm child process that renders untrusted chat templates (internal).

A GGUF's chat template comes from whoever made the file. It is rendered in a separate
Python process (:func:`bllossom_core._jinja_sandbox.serve`) that holds at most
:data:`MEMORY_LIMIT` bytes of address space and gets :data:`RENDER_TIMEOUT_S` seconds
per render (plus time to move very long messages across); past either it is killed and
the next render starts a fresh one. The process stays up between renders, so a render
costs milliseconds, and it exits when its stdin closes (when this process ends, however
it ends).

Replies are JSON, never pickles: even a process whose sandbox had been escaped could not
run code here.
"""

from __future__ import annotations

import atexit
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bllossom_core import _jinja_sandbox

MEMORY_LIMIT = 256 * 1024 * 1024
RENDER_TIMEOUT_S = 2.0
SECONDS_PER_MILLION_CHARS = 2.0  # a 1 MB paste is copied, shifted and rendered too
START_TIMEOUT_S = 30.0  # interpreter start-up on a loaded machine; not the template's time


# The child imports the sandbox modules without running bllossom_core/__init__.py (which
# would load llama.cpp): a bare package object stands in for the package.
_BOOTSTRAP = (
    "import sys, types\n"
    "package = types.ModuleType('bllossom_core')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['bllossom_core'] = package\n"
    "from bllossom_core._jinja_sandbox import serve\n"
    "serve(int(sys.argv[2]))\n"
)


class WorkerFailure(Exception):
    """A render failed; ``kind`` is ``raised``, ``limit``, ``unsafe`` or ``invalid``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class TemplateWorker:
    """One render at a time in a bounded child process, restarted after a failure."""

    def __init__(
        self, memory_limit: int = MEMORY_LIMIT, timeout_s: float = RENDER_TIMEOUT_S
    ) -> None:
        self.memory_limit = memory_limit
        self.timeout_s = timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.starts = 0  # how many processes were started (tests check reuse)

    def render(
        self,
        source: str,
        messages: Sequence[Mapping[str, str]],
        bos_token: str,
        eos_token: str,
        alphabet: str,
    ) -> str:
        """The shifted render (see :func:`_jinja_sandbox.render_chat`), or WorkerFailure."""
        request = {
            "source": source,
            "messages": [dict(m) for m in messages],
            "bos_token": bos_token,
            "eos_token": eos_token,
            "alphabet": alphabet,
        }
        with self._lock:
            process = self._running()
            try:
                assert process.stdin is not None
                _jinja_sandbox.write_frame(process.stdin, request)
                chars = sum(len(m.get("content", "")) for m in messages)
                reply = self._read(process, time.monotonic() + self.time_limit(chars))
            except TimeoutError:
                self._stop()
                raise WorkerFailure(
                    "limit", f"it took longer than {self.time_limit(chars):g} s to render"
                ) from None
            except (OSError, EOFError, ValueError):
                self._stop()
                raise WorkerFailure(
                    "limit", "it used more memory or nesting than allowed and was stopped"
                ) from None
            if not reply.get("ok"):
                if reply.get("exited"):
                    self._stop()  # after a MemoryError the process ends; reap it
                raise WorkerFailure(str(reply.get("kind")), str(reply.get("message")))
            return str(reply["text"])

    def time_limit(self, message_chars: int) -> float:
        """The render time allowed: the timeout, plus moving the messages' text across."""
        return self.timeout_s + SECONDS_PER_MILLION_CHARS * message_chars / 1_000_000

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-c",
                _BOOTSTRAP,
                str(Path(__file__).parent),
                str(self.memory_limit),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self.starts += 1
        self._process = process
        try:
            ready = self._read(process, time.monotonic() + START_TIMEOUT_S)
        except (TimeoutError, OSError, EOFError, ValueError) as exc:
            self._stop()
            raise WorkerFailure("invalid", f"the template process did not start ({exc})") from exc
        if not ready.get("ready"):
            self._stop()
            raise WorkerFailure("invalid", "the template process did not start")
        return process

    def _read(self, process: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        header = _read_exact(fd, 4, deadline)
        size = int.from_bytes(header, "big")
        reply = _jinja_sandbox.decode_frame(_read_exact(fd, size, deadline))
        if not isinstance(reply, dict):
            raise ValueError("malformed reply")
        return reply

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


_shared: TemplateWorker | None = None
_shared_lock = threading.Lock()


def shared_worker() -> TemplateWorker:
    """The process-wide worker, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TemplateWorker()
            atexit.register(_shared.close)
        return _shared
