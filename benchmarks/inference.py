"""Inference speed through bllossom_core versus plain ``llama_cpp.Llama``, same file, same run.

For each fixture GGUF (a ~125M-parameter Llama-2-shaped model at F16 and Q4_K_M) it
measures prompt tokens/s, decode tokens/s and time to first token, alternating the two
sides after a warm-up run of each and keeping the best of ``--repeats`` runs (the best,
not the median, because the machine may be shared and contention only ever slows a run
down); then the time to first token of
each of 10 chat turns with the KV cache kept between turns and with it thrown away.

    .venv/bin/python -m benchmarks.inference [--threads 2] [--repeats 5] [--small]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bllossom_core.engine import LocalEngine
from bllossom_core.templates import Prompt
from bllossom_core.types import ChatMessage, GenerationSettings
from tests.fixtures.gguf_models import fixture_gguf

MODEL_125M = {"hidden_size": 768, "intermediate_size": 2048, "num_layers": 12,
              "num_heads": 12, "num_kv_heads": 4}  # fmt: skip
PROMPT_TOKENS = 256
DECODE_TOKENS = 128
GREEDY = GenerationSettings(temperature=0.0, max_tokens=DECODE_TOKENS, repeat_penalty=1.1)


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: (min if key.endswith("_s") else max)(run[key] for run in runs) for key in runs[0]}


def _prompt(engine: LocalEngine, salt: int) -> Prompt:
    words = " ".join(f"단어{(i * 7 + salt) % 97} word{i}" for i in range(PROMPT_TOKENS))
    ids = engine.prompt_ids([ChatMessage("user", words)]).ids[:PROMPT_TOKENS]
    return Prompt(ids, engine.template_name, frozenset())


def measure_ours(engine: LocalEngine, prompt: Prompt) -> dict[str, float]:
    engine.reset()
    stream = engine.stream_prompt_ids(prompt, GREEDY)
    for _ in stream:
        pass
    stats = stream.stats
    return {
        "prompt_tps": stats.prompt_tokens_per_second or 0.0,
        "decode_tps": stats.tokens_per_second or 0.0,
        "ttft_s": stats.time_to_first_token_s or 0.0,
    }


def measure_plain(llm: Any, prompt: Prompt) -> dict[str, float]:
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt.ids)
    prompt_s = time.perf_counter() - started
    llm.reset()
    started = time.perf_counter()
    first = last = started
    tokens = llm.generate(prompt.ids, temp=0.0, repeat_penalty=1.1, top_k=40, top_p=0.9)
    for count, _ in enumerate(itertools.islice(tokens, DECODE_TOKENS)):
        last = time.perf_counter()
        if count == 0:
            first = last
    return {
        "prompt_tps": len(prompt.ids) / prompt_s,
        "decode_tps": (DECODE_TOKENS - 1) / (last - first),
        "ttft_s": first - started,
    }


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


def bench_file(path: Path, threads: int, repeats: int, out: Callable[[str], None]) -> None:
    from llama_cpp import Llama

    engine = LocalEngine.load(path, threads=threads, context_size=2048)
    plain = Llama(model_path=str(path), n_ctx=2048, n_threads=threads,
                  n_threads_batch=threads, n_batch=512, verbose=False)  # fmt: skip
    measure_ours(engine, _prompt(engine, -1))  # warm-up: page in the weights
    measure_plain(plain, _prompt(engine, -1))
    ours_runs, plain_runs = [], []
    for rep in range(repeats):
        prompt = _prompt(engine, rep)
        ours_runs.append(measure_ours(engine, prompt))
        plain_runs.append(measure_plain(plain, prompt))
    ours, base = _best(ours_runs), _best(plain_runs)
    out(f"\n{path.name}  ({engine.info.quantization}, {engine.info.parameter_count / 1e6:.0f}M "
        f"parameters, {engine.device.summary})")  # fmt: skip
    out(f"{'metric':<22}{'bllossom_core':>14}{'plain Llama':>14}{'ratio':>10}")
    out(_row("prompt tokens/s", ours["prompt_tps"], base["prompt_tps"]))
    out(_row("decode tokens/s", ours["decode_tps"], base["decode_tps"]))
    out(_row("first token (ms)", ours["ttft_s"] * 1e3, base["ttft_s"] * 1e3))
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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="use the tiny test model instead")
    args = parser.parse_args()
    shape = {} if args.small else MODEL_125M
    for quant in ("F16", "Q4_K_M"):
        path = fixture_gguf("llama2-spm", quant, **shape)
        bench_file(path, args.threads, args.repeats, print)
    print("\nTarget: prompt and decode throughput >= 0.97x plain llama-cpp-python.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
