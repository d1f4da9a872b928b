"""llama.cpp's own pipeline as a test oracle: convert_hf_to_gguf.py, then llama_model_quantize.

The script comes from the llama-cpp-python source distribution matching the installed
version; it is extracted into a cache folder at test time and run as a subprocess. It is
never shipped or imported by the converter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

VERSION = "0.3.36"
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bllossom-oracle"

# Bllossom's Korean-expanded BPE vocabulary has an unknown pre-tokenizer hash, which the
# script rejects. Tensor data does not depend on it, so the oracle is told the answer.
_WRAPPER = """
import os, runpy, sys
sys.path.insert(0, {root!r})
sys.path.insert(1, {root!r} + "/gguf-py")
from conversion import base
original = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    try:
        return original(self, tokenizer)
    except NotImplementedError:
        return "llama-bpe"
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
if os.environ.get("BLLOSSOM_ORACLE_NO_VOCAB"):
    # Tensor bytes do not depend on the vocabulary; skipping it saves most of the time.
    from conversion import llama
    llama.LlamaModel.set_vocab = lambda self: self.gguf_writer.add_tokenizer_model("none")
sys.argv = ["convert_hf_to_gguf.py", *sys.argv[1:]]
runpy.run_path({root!r} + "/convert_hf_to_gguf.py", run_name="__main__")
"""


def _find_sdist() -> Path | None:
    candidates = [CACHE / SDIST]
    for root in (Path.home() / ".cache" / "pip", Path("/tmp")):
        if root.is_dir():
            candidates += list(root.rglob(SDIST))
    for path in candidates:
        if path.is_file():
            return path
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    command += [f"llama-cpp-python=={VERSION}", "-d", str(CACHE)]
    result = subprocess.run(command, capture_output=True, timeout=300)
    return CACHE / SDIST if result.returncode == 0 and (CACHE / SDIST).is_file() else None


def oracle_root() -> Path:
    root = CACHE / f"llama.cpp-{VERSION}"
    if (root / "convert_hf_to_gguf.py").is_file():
        (root / "run_oracle.py").write_text(_WRAPPER.format(root=str(root)))
        return root
    sdist = _find_sdist()
    if sdist is None:
        pytest.skip(f"llama.cpp's convert script is unavailable ({SDIST} could not be fetched)")
    prefix = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
    staging = CACHE / f".staging-{os.getpid()}"
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if not member.name.startswith(prefix) or not member.isfile():
                continue
            relative = member.name[len(prefix) :]
            if relative == "convert_hf_to_gguf.py" or relative.startswith(
                ("conversion/", "gguf-py/")
            ):
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
    (staging / "run_oracle.py").write_text(_WRAPPER.format(root=str(root)))
    try:
        staging.rename(root)
    except OSError:
        if not (root / "convert_hf_to_gguf.py").is_file():
            raise
    return root


def oracle_convert(checkpoint: Path, out: Path, outtype: str, *, vocab: bool = True) -> Path:
    root = oracle_root()
    env = {k: v for k, v in os.environ.items() if k != "BLLOSSOM_ORACLE_NO_VOCAB"}
    if not vocab:
        env["BLLOSSOM_ORACLE_NO_VOCAB"] = "1"
    command = [sys.executable, str(root / "run_oracle.py"), str(checkpoint)]
    command += ["--outfile", str(out), "--outtype", outtype]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def oracle_quantize(source: Path, out: Path, ftype: int) -> Path:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    assert llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params) == 0
    return out


def tensor_bytes(path: Path) -> dict[str, tuple[int, bytes]]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return {t.name: (int(t.tensor_type), bytes(t.data.tobytes())) for t in reader.tensors}
