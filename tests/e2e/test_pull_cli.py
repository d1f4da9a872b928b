"""``bllossom pull`` as users run it: real processes, the real huggingface_hub client,
real HTTP to a local stand-in hub (HF_ENDPOINT), exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf import GGUFReader

from bllossom_core import hardware
from bllossom_core.cli import main
from bllossom_core.hardware import GpuInfo, HardwareInfo
from tests.fixtures.local_hub import (
    CHECKPOINT_REPO,
    GATED_REPO,
    GGUF_REPO,
    LocalHub,
    add_fixture_repos,
    gguf_name,
)
from tests.fixtures.signals import default_sigint

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with LocalHub() as served:
        add_fixture_repos(served)
        yield served


@pytest.fixture(autouse=True)
def fresh_hub_state(hub: LocalHub) -> None:
    hub.log.clear()
    hub.drop_after.clear()
    hub.corrupt.clear()
    hub.chunk_delay = 0.0


def _env(hub: LocalHub, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home / "hf"),
        "BLLOSSOM_HOME": str(home),
    }


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bllossom_core.cli", "pull", *args]


def _pull(hub: LocalHub, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args), capture_output=True, text=True, env=_env(hub, home), timeout=600
    )


def _registry(home: Path) -> dict[str, list[dict[str, object]]]:
    return json.loads((home / "downloaded-models.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_pull_gguf_repo_registers_the_file(hub: LocalHub, bllossom_home: Path) -> None:
    result = _pull(hub, bllossom_home, GGUF_REPO, "--quant", "Q4_K_M")
    assert result.returncode == 0, result.stderr
    target = bllossom_home / "models" / gguf_name("Q4_K_M")
    assert target.read_bytes() == hub.repos[GGUF_REPO].files[gguf_name("Q4_K_M")].data
    assert f"Saved {target}" in result.stdout and "registered for the app" in result.stdout
    assert "Downloading" in result.stderr and "Verifying" in result.stderr  # progress bars
    models = _registry(bllossom_home)["models"]
    assert models[0]["path"] == str(target) and models[0]["quant"] == "Q4_K_M"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_pull_checkpoint_converts(hub: LocalHub, bllossom_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    result = _pull(hub, bllossom_home, CHECKPOINT_REPO, "--quant", "Q8_0", "-o", str(out))
    assert result.returncode == 0, result.stderr
    target = out / "tiny-llama-Q8_0.gguf"
    assert GGUFReader(target).fields["general.file_type"].contents() == 7  # Q8_0
    assert "converted" in result.stdout
    assert "Converting" in result.stderr
    model = _registry(bllossom_home)["models"][0]
    assert model["source"] == "convert" and model["repo_id"] == CHECKPOINT_REPO
    assert sorted(p.name for p in out.iterdir()) == [target.name]
    assert not (bllossom_home / "checkpoints" / "fixture--tiny-llama").exists() or not any(
        (bllossom_home / "checkpoints" / "fixture--tiny-llama").iterdir()
    )


def test_convert_hub_id_downloads_through_the_hub(
    hub: LocalHub, bllossom_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "converted.gguf"
    command = [sys.executable, "-m", "bllossom_core.cli", "convert", CHECKPOINT_REPO]
    result = subprocess.run(
        [*command, "-o", str(out), "--quant", "F16"],
        capture_output=True, text=True, env=_env(hub, bllossom_home), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert GGUFReader(out).fields["general.file_type"].contents() == 1  # F16
    assert "Download" in result.stderr  # one bar for the whole checkpoint
    kept = bllossom_home / "checkpoints" / CHECKPOINT_REPO.replace("/", "--")
    assert (next(kept.iterdir()) / "config.json").is_file()  # kept for the next conversion
    hub.log.clear()
    again = subprocess.run(
        [*command, "-o", str(tmp_path / "again.gguf"), "--quant", "F16", "-q"],
        capture_output=True, text=True, env=_env(hub, bllossom_home), timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not any(r.path.startswith("/_cdn/") for r in hub.log)  # nothing downloaded twice


def test_killed_process_continues_from_partial_file(hub: LocalHub, bllossom_home: Path) -> None:
    name = gguf_name("F16")
    data = hub.repos[GGUF_REPO].files[name].data
    models = bllossom_home / "models"
    hub.chunk_delay = 0.02
    process = subprocess.Popen(
        _command(GGUF_REPO, "--quant", "F16", "-q"),
        env=_env(hub, bllossom_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        partial: list[Path] = []
        while time.monotonic() < deadline:
            partial = list(models.glob(".*.partial")) if models.exists() else []
            if partial and partial[0].stat().st_size > len(data) // 4:
                break
            time.sleep(0.05)
        assert partial, "the download never started"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    kept = partial[0].stat().st_size
    assert 0 < kept < len(data)
    assert not (models / name).exists()
    assert _registry(bllossom_home)["pending"][0]["source"] == GGUF_REPO

    hub.chunk_delay = 0.0
    hub.log.clear()
    result = _pull(hub, bllossom_home, GGUF_REPO, "--quant", "F16", "-q")
    assert result.returncode == 0, result.stderr
    assert (models / name).read_bytes() == data
    ranges = [r.range for r in hub.log if r.path.startswith("/_cdn/")]
    assert len(ranges) == 1 and ranges[0] is not None
    assert int(ranges[0].removeprefix("bytes=").rstrip("-")) >= kept
    assert _registry(bllossom_home)["pending"] == []


def test_ctrl_c_keeps_the_partial_file(hub: LocalHub, bllossom_home: Path) -> None:
    hub.chunk_delay = 0.02
    process = subprocess.Popen(
        _command(GGUF_REPO, "--quant", "F16", "-q"),
        env=_env(hub, bllossom_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    models = bllossom_home / "models"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(models.glob(".*.partial")):
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "continues from there" in stderr and stderr.strip().count("\n") == 0, stderr
    assert [p.suffix for p in models.iterdir()] == [".partial"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("bllossom-8", "--quant", "Q4_K_M"), 2, "Did you mean bllossom-8b"),
        (("fixture/no-such-model",), 1, "no model fixture/no-such-model"),
        ((GGUF_REPO, "--file", "missing.gguf"), 1, "has no file 'missing.gguf'"),
        ((GGUF_REPO, "--quant", "Q2_K"), 2, "types there are: F16, Q4_K_M, Q8_0"),
        ((GATED_REPO, "--quant", "Q8_0"), 1, "hf auth login"),
        (("bllossom-vision-8b",), 2, "cannot be used by Bllossom Desktop"),
    ],
)
def test_bad_input_is_one_line(
    hub: LocalHub, bllossom_home: Path, args: tuple[str, ...], code: int, words: str
) -> None:
    result = _pull(hub, bllossom_home, *args)
    assert result.returncode == code, result.stderr
    assert words in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr
    models = bllossom_home / "models"
    assert not models.exists() or list(models.iterdir()) == []


def test_offline_is_one_line(hub: LocalHub, bllossom_home: Path) -> None:
    env = {**_env(hub, bllossom_home), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        _command("bllossom-8b"), capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1
    assert "HF_HUB_OFFLINE" in result.stderr and result.stderr.strip().count("\n") == 0
    assert hub.log == []


def test_convert_hub_id_offline_prints_only_the_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "bllossom_core.cli", "convert", "MLP-KTLim/tiny-llama"]
    result = subprocess.run(
        command,
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr  # no empty progress bars
    assert "internet connection" in result.stderr


GB = 10**9


def _machine(ram_gb: float, gpu_gb: float | None = None) -> HardwareInfo:
    gpus = () if gpu_gb is None else (GpuInfo(0, "Test GPU", int(gpu_gb * GB), int(gpu_gb * GB)),)
    return HardwareInfo(
        total_ram=int(ram_gb * GB),
        available_ram=int(ram_gb * GB),
        gpus=gpus,
        gpu_source="nvml" if gpus else "none",
        gpu_offload=bool(gpus),
        disk_free=1000 * GB,
        disk_path=Path("/models"),
        cpu_count=8,
    )


@pytest.mark.parametrize(
    ("machine", "row", "recommended"),
    [
        (_machine(64, 56), ("bllossom-70b", "Q4_K_M", "~42.7 GB", "GPU"), "bllossom-70b"),
        (_machine(64, 24), ("bllossom-70b", "Q4_K_M", "~42.7 GB", "part GPU"), "bllossom-8b"),
        (_machine(16), ("bllossom-8b", "Q4_K_M", "~4.9 GB", "CPU only"), "bllossom-8b"),
        (_machine(16), ("bllossom-70b", "Q4_K_M", "~42.7 GB", "too big"), "bllossom-8b"),
    ],
)
def test_list_shows_fit_for_the_machine(
    machine: HardwareInfo,
    row: tuple[str, ...],
    recommended: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(hardware, "probe_hardware", lambda folder=None: machine)
    assert main(["pull", "--list"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(row[0] + " "))
    cells = re.split(r"\s{2,}", line)
    assert cells[1:3] == [row[1], row[2]], line
    assert cells[4].startswith(row[3]), line
    assert f"Recommended: {recommended} " in out
    assert f"bllossom pull {recommended}" in out
    for unsupported in ("bllossom-r1-qwen-32b", "bllossom-vision-8b", "bllossom-aica-5b"):
        assert any(ln.startswith(unsupported) and "unsupported" in ln for ln in out.splitlines())


def test_list_refresh_reads_exact_sizes_from_the_hub(hub: LocalHub, bllossom_home: Path) -> None:
    from bllossom_core.catalog import find_entry

    official = find_entry("bllossom-8b").gguf_for("Q4_K_M")
    assert official is not None
    data = b"GGUF" + bytes(123_456_789 - 4)
    hub.add_repo(official.repo, {official.file: data}, commit=official.revision)
    result = subprocess.run(
        [*_command("--list", "--refresh")],
        capture_output=True, text=True, env=_env(hub, bllossom_home), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("bllossom-8b "))
    assert re.split(r"\s{2,}", line)[2] == "0.1 GB"  # exact now, so no "~"
    # the other repos are not on this hub: said once each, the shipped values are kept
    assert "Not refreshed (bllossom-70b): There is no model" in result.stdout
    assert re.search(r"^bllossom-70b\s+Q4_K_M\s+~42.7 GB", result.stdout, re.M)
