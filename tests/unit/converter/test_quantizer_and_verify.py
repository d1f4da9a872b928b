"""The quantizer's failures, stale part files, legacy .bin weights, and verification that
cannot run: each with the error code the front ends word it by."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFReader

from bllossom_core.errors import (
    CheckpointError,
    DiskFullError,
    ErrorCode,
    InputError,
    StorageError,
)
from converter import ConversionResult, convert
from converter._parts import part_path, remove_stale_parts
from converter._progress import Reporter
from converter._quantize import quant_type, run_quantizer

ROOT = Path(__file__).resolve().parents[3]
Usage = namedtuple("Usage", "total used free")


# --------------------------------------------------------------------------- the quantizer


@pytest.fixture
def f16_gguf(converted: Callable[..., tuple[Path, ConversionResult]]) -> Path:
    return converted("F16", family="llama2-spm")[1].output


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("free", [0, 10**12])
def test_quantizer_out_of_space(free: int, f16_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp says only "basic_ios::clear: iostream error" when a write fails (here
    really: /dev/full answers ENOSPC); the folder's free space says whether it was full."""
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**12, 10**12 - free, free))
    quant = quant_type("Q4_0")
    with pytest.raises(StorageError) as caught:
        run_quantizer(f16_gguf, Path("/dev/full"), quant, 10 * 2**20, Reporter(None, None))
    error = caught.value
    message = str(error)
    assert "\n" not in message and "Q4_0" in message and "nothing was written" in message
    if free == 0:
        assert isinstance(error, DiskFullError) and error.code is ErrorCode.DISK_FULL
        assert "The disk holding /dev ran out of space" in message
        assert "Free at least 0.01 GiB in /dev" in message and "-o" in message
        assert error.path == Path("/dev")
    else:
        assert not isinstance(error, DiskFullError) and error.code is ErrorCode.STORAGE_FAILED
        assert "could not write the Q4_0 file in /dev" in message


def test_quantizer_failure_carries_its_code(tmp_path: Path) -> None:
    """Before: a plain StorageError (the desktop said "conversations could not be saved")."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 4096)
    with pytest.raises(StorageError) as caught:
        run_quantizer(broken, tmp_path / "q.part", quant_type("Q4_0"), 2**20, Reporter(None, None))
    assert caught.value.code is ErrorCode.QUANTIZER_FAILED
    assert "llama.cpp could not quantize to Q4_0" in str(caught.value)
    assert "\n" not in str(caught.value)


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_a_stop_while_the_quantizer_starts_still_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: SIGTERM while Popen waited for the child's exec raised out of Popen, so
    there was no process to kill; CI saw a quantizer outlive its converter."""
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen_then_stop(_command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen([sys.executable, "-c", "import time; time.sleep(120)"], **kwargs)
        started.append(child)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before this frame returns
        return child

    monkeypatch.setattr(subprocess, "Popen", popen_then_stop)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with pytest.raises(_Stop):
            run_quantizer(tmp_path / "in.gguf", tmp_path / "out.part", quant_type("Q4_0"),
                          2**20, Reporter(None, None))  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    (child,) = started
    if child.poll() is None:
        child.kill()
        child.wait()
        pytest.fail("the quantizer child outlived the stop")


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_parts_of_dead_processes_are_removed(spm_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "m.gguf"
    out.parent.mkdir()
    dead, alive = _dead_pid(), os.getppid()
    stale = [part_path(out, "f32", dead), part_path(out, "q4_0", dead)]
    live = part_path(out, "f32", alive)
    other = part_path(out.with_name("other.gguf"), "f32", dead)
    for file in (*stale, live, other):
        file.write_bytes(b"x" * 100)
    assert stale[0].name == f".m.gguf.{dead}.f32.part"
    result = convert(spm_copy, out, "Q4_0", verify_tokenizer=False)
    assert result.output == out
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == sorted(["m.gguf", live.name, other.name]), names
    assert remove_stale_parts(out) == []


def test_parts_are_named_for_the_output_and_process(
    spm_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from converter import _convert

    seen: list[str] = []
    real = _convert.run_quantizer

    def spy(source: Path, target: Path, *args: Any) -> None:
        seen.extend(sorted(p.name for p in target.parent.iterdir()))
        real(source, target, *args)

    monkeypatch.setattr(_convert, "run_quantizer", spy)
    convert(spm_copy, tmp_path / "m.gguf", "Q4_0", verify_tokenizer=False)
    pid = os.getpid()
    assert [n for n in seen if n.endswith(".part")] == [
        f".m.gguf.{pid}.f32.part",
        f".m.gguf.{pid}.q4_0.part",
    ]


# --------------------------------------------------------------------------- legacy .bin


def _legacy_copy(source: Path, folder: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    shutil.copytree(source, folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    return folder


def test_legacy_pytorch_bin_converts_like_safetensors(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: "cannot be loaded safely (mmap can only be used with files saved with
    torch.save(_use_new_zipfile_serialization=True)...)" although the README promises it."""
    import zipfile

    source = make_checkpoint(family="llama2-spm")
    legacy = _legacy_copy(source, tmp_path / "legacy")
    assert not zipfile.is_zipfile(legacy / "pytorch_model.bin")
    reference = convert(source, tmp_path / "st.gguf", "F16", verify_tokenizer=False).output
    result = convert(legacy, tmp_path / "bin.gguf", "F16", verify_tokenizer=True)
    assert result.verification is not None and result.verification.tokenizer_ok
    expected = {t.name: np.array(t.data) for t in GGUFReader(reference).tensors}
    actual = {t.name: np.array(t.data) for t in GGUFReader(result.output).tensors}
    assert expected.keys() == actual.keys()
    for name, data in expected.items():
        np.testing.assert_array_equal(actual[name], data, err_msg=name)


def test_legacy_pickle_with_code_is_still_refused(spm_copy: Path, tmp_path: Path) -> None:
    import torch

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (spm_copy / "model.safetensors").unlink()
    torch.save({"x": Evil()}, spm_copy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="cannot be loaded safely") as caught:
        convert(spm_copy, tmp_path / "m.gguf", "F16", verify_tokenizer=False)
    assert caught.value.code is ErrorCode.CHECKPOINT_INVALID
    assert not (tmp_path / "pwned").exists()


def test_pytorch_bin_without_torch_says_what_to_install(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_checkpoint(family="llama2-spm-ko", layout="bin", dtype="float16")
    code = (
        "import sys, json; sys.modules['torch'] = None\n"
        "from converter import convert\n"
        "from bllossom_core.errors import BllossomError\n"
        "try:\n"
        f"    convert({str(source)!r}, {str(tmp_path / 'm.gguf')!r}, 'F16')\n"
        "except BllossomError as exc:\n"
        "    print(json.dumps([exc.code.value, str(exc)]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert "Traceback" not in done.stderr, done.stderr
    code_value, message = json.loads(done.stdout)
    assert code_value == "checkpoint_unsupported"
    assert "needs torch" in message and "safetensors" in message


# --------------------------------------------------------------------------- verification


def test_verify_without_the_extra_is_refused_before_converting(
    spm_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as in a slim install
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError) as caught:
        convert(spm_copy, out / "m.gguf", "F16", verify=True)
    assert caught.value.code is ErrorCode.VERIFY_UNAVAILABLE
    message = str(caught.value)
    assert "'verify' extra" in message and "transformers missing" in message
    assert "pip install 'bllossom-desktop[verify]'" in message
    assert list(out.iterdir()) == []


def test_verify_that_cannot_run_keeps_the_conversion(spm_copy: Path, tmp_path: Path) -> None:
    """transformers cannot load this checkpoint (an unknown model_type, which the
    converter does not need): the GGUF is published and the report says why it was not
    checked, instead of a KeyError/ValueError traceback after the file was written."""
    config = json.loads((spm_copy / "config.json").read_text())
    (spm_copy / "config.json").write_text(json.dumps({**config, "model_type": "not-a-model"}))
    result = convert(spm_copy, tmp_path / "m.gguf", "F16", verify=True)
    report = result.verification
    assert report is not None and report.not_run is not None
    assert report.not_run_code is ErrorCode.VERIFY_FAILED
    text = report.format()
    assert "Tokenizer parity: 14/14 probe texts identical" in text
    assert "Converted; verification could not run because transformers could not load" in text
    assert str(result.output) in text and "kept" in text
    assert GGUFReader(result.output).fields["general.file_type"].contents() == 1


# --------------------------------------------------------------------------- package edges


def test_converter_uses_only_public_core_modules() -> None:
    """Issue 8: no ``bllossom_core._private`` import from the converter."""
    private = []
    for file in sorted((ROOT / "converter").glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "bllossom_core" and any(p.startswith("_") for p in parts[1:]):
                    private.append(f"{file.name}: {name}")
    assert private == []


def test_cli_registers_convert_by_import() -> None:
    source = (ROOT / "bllossom_core" / "cli.py").read_text(encoding="utf-8")
    assert '"converter.command"' not in source
    from bllossom_core.cli import build_parser

    args = build_parser().parse_args(["convert", "x"])
    from converter.command import run

    assert args.handler is run
