"""Conversions shared by the converter tests: each checkpoint is converted once."""

from __future__ import annotations

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
