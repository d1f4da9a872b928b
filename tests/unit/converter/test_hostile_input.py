"""Hostile and broken checkpoints: each case a one-line error, in bounded memory and time.

Every case runs the converter in a child process limited to 2 GiB of address space and
two minutes, so that a regression (a 10^9-entry list built from config.json, a read of
/dev/zero, a parser recursing through ``[[[[...``) fails the test instead of taking the
test runner down with it.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
MEMORY_LIMIT = 2 * 2**30
DEEP = 100_000  # far past Python's recursion limit

_CHILD = r"""
import json, sys
from bllossom_core.errors import BllossomError
from converter import convert
source, out, quant = sys.argv[1:4]
try:
    convert(source, out, quant, verify_tokenizer=False)
except BllossomError as exc:
    print(json.dumps({"class": type(exc).__name__, "code": exc.code.value, "message": str(exc)}))
    sys.exit(3)
print(json.dumps({"converted": out}))
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def convert_bounded(source: Path, out: Path, quant: str = "F16") -> dict[str, Any]:
    """Convert in a child with 2 GiB of address space; its error as a dict."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source), str(out), quant],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        preexec_fn=_limit_memory,
    )
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert result.returncode in (0, 3), (result.returncode, result.stderr[-4000:])
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def linked_copy(source: Path, folder: Path) -> Path:
    """A checkpoint folder of symbolic links to ``source``'s files (cheap to make; a
    test replaces the one file it breaks)."""
    folder.mkdir(parents=True)
    for file in source.iterdir():
        if file.is_file():
            (folder / file.name).symlink_to(file)
    return folder


def replace(folder: Path, name: str, content: str | bytes) -> None:
    target = folder / name
    target.unlink(missing_ok=True)
    if isinstance(content, str):
        target.write_text(content, encoding="utf-8")
    else:
        target.write_bytes(content)


def edit_config(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    replace(folder, "config.json", json.dumps(config))


def rewrite_header(folder: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Replace model.safetensors with a copy whose JSON header ``change`` rewrote
    (returning the new header, or raw header bytes)."""
    data = (folder / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    new = change(header)
    raw = new if isinstance(new, bytes) else json.dumps(new).encode()
    replace(folder, "model.safetensors", struct.pack("<Q", len(raw)) + raw + data[8 + length :])


def _fails(outcome: dict[str, Any], cls: str, code: str, *needles: str) -> None:
    assert "converted" not in outcome, f"converted although it should have failed: {outcome}"
    assert (outcome["class"], outcome["code"]) == (cls, code), outcome
    assert "\n" not in outcome["message"]
    for needle in needles:
        assert needle in outcome["message"], f"{needle!r} not in {outcome['message']!r}"


@pytest.fixture
def spm(make_checkpoint: Callable[..., Path], tmp_path: Path) -> Path:
    return linked_copy(make_checkpoint(family="llama2-spm"), tmp_path / "spm")


@pytest.fixture
def bpe(make_checkpoint: Callable[..., Path], tmp_path: Path) -> Path:
    return linked_copy(make_checkpoint(family="llama3-bpe"), tmp_path / "bpe")


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda config: config.__setitem__(key, value)


# --------------------------------------------------------------------------- config.json

CONFIG_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, tuple[str, ...]]] = [
    # before: a list of 10^9 padding tokens was built before the embedding was checked
    (
        "vocab_size_1e9",
        _set("vocab_size", 10**9),
        "checkpoint_invalid",
        ("vocab_size is 1,000,000,000", "has 32,000 there"),
    ),
    # before: gguf's tensor-name map was built for 10^9 layers
    (
        "layers_1e9",
        _set("num_hidden_layers", 10**9),
        "checkpoint_invalid",
        ("num_hidden_layers is 1,000,000,000", "hold 2 layers"),
    ),
    # before: exit 0 and a GGUF that says feed_forward_length = 10^9
    (
        "intermediate_1e9",
        _set("intermediate_size", 10**9),
        "checkpoint_invalid",
        ("intermediate_size is 1,000,000,000", "has 512 there"),
    ),
    (
        "intermediate_wrong",
        _set("intermediate_size", 1024),
        "checkpoint_invalid",
        ("intermediate_size is 1,024", "mlp"),
    ),
    # before: struct.error writing a uint32
    (
        "context_1e30",
        _set("max_position_embeddings", 10**30),
        "checkpoint_invalid",
        ("max_position_embeddings is 1,000,000,000,000,000,000,000,000,000,000",),
    ),
    # before: ValueError from float("abc")
    (
        "eps_abc",
        _set("rms_norm_eps", "abc"),
        "checkpoint_invalid",
        ('rms_norm_eps is "abc" (a JSON string)',),
    ),
    ("eps_negative", _set("rms_norm_eps", -1), "checkpoint_invalid", ("rms_norm_eps is -1",)),
    ("theta_inf", _set("rope_theta", 1e300), "checkpoint_invalid", ("rope_theta is 1e+300",)),
    (
        "rope_scaling_string",
        _set("rope_scaling", "abc"),
        "checkpoint_invalid",
        ("rope_scaling is a JSON string",),
    ),
    (
        "rope_yarn",
        _set("rope_scaling", {"rope_type": "yarn", "factor": 4.0}),
        "checkpoint_unsupported",
        ('rope scaling type "yarn" is not supported',),
    ),
    (
        "kv_heads_not_dividing",
        _set("num_key_value_heads", 3),
        "checkpoint_invalid",
        ("not a multiple of num_key_value_heads (3)",),
    ),
    (
        "kv_heads_wrong",
        _set("num_key_value_heads", 4),
        "checkpoint_invalid",
        ("k_proj",),
    ),
    (
        "gelu",
        _set("hidden_act", "gelu"),
        "checkpoint_unsupported",
        ('hidden_act is "gelu"',),
    ),
]


@pytest.mark.parametrize(
    ("change", "code", "needles"),
    [case[1:] for case in CONFIG_CASES],
    ids=[case[0] for case in CONFIG_CASES],
)
def test_config_numbers_checked_against_weights(
    change: Callable[[dict[str, Any]], None],
    code: str,
    needles: tuple[str, ...],
    spm: Path,
    tmp_path: Path,
) -> None:
    edit_config(spm, change)
    _fails(convert_bounded(spm, tmp_path / "m.gguf"), "CheckpointError", code, *needles)
    assert not (tmp_path / "m.gguf").exists()


def test_huge_hidden_size_with_llama3_rope(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: a 7.45 GiB rope table computed from hidden_size / heads."""
    source = make_checkpoint(family="llama3-bpe", tied_embeddings=True, rope_scaling=True)
    folder = linked_copy(source, tmp_path / "rope")
    edit_config(folder, lambda c: (c.__setitem__("hidden_size", 4 * 10**9), c.pop("head_dim", 0)))
    _fails(
        convert_bounded(folder, tmp_path / "m.gguf"),
        "CheckpointError",
        "checkpoint_invalid",
        "hidden_size is 4,000,000,000",
    )


def test_llama3_rope_with_equal_frequency_factors(bpe: Path, tmp_path: Path) -> None:
    """Before: ZeroDivisionError in the rope table."""
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0}
    edit_config(bpe, _set("rope_scaling", {**scaling, "high_freq_factor": 4.0}))
    _fails(
        convert_bounded(bpe, tmp_path / "m.gguf"),
        "CheckpointError",
        "checkpoint_invalid",
        "high_freq_factor (4) must be larger than low_freq_factor (4)",
    )


def test_integer_of_five_thousand_digits(spm: Path, tmp_path: Path) -> None:
    """Before: Python's int-size ValueError escaped as a traceback."""
    config = json.loads((spm / "config.json").read_text())
    config["vocab_size"] = "NUMBER"
    replace(spm, "config.json", json.dumps(config).replace('"NUMBER"', "9" * 5000))
    _fails(
        convert_bounded(spm, tmp_path / "m.gguf"),
        "CheckpointError",
        "checkpoint_invalid",
        "config.json is not valid JSON",
    )


# --------------------------------------------------------------------------- safetensors

_DOWN = "model.layers.0.mlp.down_proj.weight"


def _negative_shape(header: dict[str, Any]) -> dict[str, Any]:
    rows, cols = header[_DOWN]["shape"]
    header[_DOWN]["shape"] = [-rows, -cols]  # the same byte count as the real shape
    return header


def _reversed_offsets(header: dict[str, Any]) -> dict[str, Any]:
    rows, cols = header[_DOWN]["shape"]
    begin, end = header[_DOWN]["data_offsets"]
    header[_DOWN]["shape"] = [-rows, cols]
    header[_DOWN]["data_offsets"] = [end, begin]
    return header


def _zero_dimension(header: dict[str, Any]) -> dict[str, Any]:
    begin, _ = header[_DOWN]["data_offsets"]
    header[_DOWN]["shape"] = [0, 10**15]
    header[_DOWN]["data_offsets"] = [begin, begin]
    return header


def _float_shape(header: dict[str, Any]) -> dict[str, Any]:
    rows, cols = header[_DOWN]["shape"]
    header[_DOWN]["shape"] = [rows + 0.5, cols]
    return header


def _overlap(header: dict[str, Any]) -> dict[str, Any]:
    names = [n for n in header if n != "__metadata__"]
    first, second = names[0], names[1]
    size = header[second]["data_offsets"][1] - header[second]["data_offsets"][0]
    start = header[first]["data_offsets"][0]
    header[second]["data_offsets"] = [start, start + size]
    return header


def _nested(header: dict[str, Any]) -> bytes:
    return b'{"__metadata__": ' + b"[" * DEEP + b"]" * DEEP + b"}"


HEADER_CASES = [
    ("negative_shape", _negative_shape, ("has shape [-256, -512]",)),
    ("reversed_offsets", _reversed_offsets, ("has shape [-256, 512]",)),
    ("zero_dimension", _zero_dimension, ("has shape [0, 1000000000000000]",)),
    ("float_shape", _float_shape, ("a shape of whole numbers",)),
    ("overlap", _overlap, ("overlap",)),
    ("nested", _nested, ("the safetensors header", "nests its JSON more than 64 levels")),
]


@pytest.mark.parametrize(
    ("change", "needles"), [c[1:] for c in HEADER_CASES], ids=[c[0] for c in HEADER_CASES]
)
def test_hostile_safetensors_headers(
    change: Callable[[dict[str, Any]], Any], needles: tuple[str, ...], spm: Path, tmp_path: Path
) -> None:
    rewrite_header(spm, change)
    _fails(
        convert_bounded(spm, tmp_path / "m.gguf"),
        "CheckpointError",
        "checkpoint_invalid",
        "model.safetensors",
        *needles,
    )


# --------------------------------------------------------------------------- JSON files

NESTED = '{"a": ' + "[" * DEEP + "]" * DEEP + "}"


@pytest.mark.parametrize(
    ("family", "file", "cls", "code"),
    [
        ("spm", "config.json", "CheckpointError", "checkpoint_invalid"),
        ("spm", "tokenizer_config.json", "TokenizerError", "tokenizer_invalid"),
        ("spm", "special_tokens_map.json", "TokenizerError", "tokenizer_invalid"),
        ("bpe", "tokenizer.json", "TokenizerError", "tokenizer_invalid"),
        ("bpe", "tokenizer_config.json", "TokenizerError", "tokenizer_invalid"),
    ],
)
def test_deeply_nested_json(
    family: str, file: str, cls: str, code: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Before: RecursionError tracebacks."""
    folder: Path = request.getfixturevalue(family)
    replace(folder, file, NESTED)
    _fails(convert_bounded(folder, tmp_path / "m.gguf"), cls, code, file, "64 levels")


@pytest.mark.parametrize("file", ["tokenizer_config.json", "tokenizer.model", "config.json"])
def test_file_linked_to_dev_zero(file: str, spm: Path, tmp_path: Path) -> None:
    """Before: tokenizer_config.json -> /dev/zero was read until memory ran out."""
    (spm / file).unlink()
    (spm / file).symlink_to("/dev/zero")
    outcome = convert_bounded(spm, tmp_path / "m.gguf")
    assert "converted" not in outcome
    assert file in outcome["message"] and "is a device, not a regular file" in outcome["message"]


def test_fifo_tokenizer_config_does_not_hang(spm: Path, tmp_path: Path) -> None:
    (spm / "tokenizer_config.json").unlink()
    os.mkfifo(spm / "tokenizer_config.json")
    _fails(
        convert_bounded(spm, tmp_path / "m.gguf"),
        "TokenizerError",
        "tokenizer_invalid",
        "is a named pipe",
    )


def test_oversized_json_is_refused_before_reading(spm: Path, tmp_path: Path) -> None:
    (spm / "special_tokens_map.json").unlink()  # a link into the shared fixture cache
    with open(spm / "special_tokens_map.json", "w") as f:
        f.write("{}")
        f.truncate(64 * 2**20)  # sparse: 64 MiB that take no disk space
    _fails(
        convert_bounded(spm, tmp_path / "m.gguf"),
        "TokenizerError",
        "tokenizer_invalid",
        "special_tokens_map.json is larger than 16 MiB",
    )


def test_shard_outside_the_folder_is_refused(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_checkpoint(family="llama2-spm", layout="sharded", dtype="float16")
    folder = linked_copy(source, tmp_path / "sharded")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    name = next(iter(index["weight_map"]))
    index["weight_map"][name] = "../../../../../../dev/zero"
    replace(folder, "model.safetensors.index.json", json.dumps(index))
    _fails(
        convert_bounded(folder, tmp_path / "m.gguf"),
        "CheckpointError",
        "checkpoint_invalid",
        "shard file names in the same folder",
    )
