"""GPU offload choice and the load-retry ladder, with injected probes and failures."""

from __future__ import annotations

import pytest

from bllossom_core._device import (
    GpuProbe,
    describe_device,
    layer_ladder,
    load_with_fallback,
    probe_gpu,
)
from bllossom_core.errors import ModelLoadError

H100 = GpuProbe(supports_offload=True, gpu_name="NVIDIA H100")
CPU_BUILD = GpuProbe(supports_offload=False, gpu_name=None)
NO_GPU = GpuProbe(supports_offload=True, gpu_name=None)


def _loader(max_layers_that_fit: int | None):  # type: ignore[no-untyped-def]
    attempts: list[int] = []

    def load(layers: int) -> str:
        attempts.append(layers)
        if max_layers_that_fit is None or layers > max_layers_that_fit:
            raise ValueError("cudaMalloc failed: out of memory")
        return f"model@{layers}"

    return load, attempts


def test_ladder() -> None:
    assert layer_ladder(33, None, H100) == [33, 16, 8, 4, 2, 1, 0]
    assert layer_ladder(33, None, CPU_BUILD) == [0]
    assert layer_ladder(33, None, NO_GPU) == [0]
    assert layer_ladder(33, 0, H100) == [0]
    assert layer_ladder(33, -1, H100)[0] == 33
    assert layer_ladder(33, 100, H100)[0] == 33
    assert layer_ladder(33, 5, H100) == [5, 2, 1, 0]


def test_all_layers_fit() -> None:
    load, attempts = _loader(33)
    model, layers, failures = load_with_fallback(load, layer_ladder(33, None, H100))
    assert (model, layers, failures, attempts) == ("model@33", 33, [], [33])
    report = describe_device(H100, None, layers, 33, 8, failures)
    assert report.backend == "cuda" and report.summary == "GPU: NVIDIA H100, 33/33 layers"


def test_out_of_vram_retries_with_fewer_layers() -> None:
    load, attempts = _loader(10)
    model, layers, failures = load_with_fallback(load, layer_ladder(33, None, H100))
    assert attempts == [33, 16, 8] and layers == 8 and model == "model@8"
    report = describe_device(H100, None, layers, 33, 8, failures)
    assert report.summary.startswith("GPU: NVIDIA H100, 8/33 layers")
    assert "out of memory" in (report.fallback_reason or "")


def test_gpu_failure_falls_back_to_cpu_and_says_why() -> None:
    load, attempts = _loader(0)
    _, layers, failures = load_with_fallback(load, layer_ladder(33, None, H100))
    assert layers == 0 and attempts[-1] == 0 and len(failures) == 6
    report = describe_device(H100, None, layers, 33, 4, failures)
    assert report.backend == "cpu"
    assert report.summary.startswith("CPU: loading on NVIDIA H100 failed (cudaMalloc failed")


def test_nothing_loads_raises_model_load_error() -> None:
    load, _ = _loader(None)
    with pytest.raises(ModelLoadError, match="could not load"):
        load_with_fallback(load, [4, 2, 1, 0])


@pytest.mark.parametrize(
    ("probe", "requested", "reason"),
    [
        (CPU_BUILD, None, "built without CUDA — run scripts/setup"),
        (NO_GPU, None, "no NVIDIA GPU was found"),
        (H100, 0, "GPU offload turned off"),
    ],
)
def test_cpu_reasons(probe: GpuProbe, requested: int | None, reason: str) -> None:
    report = describe_device(probe, requested, 0, 33, 4, [])
    assert report.backend == "cpu" and reason in report.summary and report.threads == 4


def test_this_build_is_reported_as_cpu_build() -> None:
    import llama_cpp

    probe = probe_gpu()
    assert probe.supports_offload == bool(llama_cpp.llama_supports_gpu_offload())
    if not probe.supports_offload:
        assert probe.gpu_name is None and layer_ladder(33, None, probe) == [0]
