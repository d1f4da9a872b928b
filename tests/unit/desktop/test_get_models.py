"""The "Get models" dialog and the welcome page's recommended model, with the real
huggingface_hub client downloading from the local stand-in hub (HF_ENDPOINT) and a fake
hardware probe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bllossom_core import hardware
from bllossom_core.catalog import Catalog, parse_catalog
from bllossom_core.hardware import GpuInfo, HardwareInfo
from bllossom_core.hub import PullPhase, load_registry, pending_pulls
from bllossom_core.paths import models_dir
from desktop.get_models_page import GetModelsDialog, ModelRow
from desktop.model_downloads import DownloadState, DownloadStatus
from desktop.qt import Qt
from tests.fixtures.local_hub import GGUF_QUANTS, GGUF_REPO, LocalHub, add_fixture_repos, gguf_name

GB = 10**9
LEFT = Qt.MouseButton.LeftButton
BIG_MACHINE = HardwareInfo(
    total_ram=32 * GB,
    available_ram=24 * GB,
    gpus=(GpuInfo(0, "Test GPU 12GB", 12 * 1024**3, 12 * 1024**3),),
    gpu_source="nvml",
    gpu_offload=True,
    disk_free=2000 * GB,
)
CPU_MACHINE = HardwareInfo(total_ram=16 * GB, available_ram=8 * GB, disk_free=500 * GB)


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with LocalHub() as served:
        add_fixture_repos(served)
        yield served


@pytest.fixture(autouse=True)
def hub_state(hub: LocalHub, monkeypatch: pytest.MonkeyPatch, bllossom_home: Path) -> None:
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.log.clear()
    hub.drop_after.clear()
    hub.corrupt.clear()
    hub.chunk_delay = 0.0


def fixture_catalog(hub: LocalHub) -> Catalog:
    """The tiny fixture model as a catalog entry (its real shape), a convert-only entry
    and an unsupported one."""
    files = hub.repos[GGUF_REPO].files
    ggufs = "".join(
        f"""
[[model.gguf]]
repo = "{GGUF_REPO}"
file = "{gguf_name(q)}"
quant = "{q}"
size_bytes = {len(files[gguf_name(q)].data)}
sha256 = "{files[gguf_name(q)].sha256}"
"""
        for q in GGUF_QUANTS
    )
    shape = """
architecture = "LlamaForCausalLM"
params_b = 0.01
context_length = 4096
layers = 2
heads = 4
kv_heads = 2
head_dim = 64
vocab_size = 32000
license = "mit"
status = "supported"
"""
    return parse_catalog(f"""
schema = 1
catalog_version = "test"

[[model]]
name = "tiny"
title = "Tiny Llama"
repo = "fixture/tiny-llama"
recommended = true
{shape}
{ggufs}

[[model]]
name = "tiny-source"
title = "Tiny Llama checkpoint"
repo = "fixture/tiny-llama"
{shape}

[[model]]
name = "vision"
title = "A vision model"
repo = "fixture/vision"
architecture = "LlavaNextForConditionalGeneration"
status = "unsupported"
status_reason = "image models are not supported"
""")


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> list[HardwareInfo]:
    """The fake probe's answer (tests may replace it before the window probes)."""
    answer = [BIG_MACHINE]
    monkeypatch.setattr(hardware, "probe_hardware", lambda folder=None: answer[0])
    return answer


@pytest.fixture
def tiny_catalog(hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    catalog = fixture_catalog(hub)
    monkeypatch.setattr("desktop.model_downloads.load_catalog", lambda: catalog)
    return catalog


def open_dialog(qtbot, window) -> GetModelsDialog:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.downloads.hardware is not None, timeout=30_000)
    window.get_models_action.trigger()
    dialog = window.findChild(GetModelsDialog, "getModelsDialog")
    assert isinstance(dialog, GetModelsDialog) and dialog.isVisible()
    return dialog


def choose(row: ModelRow, quant: str) -> None:
    row.quant.setCurrentIndex(row.quant.findText(quant))
    assert row.option is not None and row.option.quant == quant


def test_page_lists_the_catalog_with_fit_badges(qtbot, make_window, machine) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    dialog = open_dialog(qtbot, window)
    names = [row.entry.name for row in dialog.rows if row.entry is not None]
    assert names == list(window.downloads.catalog.names)
    assert "Test GPU 12GB" in dialog.machine.text()

    eight = dialog.row_for("bllossom-8b")
    choose(eight, "Q4_K_M")
    assert eight.badge.text() == "Fits on your GPU"
    assert "Q4_K_M · ≈ 4.9 GB" in eight.details.text() and "llama3" in eight.details.text()
    assert "Test GPU 12GB has 12.9 GB free" in eight.reason.text()
    assert eight.action.text() == "Download" and eight.action.isEnabled()
    seventy = dialog.row_for("bllossom-70b")
    choose(seventy, "Q4_K_M")
    assert seventy.badge.text() == "Too big for this computer"
    vision = dialog.row_for("bllossom-vision-8b")
    assert vision.badge.text() == "Not supported"
    assert not vision.action.isEnabled() and not vision.title.isEnabled()
    assert vision.reason.text() == vision.entry.status_reason  # type: ignore[union-attr]

    # The welcome page offers the recommended model first, with the reason.
    assert window.welcome.recommended_button.isVisible()
    text = window.welcome.recommended_button.text()
    assert text.startswith("Bllossom 8B") and text.endswith("runs on your GPU")

    # Without a usable GPU the same file is a CPU fit.
    machine[0] = CPU_MACHINE
    window.downloads.probe()
    qtbot.waitUntil(lambda: "no GPU" in dialog.machine.text(), timeout=30_000)
    eight = dialog.row_for("bllossom-8b")
    choose(eight, "Q4_K_M")
    assert eight.badge.text() == "Runs on your CPU"
    assert window.welcome.recommended_button.text().endswith("runs on your CPU")


def test_download_shows_progress_and_open_loads_the_model(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    hub.chunk_delay = 0.002
    window = make_window()
    dialog = open_dialog(qtbot, window)
    assert dialog.row_for("tiny-source").action.text() == "Convert"
    assert dialog.row_for("vision").reason.text() == "image models are not supported"
    row = dialog.row_for("tiny")
    choose(row, "Q8_0")
    assert row.badge.text() == "Fits on your GPU"
    seen: list[str] = []
    window.downloads.changed.connect(lambda _key: seen.append(row.progress_text.text()))
    qtbot.mouseClick(row.action, LEFT)
    assert row.pause_button.isVisible() and row.cancel_button.isVisible()
    qtbot.waitUntil(lambda: row.action.text() == "Open", timeout=60_000)
    assert any(t.startswith("Downloading") and " of 19.4 MB" in t for t in seen), seen
    assert any("MB/s" in t and "left" in t for t in seen), seen
    assert any(t.startswith("Verifying") for t in seen), seen
    target = models_dir() / gguf_name("Q8_0")
    assert target.read_bytes() == hub.repos[GGUF_REPO].files[gguf_name("Q8_0")].data
    assert load_registry()[0].path == str(target)

    qtbot.mouseClick(row.action, LEFT)
    qtbot.waitUntil(lambda: window.models.engine is not None, timeout=60_000)
    assert window.models.model is not None
    assert Path(window.models.model.path) == target.resolve()


def test_pause_survives_a_restart_and_resume_continues_the_partial_file(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    data = hub.repos[GGUF_REPO].files[gguf_name("F16")].data
    hub.chunk_delay = 0.01
    window = make_window()
    row = open_dialog(qtbot, window).row_for("tiny")
    choose(row, "F16")
    qtbot.mouseClick(row.action, LEFT)
    key = row.key

    def far_enough() -> bool:
        status = window.downloads.status(key)
        progress = status.progress if status else None
        return progress is not None and progress.done_bytes > len(data) // 4

    qtbot.waitUntil(far_enough, timeout=60_000)
    qtbot.mouseClick(row.pause_button, LEFT)
    qtbot.waitUntil(lambda: row.action.text() == "Resume", timeout=30_000)
    assert row.progress_text.text().startswith("Paused")
    partials = list(models_dir().glob(".*.partial"))
    assert len(partials) == 1 and 0 < partials[0].stat().st_size < len(data)
    kept = partials[0].stat().st_size
    assert [(p.source, p.quant) for p in pending_pulls()] == [("tiny", "F16")]

    window.close()  # a restart: the next window finds the pending pull
    qtbot.waitUntil(lambda: window.closed, timeout=30_000)
    hub.chunk_delay = 0.0
    hub.log.clear()
    again = make_window()
    row = open_dialog(qtbot, again).row_for("tiny")
    assert row.option is not None and row.option.quant == "F16"
    assert row.action.text() == "Resume"
    assert again.welcome.recommended_button.text().startswith("Resume: Tiny Llama · F16")
    qtbot.mouseClick(row.action, LEFT)
    qtbot.waitUntil(lambda: row.action.text() == "Open", timeout=60_000)
    assert (models_dir() / gguf_name("F16")).read_bytes() == data
    assert [r.range for r in hub.log if r.path.startswith("/_cdn/")] == [f"bytes={kept}-"]
    assert pending_pulls() == []


def test_cancel_forgets_the_pull_but_keeps_the_partial_file(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    hub.chunk_delay = 0.01
    window = make_window()
    row = open_dialog(qtbot, window).row_for("tiny")
    choose(row, "F16")
    qtbot.mouseClick(row.action, LEFT)

    def status() -> DownloadStatus:
        found: DownloadStatus | None = window.downloads.status(row.key)
        assert found is not None
        return found

    def downloading() -> bool:
        progress = status().progress
        return progress is not None and progress.phase is PullPhase.DOWNLOADING

    qtbot.waitUntil(downloading, timeout=60_000)
    qtbot.mouseClick(row.cancel_button, LEFT)
    qtbot.waitUntil(lambda: status().state is DownloadState.IDLE, timeout=30_000)
    assert row.action.text() == "Download" and not row.progress_bar.isVisible()
    qtbot.waitUntil(lambda: pending_pulls() == [], timeout=10_000)
    assert len(list(models_dir().glob(".*.partial"))) == 1


def test_welcome_recommended_button_downloads_and_opens(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    window = make_window()
    welcome = window.welcome
    assert window.stack.currentWidget() is welcome
    qtbot.waitUntil(welcome.recommended_button.isVisible, timeout=30_000)
    text = welcome.recommended_button.text()
    assert text == "Tiny Llama · F16 · 35.9 MB · runs on your GPU"
    assert "Test GPU 12GB has" in welcome.recommended_why.text()
    qtbot.mouseClick(welcome.recommended_button, LEFT)
    # one click, one wait: downloaded, registered, loaded, and the chat is shown
    qtbot.waitUntil(lambda: window.models.engine is not None, timeout=120_000)
    assert window.stack.currentWidget() is window.chat
    target = models_dir() / gguf_name("F16")
    assert Path(window.models.model.path) == target.resolve()
    assert load_registry()[0].catalog_name == "tiny"


def test_convert_only_entry_downloads_the_checkpoint_and_converts(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    window = make_window()
    row = open_dialog(qtbot, window).row_for("tiny-source")
    choose(row, "Q8_0")
    assert row.action.text() == "Convert"
    phases: list[str] = []
    window.downloads.changed.connect(lambda _key: phases.append(row.progress_text.text()))
    qtbot.mouseClick(row.action, LEFT)
    qtbot.waitUntil(lambda: row.action.text() == "Open", timeout=180_000)
    assert any(t.startswith("Downloading") for t in phases), phases
    assert any(t.startswith("Converting") for t in phases), phases
    model = load_registry()[0]
    assert model.source == "convert" and model.catalog_name == "tiny-source"
    assert Path(model.path).is_file() and model.quant == "Q8_0"


def test_failed_download_is_explained_and_can_be_tried_again(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    from desktop.qt import QMessageBox

    blob = hub.repos[GGUF_REPO].files[gguf_name("Q4_K_M")]
    hub.corrupt.add(blob.sha256)
    window = make_window()
    row = open_dialog(qtbot, window).row_for("tiny")
    choose(row, "Q4_K_M")
    qtbot.mouseClick(row.action, LEFT)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None, timeout=60_000)
    box = window.findChild(QMessageBox, "errorBox")
    assert "sha256" in box.text().lower() or "checksum" in box.text().lower(), box.text()
    assert row.action.text() == "Try again"
    assert not (models_dir() / gguf_name("Q4_K_M")).exists()
    box.close()
    hub.corrupt.clear()
    qtbot.mouseClick(row.action, LEFT)
    qtbot.waitUntil(lambda: row.action.text() == "Open", timeout=60_000)
    assert (models_dir() / gguf_name("Q4_K_M")).read_bytes() == blob.data


def test_quitting_mid_download_offers_resume_at_the_next_start(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    hub.chunk_delay = 0.01
    window = make_window()
    row = open_dialog(qtbot, window).row_for("tiny")
    choose(row, "F16")
    qtbot.mouseClick(row.action, LEFT)
    key = row.key

    def downloading() -> bool:
        status = window.downloads.status(key)
        return status is not None and status.progress is not None and status.progress.done_bytes > 0

    qtbot.waitUntil(downloading, timeout=60_000)
    window.close()  # quitting cancels the pull; its partial file and pending entry stay
    qtbot.waitUntil(lambda: window.closed, timeout=30_000)
    assert [(p.source, p.quant) for p in pending_pulls()] == [("tiny", "F16")]
    hub.chunk_delay = 0.0
    again = make_window()
    qtbot.waitUntil(lambda: again.downloads.hardware is not None, timeout=30_000)
    assert "Get models" in again.status.currentMessage()
    button = again.welcome.recommended_button
    assert button.text().startswith("Resume: Tiny Llama · F16")
    qtbot.mouseClick(button, LEFT)  # one click: resumed, then opened
    qtbot.waitUntil(lambda: again.models.engine is not None, timeout=120_000)
    assert again.stack.currentWidget() is again.chat
    assert pending_pulls() == []


def test_unfinished_pull_of_a_hub_id_gets_its_own_row(  # type: ignore[no-untyped-def]
    qtbot, make_window, machine, tiny_catalog, hub
) -> None:
    from bllossom_core.hub import PendingPull
    from bllossom_core.hub.registry import add_pending

    add_pending(PendingPull(GGUF_REPO, "Q8_0", None, None, str(models_dir())))  # from the CLI
    window = make_window()
    row = open_dialog(qtbot, window).row_for(GGUF_REPO)
    assert row.entry is None and row.title.text() == GGUF_REPO
    assert row.action.text() == "Resume"
    qtbot.mouseClick(row.action, LEFT)
    qtbot.waitUntil(lambda: row.action.text() == "Open", timeout=60_000)
    data = hub.repos[GGUF_REPO].files[gguf_name("Q8_0")].data
    assert (models_dir() / gguf_name("Q8_0")).read_bytes() == data
    assert pending_pulls() == []
