"""Benchmark: ``bllossom convert`` against llama.cpp's convert_hf_to_gguf.py (+ quantize)
and against the disk.

Builds a ~1B-parameter bf16 Llama checkpoint with random weights (written directly as
safetensors, with the real Llama-2 tokenizer of the test fixtures), then times, one
after the other and alternating between repeats: our converter, llama.cpp's pipeline,
optionally our converter at an older git revision (``--baseline REV``, for a before /
after table from one run), and the disk-write bound: a timed write of as many bytes as
our output, in the same folder, fsync'ed at the end (what ``dd conv=fsync`` measures).
Reports the best wall time and the peak RSS of the whole process tree of each run, and
each conversion's time as a ratio to the disk bound and to llama.cpp.

    .venv/bin/python benchmarks/convert.py [--work DIR] [--layers 16] [--baseline REV]
"""

from __future__ import annotations

import argparse
import atexit
import json
import mmap
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


LOG = Path(tempfile.gettempdir()) / "bllossom-bench-convert.log"
"""The commands' own output (progress bars, llama.cpp's log), kept out of the table."""


def measure(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds (user + system, all threads) of
    ``command`` and everything it started. CPU time shows the work done even when other
    programs share the machine and stretch the wall time."""
    started = time.perf_counter()
    log = [
        (os.POSIX_SPAWN_OPEN, fd, str(LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        for fd in (1, 2)
    ]
    pid = os.posix_spawn(command[0], command, dict(os.environ), file_actions=log)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)} (its output is in {LOG})")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def disk_write_bound(folder: Path, size: int, *, direct: bool = False) -> float:
    """Seconds to write ``size`` bytes to a new file in ``folder`` and fsync it: the
    least any converter can take to produce an output of that size there. Through the
    page cache (what ``dd conv=fsync`` measures), or with ``direct`` by direct I/O in
    aligned 8 MiB blocks (``dd oflag=direct conv=fsync``; ``inf`` where the file system
    refuses it), which the converter uses and which can be the faster of the two."""
    block_size = 8 * 2**20
    buffer = mmap.mmap(-1, block_size)  # page-aligned, as direct I/O requires
    buffer.write(os.urandom(block_size))  # incompressible, in case the file system compresses
    path = folder / ".disk-bound.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if direct:
        flags |= getattr(os, "O_DIRECT", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError:
        return float("inf")
    try:
        started = time.perf_counter()
        left = size - size % 4096 if direct else size
        with memoryview(buffer) as view:
            while left > 0:
                left -= os.write(fd, view[: min(left, block_size)])
        if direct and size % 4096:  # the last partial block, as the converter writes it
            os.close(fd)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(fd, bytes(size % 4096))
        os.fsync(fd)
        return time.perf_counter() - started
    except OSError:
        return float("inf")
    finally:
        os.close(fd)
        path.unlink()
        buffer.close()


def limit_writes(folder: Path, bytes_per_second: int) -> tuple[str, bool]:
    """Move this process (and so every command it starts from now on) into a new cgroup
    whose writes to ``folder``'s disk are throttled to ``bytes_per_second``: the same
    run on the disk of a typical laptop (a SATA SSD writes ~400-500 MB/s) when this one is
    faster. Returns what is throttled, and whether page-cache writes are. Needs root and
    a cgroup v2 ``io`` or v1 ``blkio`` controller. Under v1, only direct I/O is throttled
    (page-cache writeback is not charged to the writer), so the disk bound is then the
    direct-I/O one alone."""
    device = os.stat(folder).st_dev
    sysfs = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
    if (sysfs / "partition").exists():  # throttles apply to the whole disk
        sysfs = sysfs.resolve().parent
    disk = (sysfs / "dev").read_text().strip()
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists():
        group = Path(f"/sys/fs/cgroup/bllossom-bench-{os.getpid()}")
        group.mkdir()
        (group / "io.max").write_text(f"{disk} wbps={bytes_per_second}\n")
        kind, page_cache = "every write", True
    else:
        group = Path(f"/sys/fs/cgroup/blkio/bllossom-bench-{os.getpid()}")
        group.mkdir()
        (group / "blkio.throttle.write_bps_device").write_text(f"{disk} {bytes_per_second}\n")
        kind, page_cache = "direct I/O only (cgroup v1)", False
    (group / "cgroup.procs").write_text(str(os.getpid()))

    def remove() -> None:  # back into the parent group, and the empty group gone
        (group.parent / "cgroup.procs").write_text(str(os.getpid()))
        group.rmdir()

    atexit.register(remove)
    return f"writes to disk {disk} limited to {bytes_per_second / 1e6:.0f} MB/s: {kind}", page_cache


def encode_bound(source: Path, target: str) -> float:
    """Seconds our encoding kernels take for the whole checkpoint as ``target`` on data
    already in memory, run by the converter's own thread pool: the CPU's share of a
    conversion, without reading or writing (checkpoint read in batches, untimed)."""
    from concurrent.futures import ThreadPoolExecutor

    from converter import _tensors, _writer
    from converter._checkpoint import open_checkpoint
    from converter._quantize import quant_type

    checkpoint = open_checkpoint(source)
    qtype = quant_type(target).tensor_type
    plan = _tensors.plan_tensors(checkpoint, qtype)
    pieces = [piece for tensor in plan for piece in _tensors.tensor_pieces(tensor)]
    spent = 0.0
    batch_bytes = 256 * 2**20
    outputs = np.zeros(0, np.uint8)  # reused, and touched before timing: no page faults
    with ThreadPoolExecutor(_writer._ENCODE_THREADS) as pool:
        while pieces:
            batch, size, produced = [], 0, 0
            while pieces and size < batch_bytes:
                piece = pieces.pop(0)
                ref = piece.tensor.source
                if ref is None:
                    continue
                rows = (0, ref.row_count) if len(ref.shape) <= 1 else (piece.start, piece.stop)
                raw = np.ascontiguousarray(ref.read_rows(*rows))
                batch.append((raw, ref.dtype, piece.tensor.qtype, produced, piece.nbytes))
                size += raw.nbytes
                produced += piece.nbytes
            if outputs.size < produced:
                outputs = np.empty(produced, np.uint8)
                outputs.fill(1)

            def run(job: tuple[np.ndarray, str, Any, int, int], out: np.ndarray = outputs) -> None:
                raw, dtype, qtype, offset, nbytes = job
                _tensors.encode_into(raw, dtype, qtype, out[offset : offset + nbytes])

            started = time.perf_counter()
            list(pool.map(run, batch))
            spent += time.perf_counter() - started
    return spent


def converter_command(root: Path) -> list[str]:
    """``bllossom convert`` from the source tree ``root`` (this one or a baseline)."""
    launch = (
        f"import runpy, sys; sys.path.insert(0, {str(root)!r}); "
        "runpy.run_module('bllossom_core.cli', run_name='__main__')"
    )
    return [sys.executable, "-c", launch, "convert"]


def extract_revision(revision: str, files: list[str], into: Path) -> Path:
    """This tree's converter and core with ``files`` as they were at git ``revision``:
    the code before a change, against everything else as it is now."""
    folder = into / f"baseline-{revision}"
    shutil.rmtree(folder, ignore_errors=True)
    for package in ("converter", "bllossom_core"):
        shutil.copytree(
            ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in files:
        old = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:{name}"], check=True, capture_output=True
        ).stdout
        (folder / name).write_bytes(old)
    return folder


def table_header(names: list[str]) -> str:
    header = f"{'target':7} {'output':>8} {'disk s':>7} {'dd s':>6} {'dio s':>6} {'cpu s':>6}"
    for name in names:
        header += f" {name + ' s':>12} {'/disk':>6} {'paired':>6}"
        if name != "llama.cpp" and "llama.cpp" in names:
            header += f" {'/llama':>6}"
    for name in names:
        header += f" {name + ' RSS':>13}"
    for name in names:
        header += f" {name + ' CPU s':>15}"
    return header


def table_row(target: str, best: dict[str, tuple[float, int]], names: list[str]) -> str:
    dd, dio = best["dd"][0], best["dio"][0]
    disk = min(dd, dio)
    cpu = best.get("cpu", (float("nan"), 0))[0]
    line = f"{target:7} {best['size'][0] / 1e6:6.0f}MB {disk:7.2f} {dd:6.2f} {dio:6.2f} {cpu:6.2f}"
    for name in names:
        seconds = best[name][0]
        line += f" {seconds:12.2f} {seconds / disk:5.2f}x {best[name + ' paired'][0]:5.2f}x"
        if name != "llama.cpp" and "llama.cpp" in names:
            line += f" {seconds / best['llama.cpp'][0]:5.2f}x"
    for name in names:
        line += f" {best[name][1] / 2**20:11.0f}MB"
    for name in names:
        line += f" {best[name + ' CPU'][0]:15.1f}"
    return line


NOTES = """\
disk s = the faster of dd s (a write of the output's size through the page cache, then
  fsync: dd conv=fsync) and dio s (the same by direct I/O in 8 MiB blocks: dd
  oflag=direct conv=fsync), in the output's folder; /disk = a pipeline's best time over
  it; paired = the median, over the runs, of a pipeline's time over the disk bound
  measured in the same run (a shared disk's speed drifts between runs: this compares
  each run with the disk as it was then).
cpu s = our encoding kernels alone on the checkpoint already in memory, with the
  converter's thread pool (no reading or writing): the CPU's bound, for the direct types.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="runs per pipeline (best time)")
    parser.add_argument(
        "--baseline", metavar="REV", help="also time the converter with --baseline-files at REV"
    )
    parser.add_argument(
        "--baseline-files",
        default="converter/_tensors.py,converter/_writer.py",
        help="files taken from --baseline REV (the rest is this tree)",
    )
    parser.add_argument(
        "--targets", default="F16,BF16,Q8_0,Q4_K_M", help="comma-separated output types"
    )
    parser.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp's script")
    parser.add_argument(
        "--write-limit",
        type=float,
        metavar="MB/S",
        help="throttle this run's disk writes (root; cgroup), to measure on a slower disk",
    )
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--encode-bound", nargs=2, metavar=("SOURCE", "TYPE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.encode_bound:
        print(encode_bound(Path(args.encode_bound[0]), args.encode_bound[1]))
        return 0
    if args.build:
        params = build_checkpoint(args.build, args.hidden, args.intermediate, args.layers)
        print(f"built a {params / 1e9:.2f}B-parameter bf16 checkpoint in {args.build}")
        return 0

    work = args.work or Path(tempfile.mkdtemp(prefix="bllossom-bench-"))
    source = work / "ckpt"
    if not (source / "model.safetensors").is_file():
        # Built in a child process: a child's peak RSS starts from its parent's at spawn,
        # so this process must stay small for the measurements to mean anything.
        build = [sys.executable, __file__, "--build", str(source)]
        build += ["--hidden", str(args.hidden), "--intermediate", str(args.intermediate)]
        measure([*build, "--layers", str(args.layers)])
    weights = (source / "model.safetensors").stat().st_size
    throttled, page_cache_throttled = "", True
    if args.write_limit:
        throttled, page_cache_throttled = limit_writes(work, int(args.write_limit * 1e6))
        if not page_cache_throttled:
            # Page-cache writes escape a v1 throttle: only what writes by direct I/O
            # (our direct types, the direct-I/O bound) would be measured on the slow disk.
            args.no_llama_cpp = True
            direct = {"F32", "F16", "BF16", "Q8_0"}
            args.targets = ",".join(t for t in args.targets.split(",") if t in direct)
    py = sys.executable
    oracle = ""
    if not args.no_llama_cpp:
        from tests.fixtures.llama_cpp_reference import oracle_root

        oracle = str(oracle_root() / "run_oracle.py")
    quantize = (
        "import sys, llama_cpp; p = llama_cpp.llama_model_quantize_default_params(); "
        "p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M; "
        "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p))"
    )
    flags = [str(source), "--quiet", "--force", "--no-verify-tokenizer"]
    converters = {"ours": converter_command(ROOT)}
    if args.baseline:
        before = extract_revision(args.baseline, args.baseline_files.split(","), work)
        converters["before"] = converter_command(before)

    def pipeline(
        commands: list[list[str]], output: Path | None = None
    ) -> tuple[float, int, float, int]:
        total, peak, cpu = 0.0, 0, 0.0
        for command in commands:
            seconds, rss, used = measure(command)
            total, peak, cpu = total + seconds, max(peak, rss), cpu + used
        size = output.stat().st_size if output is not None else 0
        for f in work.glob("*.gguf"):
            f.unlink()
        return total, peak, cpu, size

    def reference(target: str) -> list[list[str]]:
        if not oracle:
            return []
        out = str(work / f"ref-{target}.gguf")
        if target in ("F16", "BF16", "Q8_0"):
            return [[py, oracle, str(source), "--outtype", target.lower(), "--outfile", out]]
        auto = str(work / "ref-auto.gguf")
        return [
            [py, oracle, str(source), "--outtype", "auto", "--outfile", auto],
            [py, "-c", quantize, auto, out],
        ]

    results: dict[str, dict[str, tuple[float, int]]] = {}
    names = [*converters, *(["llama.cpp"] if oracle else [])]
    print(table_header(names), flush=True)
    for target in args.targets.split(","):
        best: dict[str, tuple[float, int]] = {}

        def keep(
            name: str, seconds: float, rss: int, best: dict[str, tuple[float, int]] = best
        ) -> None:
            old_time, old_rss = best.get(name, (float("inf"), 0))
            best[name] = (min(old_time, seconds), max(old_rss, rss))

        paired: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.repeat):  # alternate, so every pipeline sees the same machine load
            size = 0
            this_run: dict[str, float] = {}
            for name, command in converters.items():
                out = work / f"{name}-{target}.gguf"
                seconds, rss, cpu, produced = pipeline(
                    [[*command, *flags, "--quant", target, "-o", str(out)]], out
                )
                keep(name, seconds, rss)
                keep(name + " CPU", cpu, 0)
                this_run[name] = seconds
                size = size or produced
                if name == "ours":
                    keep("size", float(produced), 0)
            if oracle:
                seconds, rss, cpu, _ = pipeline(reference(target))
                keep("llama.cpp", seconds, rss)
                keep("llama.cpp CPU", cpu, 0)
                this_run["llama.cpp"] = seconds
            dd = disk_write_bound(work, size) if page_cache_throttled else float("inf")
            dio = disk_write_bound(work, size, direct=True)
            keep("dd", dd, 0)
            keep("dio", dio, 0)
            for name, seconds in this_run.items():
                paired[name].append(seconds / min(dd, dio))
            if target in ("F32", "F16", "BF16", "Q8_0"):
                bound = [py, __file__, "--encode-bound", str(source), target]
                answer = subprocess.run(bound, check=True, capture_output=True, text=True)
                keep("cpu", float(answer.stdout.strip().splitlines()[-1]), 0)
        for name, ratios in paired.items():
            best[name + " paired"] = (statistics.median(ratios), 0)
        results[target] = best
        print(table_row(target, best, names), flush=True)

    print()
    print(
        f"checkpoint: {weights / 1e6:.0f} MB of bf16 weights; {args.repeat} runs each, best "
        "time, peak RSS and least CPU time (user + system) of the process tree"
    )
    if throttled:
        print(throttled)
    print(NOTES, end="")
    print(table_header(names))
    for target, best in results.items():
        print(table_row(target, best, names))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
