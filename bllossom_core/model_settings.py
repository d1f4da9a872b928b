"""How a local model is loaded: context size, GPU layers, threads, flash attention and
the KV-cache type. One check for every front end (CLI options, the app's model settings
panel, the server), one mapping onto :meth:`bllossom_core.engine.LocalEngine.load`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from bllossom_core.errors import InvalidSettingError

KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")
"""KV-cache element types llama.cpp supports on every backend; the quantized ones halve
or quarter the cache's memory and need flash attention (llama.cpp's rule for V)."""


@dataclass(frozen=True)
class ModelSettings:
    context_size: int | None = None
    """Tokens of context; ``None``: the model's trained length, at most 4,096."""
    gpu_layers: int | None = None
    """Layers on the GPU; ``None``: automatic (all that fit), ``-1``: all, ``0``: none."""
    threads: int | None = None
    """CPU threads; ``None``: one per physical core, as llama.cpp chooses."""
    flash_attention: bool = False
    kv_cache_type: str = "f16"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ModelSettings:
        """From saved JSON; unknown keys are ignored, wrong values give the defaults."""
        known = {f.name for f in fields(cls)}
        try:
            return check_model_settings(
                cls(**{k: v for k, v in (data or {}).items() if k in known})
            )
        except (TypeError, InvalidSettingError):
            return cls()

    def load_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`LocalEngine.load`."""
        return {
            "context_size": self.context_size,
            "gpu_layers": self.gpu_layers,
            "threads": self.threads,
            "flash_attention": self.flash_attention,
            "kv_cache_type": self.kv_cache_type,
        }


def check_model_settings(settings: ModelSettings) -> ModelSettings:
    """Refuse values llama.cpp cannot use, naming the allowed range (by CLI option)."""

    def refuse(option: str, value: object, allowed: str) -> InvalidSettingError:
        return InvalidSettingError(
            f"{option} must be {allowed}, not {value}.", option.lstrip("-").replace("-", "_")
        )

    def is_int(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if settings.context_size is not None and (
        not is_int(settings.context_size) or settings.context_size < 64
    ):
        raise refuse("--context-size", settings.context_size, "at least 64")
    if settings.gpu_layers is not None and (
        not is_int(settings.gpu_layers) or settings.gpu_layers < -1
    ):
        raise refuse("--gpu-layers", settings.gpu_layers, "-1 (all), 0 (none) or more")
    if settings.threads is not None and (not is_int(settings.threads) or settings.threads < 1):
        raise refuse("--threads", settings.threads, "at least 1")
    if settings.kv_cache_type not in KV_CACHE_TYPES:
        raise refuse(
            "--kv-cache-type", settings.kv_cache_type, "one of " + ", ".join(KV_CACHE_TYPES)
        )
    if settings.kv_cache_type != "f16" and not settings.flash_attention:
        raise InvalidSettingError(
            f"A {settings.kv_cache_type} KV cache needs flash attention: turn it on "
            "(--flash-attention), or keep the f16 cache.",
            "kv_cache_type",
        )
    return settings
