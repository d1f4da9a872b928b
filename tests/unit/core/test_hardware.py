"""Hardware probes (from fixed inputs), the memory formula, fit classes, recommendations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bllossom_core import hardware
from bllossom_core.catalog import find_entry, load_catalog
from bllossom_core.hardware import (
    GpuInfo,
    HardwareInfo,
    MemoryEstimate,
    ModelShape,
    classify,
    estimate_memory,
    kv_cache_bytes,
    padded_context,
)

GB = 10**9
MEMINFO = """MemTotal:       32768000 kB
MemFree:         1000000 kB
MemAvailable:   20000000 kB
Buffers:          100000 kB
"""


def test_meminfo_and_nvidia_smi_parsing() -> None:
    assert hardware.read_meminfo(MEMINFO) == (32768000 * 1024, 20000000 * 1024)
    assert hardware.read_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n") == (1024000, 10240)
    gpus = hardware.parse_nvidia_smi("0, NVIDIA GeForce RTX 4070, 12282, 11000\ngarbage\n")
    assert gpus == (GpuInfo(0, "NVIDIA GeForce RTX 4070", 12282 * 2**20, 11000 * 2**20),)


def test_probe_on_this_machine(tmp_path: Path) -> None:
    found = hardware.probe_hardware(tmp_path)
    assert found.total_ram > 0 and 0 < found.available_ram <= found.total_ram
    assert found.disk_free is not None and found.disk_free > 0
    assert found.gpu_source in ("nvml", "nvidia-smi", "none")
    assert (found.gpu_source == "none") == (found.gpus == ())


def test_kv_cache_formula_llama3_8b() -> None:
    shape = ModelShape(layers=32, kv_heads=8, head_dim=128, n_heads=32, vocab_size=128256)
    # 32 layers x 8 KV heads x 128 x 8192 tokens x (K and V) x 2 bytes = 1 GiB exactly
    assert kv_cache_bytes(shape, 8192) == 2**30
    assert padded_context(4000) == 4096 and padded_context(4096) == 4096
    estimate = estimate_memory(4_920_000_000, shape, 4000)
    assert estimate.kv_cache == 2**29  # the context is rounded up to 4096 first
    assert estimate.weights == 4_920_000_000
    assert estimate.total == estimate.weights + estimate.kv_cache + estimate.overhead
    q8_cache = estimate_memory(4_920_000_000, shape, 4096, kv_bytes_per_element=34 / 32)
    assert q8_cache.kv_cache == 2**29 * 17 // 32


def _machine(ram_gb: float, gpu_gb: float | None = None, offload: bool = True) -> HardwareInfo:
    gpus = () if gpu_gb is None else (GpuInfo(0, "Test GPU", int(gpu_gb * GB), int(gpu_gb * GB)),)
    return HardwareInfo(
        total_ram=int(ram_gb * GB) * 2,
        available_ram=int(ram_gb * GB),
        gpus=gpus,
        gpu_source="nvml" if gpus else "none",
        gpu_offload=offload,
        disk_free=500 * GB,
        disk_path=Path("/models"),
    )


NEED_6GB = MemoryEstimate(weights=5 * GB, kv_cache=GB // 2, overhead=GB // 2)


@pytest.mark.parametrize(
    ("machine", "fit", "words"),
    [
        (_machine(16, 12), "gpu", "Test GPU has 12.0 GB free"),
        (_machine(16, 4), "partial_gpu", "the rest goes to RAM"),
        (_machine(16), "cpu", "no NVIDIA GPU was found"),
        (_machine(16, 24, offload=False), "cpu", "cannot use the GPU"),
        (_machine(16, 0.3), "cpu", "too small"),
        (_machine(4), "too_big", "needs 6.0 GB"),
        (_machine(2, 2), "too_big", "RAM and GPU together"),
    ],
)
def test_fit_classes(machine: HardwareInfo, fit: str, words: str) -> None:
    found = classify(NEED_6GB, machine)
    assert found.fit == fit
    assert words in found.reason
    if fit == "partial_gpu":
        assert 0.1 <= found.gpu_share < 1


def test_best_file_per_entry_and_disk() -> None:
    entry = find_entry("bllossom-8b")
    best = hardware.best_for_entry(entry, _machine(32, 12), 4096)
    assert best is not None and best.fit.fit == "gpu"
    # the official download of the best type that fits beats conversions of the same class
    assert best.option.quant == "Q4_K_M" and best.option.action == "download"
    full_disk = dataclasses.replace(_machine(32, 12), disk_free=GB)
    assert hardware.best_for_entry(entry, full_disk, 4096).disk_ok is False  # type: ignore[union-attr]


def test_conversion_options_estimate_size_from_parameters() -> None:
    entry = find_entry("bllossom-r1-8b")
    options = hardware.options_for(entry)
    assert {o.action for o in options} == {"convert"}
    q8 = next(o for o in options if o.quant == "Q8_0")
    assert q8.size_bytes == pytest.approx(8.03e9 * 8.5 / 8, abs=1) and not q8.exact
    # a conversion writes the bf16 checkpoint first, then the GGUF
    assert hardware.disk_needed(q8) > q8.size_bytes + 16 * GB  # type: ignore[operator]


@pytest.mark.parametrize(
    ("machine", "name", "where"),
    [
        (_machine(64, 80), "bllossom-70b", "runs on your GPU"),
        (_machine(32, 12), "bllossom-8b", "runs on your GPU"),
        (_machine(16, 4), "bllossom-3b", "runs on your GPU"),
        (_machine(16), "bllossom-8b", "runs on your CPU"),
        (_machine(5), "bllossom-3b", "runs on your CPU"),
        (_machine(256), "bllossom-8b", "runs on your CPU"),  # never a 70B on a CPU
        (_machine(8, 3), "bllossom-8b", "runs partly on your GPU"),
    ],
)
def test_recommendation(machine: HardwareInfo, name: str, where: str) -> None:
    choice = hardware.recommend(load_catalog(), machine, 4096)
    assert choice is not None
    assert choice.assessment.option.entry.name == name, choice.why
    assert choice.why.startswith(where)


def test_nothing_fits_a_tiny_machine() -> None:
    assert hardware.recommend(load_catalog(), _machine(1), 4096) is None


def test_convert_bits_per_weight_from_gguf_blocks() -> None:
    assert hardware.convert_bits_per_weight("Q8_0") == 8.5
    assert hardware.convert_bits_per_weight("F16") == 16
    assert hardware.convert_bits_per_weight("Q4_K_M") == 4.5
    assert hardware.convert_bits_per_weight("nonsense") is None
