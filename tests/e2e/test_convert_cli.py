"""``bllossom convert`` as users run it: a real process, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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


# --------------------------------------------------------------------------- killed mid-way


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first, then the parent's
    pid), or None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _state(pid: int) -> str | None:
    """The process's state letter ("Z" for a zombie), or None once it is gone."""
    fields = _stat(pid)
    return fields[0] if fields else None


def _wait_for_quantizer(out: Path, parent: subprocess.Popen[str]) -> int:
    """The pid of the quantizer child writing ``out``'s part, as soon as it exists."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert parent.poll() is None, parent.communicate()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            # this converter's own child: a stray one from an earlier test must not count
            fields = _stat(int(entry.name))
            if fields is None or fields[1] != str(parent.pid):
                continue
            if b"converter._quantize" in command and any(out.name.encode() in a for a in command):
                return int(entry.name)
        time.sleep(0.01)
    raise AssertionError("the quantizer never started")


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _state(pid) in (None, "Z"):
            return True
        time.sleep(0.05)
    return False


def _start_q4(source: Path, out: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "bllossom_core.cli", "convert", str(source), "-o", str(out)]
    command += ["--quant", "Q4_0", "-q", "--no-verify-tokenizer"]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_memory,
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(
    signal_number: int, make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: the quantizer ran on to completion and the hidden part files stayed."""
    out = tmp_path / "m.gguf"
    converter = _start_q4(make_checkpoint(family="llama2-spm"), out, tmp_path)
    quantizer = _wait_for_quantizer(out, converter)
    os.kill(quantizer, signal.SIGSTOP)  # mid-quantization, deterministically
    converter.send_signal(signal_number)
    _, stderr = converter.communicate(timeout=60)
    assert converter.returncode == 128 + signal_number, stderr
    name = signal.Signals(signal_number).name
    assert stderr.strip() == f"bllossom: stopped by {name}; no output was written."
    assert _gone(quantizer), "the quantizer outlived the converter"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_kill_9_the_quantizer_dies_and_the_next_run_removes_the_parts(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_checkpoint(family="llama2-spm")
    out = tmp_path / "m.gguf"
    converter = _start_q4(source, out, tmp_path)
    quantizer = _wait_for_quantizer(out, converter)
    os.kill(quantizer, signal.SIGSTOP)
    converter.kill()
    converter.communicate(timeout=60)
    os.kill(quantizer, signal.SIGCONT)  # armed or not yet: it must end either way
    assert _gone(quantizer), "the quantizer outlived the killed converter"
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == [f".m.gguf.{converter.pid}.f32.part", f".m.gguf.{converter.pid}.q4_0.part"]

    again = _bllossom("convert", str(source), "-o", str(out), "--quant", "Q4_0", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]


# --------------------------------------------------------------------------- --verify


_SLIM = (
    "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
    "from bllossom_core.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_verify_in_a_slim_install_is_refused_up_front(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_checkpoint(family="llama2-spm")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _SLIM, "convert", str(source), "-o", "m.gguf", "--verify"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "needs the 'verify' extra" in result.stderr
    assert "torch and transformers missing" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_verify_that_cannot_run_is_a_note_not_a_failure(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    source = tmp_path / "ckpt"
    shutil.copytree(make_checkpoint(family="llama2-spm"), source)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "model_type": "not-a-model"}))
    result = _bllossom(
        "convert", str(source), "-o", "m.gguf", "--quant", "F16", "--verify", "-q", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Tokenizer parity: 14/14 probe texts identical" in result.stdout
    assert "Converted; verification could not run because transformers could not load" in (
        result.stdout
    )
    assert GGUFReader(tmp_path / "m.gguf").fields["general.file_type"].contents() == 1
