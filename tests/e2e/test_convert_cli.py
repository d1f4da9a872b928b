"""``bllossom convert`` as users run it: a real process, exit codes, one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf import GGUFReader

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _bllossom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "bllossom_core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_convert_default_q4_k_m_with_verify(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_checkpoint(family="llama2-spm-ko")
    out = tmp_path / "model.gguf"
    result = _bllossom("convert", str(source), "-o", str(out), "--verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Tokenizer parity: 14/14 probe texts identical" in result.stdout
    assert "mean KL" in result.stdout and "top-1 agreement" in result.stdout
    assert "Convert" in result.stderr and "Quantize" in result.stderr  # progress bars
    assert GGUFReader(out).fields["general.file_type"].contents() == 15  # Q4_K_M
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]

    again = _bllossom("convert", str(source), "-o", str(out), "--quiet", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0
    assert "already exists" in again.stderr and "--force" in again.stderr


def test_quiet_f16_to_default_name(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    source = make_checkpoint(family="llama2-spm")
    result = _bllossom("convert", str(source), "--quant", "f16", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / f"{source.name}-F16.gguf").is_file()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["convert", "{missing}"], 1, "not found"),
        (["convert", "{source}", "--quant", "Q9"], 2, "Unknown quantization type"),
        (["convert", "some-org/some-model"], 1, "needs an internet connection"),
    ],
)
def test_errors_are_one_line(
    args: list[str],
    code: int,
    needle: str,
    make_checkpoint: Callable[..., Path],
    tmp_path: Path,
) -> None:
    source = make_checkpoint(family="llama2-spm")
    filled = [a.format(missing=tmp_path / "missing", source=source) for a in args]
    result = _bllossom(*filled, cwd=tmp_path)
    assert result.returncode == code
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_output_cannot_replace_the_checkpoint(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "ckpt"
    shutil.copytree(make_checkpoint(family="llama2-spm"), source)
    weights = source / "model.safetensors"
    original = weights.read_bytes()
    result = _bllossom(
        "convert", str(source), "-o", str(weights), "--force", "--quant", "F16", "-q", cwd=tmp_path
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "does not end in .gguf" in result.stderr and "Traceback" not in result.stderr
    assert weights.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_output_into_existing_folder_like_cp(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_checkpoint(family="llama2-spm")
    (tmp_path / "models").mkdir()
    result = _bllossom("convert", str(source), "-o", "models", "--quant", "F16", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "models" / f"{source.name}-F16.gguf"
    assert f"Wrote {written}" in result.stdout
    assert [p.name for p in (tmp_path / "models").iterdir()] == [written.name]
    assert GGUFReader(written).fields["general.file_type"].contents() == 1  # F16

    missing = _bllossom("convert", str(source), "-o", "new/m.gguf", "-q", cwd=tmp_path)
    assert missing.returncode == 1
    assert f"mkdir -p {tmp_path / 'new'}" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_malformed_tokenizer_config_is_one_line(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "ckpt"
    shutil.copytree(make_checkpoint(family="llama2-spm"), source)
    (source / "tokenizer_config.json").write_text('{"added_tokens_decoder": {"abc": {}}}')
    result = _bllossom("convert", str(source), "-o", "m.gguf", "-q", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "tokenizer_config.json" in result.stderr and '"abc"' in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_imatrix_quant_explained(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    source = make_checkpoint(family="llama2-spm")
    result = _bllossom("convert", str(source), "--quant", "IQ3_XS", cwd=tmp_path)
    assert result.returncode == 2
    assert "IQ3_XS is not offered" in result.stderr and "importance matrix" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
