"""Hugging Face Llama checkpoint to GGUF conversion (no Qt).

from converter import convert
result = convert("path/to/checkpoint", "model.gguf", quant="Q4_K_M",
                 progress=print, cancel=token)
print(result.verification.format())

The names below are imported on first use, so that ``converter.command`` (which the
``bllossom`` CLI imports to list its options) does not pull in the whole pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from converter._convert import ConversionResult, convert
    from converter._progress import ProgressCallback, ProgressEvent
    from converter._quantize import DEFAULT_QUANT, SUPPORTED_QUANTS
    from converter._verify import (
        PROBE_TEXTS,
        VerificationReport,
        missing_verify_modules,
        verify_gguf,
    )

_HOMES = {
    "ConversionResult": "converter._convert",
    "convert": "converter._convert",
    "ProgressCallback": "converter._progress",
    "ProgressEvent": "converter._progress",
    "DEFAULT_QUANT": "converter._quantize",
    "SUPPORTED_QUANTS": "converter._quantize",
    "PROBE_TEXTS": "converter._verify",
    "VerificationReport": "converter._verify",
    "missing_verify_modules": "converter._verify",
    "verify_gguf": "converter._verify",
}

__all__ = [
    "DEFAULT_QUANT",
    "PROBE_TEXTS",
    "SUPPORTED_QUANTS",
    "ConversionResult",
    "ProgressCallback",
    "ProgressEvent",
    "VerificationReport",
    "convert",
    "missing_verify_modules",
    "verify_gguf",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'converter' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
