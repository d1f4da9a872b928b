"""Streaming through ``bllossom serve`` versus the engine in-process versus
``python -m llama_cpp.server``: same GGUF, same run, greedy 64- and 1,024-token replies.

For each reply length and each side it measures the time to the first streamed token
(from sending the request) and the decode speed (tokens after the first, per second,
between the first and the last streamed token). All three sides run at once (idle ones
cost nothing) and take turns, ``--repeats`` times, each after a warm-up reply; the best
run of each side is reported. Every measured reply asks a new question (same words, a new
number) so that each side evaluates its prompt instead of reusing a cached one. The HTTP
sides are read by one minimal client (http.client and SSE lines).

    .venv/bin/python -m benchmarks.server [--threads 1] [--small] [--model X.gguf]

Targets: streaming through the server at >= 0.95x the in-process engine's tokens/s,
first token within 20 ms of in-process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bllossom_core.engine import LocalEngine
from bllossom_core.remote_protocol import iter_sse_data
from bllossom_core.types import ChatMessage, GenerationSettings
from tests.fixtures.gguf_models import fixture_gguf

MODEL_125M = {"hidden_size": 768, "intermediate_size": 2048, "num_layers": 12,
              "num_heads": 12, "num_kv_heads": 4}  # fmt: skip
REPLY_LENGTHS = (64, 1024)
CONTEXT = 2048
REPEAT_PENALTY = 1.1
ROOT = Path(__file__).resolve().parents[1]


def question(salt: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a helpful assistant. 당신은 훌륭한 비서입니다."},
        {"role": "user", "content": f"질문 {salt}: 서울에 대해 자세히 알려주세요."},
    ]


@dataclass
class Result:
    ttft_s: float
    tokens: int
    decode_tps: float
    note: str = ""
    engine_ttft_s: float | None = None
    """bllossom serve only: the engine's own first-token time for this very request."""
    engine_tps: float | None = None


def measure_in_process(engine: LocalEngine, salt: int, max_tokens: int) -> Result:
    messages = [ChatMessage(m["role"], m["content"]) for m in question(salt)]  # type: ignore[arg-type]
    settings = GenerationSettings(temperature=0.0, max_tokens=max_tokens,
                                  repeat_penalty=REPEAT_PENALTY)  # fmt: skip
    started = time.perf_counter()
    first = last = 0.0
    with engine.stream_chat(messages, settings) as stream:
        for _ in stream:
            last = time.perf_counter()
            first = first or last
    tokens = stream.stats.generated_tokens
    return Result(first - started, tokens, (tokens - 1) / max(last - first, 1e-9))


def measure_http(port: int, salt: int, max_tokens: int, limit_s: float) -> Result:
    """One streamed chat reply; tokens from the usage chunk, else one per chunk."""
    body = json.dumps({
        "model": "bench", "messages": question(salt), "stream": True, "temperature": 0.0,
        "max_tokens": max_tokens, "repeat_penalty": REPEAT_PENALTY,
        "stream_options": {"include_usage": True},
    }).encode()  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=limit_s + 60)
    started = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", body,
                       {"Content-Type": "application/json"})  # fmt: skip
    response = connection.getresponse()
    assert response.status == 200, response.read()[:500]
    first = last = 0.0
    chunks, usage, note = 0, None, ""
    timings: dict[str, Any] = {}
    for data in iter_sse_data(response.readline):
        if data.strip() == "[DONE]":
            break
        event = json.loads(data)
        usage = event.get("usage") or usage
        timings = event.get("timings") or timings
        for choice in event.get("choices") or ():
            if (choice.get("delta") or {}).get("content"):
                last = time.perf_counter()
                first = first or last
                chunks += 1
        if last and last - started > limit_s:
            note = f"cut at {limit_s:.0f} s"
            break
    connection.close()
    tokens = chunks if note or not usage else int(usage["completion_tokens"])
    engine_ttft = timings.get("first_token_ms")
    return Result(first - started, tokens, (tokens - 1) / max(last - first, 1e-9), note,
                  engine_ttft / 1e3 if engine_ttft is not None else None,
                  timings.get("predicted_per_second"))  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(command: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/v1/models")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start:\n{log.read_text(errors='replace')[-2000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="1 is steadiest on a busy box")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating runs per side (x3 for 64 tokens)")  # fmt: skip
    parser.add_argument("--small", action="store_true", help="use the tiny test model instead")
    parser.add_argument("--model", type=Path, default=None, help="any GGUF instead of a fixture")
    parser.add_argument("--peer-limit", type=float, default=240.0,
                        help="seconds after which a reply is cut (llama_cpp.server was seen "
                        "slowing down as a streamed reply grows)")  # fmt: skip
    args = parser.parse_args()
    shape = {} if args.small else MODEL_125M
    model = args.model or fixture_gguf("llama2-spm", "Q4_K_M", **shape)
    threads = str(args.threads)
    logs = Path(tempfile.mkdtemp(prefix="bench-server-"))

    engine = LocalEngine.load(model, threads=args.threads, context_size=CONTEXT)
    ours_port, peer_port = free_port(), free_port()
    serve = [sys.executable, "-m", "bllossom_core.cli", "serve", str(model), "--port",
             str(ours_port), "--threads", threads, "--context-size", str(CONTEXT)]  # fmt: skip
    peer = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
            "--port", str(peer_port), "--n_ctx", str(CONTEXT), "--n_threads", threads,
            "--n_threads_batch", threads]  # fmt: skip
    servers = [start_server(serve, ours_port, logs / "serve.log"),
               start_server(peer, peer_port, logs / "llama_cpp_server.log")]  # fmt: skip
    sides: dict[str, Callable[[int, int], Result]] = {
        "in-process": lambda salt, n: measure_in_process(engine, salt, n),
        "bllossom serve": lambda salt, n: measure_http(ours_port, salt, n, args.peer_limit),
        "llama_cpp.server": lambda salt, n: measure_http(peer_port, salt, n, args.peer_limit),
    }
    results: dict[str, dict[int, list[Result]]] = {s: {n: [] for n in REPLY_LENGTHS} for s in sides}
    try:
        for measure in sides.values():
            measure(-1, 8)  # warm-up: page in the weights
        # Sides take turns, so that a burst of load from elsewhere hits all of them alike.
        for n in REPLY_LENGTHS:
            for rep in range(args.repeats * (3 if n < 100 else 1)):  # short ones are cheap
                for side, measure in sides.items():
                    results[side][n].append(measure(n * 100 + rep, n))
    finally:
        for process in servers:
            stop_server(process)
        summary = engine.device.summary
        engine.close()

    print(f"\n{model.name}  ({summary}; threads {threads}; greedy; best of {args.repeats * 3} "
          f"(64) and {args.repeats} (1024) alternating runs per side: contention only slows "
          "a run down)")  # fmt: skip
    print(f"{'reply':>6} {'metric':<18}{'in-process':>12}{'bllossom serve':>16}{'ratio':>8}"
          f"{'llama_cpp.server':>18}{'ratio':>8}")  # fmt: skip
    for n in REPLY_LENGTHS:
        base, ours, other = (_best(results[side][n]) for side in sides)
        print(_row(n, "tokens/s", base.decode_tps, ours.decode_tps, other.decode_tps))
        print(_row(n, "first token (ms)", base.ttft_s * 1e3, ours.ttft_s * 1e3,
                   other.ttft_s * 1e3))  # fmt: skip
        print(f"{'':>6} {'first token, vs in-process (ms)':<34}"
              f"{(ours.ttft_s - base.ttft_s) * 1e3:>+8.1f}{'':>8}"
              f"{(other.ttft_s - base.ttft_s) * 1e3:>+18.1f}")  # fmt: skip
        print(f"{'':>6} {'tokens streamed':<18}{base.tokens:>12}{ours.tokens:>16}{'':>8}"
              f"{other.tokens:>18} {other.note}")  # fmt: skip
        if ours.engine_tps and ours.engine_ttft_s is not None:
            print(f"{'':>6} same request, client vs the engine inside bllossom serve: "
                  f"{ours.decode_tps:.1f} vs {ours.engine_tps:.1f} tokens/s "
                  f"({ours.decode_tps / ours.engine_tps:.3f}x), first token "
                  f"{(ours.ttft_s - ours.engine_ttft_s) * 1e3:+.1f} ms")  # fmt: skip
    print("\nTargets: bllossom serve tokens/s >= 0.95x in-process; first token within 20 ms.")
    print(f"Server logs: {logs}")
    return 0


def _best(runs: list[Result]) -> Result:
    fastest = max(runs, key=lambda r: r.decode_tps)
    first = min(runs, key=lambda r: r.ttft_s)
    return Result(first.ttft_s, fastest.tokens, fastest.decode_tps, fastest.note,
                  first.engine_ttft_s, fastest.engine_tps)  # fmt: skip


def _row(n: int, name: str, base: float, ours: float, peer: float) -> str:
    def ratio(x: float) -> str:
        return f"{x / base:.3f}x" if base else "n/a"

    return (f"{n:>6} {name:<18}{base:>12.1f}{ours:>16.1f}{ratio(ours):>8}{peer:>18.1f}"
            f"{ratio(peer):>8}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
