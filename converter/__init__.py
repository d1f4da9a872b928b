"""Hugging Face Llama checkpoint to GGUF conversion (no Qt).

from converter import convert
result = convert("path/to/checkpoint", "model.gguf", quant="Q4_K_M",
                 progress=print, cancel=token)
print(result.verification.format())
"""

from converter._convert import ConversionResult, convert
from converter._progress import ProgressCallback, ProgressEvent
from converter._quantize import DEFAULT_QUANT, SUPPORTED_QUANTS
from converter._verify import (
    PROBE_TEXTS,
    VerificationReport,
    missing_verify_modules,
    verify_gguf,
)

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
