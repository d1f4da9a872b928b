"""Checking config.json before anything is sized from it.

config.json is a small text file anyone can edit; the weights are what the model really
is. Every number the converter uses is checked here in two steps: its type and range
(:func:`check_config`), then against the shapes of the tensors, which are read from the
weight files' headers and so cannot lie about their own size
(:func:`check_against_weights`). Only then are vocabularies padded, name maps built or
rope tables computed, so a one-line edit (``"vocab_size": 1000000000``) is refused with a
message instead of exhausting memory or producing a GGUF that says the wrong thing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import gguf

from bllossom_core.errors import CheckpointError, ErrorCode
from converter._json import json_type, show_value

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
REQUIRED_SIZES = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "vocab_size",
)
MAX_CONTEXT = 2**32 - 1  # stored as a GGUF uint32
MAX_LAYERS = 1024  # the largest Llama (405B) has 126; gguf's name map grows per layer
_F32_MAX = 3.4028234663852886e38  # rope bases and factors are stored as GGUF float32
_NO_SCALING = ("", "default", "dynamic")  # llama.cpp converts "dynamic" as plain rope
_ROPE_TYPES = ("linear", "llama3")
_LAYER_NUMBER = re.compile(r"\.([0-9]{1,9})\.")
_FIX = "Fix that value in config.json or download the file again."


class _Shaped(Protocol):
    @property
    def shape(self) -> tuple[int, ...]: ...


def _error(path: Path, message: str, code: ErrorCode = ErrorCode.CHECKPOINT_INVALID) -> None:
    raise CheckpointError(f"{path}: {message}", hint=_FIX, path=path, code=code)


def check_config(config: dict[str, Any], path: Path) -> None:
    """Architecture, presence, types and ranges of every config value the converter uses."""
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not architectures:
        architectures = [config.get("model_type", "unknown")]
    arch = architectures[0]
    arch_text = repr(arch[:80]) if isinstance(arch, str) else show_value(arch)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise CheckpointError(
            f"{path}: architecture {arch_text} is not supported; only Llama "
            f"checkpoints ({', '.join(SUPPORTED_ARCHITECTURES)}) can be converted.",
            path=path,
            code=ErrorCode.CHECKPOINT_UNSUPPORTED,
        )
    missing = [key for key in REQUIRED_SIZES if key not in config]
    if missing:
        raise CheckpointError(
            f"{path} lacks {', '.join(missing)}; it is not a complete Llama configuration.",
            hint="Download config.json again.",
            path=path,
            code=ErrorCode.CHECKPOINT_INVALID,
        )
    for key in REQUIRED_SIZES:
        _whole(config, key, path)
    for key in ("num_key_value_heads", "head_dim"):
        if config.get(key) is not None:
            _whole(config, key, path)
    if config.get("max_position_embeddings") is not None:
        _whole(config, "max_position_embeddings", path, maximum=MAX_CONTEXT)
    if "rms_norm_eps" in config:
        _number(config, "rms_norm_eps", path, below=1.0)
    activation = config.get("hidden_act", "silu")
    if activation != "silu":  # llama.cpp's Llama graph hard-codes SiLU
        _error(
            path,
            f"hidden_act is {show_value(activation)}; llama.cpp runs Llama models with "
            '"silu" only, so this model would convert into a different one.',
            ErrorCode.CHECKPOINT_UNSUPPORTED,
        )
    _check_rope(config, path)


def _whole(config: Mapping[str, Any], key: str, path: Path, maximum: int | None = None) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        _error(
            path,
            f"{key} is {show_value(value)} (a JSON {json_type(value)}), but it must be a "
            "positive whole number such as 4096.",
        )
    if maximum is not None and value > maximum:
        _error(path, f"{key} is {value:,}, more than the largest value allowed, {maximum:,}.")
    return int(value)


def _number(config: Mapping[str, Any], key: str, path: Path, below: float = _F32_MAX) -> float:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        _error(
            path,
            f"{key} is {show_value(value)} (a JSON {json_type(value)}), but it must be a "
            "positive number.",
        )
    number = float(value)
    if not (math.isfinite(number) and 0 < number < below):
        _error(path, f"{key} is {show_value(value)}, but it must be above 0 and below {below:g}.")
    return number


def _check_rope(config: dict[str, Any], path: Path) -> None:
    """rope_theta and the rope scaling object (``rope_scaling`` or, in newer
    transformers, ``rope_parameters``), as the writer and the rope table read them."""
    for key in ("rope_parameters", "rope_scaling"):
        params = config.get(key)
        if params is None:
            continue
        if not isinstance(params, dict):
            _error(path, f"{key} is a JSON {json_type(params)}, but it must be an object or null.")
        break
    else:
        params = {}
    merged = {"rope_theta": config.get("rope_theta", 10000.0), **params}
    _number(merged, "rope_theta", path)
    kind = merged.get("rope_type", merged.get("type", ""))
    if not isinstance(kind, str):
        _error(path, f"the rope type is {show_value(kind)}, but it must be a string.")
    if kind.lower() in _NO_SCALING:
        return
    if kind.lower() not in _ROPE_TYPES:
        _error(
            path,
            f"rope scaling type {show_value(kind)} is not supported; the converter handles "
            f"{', '.join(_ROPE_TYPES)} and plain rope.",
            ErrorCode.CHECKPOINT_UNSUPPORTED,
        )
    for key in ("factor", "low_freq_factor", "high_freq_factor"):
        if merged.get(key) is not None:
            _number(merged, key, path)
    if merged.get("original_max_position_embeddings") is not None:
        _whole(merged, "original_max_position_embeddings", path, maximum=MAX_CONTEXT)
    low = float(merged.get("low_freq_factor") or 1.0)
    high = float(merged.get("high_freq_factor") or 4.0)
    if kind.lower() == "llama3" and high <= low:
        _error(
            path,
            f"high_freq_factor ({high:g}) must be larger than low_freq_factor ({low:g}) for "
            "llama3 rope scaling.",
        )


# --------------------------------------------------------------------------- weights


def _layer_count(names: list[str], config_path: Path) -> int:
    """How many transformer blocks the tensor names hold (numbered 0, 1, ...)."""
    numbers = set()
    for name in names:
        found = _LAYER_NUMBER.search(name)
        if found:
            numbers.add(int(found.group(1)))
    count = max(numbers) + 1 if numbers else 0
    if count > MAX_LAYERS:
        raise CheckpointError(
            f"The weights of {config_path.parent} number their layers up to {count - 1:,}; "
            f"more than {MAX_LAYERS:,} layers is no Llama model the converter supports.",
            path=config_path.parent,
            code=ErrorCode.CHECKPOINT_UNSUPPORTED,
        )
    # A block has nine tensors; numbers beyond the tensor count mean names skip blocks.
    if count > len(names) or numbers != set(range(count)):
        absent = min(set(range(count)) - numbers) if count <= len(names) else len(names)
        raise CheckpointError(
            f"The weights of {config_path.parent} number their layers up to {count - 1:,} "
            f"but hold no layer {absent:,}; the weight files are incomplete or damaged.",
            hint="Download all weight files again.",
            path=config_path.parent,
            code=ErrorCode.CHECKPOINT_INVALID,
        )
    return count


def _expected_shapes(config: Mapping[str, Any]) -> dict[str, tuple[tuple[str, int], ...]]:
    """GGUF base name (``attn_q``…) -> the shape the HF tensor must have, each dimension
    with the config expression it comes from."""
    hidden = ("hidden_size", int(config["hidden_size"]))
    ffn = ("intermediate_size", int(config["intermediate_size"]))
    vocab = ("vocab_size", int(config["vocab_size"]))
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_head)
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // n_head)
    q_rows = ("num_attention_heads × head_dim", n_head * head_dim)
    kv_rows = ("num_key_value_heads × head_dim", n_kv * head_dim)
    return {
        "token_embd": (vocab, hidden),
        "output": (vocab, hidden),
        "output_norm": (hidden,),
        "attn_norm": (hidden,),
        "ffn_norm": (hidden,),
        "attn_q": (q_rows, hidden),
        "attn_k": (kv_rows, hidden),
        "attn_v": (kv_rows, hidden),
        "attn_output": (hidden, q_rows),
        "ffn_gate": (ffn, hidden),
        "ffn_up": (ffn, hidden),
        "ffn_down": (hidden, ffn),
    }


def _check_heads(config: Mapping[str, Any], path: Path) -> None:
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_head)
    hidden = int(config["hidden_size"])
    if n_head % n_kv:
        _error(
            path,
            f"num_attention_heads ({n_head}) is not a multiple of num_key_value_heads "
            f"({n_kv}); the attention layout is impossible.",
        )
    if config.get("head_dim") is None and hidden % n_head:
        _error(
            path,
            f"hidden_size ({hidden}) is not a multiple of num_attention_heads ({n_head}) "
            "and there is no head_dim; the attention layout is impossible.",
        )
    head_dim = int(config.get("head_dim") or hidden // n_head)
    if head_dim % 2:
        _error(path, f"the head size is {head_dim}, but rotary embeddings need an even size.")


def check_against_weights(
    config: dict[str, Any], tensors: Mapping[str, _Shaped], config_path: Path
) -> None:
    """Every size in config.json agrees with the weights' real shapes.

    Runs before anything is allocated from config numbers: the layer count before a
    tensor-name map of that many layers is built, vocab_size before the vocabulary is
    padded to it, the head layout before the rope table is computed.
    """
    _check_heads(config, config_path)
    names = list(tensors)
    layers = _layer_count(names, config_path)
    declared = int(config["num_hidden_layers"])
    if declared != layers:
        _error(
            config_path,
            f"num_hidden_layers is {declared:,}, but the weights hold {layers:,} layers; "
            "config.json and the weights do not belong together.",
        )
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    expected = _expected_shapes(config)
    seen_embedding = False
    for name in names:
        mapped = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            continue  # not a Llama tensor: the tensor plan refuses it by name
        parts = mapped.split(".")  # "blk.0.attn_q.weight" or "token_embd.weight"
        base = parts[2] if parts[0] == "blk" else parts[0]
        want = expected.get(base)
        if want is None:
            continue
        seen_embedding = seen_embedding or base == "token_embd"
        if name.endswith(".bias"):
            want = want[:1]
        _compare(name, tensors[name].shape, want, config, config_path)
    if not seen_embedding:
        raise CheckpointError(
            f"The weights of {config_path.parent} have no token embedding "
            "(model.embed_tokens.weight); they are incomplete.",
            hint="Download all weight files again.",
            path=config_path.parent,
            code=ErrorCode.CHECKPOINT_INVALID,
        )


def _compare(
    name: str,
    shape: tuple[int, ...],
    want: tuple[tuple[str, int], ...],
    config: Mapping[str, Any],
    config_path: Path,
) -> None:
    expected = tuple(size for _, size in want)
    if shape == expected:
        return
    described = " × ".join(f"{key} ({size:,})" for key, size in want)
    if len(shape) == len(want):
        for (key, size), real in zip(want, shape, strict=True):
            if size != real:
                value = f"{key} is {int(config[key]):,}" if key in config else f"{key} is {size:,}"
                _error(
                    config_path,
                    f"{value}, but tensor {name!r} has {real:,} there (shape "
                    f"{list(shape)}, expected {described}); config.json and the weights "
                    "do not belong together.",
                )
    _error(
        config_path,
        f"tensor {name!r} has shape {list(shape)}, but config.json implies {described}; "
        "config.json and the weights do not belong together.",
    )
