"""Helpers for ``benchmarks/gpu_check.sh`` (issue 16: CUDA offload on a real GPU).

Each sub-command does one step and appends a Markdown section to the report named by
``$GPU_CHECK_REPORT`` (and its figures to ``$GPU_CHECK_RESULTS``, one JSON object), so
a run cut short still returns what it found. Nothing here needs torch except the VRAM
holder of ``ladder``, which uses the GPU machine's own PyTorch.

    vocab       (here, for scripts/prepare_gpu_bundle) the tokenizer and chat template
                of the llama2-spm fixture GGUF as a GGUF without tensors
    make-model  a random-weight Llama GGUF of any shape with that vocabulary (F16)
    quantize    llama.cpp's own quantizer (llama_model_quantize), e.g. to Q4_K_M
    install     what the llama_cpp build sees (GPU offload, devices)
    greedy      `bllossom info` / `bllossom generate --json` on the GPU and on the CPU,
                texts compared; then a token-level logit comparison CPU vs GPU
    cpu-fallback  `bllossom generate --json` with CUDA_VISIBLE_DEVICES=""
    ladder      most of the VRAM held by another process, so full offload fails: each
                step the engine tried, with llama.cpp's reason
    load-once   (child of ladder) one LocalEngine.load with the ladder traced
    weights     bytes of weights one decoded token reads (for the bandwidth bound)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "한국의 수도는 어디인가요? Answer in one sentence."
GIB = 1 << 30


# --------------------------------------------------------------------------- report


def report(text: str) -> None:
    """Append to the Markdown report (and echo, so the run's output shows it too)."""
    print(text, flush=True)
    path = os.environ.get("GPU_CHECK_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def record(key: str, value: Any) -> None:
    path = os.environ.get("GPU_CHECK_RESULTS")
    if not path:
        return
    data: dict[str, Any] = {}
    if os.path.exists(path):
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except ValueError:
            data = {}
    data[key] = value
    Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", "utf-8")


def _code(text: str, limit: int = 4000) -> str:
    text = text if len(text) <= limit else "…" + text[-limit:]
    return "```\n" + text.rstrip() + "\n```"


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 180) -> dict:
    """``python -m bllossom_core.cli ARGS``; its JSON stdout parsed when it has one."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bllossom_core.cli", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return {
            "rc": None,
            "error": f"timed out after {timeout:.0f} s",
            "stderr": (exc.stderr or b"")[-2000:] if isinstance(exc.stderr, bytes) else "",
            "seconds": time.perf_counter() - started,
        }
    result: dict[str, Any] = {
        "rc": done.returncode,
        "seconds": round(time.perf_counter() - started, 2),
        "stderr": done.stderr[-3000:],
    }
    try:
        result["json"] = json.loads(done.stdout)
    except ValueError:
        result["stdout"] = done.stdout[-3000:]
    return result


# --------------------------------------------------------------------------- models


def _copy_fields(reader: Any, writer: Any, skip: set[str]) -> None:
    from gguf import GGUFValueType

    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in skip:
            continue
        vtype = field.types[0]
        if vtype == GGUFValueType.ARRAY:
            writer.add_key_value(name, field.contents(), vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(name, field.contents(), vtype)


def cmd_vocab(args: argparse.Namespace) -> int:
    """The llama2-spm fixture's metadata (tokenizer, template, hyper-parameters) alone."""
    from gguf import GGUFReader, GGUFWriter

    source = Path(args.source) if args.source else _fixture_path()
    reader = GGUFReader(source)
    writer = GGUFWriter(args.out, arch="llama")
    _copy_fields(reader, writer, {"general.architecture"})
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"{args.out}: metadata of {source.name} ({os.path.getsize(args.out)} bytes)")
    return 0


def _fixture_path() -> Path:
    """The test suite's llama2-spm F16 fixture; the newest cached one if it cannot be
    built now (the converter being edited, say)."""
    try:
        from tests.fixtures.gguf_models import fixture_gguf

        return fixture_gguf("llama2-spm", "F16")
    except Exception as exc:  # any failure: fall back to the cache
        from tests.fixtures.checkpoints import cache_root

        found = sorted(
            (cache_root() / "gguf").glob("llama2-spm-float32-single-F16-*.gguf"),
            key=os.path.getmtime,
        )
        if not found:
            raise SystemExit(f"no llama2-spm fixture GGUF ({exc})") from exc
        return found[-1]


def cmd_make_model(args: argparse.Namespace) -> int:
    """A Llama GGUF with random F16 weights and the carried vocabulary.

    Small models get independent normal weights (std 0.02, norms 1 + 0.1·N like the
    fixture checkpoints). Big ones take windows of one random pool at random offsets:
    the bytes differ per tensor (no cache effects) and the file is written at disk speed.
    """
    import numpy as np
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    started = time.perf_counter()
    h, f, n_layers = args.hidden, args.ffn, args.layers
    heads, kv_heads = args.heads, args.kv_heads
    head_dim = h // heads
    reader = GGUFReader(args.vocab)
    vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    shapes: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (vocab, h))]
    for i in range(n_layers):
        shapes += [
            (f"blk.{i}.attn_norm.weight", (h,)),
            (f"blk.{i}.attn_q.weight", (h, h)),
            (f"blk.{i}.attn_k.weight", (kv_heads * head_dim, h)),
            (f"blk.{i}.attn_v.weight", (kv_heads * head_dim, h)),
            (f"blk.{i}.attn_output.weight", (h, h)),
            (f"blk.{i}.ffn_norm.weight", (h,)),
            (f"blk.{i}.ffn_gate.weight", (f, h)),
            (f"blk.{i}.ffn_up.weight", (f, h)),
            (f"blk.{i}.ffn_down.weight", (h, f)),
        ]
    shapes += [("output_norm.weight", (h,)), ("output.weight", (vocab, h))]
    params = sum(int(np.prod(s)) for _, s in shapes)

    writer = GGUFWriter(args.out, arch="llama")
    overrides = {
        "general.name": (args.name or Path(args.out).stem, GGUFValueType.STRING),
        "general.file_type": (1, GGUFValueType.UINT32),  # MOSTLY_F16
        "llama.block_count": (n_layers, GGUFValueType.UINT32),
        "llama.context_length": (args.ctx, GGUFValueType.UINT32),
        "llama.embedding_length": (h, GGUFValueType.UINT32),
        "llama.feed_forward_length": (f, GGUFValueType.UINT32),
        "llama.attention.head_count": (heads, GGUFValueType.UINT32),
        "llama.attention.head_count_kv": (kv_heads, GGUFValueType.UINT32),
        "llama.rope.dimension_count": (head_dim, GGUFValueType.UINT32),
        "llama.vocab_size": (vocab, GGUFValueType.UINT32),
    }
    _copy_fields(reader, writer, {"general.architecture", *overrides})
    for key, (value, vtype) in overrides.items():
        writer.add_key_value(key, value, vtype)

    rng = np.random.default_rng(args.seed)
    largest = max(int(np.prod(s)) for _, s in shapes)
    pooled = params > 200_000_000
    pool = None
    if pooled:
        pool = (rng.standard_normal(largest + (1 << 22), dtype=np.float32) * 0.02).astype(
            np.float16
        )
    for name, shape in shapes:
        count = int(np.prod(shape))
        if name.endswith("norm.weight"):
            tensor = (1.0 + 0.1 * rng.standard_normal(count, dtype=np.float32)).reshape(shape)
        elif pool is not None:
            start = int(rng.integers(0, len(pool) - count + 1))
            tensor = pool[start : start + count].reshape(shape)
        else:
            tensor = (rng.standard_normal(count, dtype=np.float32) * 0.02).astype(np.float16)
            tensor = tensor.reshape(shape)
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    size = os.path.getsize(args.out)
    print(
        f"{args.out}: {params / 1e6:.0f}M parameters, {size / GIB:.2f} GiB, "
        f"h{h} f{f} l{n_layers} heads {heads}/{kv_heads} vocab {vocab}, "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    import ctypes

    import llama_cpp

    started = time.perf_counter()
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{args.type}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = args.threads
    rc = llama_cpp.llama_model_quantize(
        str(args.src).encode(), str(args.dst).encode(), ctypes.byref(params)
    )
    if rc != 0:
        print(f"llama_model_quantize failed ({rc})", file=sys.stderr)
        return 1
    print(
        f"{args.dst}: {args.type}, {os.path.getsize(args.dst) / GIB:.2f} GiB, "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return 0


def weight_bytes_per_token(path: str | Path) -> int:
    """Bytes of weights one decoded token reads: every tensor but the embedding table
    (one row of it is read)."""
    from gguf import GGUFReader

    return sum(int(t.n_bytes) for t in GGUFReader(path).tensors if t.name != "token_embd.weight")


def cmd_weights(args: argparse.Namespace) -> int:
    print(weight_bytes_per_token(args.model))
    return 0


# --------------------------------------------------------------------------- checks


def cmd_install(args: argparse.Namespace) -> int:
    import llama_cpp

    info = {
        "llama_cpp": llama_cpp.__version__,
        "file": llama_cpp.__file__,
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace"),
    }
    from bllossom_core._device import probe_gpu

    probe = probe_gpu()
    info["probe"] = {"supports_offload": probe.supports_offload, "gpu_name": probe.gpu_name}
    record("install", info)
    report("\n## The build\n")
    report(f"- llama-cpp-python {info['llama_cpp']} from `{info['file']}`")
    report(
        f"- `llama_supports_gpu_offload()`: {info['gpu_offload']}; bllossom's probe: "
        f"{info['probe']}"
    )
    report(f"- system info: `{info['system_info'].strip()}`")
    return 0 if info["gpu_offload"] or args.allow_cpu else 1


def _first_divergence(a: str, b: str) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _logit_compare(model: str, steps: int) -> dict[str, Any]:
    """Greedy decoding teacher-forced by the CPU's choice, on both devices: where the
    two argmaxes first differ, how close the CPU's top two were there, and how far the
    logits drift (max |Δ| and relative L2 over all steps)."""
    import numpy as np
    from llama_cpp import Llama

    def load(layers: int) -> Any:
        return Llama(
            model_path=model, n_gpu_layers=layers, n_ctx=512, n_batch=512, verbose=False, seed=0
        )

    def last_logits(llm: Any) -> Any:
        # Llama.scores is only filled with logits_all=True; read the last row directly.
        row = llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float64)

    cpu, gpu = load(0), load(-1)
    ids = cpu.tokenize(PROMPT.encode(), add_bos=True)
    rows: list[dict[str, Any]] = []
    first = None
    try:
        cpu.eval(ids)
        gpu.eval(ids)
        for step in range(steps):
            lc, lg = last_logits(cpu), last_logits(gpu)
            order = np.argsort(lc)[::-1]
            top_c, second = int(order[0]), int(order[1])
            top_g = int(np.argmax(lg))
            row = {
                "step": step,
                "cpu_top": top_c,
                "gpu_top": top_g,
                "cpu_margin": float(lc[top_c] - lc[second]),
                "max_abs_diff": float(np.max(np.abs(lc - lg))),
                "rel_l2": float(np.linalg.norm(lc - lg) / max(np.linalg.norm(lc), 1e-30)),
            }
            rows.append(row)
            if first is None and top_c != top_g:
                first = row | {"gpu_margin_there": float(lg[top_g] - lg[top_c])}
            cpu.eval([top_c])
            gpu.eval([top_c])
    finally:
        cpu.close()
        gpu.close()
    return {
        "prompt_tokens": len(ids),
        "steps": len(rows),
        "argmax_mismatches": sum(r["cpu_top"] != r["gpu_top"] for r in rows),
        "first_mismatch": first,
        "max_abs_diff": max((r["max_abs_diff"] for r in rows), default=0.0),
        "max_rel_l2": max((r["rel_l2"] for r in rows), default=0.0),
        "min_cpu_margin": min((r["cpu_margin"] for r in rows), default=0.0),
    }


def cmd_greedy(args: argparse.Namespace) -> int:
    report("\n## Device report and greedy text, GPU vs CPU (`bllossom generate --json`)\n")
    ok = True
    results = []
    common = [
        "--prompt",
        PROMPT,
        "--json",
        "--temperature",
        "0",
        "--max-tokens",
        str(args.max_tokens),
    ]
    for model in args.model:
        name = Path(model).name
        info = run_cli(["info", model, "--json"])
        gpu = run_cli(["generate", model, *common])
        cpu = run_cli(["generate", model, *common, "--gpu-layers", "0"])
        entry: dict[str, Any] = {
            "model": name,
            "info_rc": info["rc"],
            "gpu_rc": gpu["rc"],
            "cpu_rc": cpu["rc"],
        }
        report(f"### {name}\n")
        for label, res in (
            ("info", info),
            ("generate (auto)", gpu),
            ("generate --gpu-layers 0", cpu),
        ):
            if res.get("rc") != 0 or "json" not in res:
                ok = False
                report(f"- **{label} failed** (rc {res.get('rc')}, {res.get('error', '')}):")
                report(_code(res.get("stderr", "") + res.get("stdout", "")))
        if "json" in gpu and "json" in cpu and "json" in info:
            gdev, cdev = gpu["json"]["device"], cpu["json"]["device"]
            layers = info["json"]["layers"]
            entry.update(
                gpu_device=gdev,
                cpu_device=cdev,
                info_layers=layers,
                gpu_text=gpu["json"]["text"],
                cpu_text=cpu["json"]["text"],
                gpu_stats=gpu["json"]["stats"],
                cpu_stats=cpu["json"]["stats"],
            )
            want = f"GPU: {gdev.get('gpu_name')}, {layers}/{layers} layers"
            full = gdev["backend"] == "cuda" and gdev["gpu_layers"] == layers
            agree = gdev["total_layers"] == layers == cdev["total_layers"]
            same = gpu["json"]["text"] == cpu["json"]["text"]
            entry.update(full_offload=full, layers_agree=agree, same_text=same)
            ok = ok and full and agree
            report(
                f"- device report (GPU run): `{gdev['summary']}`"
                f"{'' if full else '  **<- expected ' + want + '**'}"
            )
            report(f"- device report (--gpu-layers 0): `{cdev['summary']}`")
            report(
                f"- `bllossom info` layers: {layers}; device report total: "
                f"{gdev['total_layers']} -> {'agree' if agree else '**DISAGREE**'}"
            )
            gs, cs = gpu["json"]["stats"], cpu["json"]["stats"]
            report(
                f"- tokens/s GPU {gs.get('tokens_per_second') or 0:.1f} (prompt "
                f"{gs.get('prompt_tokens_per_second') or 0:.1f}), CPU "
                f"{cs.get('tokens_per_second') or 0:.1f}; generated "
                f"{gs.get('generated_tokens')} / {cs.get('generated_tokens')} tokens, "
                f"stop {gs.get('stop_reason')} / {cs.get('stop_reason')}"
            )
            if same:
                report(f"- greedy text: **identical** ({len(gpu['json']['text'])} characters)")
            else:
                at = _first_divergence(gpu["json"]["text"], cpu["json"]["text"]) or 0
                report(f"- greedy text: **differs** from character {at}:")
                report(
                    _code(
                        f"GPU: {gpu['json']['text'][max(0, at - 40) : at + 60]!r}\n"
                        f"CPU: {cpu['json']['text'][max(0, at - 40) : at + 60]!r}"
                    )
                )
        if not args.no_logits:
            try:
                logits = _logit_compare(model, args.max_tokens)
            except Exception as exc:  # reported, the run goes on
                logits = {"error": repr(exc)}
            entry["logits"] = logits
            if "error" in logits:
                report(f"- logit comparison failed: `{logits['error']}`")
            else:
                first = logits["first_mismatch"]
                report(
                    f"- logits, CPU vs GPU over {logits['steps']} greedy steps (teacher-"
                    f"forced by the CPU, plain llama-cpp-python, no repeat penalty): max "
                    f"|Δ| {logits['max_abs_diff']:.3g}, max relative L2 "
                    f"{logits['max_rel_l2']:.3g}, argmax mismatches "
                    f"{logits['argmax_mismatches']}; smallest CPU top-2 margin "
                    f"{logits['min_cpu_margin']:.3g}"
                )
                if first:
                    report(
                        f"  - first mismatch at step {first['step']}: CPU top {first['cpu_top']}"
                        f" (margin {first['cpu_margin']:.3g}) vs GPU top {first['gpu_top']} "
                        f"(GPU prefers it by {first['gpu_margin_there']:.3g}): a near tie "
                        "that rounding differences flip when the margin is within max |Δ|"
                    )
        results.append(entry)
        report("")
    record("greedy", results)
    return 0 if ok else 1


def cmd_cpu_fallback(args: argparse.Namespace) -> int:
    report('\n## CUDA present but unusable: `CUDA_VISIBLE_DEVICES=""`\n')
    env = {"CUDA_VISIBLE_DEVICES": ""}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, llama_cpp; from bllossom_core._device import probe_gpu; p = probe_gpu(); "
            "print(json.dumps({'offload': bool(llama_cpp.llama_supports_gpu_offload()), "
            "'probe_supports_offload': p.supports_offload, 'probe_gpu_name': p.gpu_name}))",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ) | env,
        timeout=120,
        check=False,
    )
    report(
        f'- probe under CUDA_VISIBLE_DEVICES="": `{probe.stdout.strip()}` (rc {probe.returncode})'
        + ("" if probe.returncode == 0 else "\n" + _code(probe.stderr))
    )
    entries = {}
    ok = True
    for label, extra in (("auto", []), ("--gpu-layers -1", ["--gpu-layers", "-1"])):
        res = run_cli(
            [
                "generate",
                args.model,
                "--prompt",
                PROMPT,
                "--json",
                "--temperature",
                "0",
                "--max-tokens",
                "16",
                *extra,
            ],
            env=env,
        )
        entries[label] = res
        if res.get("rc") != 0 or "json" not in res:
            ok = False
            report(
                f"- {label}: **failed** (rc {res.get('rc')}; a negative rc is a signal, "
                "i.e. a crash):"
            )
            report(_code(res.get("stderr", "") + res.get("stdout", "")))
            continue
        dev = res["json"]["device"]
        note = ""
        if "built without CUDA" in (dev.get("fallback_reason") or ""):
            note = (
                "  **<- misleading: this build has CUDA; the GPU is hidden by "
                "CUDA_VISIBLE_DEVICES**"
            )
        report(f"- {label}: rc 0, `{dev['summary']}` (cpu_cause `{dev.get('cpu_cause')}`){note}")
    record(
        "cpu_fallback",
        {
            "probe": probe.stdout.strip(),
            "runs": {
                k: (v.get("json") or {}).get("device")
                or {"rc": v.get("rc"), "stderr": v.get("stderr")}
                for k, v in entries.items()
            },
        },
    )
    return 0 if ok else 1


# --------------------------------------------------------------------------- ladder

HOLDER = r"""
import json, sys, torch
torch.cuda.init()
held = None
for line in sys.stdin:
    leave = int(line)
    held = None
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info()
    take = max(0, free - leave) // (2 << 20) * (2 << 20)
    error = None
    while take > 0:
        try:
            held = torch.empty(take, dtype=torch.uint8, device="cuda")
            break
        except torch.cuda.OutOfMemoryError as exc:  # the allocator rounds up: ask less
            error = str(exc).splitlines()[0]
            take -= 64 << 20
    after, _ = torch.cuda.mem_get_info()
    print(json.dumps({"free_before": free, "total": total, "held": max(take, 0),
                      "free_after": after, "error": error}), flush=True)
"""


def cmd_load_once(args: argparse.Namespace) -> int:
    """One engine load with every ladder step printed as it happens (JSON lines), then a
    short greedy reply; run as a child so that a crash in native code is only its own."""
    import bllossom_core.engine as engine_module
    from bllossom_core.errors import BllossomError
    from bllossom_core.types import ChatMessage, GenerationSettings

    def emit(**item: Any) -> None:
        print(json.dumps(item, ensure_ascii=False), flush=True)

    original = engine_module.load_with_fallback

    def traced_ladder(load: Any, ladder: list[int]) -> Any:
        emit(ladder=ladder)

        def traced(layers: int) -> Any:
            emit(trying=layers)
            started = time.perf_counter()
            try:
                llm = load(layers)
            except Exception as exc:
                emit(
                    failed=layers, reason=str(exc), seconds=round(time.perf_counter() - started, 2)
                )
                raise
            emit(loaded=layers, seconds=round(time.perf_counter() - started, 2))
            return llm

        return original(traced, ladder)

    engine_module.load_with_fallback = traced_ladder
    try:
        engine = engine_module.LocalEngine.load(args.model, context_size=args.ctx)
    except BllossomError as exc:
        emit(error=str(exc), hint=getattr(exc, "hint", None))
        return 2
    try:
        emit(device=engine.device.__dict__)
        stream = engine.stream_chat(
            [ChatMessage("user", "Hello")], GenerationSettings(temperature=0.0, max_tokens=8)
        )
        text = "".join(stream)
        emit(text=text, stats=stream.stats.to_dict())
    finally:
        engine.close()
    return 0


def _scenario(model: str, ctx: int, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    events: list[dict[str, Any]] = []
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__)), "load-once", "--model", model, "--ctx", str(ctx)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        rc, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        rc = None
        out = (
            exc.stdout.decode(errors="replace")
            if isinstance(exc.stdout, bytes)
            else (exc.stdout or "")
        )
        err = f"timed out after {timeout:.0f} s"
    for line in out.splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return {
        "rc": rc,
        "events": events,
        "stderr": err[-3000:],
        "seconds": round(time.perf_counter() - started, 1),
    }


def _diagnose(model: str, layers: int, ctx: int) -> str:
    """A crashed step again with llama.cpp's log on (verbose), for its last lines."""
    code = (
        "import sys; from llama_cpp import Llama; "
        f"Llama(model_path={model!r}, n_gpu_layers={layers}, n_ctx={ctx}, verbose=True)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        return "(diagnosis timed out)"
    return f"rc {done.returncode}\n" + "\n".join(done.stderr.splitlines()[-25:])


def cmd_ladder(args: argparse.Namespace) -> int:
    report("\n## The offload ladder for real: VRAM held by another process\n")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        report("- skipped: no CUDA device for PyTorch here (the holder needs one)")
        record("ladder", {"skipped": "no torch.cuda"})
        return 0
    weights = weight_bytes_per_token(args.model)  # the embedding table stays on the CPU
    # Free memory left to the engine per scenario: enough for about half the layers, then
    # less than one layer, then nearly nothing (what llama.cpp does then is the finding).
    leaves = [
        ("about half the weights fit", int(0.55 * weights) + int(1.25 * GIB)),
        ("less than one layer fits", int(0.9 * GIB)),
        ("nearly nothing free", int(0.3 * GIB)),
    ]
    report(
        f"- model `{Path(args.model).name}`: {weights / GIB:.2f} GiB of weights go to the "
        f"GPU at full offload; context {args.ctx}"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    results = []
    try:
        for label, leave in leaves:
            assert holder.stdin and holder.stdout
            holder.stdin.write(f"{leave}\n")
            holder.stdin.flush()
            line = holder.stdout.readline()
            if not line:
                report(f"- **the VRAM holder died** (rc {holder.poll()}); ladder stopped")
                break
            held = json.loads(line)
            outcome = _scenario(args.model, args.ctx, args.timeout)
            outcome.update(label=label, leave=leave, holder=held)
            report(
                f"\n### {label}: {held['free_after'] / GIB:.2f} GiB free of "
                f"{held['total'] / GIB:.1f} GiB (holder took {held['held'] / GIB:.1f} GiB)\n"
            )
            last_try = None
            for event in outcome["events"]:
                if "ladder" in event:
                    report(f"- ladder: {event['ladder']}")
                elif "trying" in event:
                    last_try = event["trying"]
                elif "failed" in event:
                    report(
                        f"- {event['failed']} GPU layers: **failed** in {event['seconds']} s: "
                        f"`{event['reason']}`"
                    )
                elif "loaded" in event:
                    report(f"- {event['loaded']} GPU layers: loaded in {event['seconds']} s")
                elif "device" in event:
                    report(f"- device report: `{event['device']['summary']}`")
                elif "error" in event:
                    report(f"- **no step loaded**: `{event['error']}` (hint: {event.get('hint')})")
                elif "text" in event:
                    stats = event["stats"]
                    report(
                        f"- reply: {stats.get('generated_tokens')} tokens at "
                        f"{stats.get('tokens_per_second') or 0:.1f} tokens/s"
                    )
            if outcome["rc"] not in (0, 2):
                report(
                    f"- **child ended with rc {outcome['rc']}** (negative: killed by that "
                    f"signal; a crash inside llama.cpp/ggml) after trying {last_try} layers:"
                )
                report(_code(outcome["stderr"]))
                if last_try is not None:
                    diag = _diagnose(args.model, last_try, args.ctx)
                    outcome["diagnosis"] = diag
                    report(f"- the same step again with llama.cpp's log on:\n{_code(diag)}")
            results.append(outcome)
            record("ladder", results)
    finally:
        holder.kill()
        holder.wait()
    return 0


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("vocab")
    p.add_argument("--out", required=True)
    p.add_argument("--source", help="a GGUF to take the metadata from (default: the fixture)")
    p.set_defaults(func=cmd_vocab)

    p = sub.add_parser("make-model")
    p.add_argument("--vocab", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--name")
    for flag, default in (
        ("--hidden", 256),
        ("--ffn", 512),
        ("--layers", 2),
        ("--heads", 4),
        ("--kv-heads", 2),
        ("--ctx", 4096),
        ("--seed", 1234),
    ):
        p.add_argument(flag, type=int, default=default)
    p.set_defaults(func=cmd_make_model)

    p = sub.add_parser("quantize")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--type", default="Q4_K_M")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 4)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("weights")
    p.add_argument("model")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("install")
    p.add_argument("--allow-cpu", action="store_true")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("greedy")
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--no-logits", action="store_true")
    p.set_defaults(func=cmd_greedy)

    p = sub.add_parser("cpu-fallback")
    p.add_argument("--model", required=True)
    p.set_defaults(func=cmd_cpu_fallback)

    p = sub.add_parser("ladder")
    p.add_argument("--model", required=True)
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--timeout", type=float, default=60)
    p.set_defaults(func=cmd_ladder)

    p = sub.add_parser("load-once")
    p.add_argument("--model", required=True)
    p.add_argument("--ctx", type=int, default=4096)
    p.set_defaults(func=cmd_load_once)

    args = parser.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
