"""What this machine can run: memory, GPUs, disk, and which model file fits where.

Probing (``probe_hardware``) reads total and available RAM, the NVIDIA GPUs with their
free memory (NVML through ``nvidia-ml-py`` when it can load the driver's library, else
``nvidia-smi``, else none), whether this llama.cpp build can offload to a GPU at all
(llama.cpp's own ``llama_supports_gpu_offload``), and the free space in the models
folder. Every probe is a plain function of its inputs, so tests pass a
:class:`HardwareInfo` of their own.

Memory a model needs at a context of ``n_ctx`` tokens (``estimate_memory``)::

    weights   = size of the GGUF file (llama.cpp maps the tensors as stored)
    kv_cache  = n_layers * n_kv_heads * head_dim * n_ctx * 2 (K and V) * 2 bytes (f16)
    compute   = max(n_vocab * n_ubatch * 4,                 logits of one micro-batch
                    n_ctx * n_ubatch * (n_heads + 1) * 4)   attention scores + mask
    overhead  = compute + RUNTIME_RESERVE   (output buffer, small activations, CUDA context)

(n_ubatch = 512, float32.) The KV term is exactly what llama.cpp allocates for an f16
cache (after rounding the context up to a multiple of 256); llama.cpp's compute buffer is
the peak of the graph, which is the larger of the logits and the attention matrices.
``tests/unit/core/test_hardware_llama.py`` checks both against the buffer sizes llama.cpp
itself prints when loading fixture models (e.g. a 32,000-token vocabulary at 512 tokens:
compute 64.00 MiB, formula 62.5 MiB + reserve; 4 heads at 8,192 tokens: 83.01 MiB,
formula 80 MiB + reserve).

Fit classes: ``gpu`` (everything in free GPU memory), ``partial_gpu`` (some layers on
the GPU, the rest in RAM), ``cpu`` (no usable GPU, or it is too small to help much, and
the model fits in available RAM), ``too_big``. No speed is promised: the app has no
measured figures to base one on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bllossom_core.catalog import Catalog, CatalogEntry, CatalogFile, quant_rank

if TYPE_CHECKING:
    from bllossom_core.gguf_inspect import GGUFInfo

GiB = 1024**3
RUNTIME_RESERVE = 300 * 1024**2
"""Output buffer, compute graph metadata, and the CUDA context when there is a GPU."""
N_UBATCH = 512
"""llama.cpp's default micro-batch, which the engine keeps."""
GPU_HEADROOM = 0.95
"""Share of the free GPU memory we plan to use: drivers and other apps need the rest."""
MIN_USEFUL_GPU_SHARE = 0.1
"""Below this share of the model on the GPU, offloading is not worth calling "partly on
the GPU": the run is effectively on the CPU."""

FitClass = Literal["gpu", "partial_gpu", "cpu", "too_big"]
FIT_ORDER: tuple[FitClass, ...] = ("gpu", "partial_gpu", "cpu", "too_big")


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class HardwareInfo:
    total_ram: int
    available_ram: int
    gpus: tuple[GpuInfo, ...] = ()
    gpu_source: str = "none"
    """Where the GPU list came from: "nvml", "nvidia-smi" or "none"."""
    gpu_offload: bool = False
    """Whether this llama.cpp build can put layers on a GPU."""
    disk_free: int | None = None
    disk_path: Path | None = None
    cpu_count: int = 1

    @property
    def best_gpu(self) -> GpuInfo | None:
        return max(self.gpus, key=lambda g: g.free_bytes, default=None)

    @property
    def usable_gpu(self) -> GpuInfo | None:
        """The GPU llama.cpp would use, when this build can use one."""
        return self.best_gpu if self.gpu_offload else None

    def describe(self) -> str:
        parts = [
            f"RAM {_gb(self.total_ram)} ({_gb(self.available_ram)} available)",
            f"{self.cpu_count} CPU threads",
        ]
        if self.gpus:
            for gpu in self.gpus:
                parts.append(f"GPU {gpu.name} {_gb(gpu.free_bytes)} free of {_gb(gpu.total_bytes)}")
            if not self.gpu_offload:
                parts.append("this llama.cpp build cannot use the GPU (built without CUDA)")
        else:
            parts.append("no NVIDIA GPU found")
        if self.disk_free is not None:
            parts.append(f"{_gb(self.disk_free)} free in {self.disk_path}")
        return "; ".join(parts)


def _gb(n: int | float) -> str:
    return f"{n / 1e9:.1f} GB"


# --------------------------------------------------------------------------- probes
def read_meminfo(text: str) -> tuple[int, int]:
    """(total, available) bytes from the text of Linux's /proc/meminfo."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key.strip()] = int(fields[0]) * 1024  # the kernel writes kB
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable", values.get("MemFree", 0))
    return total, available


def probe_ram() -> tuple[int, int]:
    try:
        return read_meminfo(Path("/proc/meminfo").read_text(encoding="ascii"))
    except OSError:
        pass
    try:  # other POSIX systems: the total is known, "available" is approximated by it
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total
    except (ValueError, OSError, AttributeError):
        return 0, 0


def query_nvml() -> tuple[GpuInfo, ...] | None:
    """GPUs through NVML (``nvidia-ml-py``); None when it or the driver is missing."""
    try:
        import pynvml  # type: ignore[import-untyped]  # nvidia-ml-py ships no type hints
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                GpuInfo(
                    index,
                    name.decode() if isinstance(name, bytes) else str(name),
                    int(memory.total),
                    int(memory.free),
                )
            )
        return tuple(gpus)
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


NVIDIA_SMI_QUERY = (
    "--query-gpu=index,name,memory.total,memory.free",
    "--format=csv,noheader,nounits",
)


def parse_nvidia_smi(output: str) -> tuple[GpuInfo, ...]:
    """GPUs from ``nvidia-smi`` CSV output (memory in MiB)."""
    gpus = []
    for line in output.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4 or not fields[0].isdigit():
            continue
        try:
            total, free = (int(float(v)) * 1024**2 for v in fields[2:])
        except ValueError:
            continue
        gpus.append(GpuInfo(int(fields[0]), fields[1], total, free))
    return tuple(gpus)


def query_nvidia_smi() -> tuple[GpuInfo, ...] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else None


def llama_gpu_offload() -> bool:
    """llama.cpp's own answer: can this build offload layers to a GPU?"""
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


def disk_free(path: Path) -> int:
    """Free bytes on the disk holding ``path`` (its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def probe_hardware(models_folder: Path | None = None) -> HardwareInfo:
    total, available = probe_ram()
    gpus, source = query_nvml(), "nvml"
    if gpus is None:
        gpus, source = query_nvidia_smi(), "nvidia-smi"
    if gpus is None:
        gpus, source = (), "none"
    free = disk_free(models_folder) if models_folder is not None else None
    return HardwareInfo(
        total_ram=total,
        available_ram=available,
        gpus=gpus,
        gpu_source=source,
        gpu_offload=llama_gpu_offload(),
        disk_free=free,
        disk_path=models_folder,
        cpu_count=os.cpu_count() or 1,
    )


# --------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class ModelShape:
    layers: int
    kv_heads: int
    head_dim: int
    n_heads: int
    vocab_size: int


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.overhead


def padded_context(n_ctx: int) -> int:
    """llama.cpp sizes its KV cache for the context rounded up to a multiple of 256."""
    return -(-n_ctx // 256) * 256


def kv_cache_bytes(shape: ModelShape, n_ctx: int, bytes_per_element: float = 2.0) -> int:
    """f16 by default; a q8_0 cache (llama.cpp's ``--cache-type-k/v q8_0``) is 34/32 bytes."""
    return int(shape.layers * shape.kv_heads * shape.head_dim * n_ctx * 2 * bytes_per_element)


def compute_bytes(shape: ModelShape, n_ctx: int) -> int:
    ubatch = min(N_UBATCH, n_ctx)
    return max(shape.vocab_size * ubatch * 4, n_ctx * ubatch * (shape.n_heads + 1) * 4)


def estimate_memory(
    weights_bytes: int, shape: ModelShape, n_ctx: int, kv_bytes_per_element: float = 2.0
) -> MemoryEstimate:
    n_ctx = padded_context(n_ctx)
    return MemoryEstimate(
        weights=weights_bytes,
        kv_cache=kv_cache_bytes(shape, n_ctx, kv_bytes_per_element),
        overhead=compute_bytes(shape, n_ctx) + RUNTIME_RESERVE,
    )


def gguf_shape(info: GGUFInfo) -> ModelShape | None:
    """The shape of a local GGUF (from its metadata), for :func:`estimate_memory`."""
    heads = int(info.arch_value("attention.head_count", 0) or 0)
    embd = int(info.arch_value("embedding_length", 0) or 0)
    if not (heads and embd and info.block_count and info.vocab_size):
        return None
    kv_heads = int(info.arch_value("attention.head_count_kv", heads) or heads)
    head_dim = int(info.arch_value("attention.key_length", 0) or embd // heads)
    return ModelShape(info.block_count, kv_heads, head_dim, heads, info.vocab_size)


def entry_shape(entry: CatalogEntry) -> ModelShape | None:
    if not (entry.layers and entry.heads and entry.kv_heads and entry.head_dim):
        return None
    if not entry.vocab_size:
        return None
    return ModelShape(entry.layers, entry.kv_heads, entry.head_dim, entry.heads, entry.vocab_size)


# --------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class Fit:
    fit: FitClass
    estimate: MemoryEstimate
    gpu_share: float
    """Part of the model that goes to the GPU (0 to 1)."""
    reason: str


def classify(estimate: MemoryEstimate, hardware: HardwareInfo) -> Fit:
    need = estimate.total
    gpu = hardware.usable_gpu
    gpu_room = int(gpu.free_bytes * GPU_HEADROOM) if gpu else 0
    if gpu is not None and need <= gpu_room:
        return Fit(
            "gpu", estimate, 1.0, f"needs {_gb(need)}; {gpu.name} has {_gb(gpu.free_bytes)} free"
        )
    share = gpu_room / need if need else 0.0
    if (
        gpu is not None
        and share >= MIN_USEFUL_GPU_SHARE
        and need <= gpu_room + hardware.available_ram
    ):
        return Fit(
            "partial_gpu",
            estimate,
            share,
            f"needs {_gb(need)}: {share:.0%} fits in {gpu.name}'s {_gb(gpu.free_bytes)} free, "
            "the rest goes to RAM",
        )
    if need <= hardware.available_ram:
        return Fit(
            "cpu",
            estimate,
            0.0,
            f"needs {_gb(need)} of {_gb(hardware.available_ram)} available RAM; "
            + _why_cpu(hardware),
        )
    room = hardware.available_ram + gpu_room
    return Fit(
        "too_big",
        estimate,
        0.0,
        f"needs {_gb(need)}; this machine has {_gb(room)} available"
        + (" (RAM and GPU together)" if gpu else " RAM"),
    )


def _why_cpu(hardware: HardwareInfo) -> str:
    if not hardware.gpus:
        return "no NVIDIA GPU was found"
    if not hardware.gpu_offload:
        return "this llama.cpp build cannot use the GPU"
    return "the GPU is too small to hold a useful part of it"


# --------------------------------------------------------------------------- options
CONVERT_QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M")
"""Types offered when a model is converted here (no official GGUF of that type)."""


def convert_bits_per_weight(quant: str) -> float | None:
    """Bits per weight of a type's main block format, from gguf's block table.

    A lower bound for K-quant mixes (their "_M" variants keep a few tensors at a
    higher type), which is why estimates built on it are marked as approximate.
    """
    import gguf

    base = quant.upper()
    for suffix in ("_M", "_S", "_L"):
        if base.endswith(suffix) and base[:-2].endswith("_K"):
            base = base[:-2]
    kind = getattr(gguf.GGMLQuantizationType, base, None)
    if kind is None:
        return None
    block, size = gguf.GGML_QUANT_SIZES[kind]
    return size * 8 / block


@dataclass(frozen=True)
class FileOption:
    entry: CatalogEntry
    quant: str
    file: CatalogFile | None
    """The official GGUF; None when the option is to download the checkpoint and convert."""
    size_bytes: int | None
    exact: bool

    @property
    def action(self) -> Literal["download", "convert"]:
        return "download" if self.file is not None else "convert"


def options_for(entry: CatalogEntry) -> list[FileOption]:
    if not entry.downloadable:
        return []
    options = [
        FileOption(entry, f.quant, f, f.size_estimate, f.size_bytes is not None)
        for f in entry.ggufs
    ]
    if entry.convertible and entry.params_b:
        offered = {f.quant for f in entry.ggufs}
        for quant in CONVERT_QUANTS:
            bits = convert_bits_per_weight(quant)
            if quant not in offered and bits is not None:
                size = int(entry.params_b * 1e9 * bits / 8)
                options.append(FileOption(entry, quant, None, size, False))
    return options


@dataclass(frozen=True)
class Assessment:
    option: FileOption
    fit: Fit
    disk_needed: int
    disk_ok: bool | None
    """None when the free space is unknown."""


def disk_needed(option: FileOption) -> int:
    """Bytes written: the file, or for a conversion the checkpoint plus the output."""
    size = option.size_bytes or 0
    if option.action == "convert":
        checkpoint = option.entry.checkpoint_bytes or int((option.entry.params_b or 0) * 2e9)
        return checkpoint + size
    return size


def assess(option: FileOption, hardware: HardwareInfo, n_ctx: int) -> Assessment | None:
    shape = entry_shape(option.entry)
    if shape is None or option.size_bytes is None:
        return None
    context = min(n_ctx, option.entry.context_length or n_ctx)
    fit = classify(estimate_memory(option.size_bytes, shape, context), hardware)
    needed = disk_needed(option)
    ok = None if hardware.disk_free is None else needed <= hardware.disk_free
    return Assessment(option, fit, needed, ok)


def _order(a: Assessment) -> tuple[int, int, int]:
    return (FIT_ORDER.index(a.fit.fit), a.option.action == "convert", quant_rank(a.option.quant))


def best_for_entry(entry: CatalogEntry, hardware: HardwareInfo, n_ctx: int) -> Assessment | None:
    """The best-quality file of ``entry`` in the best fit class this machine reaches."""
    found = [a for o in options_for(entry) if (a := assess(o, hardware, n_ctx)) is not None]
    return min(found, key=_order, default=None)


@dataclass(frozen=True)
class Recommendation:
    assessment: Assessment
    why: str


def recommend(
    catalog: Catalog, hardware: HardwareInfo, n_ctx: int, *, entries: Sequence[CatalogEntry] = ()
) -> Recommendation | None:
    """The model to offer first on this machine, and why.

    Official GGUF downloads come before conversions (one download, no 16 GB checkpoint);
    then the best fit class (all on the GPU, partly, CPU); then the largest model; then
    the best quantization. Split between GPU and RAM, or on the CPU, only the entries the
    catalog marks ``recommended`` (the 8B and 3B) are offered: bigger models there answer
    much more slowly, by an amount the app cannot measure beforehand.
    """
    candidates: list[Assessment] = []
    for entry in entries or catalog.entries:
        for option in options_for(entry):
            found = assess(option, hardware, n_ctx)
            if found is None or found.fit.fit == "too_big" or found.disk_ok is False:
                continue
            if found.fit.fit != "gpu" and not entry.recommended:
                continue
            candidates.append(found)
    if not candidates:
        return None

    def key(a: Assessment) -> tuple[int, int, float, int]:
        return (
            a.option.action == "convert",
            FIT_ORDER.index(a.fit.fit),
            -(a.option.entry.params_b or 0),
            quant_rank(a.option.quant),
        )

    best = min(candidates, key=key)
    where = {
        "gpu": "runs on your GPU",
        "partial_gpu": "runs partly on your GPU",
        "cpu": "runs on your CPU",
    }
    why = f"{where[best.fit.fit]}: {best.fit.reason}"
    if best.option.action == "convert":
        why += "; converted here from the official checkpoint"
    return Recommendation(best, why)
