"""Benchmark: ``bllossom convert`` against llama.cpp's convert_hf_to_gguf.py (+ quantize).

Builds a ~1B-parameter bf16 Llama checkpoint with random weights (written directly as
safetensors, with the real Llama-2 tokenizer of the test fixtures), then times both
pipelines on it, one after the other, and reports wall time and peak RSS of the whole
process tree of each run.

    .venv/bin/python benchmarks/convert.py [--work DIR] [--layers 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_checkpoint(folder: Path, hidden: int, inter: int, layers: int) -> int:
    from tests.fixtures.checkpoints import CheckpointSpec, checkpoint

    small = checkpoint(CheckpointSpec(family="llama2-spm"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(small / name, folder / name)
    config = json.loads((small / "config.json").read_text())
    heads = hidden // 128
    config.update(
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        torch_dtype="bfloat16",
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    vocab = config["vocab_size"]
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (vocab, hidden),
        "model.norm.weight": (hidden,),
        "lm_head.weight": (vocab, hidden),
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[f"{p}self_attn.{n}.weight"] = (hidden, hidden)
        shapes[f"{p}mlp.gate_proj.weight"] = (inter, hidden)
        shapes[f"{p}mlp.up_proj.weight"] = (inter, hidden)
        shapes[f"{p}mlp.down_proj.weight"] = (hidden, inter)
        shapes[f"{p}input_layernorm.weight"] = (hidden,)
        shapes[f"{p}post_attention_layernorm.weight"] = (hidden,)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * 2
        header[name] = {
            "dtype": "BF16",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(0)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for shape in shapes.values():
            values = rng.standard_normal(shape, dtype=np.float32) * 0.02
            if len(shape) == 1:
                values += 1.0
            f.write((values.view(np.uint32) >> 16).astype(np.uint16).tobytes())
    return sum(int(np.prod(s)) for s in shapes.values())


def measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of ``command`` and everything it started."""
    started = time.perf_counter()
    pid = os.posix_spawn(command[0], command, dict(os.environ))
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="runs per pipeline (best time)")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        params = build_checkpoint(args.build, args.hidden, args.intermediate, args.layers)
        print(f"built a {params / 1e9:.2f}B-parameter bf16 checkpoint in {args.build}")
        return 0

    from tests.fixtures.llama_cpp_reference import oracle_root

    work = args.work or Path(tempfile.mkdtemp(prefix="bllossom-bench-"))
    source = work / "ckpt"
    if not (source / "model.safetensors").is_file():
        # Built in a child process: a child's peak RSS starts from its parent's at spawn,
        # so this process must stay small for the measurements to mean anything.
        build = [sys.executable, __file__, "--build", str(source)]
        build += ["--hidden", str(args.hidden), "--intermediate", str(args.intermediate)]
        measure([*build, "--layers", str(args.layers)])
    py = sys.executable
    oracle = str(oracle_root() / "run_oracle.py")
    quantize = (
        "import sys, llama_cpp; p = llama_cpp.llama_model_quantize_default_params(); "
        "p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M; "
        "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p))"
    )
    ours = [py, "-m", "bllossom_core.cli", "convert", str(source), "--quiet", "--force"]
    rows = []

    def pipeline(commands: list[list[str]]) -> tuple[float, int]:
        total, peak = 0.0, 0
        for command in commands:
            seconds, rss = measure(command)
            total, peak = total + seconds, max(peak, rss)
        for f in work.glob("*.gguf"):
            f.unlink()
        return total, peak

    def run(label: str, mine: list[list[str]], theirs: list[list[str]]) -> None:
        our_time = ref_time = float("inf")
        our_rss = ref_rss = 0
        for _ in range(args.repeat):  # alternate, so both see the same machine load
            seconds, rss = pipeline(mine)
            our_time, our_rss = min(our_time, seconds), max(our_rss, rss)
            seconds, rss = pipeline(theirs)
            ref_time, ref_rss = min(ref_time, seconds), max(ref_rss, rss)
        rows.append((label, our_time, ref_time, our_rss, ref_rss))

    f16_ref = str(work / "ref-f16.gguf")
    run(
        "F16",
        [[*ours, "--quant", "F16", "--no-verify-tokenizer", "-o", str(work / "f16.gguf")]],
        [[py, oracle, str(source), "--outtype", "f16", "--outfile", f16_ref]],
    )
    auto_ref = str(work / "ref-bf16.gguf")
    run(
        "Q4_K_M",
        [[*ours, "--quant", "Q4_K_M", "--no-verify-tokenizer", "-o", str(work / "q4.gguf")]],
        [
            [py, oracle, str(source), "--outtype", "auto", "--outfile", auto_ref],
            [py, "-c", quantize, auto_ref, str(work / "ref-q4.gguf")],
        ],
    )
    print()
    print(
        f"{'target':8} {'ours s':>8} {'llama.cpp s':>12} {'ratio':>6}   "
        f"{'ours RSS':>9} {'llama.cpp RSS':>14} {'ratio':>6}"
    )
    for label, mt, rt, mr, rr in rows:
        print(
            f"{label:8} {mt:8.1f} {rt:12.1f} {mt / rt:6.2f}x  "
            f"{mr / 2**20:7.0f}MB {rr / 2**20:12.0f}MB {mr / rr:6.2f}x"
        )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
