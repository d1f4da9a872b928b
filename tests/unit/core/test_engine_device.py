"""GPU offload choice and the load-retry ladder, with injected probes and failures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from bllossom_core import _device
from bllossom_core._device import (
    GpuProbe,
    cuda_driver_version,
    describe_device,
    layer_ladder,
    load_with_fallback,
    packaged_gpu_advice,
    probe_gpu,
)
from bllossom_core.errors import ModelLoadError

H100 = GpuProbe(supports_offload=True, gpu_name="NVIDIA H100")
CPU_BUILD = GpuProbe(supports_offload=False, gpu_name=None)
CPU_BUILD_ON_H100 = GpuProbe(supports_offload=False, gpu_name="NVIDIA H100")
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
    ("probe", "requested", "threads", "cause", "summary"),
    [
        (CPU_BUILD, None, 1, "no_gpu", "CPU: no NVIDIA GPU found, 1 thread"),
        (NO_GPU, None, 4, "no_gpu", "CPU: no NVIDIA GPU found, 4 threads"),
        (
            H100,
            0,
            4,
            "offload_off",
            "CPU: GPU offload turned off (0 GPU layers requested), 4 threads",
        ),
        (
            CPU_BUILD_ON_H100,
            0,
            2,
            "offload_off",
            "CPU: GPU offload turned off (0 GPU layers requested), 2 threads",
        ),
        (
            CPU_BUILD_ON_H100,
            None,
            8,
            "cpu_build",
            "CPU: this llama-cpp-python was built without CUDA although NVIDIA H100 is present; "
            "rebuild it with `BLLOSSOM_CUDA=1 scripts/setup` (needs the CUDA toolkit), 8 threads",
        ),
    ],
)
def test_cpu_reasons(
    probe: GpuProbe, requested: int | None, threads: int, cause: str, summary: str
) -> None:
    assert layer_ladder(33, requested, probe) == [0]
    report = describe_device(probe, requested, 0, 33, threads, [])
    assert report.backend == "cpu" and report.summary == summary and report.threads == threads
    assert report.cpu_cause == cause


def test_the_installed_package_does_not_advise_scripts_setup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as in the PyInstaller bundle
    report = describe_device(CPU_BUILD_ON_H100, None, 0, 33, 8, [])
    assert report.cpu_cause == "cpu_build" and "scripts/setup" not in report.summary
    assert "bllossom-desktop-cuda" in report.summary


def test_the_installed_package_says_what_keeps_its_gpu_backend_off(tmp_path: Path) -> None:
    """Without the CUDA package: install it. With it: the driver is missing, too old,
    or the backend failed for another reason (llama.cpp printed it at start)."""
    assert packaged_gpu_advice(str(tmp_path), lambda: 13000) == (
        "GPU offload needs the bllossom-desktop-cuda package (README: Install)"
    )
    (tmp_path / "libggml-cuda.so").write_bytes(b"")
    assert "libcuda.so.1 was not found" in packaged_gpu_advice(str(tmp_path), lambda: None)
    old = packaged_gpu_advice(str(tmp_path), lambda: 12080)
    assert old == (
        "the NVIDIA driver supports CUDA 12.8, and bllossom-desktop-cuda needs CUDA 13.0: "
        "update the driver to 580 or newer"
    )
    broken = packaged_gpu_advice(str(tmp_path), lambda: 13000)
    assert "file too short" in broken, broken  # dlopen's own words
    assert broken.startswith("bllossom-desktop-cuda is installed but its CUDA backend did not "
                             "load (") and "libggml-cuda.so" in broken  # fmt: skip


def test_no_driver_means_no_cuda_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the driver's library the probe answers None instead of raising."""

    def no_library(name: str, *args: object, **kwargs: object) -> None:
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(_device.ctypes, "CDLL", no_library)
    assert cuda_driver_version() is None


def test_cpu_reason_after_gpu_failure_quotes_it() -> None:
    report = describe_device(H100, None, 0, 33, 1, [(33, "cudaMalloc failed: out of memory")])
    assert report.summary == (
        "CPU: loading on NVIDIA H100 failed (cudaMalloc failed: out of memory), 1 thread"
    )
    assert (
        report.fallback_reason == "loading on NVIDIA H100 failed (cudaMalloc failed: out of memory)"
    )
    assert report.cpu_cause == "gpu_failed"


def test_cpu_build_probe_asks_the_driver_for_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    from bllossom_core import _device

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    monkeypatch.setattr(_device, "_gpu_name_from_nvidia_smi", lambda: "NVIDIA RTX 4090")
    assert probe_gpu() == GpuProbe(False, "NVIDIA RTX 4090")
    monkeypatch.setattr(_device, "_gpu_name_from_nvidia_smi", lambda: None)
    assert probe_gpu() == GpuProbe(False, None)


def test_this_build_is_reported_as_cpu_build() -> None:
    import llama_cpp

    probe = probe_gpu()
    assert probe.supports_offload == bool(llama_cpp.llama_supports_gpu_offload())
    if not probe.supports_offload:
        assert layer_ladder(33, None, probe) == [0]


def test_load_walks_the_ladder_with_injected_gpu_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    from bllossom_core import engine as engine_module
    from bllossom_core.engine import LocalEngine
    from tests.fixtures.gguf_models import fixture_gguf

    real_llama = llama_cpp.Llama
    attempts: list[int] = []
    fits = {"layers": 1}

    def flaky_llama(*args: Any, **kwargs: Any) -> Any:
        layers = int(kwargs["n_gpu_layers"])
        attempts.append(layers)
        if layers > fits["layers"]:
            raise ValueError("Failed to create llama_context (out of VRAM)")
        return real_llama(*args, **kwargs)

    monkeypatch.setattr(engine_module, "probe_gpu", lambda: GpuProbe(True, "Fake GPU"))
    monkeypatch.setattr(llama_cpp, "Llama", flaky_llama)
    path = fixture_gguf("llama2-spm")
    engine = LocalEngine.load(path, context_size=128, threads=1)
    engine.close()
    assert attempts == [3, 1]
    assert engine.device.summary.startswith("GPU: Fake GPU, 1/3 layers (more did not load: Failed")

    attempts.clear()
    fits["layers"] = 0
    engine = LocalEngine.load(path, context_size=128, threads=1)
    engine.close()
    assert attempts == [3, 1, 0] and engine.device.backend == "cpu"
    assert engine.device.summary.startswith("CPU: loading on Fake GPU failed (Failed to create")

    attempts.clear()
    engine = LocalEngine.load(path, context_size=128, threads=1, gpu_layers=0)
    engine.close()
    assert attempts == [0] and "GPU offload turned off" in engine.device.summary


# --------------------------------------------------------------------------- threads

# Two sockets, two cores each, two hyper-threads per core: 8 logical CPUs, 4 cores.
HYPERTHREADED_CPUINFO = "\n\n".join(
    f"processor\t: {n}\nphysical id\t: {n // 4}\nsiblings\t: 4\ncore id\t\t: {(n // 2) % 2}"
    f"\ncpu cores\t: 2"
    for n in range(8)
)


def test_physical_cores_from_cpuinfo(tmp_path: Any) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(HYPERTHREADED_CPUINFO)
    assert _device._cores_from_cpuinfo(str(cpuinfo)) == 4
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n")
    assert _device._cores_from_cpuinfo(str(arm)) is None  # no core ids: ask lscpu next
    assert _device._cores_from_cpuinfo(str(tmp_path / "missing")) is None


def test_physical_cores_fallback_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_psutil(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(_device.importlib, "import_module", no_psutil)
    monkeypatch.setattr(_device, "_cores_from_cpuinfo", lambda: None)
    monkeypatch.setattr(_device, "_cores_from_lscpu", lambda: 6)
    assert _device.physical_cores() == 6
    monkeypatch.setattr(_device, "_cores_from_lscpu", lambda: None)
    monkeypatch.setattr(_device.os, "cpu_count", lambda: 16)
    assert _device.physical_cores() == 8  # llama.cpp's guess: half the logical CPUs
    monkeypatch.setattr(_device.os, "cpu_count", lambda: 2)
    assert _device.physical_cores() == 2  # ...but all of them when there are 4 or fewer


def test_default_threads_one_per_core_within_the_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_device, "physical_cores", lambda: 8)
    monkeypatch.setattr(_device.os, "sched_getaffinity", lambda _: {0, 1, 2}, raising=False)
    assert _device.default_threads() == 3  # a container limited to 3 CPUs
    monkeypatch.setattr(_device.os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    assert _device.default_threads() == 8


def test_this_machine_defaults_to_its_physical_cores() -> None:
    """Cross-checked against llama.cpp's own way (thread-sibling sets in sysfs)."""
    from benchmarks.inference import llama_cpp_default_threads

    assert _device.default_threads() == min(
        llama_cpp_default_threads(), len(_device.os.sched_getaffinity(0))
    )


@pytest.mark.parametrize("threads", [None, 3])
def test_load_uses_the_thread_count_for_prompt_and_decode(
    monkeypatch: pytest.MonkeyPatch, threads: int | None
) -> None:
    import llama_cpp

    from bllossom_core.engine import LocalEngine
    from tests.fixtures.gguf_models import fixture_gguf

    real_llama = llama_cpp.Llama
    seen: list[tuple[int, int]] = []

    def recording_llama(*args: Any, **kwargs: Any) -> Any:
        seen.append((kwargs["n_threads"], kwargs["n_threads_batch"]))
        return real_llama(*args, **kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", recording_llama)
    engine = LocalEngine.load(fixture_gguf("llama2-spm"), context_size=128, threads=threads)
    engine.close()
    expected = threads or _device.default_threads()
    assert seen == [(expected, expected)] and engine.device.threads == expected


def test_the_loader_s_own_reason_is_quoted_through_pyinstaller_s_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the bundle, PyInstaller's CDLL raises its own guess and chains dlopen's error."""
    (tmp_path / "libggml-cuda.so").write_bytes(b"")

    def frozen_cdll(name: str, *args: object, **kwargs: object) -> None:
        real = OSError(f"{name}: undefined symbol: cuMemCreate")
        raise OSError(f"Failed to load dynlib/dll {name!r}. Most likely ...") from real

    monkeypatch.setattr(_device.ctypes, "CDLL", frozen_cdll)
    advice = packaged_gpu_advice(str(tmp_path), lambda: 13000)
    assert advice.endswith("libggml-cuda.so: undefined symbol: cuMemCreate)"), advice
