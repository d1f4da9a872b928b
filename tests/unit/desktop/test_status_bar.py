"""The status bar says where the model runs, and why, in the UI's language."""

from __future__ import annotations

import pytest

from bllossom_core.types import DeviceReport

CPU_BUILD = DeviceReport(
    backend="cpu",
    summary="CPU: this llama-cpp-python was built without CUDA although NVIDIA RTX 4090 is "
    "present; rebuild it with `BLLOSSOM_CUDA=1 scripts/setup`, 8 threads",
    threads=8,
    cpu_cause="cpu_build",
)
NO_GPU = DeviceReport(
    backend="cpu", summary="CPU: no NVIDIA GPU found, 4 threads", threads=4, cpu_cause="no_gpu"
)
PACKAGED = DeviceReport(
    backend="cpu", summary="CPU: SSE4.2, no NVIDIA GPU found, 2 threads", threads=2,
    cpu_cause="no_gpu", cpu_variant="SSE4.2",
)  # fmt: skip
ONE_THREAD = DeviceReport(
    backend="cpu", summary="CPU: no NVIDIA GPU found, 1 thread", threads=1, cpu_cause="no_gpu"
)
GPU = DeviceReport(
    backend="cuda",
    summary="GPU: NVIDIA H100, 33/33 layers",
    gpu_name="NVIDIA H100",
    gpu_layers=33,
    total_layers=33,
)


@pytest.mark.parametrize(
    ("language", "device", "expected"),
    [
        ("en", NO_GPU, "CPU, 4 threads (no NVIDIA GPU found)"),
        ("en", ONE_THREAD, "CPU, 1 thread (no NVIDIA GPU found)"),
        ("ko", NO_GPU, "CPU, 스레드 4개 (NVIDIA GPU 없음)"),
        ("ko", CPU_BUILD, "CPU, 스레드 8개: GPU 가속을 쓸 수 없습니다."),
        ("en", CPU_BUILD, "CPU, 8 threads: GPU offload is not available; hover for why"),
        ("en", PACKAGED, "CPU, SSE4.2, 2 threads (no NVIDIA GPU found)"),
        ("ko", PACKAGED, "CPU, SSE4.2, 스레드 2개 (NVIDIA GPU 없음)"),
        ("en", GPU, "GPU: NVIDIA H100, 33/33 layers"),
        ("ko", GPU, "GPU: NVIDIA H100, 33/33개 레이어"),
    ],
)
def test_device_line_is_worded_in_the_ui_language(  # type: ignore[no-untyped-def]
    make_window, language: str, device: DeviceReport, expected: str
) -> None:
    window = make_window(language)
    window.status.set_model("bllossom-8b", "Q4_K_M", device)
    assert window.status.device_label.text().startswith(expected)
    # The full English report, with the advice, is one hover away.
    assert window.status.device_label.toolTip() == device.summary
    assert window.status.model_label.text() == "bllossom-8b · Q4_K_M"


def test_a_temporary_message_is_not_drawn_over_the_model_and_device(qtbot) -> None:  # type: ignore[no-untyped-def]
    from desktop.status_bar import ChatStatusBar

    bar = ChatStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.set_model("Bllossom-8B", "Q4_K_M", NO_GPU)
    assert bar.model_label.isVisible() and bar.device_label.isVisible()
    bar.showMessage("The message will be sent when the model is ready.")
    assert not bar.model_label.isVisible() and not bar.device_label.isVisible()
    bar.clearMessage()
    assert bar.model_label.isVisible() and bar.device_label.isVisible()
    bar.showMessage("short", 50)  # a timed message gives the room back when it ends
    qtbot.waitUntil(bar.model_label.isVisible, timeout=2000)
