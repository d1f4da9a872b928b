"""Inference speed through bllossom_core versus plain ``llama_cpp.Llama``, same file, same run.

For each fixture GGUF (a ~125M-parameter Llama-2-shaped model at F16 and Q4_K_M) it
measures prompt tokens/s, decode tokens/s and time to first token, alternating the two
sides after a warm-up run of each, over ``--repeats`` runs (see :func:`_summarize` for
how runs on a shared, noisy machine are combined); then the time to first token of
each of 10 chat turns with the KV cache kept between turns and with it thrown away.
Last, the engine's *default* thread choice against plain llama-cpp-python at llama.cpp's
own default thread count (one per physical core, read here the way llama.cpp reads it),
both for prompt processing and decode.

    .venv/bin/python -m benchmarks.inference [--threads 1] [--repeats 5] [--small] [--quant Q4_K_M]

``--model PATH`` (repeatable) measures those GGUFs instead of the fixtures (on a GPU
machine: ``benchmarks/gpu_check.sh``). Plain llama-cpp-python always gets the GPU
layers the engine ended up with, so both sides run the same placement. ``--bandwidth
BYTES_PER_S`` adds the decode bound (bandwidth / bytes of weights one token reads: all
tensors but the embedding table) and the fraction of it each side reaches.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bllossom_core.engine import LocalEngine
from bllossom_core.templates import Prompt
from bllossom_core.types import ChatMessage, GenerationSettings

MODEL_125M = {"hidden_size": 768, "intermediate_size": 2048, "num_layers": 12,
              "num_heads": 12, "num_kv_heads": 4}  # fmt: skip
QUANTS = ("F16", "Q4_K_M")
PROMPT_TOKENS = 256
DECODE_TOKENS = 128
GREEDY = GenerationSettings(temperature=0.0, max_tokens=DECODE_TOKENS, repeat_penalty=1.1)
CONTEXT = 2048


def _configure(prompt_tokens: int, decode_tokens: int, context: int) -> None:
    global PROMPT_TOKENS, DECODE_TOKENS, GREEDY, CONTEXT
    PROMPT_TOKENS, DECODE_TOKENS, CONTEXT = prompt_tokens, decode_tokens, context
    GREEDY = GenerationSettings(temperature=0.0, max_tokens=decode_tokens, repeat_penalty=1.1)


def _summarize(runs: list[Run]) -> dict[str, float]:
    """Best prompt speed and first-token time over the runs (contention only slows a run
    down); decode speed from the median per-token time of all runs pooled (robust to the
    odd preempted token)."""
    per_token = statistics.median(t for run in runs for t in run.token_times)
    return {
        "prompt_tps": max(run.prompt_tps for run in runs),
        "decode_tps": 1.0 / per_token,
        "ttft_s": min(run.ttft_s for run in runs),
    }


@dataclass
class Run:
    prompt_tps: float
    ttft_s: float
    token_times: list[float]
    """Seconds per generated token, measured between consecutive tokens."""


def _prompt(engine: LocalEngine, salt: int) -> Prompt:
    words = " ".join(f"단어{(i * 7 + salt) % 97} word{i}" for i in range(PROMPT_TOKENS))
    ids = engine.prompt_ids([ChatMessage("user", words)]).ids[:PROMPT_TOKENS]
    return Prompt(ids, engine.template_name, frozenset())


def measure_ours(engine: LocalEngine, prompt: Prompt) -> Run:
    engine.reset()
    stream = engine.stream_prompt_ids(prompt, GREEDY)
    marks = []
    for _ in stream:  # a piece may hold back a partial character: count tokens, not pieces
        marks.append((time.perf_counter(), len(stream.token_ids)))
    times = [(t1 - t0) / (n1 - n0) for (t0, n0), (t1, n1) in itertools.pairwise(marks) if n1 > n0]
    stats = stream.stats
    return Run(stats.prompt_tokens_per_second or 0.0, stats.time_to_first_token_s or 0.0, times)


def measure_plain(llm: Any, prompt: Prompt) -> Run:
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt.ids)
    prompt_s = time.perf_counter() - started
    llm.reset()
    started = time.perf_counter()
    marks = []
    tokens = llm.generate(prompt.ids, temp=0.0, repeat_penalty=1.1, top_k=40, top_p=0.9)
    for _ in itertools.islice(tokens, DECODE_TOKENS):
        marks.append(time.perf_counter())
    times = [t1 - t0 for t0, t1 in itertools.pairwise(marks)]
    return Run(len(prompt.ids) / prompt_s, marks[0] - started, times)


def ten_turn_ttft(engine: LocalEngine, keep_cache: bool) -> list[float]:
    messages = [ChatMessage("system", "짧게 답하세요.")]
    settings = GenerationSettings(temperature=0.0, max_tokens=32)
    ttfts = []
    for turn in range(10):
        messages.append(ChatMessage("user", f"질문 {turn}: 한국의 도시 {turn}곳을 알려주세요."))
        if not keep_cache:
            engine.reset()
        stream = engine.stream_chat(messages, settings)
        reply = "".join(stream)
        ttfts.append(stream.stats.time_to_first_token_s or 0.0)
        messages.append(ChatMessage("assistant", reply))
    return ttfts


def _row(name: str, ours: float, plain: float, fmt: str = "{:.1f}") -> str:
    ratio = ours / plain if plain else float("nan")
    return f"{name:<22}{fmt.format(ours):>14}{fmt.format(plain):>14}{ratio:>9.3f}x"


def llama_cpp_default_threads() -> int:
    """llama.cpp's ``cpu_get_num_physical_cores()`` on Linux: distinct thread-sibling sets
    in sysfs; else its guess from the logical count. Kept apart from the engine's own
    count so the comparison checks it."""
    siblings = set()
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings"):
        with open(path, encoding="ascii") as handle:
            siblings.add(handle.read().strip())
    if siblings:
        return len(siblings)
    logical = os.cpu_count() or 4
    return logical if logical <= 4 else logical // 2


def _plain_llama(path: Path, threads: int, gpu_layers: int = 0) -> Any:
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=CONTEXT, n_threads=threads,
                 n_threads_batch=threads, n_batch=512, n_gpu_layers=gpu_layers,
                 verbose=False)  # fmt: skip


def weight_bytes_per_token(path: Path) -> int:
    """Bytes of weights one decoded token reads: every tensor but the embedding table,
    of which it reads one row."""
    from gguf import GGUFReader

    return sum(int(t.n_bytes) for t in GGUFReader(path).tensors if t.name != "token_embd.weight")


def _compare(
    engine: LocalEngine, plain: Any, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Both sides on the same prompts, alternating, after a warm-up run of each."""
    measure_ours(engine, _prompt(engine, -1))  # warm-up: page in the weights
    measure_plain(plain, _prompt(engine, -1))
    ours_runs, plain_runs = [], []
    for rep in range(repeats):
        prompt = _prompt(engine, rep)
        ours_runs.append(measure_ours(engine, prompt))
        plain_runs.append(measure_plain(plain, prompt))
    return _summarize(ours_runs), _summarize(plain_runs)


def bench_default_threads(
    path: Path, repeats: int, out: Callable[[str], None], gpu_layers: int | None = None
) -> None:
    # no --threads: the default choice
    engine = LocalEngine.load(path, context_size=CONTEXT, gpu_layers=gpu_layers)
    reference = llama_cpp_default_threads()
    plain = _plain_llama(path, reference, engine.device.gpu_layers)
    ours, base = _compare(engine, plain, repeats)
    out(f"{'default threads':<22}{engine.device.threads or 0:>14}{reference:>14}"
        f"{'(llama.cpp default)':>21}")  # fmt: skip
    out(_row("  prompt tokens/s", ours["prompt_tps"], base["prompt_tps"]))
    out(_row("  decode tokens/s", ours["decode_tps"], base["decode_tps"]))
    plain.close()
    engine.close()


def bench_file(
    path: Path,
    threads: int,
    repeats: int,
    out: Callable[[str], None],
    gpu_layers: int | None = None,
    bandwidth: float | None = None,
    turns: bool = True,
) -> None:
    engine = LocalEngine.load(path, threads=threads, context_size=CONTEXT, gpu_layers=gpu_layers)
    plain = _plain_llama(path, threads, engine.device.gpu_layers)
    ours, base = _compare(engine, plain, repeats)
    out(f"\n{path.name}  ({engine.info.quantization}, {engine.info.parameter_count / 1e6:.0f}M "
        f"parameters, {engine.device.summary}; plain Llama: n_gpu_layers="
        f"{engine.device.gpu_layers}, {threads} threads; prompt {PROMPT_TOKENS}, decode "
        f"{DECODE_TOKENS} tokens)")  # fmt: skip
    out(f"{'metric':<22}{'bllossom_core':>14}{'plain Llama':>14}{'ratio':>10}")
    out(_row("prompt tokens/s", ours["prompt_tps"], base["prompt_tps"]))
    out(_row("decode tokens/s", ours["decode_tps"], base["decode_tps"]))
    out(_row("first token (ms)", ours["ttft_s"] * 1e3, base["ttft_s"] * 1e3))
    if bandwidth:
        weights = weight_bytes_per_token(path)
        bound = bandwidth / weights
        out(f"{'decode bound':<22}{bound:>14.1f}{'tokens/s':>14}   ({bandwidth / 1e12:.2f} TB/s"
            f" / {weights / 1e9:.3f} GB of weights per token)")  # fmt: skip
        out(_row("  fraction of bound", ours["decode_tps"] / bound, base["decode_tps"] / bound,
                 "{:.3f}"))  # fmt: skip
    if turns:
        kept = ten_turn_ttft(engine, keep_cache=True)
        fresh = ten_turn_ttft(engine, keep_cache=False)
        out(f"{'10-turn first token':<22}{'cache kept':>14}{'no reuse':>14}{'ratio':>10}")
        out(_row("turn 1 (ms)", kept[0] * 1e3, fresh[0] * 1e3))
        out(_row("turn 10 (ms)", kept[-1] * 1e3, fresh[-1] * 1e3))
        out(_row("turn 10 / turn 1", kept[-1] / kept[0], fresh[-1] / fresh[0], "{:.2f}"))
    plain.close()
    engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="1 is steadiest on a busy box")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="use the tiny test model instead")
    parser.add_argument("--quant", action="append", choices=QUANTS,
                        help="only this file type (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--default-threads-only", action="store_true",
                        help="only the default-thread-choice comparison")  # fmt: skip
    parser.add_argument("--model", type=Path, action="append",
                        help="measure this GGUF instead of the fixtures (repeatable)")  # fmt: skip
    parser.add_argument("--gpu-layers", type=int, default=None,
                        help="the engine's --gpu-layers (default: automatic); plain "
                        "llama-cpp-python gets the layers the engine ended up with")  # fmt: skip
    parser.add_argument("--context-size", type=int, default=CONTEXT)
    parser.add_argument("--prompt-tokens", type=int, default=PROMPT_TOKENS)
    parser.add_argument("--decode-tokens", type=int, default=DECODE_TOKENS)
    parser.add_argument("--bandwidth", type=float, default=None,
                        help="memory bandwidth in bytes/s (H200: 4.8e12): adds the decode "
                        "bound and the fraction of it reached")  # fmt: skip
    parser.add_argument("--no-turns", action="store_true",
                        help="skip the 10-turn first-token comparison")  # fmt: skip
    parser.add_argument("--no-default-threads", action="store_true",
                        help="skip the default-thread-choice comparison")  # fmt: skip
    args = parser.parse_args()
    _configure(args.prompt_tokens, args.decode_tokens, args.context_size)
    if args.model:
        paths = list(args.model)
    else:
        from tests.fixtures.gguf_models import fixture_gguf

        shape = {} if args.small else MODEL_125M
        paths = [fixture_gguf("llama2-spm", quant, **shape) for quant in args.quant or QUANTS]
    for path in paths:
        if not args.default_threads_only:
            bench_file(path, args.threads, args.repeats, print, args.gpu_layers, args.bandwidth,
                       not args.no_turns)  # fmt: skip
        else:
            print(f"\n{path.name}")
        if not args.no_default_threads:
            bench_default_threads(path, args.repeats, print, args.gpu_layers)
    print("\nTarget: prompt and decode throughput >= 0.97x plain llama-cpp-python, also with "
          "the default thread choice against llama.cpp's default thread count.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
