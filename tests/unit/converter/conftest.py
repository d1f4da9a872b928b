"""Shared converter fixtures: conversions done once, and writable copies of checkpoints."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from converter import ConversionResult, convert
from tests.fixtures.checkpoints import CheckpointSpec, checkpoint


@pytest.fixture(scope="session")
def converted(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., tuple[Path, ConversionResult]]:
    """``converted(quant, **spec_fields)`` -> (checkpoint folder, result), cached."""
    cache: dict[tuple[object, ...], tuple[Path, ConversionResult]] = {}
    root = tmp_path_factory.mktemp("converted")

    def get(quant: str, **fields: object) -> tuple[Path, ConversionResult]:
        key = (quant, *sorted(fields.items()))
        if key not in cache:
            spec = CheckpointSpec(**fields)  # type: ignore[arg-type]
            source = checkpoint(spec)
            out = root / f"{spec.name}-{quant}.gguf"
            cache[key] = (source, convert(source, out, quant, verify_tokenizer=True))
        return cache[key]

    return get


@pytest.fixture
def spm_copy(make_checkpoint: Callable[..., Path], tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(make_checkpoint(family="llama2-spm"), folder)
    return folder


@pytest.fixture
def sharded_copy(make_checkpoint: Callable[..., Path], tmp_path: Path) -> Path:
    folder = tmp_path / "sharded"
    source = make_checkpoint(family="llama2-spm", layout="sharded", dtype="float16")
    shutil.copytree(source, folder)
    return folder


@pytest.fixture
def bpe_copy(make_checkpoint: Callable[..., Path], tmp_path: Path) -> Path:
    folder = tmp_path / "bpe"
    shutil.copytree(make_checkpoint(family="llama3-bpe"), folder)
    return folder
