"""Where a model runs: GPU offload detection and the load-retry ladder (internal).

The ladder is plain data and a loop over an injected loader, so the fallback logic
(all layers, then fewer, then CPU) is unit-tested without a GPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bllossom_core.errors import ModelLoadError
from bllossom_core.types import CpuCause, DeviceReport

T = TypeVar("T")

REBUILD_ADVICE = "rebuild it with `BLLOSSOM_CUDA=1 scripts/setup` (needs the CUDA toolkit)"
CUDA_BACKEND_FILE = "libggml-cuda.so"
"""The CUDA backend the bllossom-desktop-cuda package adds beside the CPU ones."""
CUDA_PACKAGE_DRIVER = 13000
"""The CUDA version (cuDriverGetVersion's 1000 * major + 10 * minor) the driver must
support for bllossom-desktop-cuda, built with CUDA 13.0: NVIDIA driver 580 or newer."""


def packaged_gpu_advice(
    lib_dir: str | None = None, driver_version: Callable[[], int | None] | None = None
) -> str:
    """Why the installed package runs on the CPU beside an NVIDIA GPU, and what to do:
    its GPU backend comes in a second package, which ggml loads only where the NVIDIA
    driver it needs is present (a missing or older driver leaves it unloaded)."""
    if lib_dir is None:
        import llama_cpp

        lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    backend = os.path.join(lib_dir, CUDA_BACKEND_FILE)
    if not os.path.exists(backend):
        return "GPU offload needs the bllossom-desktop-cuda package (README: Install)"
    version = (driver_version or cuda_driver_version)()
    if version is None:
        return (
            "bllossom-desktop-cuda is installed but the NVIDIA driver's libcuda.so.1 was "
            "not found; install the NVIDIA driver"
        )
    if version < CUDA_PACKAGE_DRIVER:
        return (
            f"the NVIDIA driver supports CUDA {version // 1000}.{version % 1000 // 10}, "
            "and bllossom-desktop-cuda needs CUDA 13.0: update the driver to 580 or newer"
        )
    try:  # ggml's loader gives up on it silently: dlopen it again for the reason
        ctypes.CDLL(backend)
    except OSError as exc:
        # In the bundle, PyInstaller's CDLL replaces dlopen's message with a guess ("was
        # not found when the application was frozen") and chains the real one.
        reason = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        return f"bllossom-desktop-cuda is installed but its CUDA backend did not load ({reason})"
    return "bllossom-desktop-cuda is installed but CUDA found no GPU it can use"


def cuda_driver_version() -> int | None:
    """The CUDA version the installed NVIDIA driver supports (e.g. 13000), or None
    without a driver. cuDriverGetVersion needs no cuInit and no GPU context."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int(0)
        if driver.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return version.value


@dataclass(frozen=True)
class GpuProbe:
    supports_offload: bool
    gpu_name: str | None

    @property
    def usable(self) -> bool:
        return self.supports_offload and self.gpu_name is not None


def _gpu_name_from_nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return names[0] if done.returncode == 0 and names else None


def _gpu_name_from_ggml() -> str | None:
    """The first GPU device's description, where llama_cpp exposes ggml's device API."""
    import llama_cpp

    count = getattr(llama_cpp, "ggml_backend_dev_count", None)
    describe = getattr(llama_cpp, "ggml_backend_dev_description", None)
    get = getattr(llama_cpp, "ggml_backend_dev_get", None)
    dev_type = getattr(llama_cpp, "ggml_backend_dev_type", None)
    if not (count and describe and get and dev_type):
        return None
    for index in range(int(count())):
        device = get(index)
        if int(dev_type(device)) == 1:  # GGML_BACKEND_DEVICE_TYPE_GPU
            raw = describe(device)
            return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return None


def probe_gpu() -> GpuProbe:
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        # A CPU build cannot see the GPU itself; ask the driver so the advice can be exact.
        return GpuProbe(False, _gpu_name_from_nvidia_smi())
    return GpuProbe(True, _gpu_name_from_ggml() or _gpu_name_from_nvidia_smi())


def default_threads() -> int:
    """llama.cpp's own choice: one thread per physical core (hyper-threads only slow the
    matrix work down), for prompt processing and decode alike; never more than the CPUs
    this process may run on."""
    cores = physical_cores()
    with contextlib.suppress(AttributeError, OSError):
        cores = min(cores, len(os.sched_getaffinity(0)))
    return max(1, cores)


def physical_cores() -> int:
    """Physical CPU cores: psutil where installed, else /proc/cpuinfo, else lscpu, else
    llama.cpp's fallback guess from the logical count."""
    with contextlib.suppress(Exception):  # not installed, or no answer on this platform
        counted = importlib.import_module("psutil").cpu_count(logical=False)
        if counted:
            return int(counted)
    for count in (_cores_from_cpuinfo, _cores_from_lscpu):
        counted = count()
        if counted:
            return counted
    logical = os.cpu_count() or 4
    return logical if logical <= 4 else logical // 2


def _cores_from_cpuinfo(path: str = "/proc/cpuinfo") -> int | None:
    """Distinct (physical id, core id) pairs; None where the file lacks them (e.g. ARM)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in block.splitlines())
        )
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def _cores_from_lscpu() -> int | None:
    exe = shutil.which("lscpu")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--parse=Core,Socket"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rows = {line for line in done.stdout.splitlines() if line and not line.startswith("#")}
    return len(rows) if done.returncode == 0 and rows else None


def layer_ladder(total_layers: int, requested: int | None, probe: GpuProbe) -> list[int]:
    """GPU layer counts to try in order; the last is always 0 (CPU)."""
    if requested is not None:
        wanted = total_layers if requested < 0 else min(requested, total_layers)
    else:
        wanted = total_layers if probe.usable else 0
    if wanted <= 0 or not probe.supports_offload:
        return [0]
    ladder = [wanted]
    while ladder[-1] > 1:
        ladder.append(ladder[-1] // 2)
    return [*ladder, 0]


def load_with_fallback(
    load: Callable[[int], T], ladder: list[int]
) -> tuple[T, int, list[tuple[int, str]]]:
    """Try ``load(layers)`` down the ladder; return the model, its layers and the failures."""
    failures: list[tuple[int, str]] = []
    for layers in ladder:
        try:
            return load(layers), layers, failures
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            failures.append((layers, str(exc) or type(exc).__name__))
    detail = "; ".join(f"{n} GPU layers: {why}" for n, why in failures)
    raise ModelLoadError(
        f"llama.cpp could not load the model ({detail}).",
        hint="Check that the file is complete and that enough memory is free, or lower "
        "--context-size.",
    )


# ggml's CPU backend variants (GGML_CPU_ALL_VARIANTS) by the instruction set they add.
CPU_VARIANT_LABELS = {
    "x64": "x86-64",
    "sse42": "SSE4.2",
    "sandybridge": "AVX",
    "ivybridge": "AVX",
    "piledriver": "AVX+FMA",
    "haswell": "AVX2",
    "alderlake": "AVX-VNNI",
    "skylakex": "AVX-512",
    "cannonlake": "AVX-512",
    "cascadelake": "AVX-512 VNNI",
    "icelake": "AVX-512 VNNI",
    "cooperlake": "AVX-512 BF16",
    "zen4": "AVX-512 BF16",
    "sapphirerapids": "AMX",
}


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def cpu_variant() -> str | None:
    """The instruction set of the CPU backend ggml picked at start ("AVX2"), in a build
    that carries one CPU backend per x86-64 level and loads the best (GGML_BACKEND_DL with
    GGML_CPU_ALL_VARIANTS: the packaged app); None in a build with a single CPU backend
    (the developer install) or where it cannot be told. The backend's file is found from
    the address of one of its functions (dladdr), e.g. ``libggml-cpu-haswell.so``."""
    try:
        import llama_cpp

        lib = llama_cpp.llama_cpp._lib
        by_name = lib["ggml_backend_reg_by_name"]  # a fresh function object each time
        by_name.argtypes = [ctypes.c_char_p]
        by_name.restype = ctypes.c_void_p
        reg = by_name(b"CPU")
        if not reg:
            return None
        get_proc = lib["ggml_backend_reg_get_proc_address"]
        get_proc.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        get_proc.restype = ctypes.c_void_p
        address = get_proc(reg, b"ggml_backend_get_features")
        if not address:
            return None
        info = _DlInfo()
        if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(address), ctypes.byref(info)):
            return None
        file_name = os.path.basename((info.dli_fname or b"").decode(errors="replace"))
    except (ImportError, AttributeError, OSError, ValueError, TypeError):
        return None
    found = re.fullmatch(r"libggml-cpu-(.+)\.so", file_name)
    if found is None:
        return None
    return CPU_VARIANT_LABELS.get(found.group(1), found.group(1))


def describe_device(
    probe: GpuProbe,
    requested: int | None,
    layers: int,
    total_layers: int,
    threads: int,
    failures: list[tuple[int, str]],
) -> DeviceReport:
    first_failure = failures[0][1] if failures else None
    if layers > 0:
        summary = f"GPU: {probe.gpu_name or 'GPU'}, {layers}/{total_layers} layers"
        if failures:
            summary += f" (more did not load: {first_failure})"
        return DeviceReport("cuda", summary, probe.gpu_name, layers, total_layers, threads,
                            first_failure)  # fmt: skip
    cause, why = cpu_reason(probe, requested, first_failure)
    variant = cpu_variant()
    level = f"{variant}, " if variant else ""
    summary = f"CPU: {level}{why}, {threads} thread{'' if threads == 1 else 's'}"
    return DeviceReport("cpu", summary, None, 0, total_layers, threads, why, cause, variant)


def cpu_reason(
    probe: GpuProbe, requested: int | None, first_failure: str | None
) -> tuple[CpuCause, str]:
    """Why the model runs on the CPU, with advice only where the user can change it."""
    gpu = probe.gpu_name
    if first_failure is not None:
        return "gpu_failed", f"loading on {gpu or 'the GPU'} failed ({first_failure})"
    if requested == 0:
        return "offload_off", "GPU offload turned off (0 GPU layers requested)"
    if gpu is None:
        return "no_gpu", "no NVIDIA GPU found"
    if not probe.supports_offload:
        if getattr(sys, "frozen", False):  # the installed package: no scripts/setup
            return "cpu_build", f"GPU offload is off although {gpu} is present: " + (
                packaged_gpu_advice()
            )
        return "cpu_build", (
            f"this llama-cpp-python was built without CUDA although {gpu} is present; "
            + REBUILD_ADVICE
        )
    return "gpu_unused", f"{gpu} was not used"
