"""Desktop responsiveness: GUI-thread stalls while streaming, and cold start time.

    .venv/bin/python benchmarks/desktop.py [--model FILE.gguf] [--tokens 1000]

1. Opens a 200-message conversation (Markdown, code blocks) in the real main window
   (offscreen), then streams a reply of ``--tokens`` tokens into it while a 5 ms
   QTimer probe records how late the event loop serves it: the worst and the
   99th-percentile stall must stay under 50 ms. The engine is the real llama.cpp
   ``LocalEngine`` on ``--model`` (default: the tiny fixture GGUF), and also a paced
   stand-in that yields tokens at a fixed rate, so a fast tiny model does not hide
   per-token costs.
2. Cold start: seconds from launching ``bllossom-desktop`` (no model) to a visible
   window, measured outside the process (interpreter start and imports included).

Prints a table with the ratio of each figure to its target (lower is better; < 1 passes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("BLLOSSOM_HOME", tempfile.mkdtemp(prefix="bllossom-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bllossom_core.store import ConversationStore
from bllossom_core.types import (
    CancelToken,
    ChatMessage,
    DeviceReport,
    GenerationSettings,
    GenerationStats,
)

PROBE_MS = 5
STALL_TARGET_MS = 50.0
START_TARGET_S = 1.0
REPO = Path(__file__).resolve().parents[1]

SAMPLE_REPLY = (
    "## 답변 {i}\n\n다음은 **예시**입니다. 한국어와 English가 섞인 문장입니다.\n\n"
    "```python\ndef f{i}(x):\n    return x * {i}\n```\n\n| 항목 | 값 |\n|---|---|\n| a | {i} |\n"
)


@dataclass
class PacedStream:
    """A stand-in engine stream: ``tokens`` pieces at ``rate`` per second."""

    tokens: int
    rate: float
    cancel: CancelToken | None
    stats: GenerationStats = field(default_factory=GenerationStats)

    def __iter__(self) -> Iterator[str]:
        words = ["안녕", "하세요", " ", "**굵게**", "\n\n", "```py\nx = 1\n```\n", "- 항목", " 😀"]
        for i in range(self.tokens):
            if self.cancel is not None and self.cancel.cancelled:
                return
            time.sleep(1 / self.rate)
            self.stats.generated_tokens += 1
            yield words[i % len(words)]

    def close(self) -> None:
        """Nothing to free: a stand-in holds no engine."""


class PacedEngine:
    def __init__(self, tokens: int, rate: float) -> None:
        self.tokens, self.rate = tokens, rate

    @property
    def device(self) -> DeviceReport:
        return DeviceReport(backend="cpu", summary="paced stand-in")

    @property
    def display_name(self) -> str:
        return "paced"

    def stream_chat(
        self,
        messages: list[ChatMessage],
        settings: GenerationSettings,
        cancel: CancelToken | None = None,
    ) -> PacedStream:
        return PacedStream(self.tokens, self.rate, cancel)

    def close(self) -> None:
        pass


def fill_conversation(messages: int) -> int:
    store = ConversationStore()
    conversation = store.create_conversation(
        "긴 대화", settings=GenerationSettings(max_tokens=1000)
    )
    for i in range(messages // 2):
        store.add_message(conversation.id, "user", f"질문 {i}: 이것은 무엇인가요?")
        store.add_message(conversation.id, "assistant", SAMPLE_REPLY.format(i=i))
    store.close()
    return conversation.id


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def measure_streaming(engine: object, label: str, conversation_id: int) -> dict[str, float]:
    from desktop.app import build_window, parse_args
    from desktop.qt import QApplication, QElapsedTimer, QTimer
    from desktop.settings import RegisteredModel

    app, window = build_window(parse_args(["--language", "ko"]))
    window.resize(1100, 800)
    window.show()
    window._on_model_loaded(RegisteredModel(name=label, path=label), engine)
    window.new_conversation()
    app.processEvents()
    started = time.perf_counter()
    window.open_conversation(conversation_id)
    app.processEvents()
    first_paint_s = time.perf_counter() - started
    while window.chat.view.loading:  # earlier messages fill in, a batch per turn
        app.processEvents()
    for _ in range(5):
        app.processEvents()
    open_s = time.perf_counter() - started

    stalls: list[float] = []
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(PROBE_MS)

    def tick() -> None:
        stalls.append(max(0.0, clock.restart() - PROBE_MS))

    probe.timeout.connect(tick)
    window.chat.input.setPlainText("천 토큰짜리 긴 답변을 써 주세요")
    clock.start()
    probe.start()
    streamed_at = time.perf_counter()
    window.chat.input.submit()
    while window.busy:
        app.processEvents()
        time.sleep(0.001)
    for _ in range(20):  # the tail: final save and re-render of the reply
        app.processEvents()
        time.sleep(0.005)
    probe.stop()
    seconds = time.perf_counter() - streamed_at
    reply = window.chat.view.widgets[-1].message.text
    renders = window.chat.view.renders
    stats = window.last_stats
    window.close()
    QApplication.processEvents()
    return {
        "first_paint_s": first_paint_s,
        "open_200_s": open_s,
        "worst_ms": max(stalls, default=0.0),
        "p99_ms": percentile(stalls, 0.99),
        "median_ms": statistics.median(stalls) if stalls else 0.0,
        "seconds": seconds,
        "renders": renders,
        "tokens": float(stats.generated_tokens) if stats else 0.0,
        "reply_chars": float(len(reply)),
    }


def measure_cold_start(runs: int) -> list[float]:
    times = []
    app = Path(sys.executable).with_name("bllossom-desktop")
    for _ in range(runs):
        home = tempfile.mkdtemp(prefix="bllossom-start-")
        env = {**os.environ, "BLLOSSOM_HOME": home, "QT_QPA_PLATFORM": "offscreen"}
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(app), "--report-startup"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("startup_s="):
                times.append(time.perf_counter() - started)
                break
        process.terminate()
        process.wait(10)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="GGUF to stream from (default: fixture model)")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=250.0, help="paced tokens per second")
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()

    conversation_id = fill_conversation(200)
    rows: list[tuple[str, dict[str, float]]] = []
    rows.append(
        (
            f"paced {args.rate:.0f} tok/s",
            measure_streaming(PacedEngine(args.tokens, args.rate), "paced", conversation_id),
        )
    )
    model = args.model
    if model is None:
        try:
            from tests.fixtures.gguf_models import fixture_gguf

            model = fixture_gguf("llama3-bpe-ko")
        except Exception as error:  # the fixture needs the test extras
            print(f"(no fixture model: {error}; real-engine row skipped)")
    if model is not None:
        from bllossom_core.engine import LocalEngine

        engine = LocalEngine.load(model)
        rows.append(
            (f"llama.cpp {model.name[:28]}", measure_streaming(engine, "local", conversation_id))
        )

    print(f"\nStreaming {args.tokens} tokens into a 200-message conversation (GUI-thread stalls)")
    header = (
        f"{'engine':<36}{'tokens':>7}{'renders':>8}{'1st paint (s)':>14}{'all 200 (s)':>12}"
        f"{'worst (ms)':>11}{'p99 (ms)':>9}{'worst/50ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows:
        print(
            f"{name[:35]:<36}{r['tokens']:>7.0f}{r['renders']:>8.0f}{r['first_paint_s']:>14.3f}"
            f"{r['open_200_s']:>12.3f}"
            f"{r['worst_ms']:>11.1f}{r['p99_ms']:>9.1f}{r['worst_ms'] / STALL_TARGET_MS:>11.2f}"
        )

    starts = measure_cold_start(args.starts)
    print("\nCold start to a visible window, no model (target 1 s)")
    print(f"{'runs':<8}{'best (s)':>10}{'median (s)':>12}{'median/1s':>11}")
    if starts:
        median = statistics.median(starts)
        print(
            f"{len(starts):<8}{min(starts):>10.3f}{median:>12.3f}{median / START_TARGET_S:>11.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
