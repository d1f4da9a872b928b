"""Checking a converted GGUF against the checkpoint it came from.

Tokenizer parity: llama.cpp (through llama-cpp-python) must produce exactly the token
ids of the reference tokenizer -- sentencepiece for SentencePiece models, ``tokenizers``
for BPE -- on a built-in Korean/English probe set. Logits: next-token logits from
llama.cpp against transformers' float32 model on a few prompts; differences for float
types, KL divergence and top-1 agreement for quantized ones.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bllossom_core.errors import (
    BllossomError,
    Cancelled,
    ErrorCode,
    InputError,
    ModelLoadError,
    TokenizerError,
)
from bllossom_core.llama_vocab import LlamaVocab, open_vocab
from bllossom_core.native import load_llama
from bllossom_core.types import CancelToken
from converter._json import read_json
from converter._progress import ProgressCallback, Reporter

PROBE_TEXTS: tuple[str, ...] = (
    "안녕하세요, 저는 블라썸입니다.",
    "서울은 대한민국의 수도이며 인구는 약 940만 명입니다.",
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! I'm testing the tokenizer, aren't I? 3.14159 12345678",
    "한국어와 English를 섞어서 mixed 문장을 만듭니다: GPU 3개, 메모리 24GB.",
    "이모지도 잘 되나요? 😀🚀👍🏽 🇰🇷 ❤️",
    "   leading spaces, double  spaces,   triple   and trailing   ",
    "tabs\tand\t\tnewlines\n\nline two\r\nwindows line",
    "control\u0001chars\u0007and\u001bescape \x7f del",
    "ㄱㄴㄷ ㅏㅑㅓ 한글 자모, 漢字 한자, ｆｕｌｌｗｉｄｔｈ",
    "",
    " ",
    "\n",
    "def f(x):\n    return x ** 2  # 제곱",
)

LOGIT_PROMPTS: tuple[str, ...] = (
    "대한민국의 수도는",
    "The capital of France is",
    "블라썸은 한국어와 English를 모두",
)


@dataclass
class TokenMismatch:
    text: str
    expected: list[int]
    actual: list[int]


@dataclass
class LogitComparison:
    prompt: str
    max_abs_diff: float
    kl_divergence: float
    top1_agreement: float


@dataclass
class VerificationReport:
    gguf_path: Path
    tokenizer_cases: int = 0
    tokenizer_mismatches: list[TokenMismatch] = field(default_factory=list)
    logits: list[LogitComparison] = field(default_factory=list)
    skipped: str | None = None
    """Why the tokenizer check could not run (a reference library is not installed)."""
    cancelled: bool = False
    """The user stopped verification; the GGUF itself is complete."""
    not_run: str | None = None
    """Why verification could not run after the GGUF was published (a sentence); the
    conversion itself succeeded and the file is complete and kept."""
    not_run_code: ErrorCode | None = None
    """The code of the error that stopped verification, for front ends' wording."""

    def record_not_run(self, error: BllossomError) -> None:
        """Verification stopped on ``error``, after the GGUF was published."""
        self.not_run = as_clause(error.message)
        self.not_run_code = error.code

    @property
    def tokenizer_ok(self) -> bool:
        return not self.tokenizer_mismatches

    @property
    def max_abs_diff(self) -> float | None:
        return max((c.max_abs_diff for c in self.logits), default=None)

    @property
    def mean_kl(self) -> float | None:
        return float(np.mean([c.kl_divergence for c in self.logits])) if self.logits else None

    @property
    def top1_agreement(self) -> float | None:
        return float(np.mean([c.top1_agreement for c in self.logits])) if self.logits else None

    def format(self) -> str:
        if self.cancelled:
            return (
                f"Verification cancelled: {self.gguf_path} is complete and kept, but it was "
                "not checked against the checkpoint."
            )
        lines: list[str] = []
        if self.skipped:
            lines.append(f"Tokenizer parity: skipped ({self.skipped})")
        elif self.tokenizer_cases or not self.not_run:
            ok = self.tokenizer_cases - len(self.tokenizer_mismatches)
            lines.append(f"Tokenizer parity: {ok}/{self.tokenizer_cases} probe texts identical")
        for miss in self.tokenizer_mismatches[:3]:
            lines.append(f"  differs on {miss.text!r}: expected {miss.expected} got {miss.actual}")
        if self.not_run:
            lines.append(
                f"Converted; verification could not run because {self.not_run} "
                f"{self.gguf_path} is complete and kept, but it was not fully checked against "
                "the checkpoint."
            )
        if self.logits:
            lines.append(
                f"Logits vs transformers ({len(self.logits)} prompts): "
                f"max |diff| {self.max_abs_diff:.4g}, mean KL {self.mean_kl:.4g}, "
                f"top-1 agreement {100 * (self.top1_agreement or 0):.1f}%"
            )
        return "\n".join(lines)


VERIFY_MODULES = ("torch", "transformers")
"""What the logit comparison needs beyond the base install (the ``verify`` extra)."""


def missing_verify_modules() -> list[str]:
    """The modules of :data:`VERIFY_MODULES` that cannot be imported here."""
    missing = []
    for name in VERIFY_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_verify_modules() -> None:
    """Refuse ``--verify`` up front, before any conversion work, when the extra is absent."""
    missing = missing_verify_modules()
    if missing and getattr(sys, "frozen", False):
        # The installed package (PyInstaller bundle under /opt/bllossom-desktop) carries no
        # torch/transformers and has no pip to add them: say so instead of advising pip.
        raise InputError(
            "Verification (--verify) compares the model with transformers, which the "
            "installed app does not include; it needs the developer install.",
            hint="Convert without --verify here (the tokenizer check still runs), or verify "
            "the file from a developer install (git checkout, scripts/setup, then "
            "bllossom convert --verify).",
            code=ErrorCode.VERIFY_UNAVAILABLE,
        )
    if missing:
        raise InputError(
            f"Verification (--verify) compares the model with transformers and needs the "
            f"'verify' extra, which is not installed here ({' and '.join(missing)} missing).",
            hint="Install it with: pip install 'bllossom-desktop[verify]' (about 1 GB), or "
            "convert without --verify (the tokenizer check still runs).",
            code=ErrorCode.VERIFY_UNAVAILABLE,
        )


def _load_llama(path: Path, **kwargs: Any) -> Any:
    try:
        return load_llama(path, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise _cannot_load(path, exc) from None


def _load_vocab(path: Path) -> LlamaVocab:
    try:
        return open_vocab(path)
    except (ValueError, RuntimeError) as exc:
        raise _cannot_load(path, exc) from None


def _cannot_load(path: Path, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"llama.cpp cannot load the converted file {path} ({exc}).",
        hint="Please report this with the model name and the --quant you used.",
        path=path,
        code=ErrorCode.VERIFY_FAILED,
    )


def reference_tokenizer(folder: Path) -> Callable[[str], list[int]]:
    """The checkpoint's own tokenizer: ``text -> ids`` with the BOS it adds by default."""
    spm_path = folder / "tokenizer.model"
    config_path = folder / "tokenizer_config.json"
    config = read_json(config_path, TokenizerError, required=False) or {}
    if spm_path.is_file():
        from sentencepiece import SentencePieceProcessor

        processor = SentencePieceProcessor(model_file=str(spm_path))
        add_bos = config.get("add_bos_token", True)
        bos = processor.bos_id()

        def encode_spm(text: str) -> list[int]:
            ids = list(processor.encode(text))
            return [bos, *ids] if add_bos else ids

        return encode_spm
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises plain Exception
        raise TokenizerError(
            f"The reference tokenizer {path} cannot be loaded to check the GGUF "
            f"({str(exc)[:200]}).",
            hint="Download the tokenizer files again, or pass --no-verify-tokenizer.",
            path=path,
            code=ErrorCode.TOKENIZER_INVALID,
        ) from None

    def encode_bpe(text: str) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=True).ids)

    return encode_bpe


def check_tokenizer(
    gguf_path: Path, folder: Path, texts: tuple[str, ...] = PROBE_TEXTS
) -> tuple[int, list[TokenMismatch]]:
    reference = reference_tokenizer(folder)
    vocab = _load_vocab(gguf_path)
    bos = [vocab.bos_id] if vocab.add_bos and vocab.bos_id is not None else []
    mismatches: list[TokenMismatch] = []
    for text in texts:
        expected = reference(text)
        actual = bos + vocab.tokenize(text, special=False)
        if expected != actual:
            mismatches.append(TokenMismatch(text, expected, actual))
    return len(texts), mismatches


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return result


def compare_logits(
    gguf_path: Path, folder: Path, prompts: tuple[str, ...] = LOGIT_PROMPTS
) -> list[LogitComparison]:
    require_verify_modules()
    import torch

    reference = reference_tokenizer(folder)
    model = _reference_model(folder)
    llama = _load_llama(gguf_path, n_ctx=128, logits_all=True, n_threads=os.cpu_count() or 1)
    results: list[LogitComparison] = []
    try:
        for prompt in prompts:
            ids = reference(prompt)[:128]
            try:
                with torch.no_grad():
                    expected = model(torch.tensor([ids])).logits[0].float().numpy()
            except (RuntimeError, ValueError, IndexError, MemoryError) as exc:
                raise _transformers_failed(folder, "run", exc) from None
            llama.reset()
            llama.eval(ids)
            actual = np.array(llama.scores[: len(ids)], dtype=np.float32)
            log_p, log_q = _log_softmax(expected), _log_softmax(actual)
            kl = float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))
            agree = float(np.mean(expected.argmax(-1) == actual.argmax(-1)))
            diff = float(np.max(np.abs(expected - actual)))
            results.append(LogitComparison(prompt, diff, kl, agree))
    finally:
        llama.close()
    return results


def _transformers_failed(folder: Path, action: str, exc: BaseException) -> ModelLoadError:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return ModelLoadError(
        f"transformers could not {action} the checkpoint {folder} to compare logits ({text}).",
        hint="The converted file itself is unaffected; convert without --verify, or free "
        "memory (the reference model is loaded in float32).",
        path=folder,
        code=ErrorCode.VERIFY_FAILED,
    )


def _reference_model(folder: Path) -> Any:
    """transformers' float32 model of the checkpoint, the reference for the logits."""
    import torch
    import transformers

    library: Any = transformers  # partly typed: its calls are untyped for mypy --strict
    library.utils.logging.disable_progress_bar()
    try:
        model: Any = library.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, MemoryError) as exc:
        raise _transformers_failed(folder, "load", exc) from None
    model.eval()
    return model


def verify_gguf(
    gguf_path: str | Path,
    checkpoint: str | Path,
    *,
    logits: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> VerificationReport:
    """Compare ``gguf_path`` with the checkpoint folder it was converted from."""
    gguf_path, folder = Path(gguf_path), Path(checkpoint)
    reporter = Reporter(progress, cancel)
    steps = 2 if logits else 1
    reporter.emit("verify", 0, steps, unit="check", force=True)
    report = VerificationReport(gguf_path)
    try:
        report.tokenizer_cases, report.tokenizer_mismatches = check_tokenizer(gguf_path, folder)
    except ImportError as exc:
        report.skipped = f"{exc.name} is not installed; pip install 'bllossom-desktop[verify]'"
    except (OSError, ValueError, RuntimeError) as exc:
        raise TokenizerError(
            f"The reference tokenizer in {folder} cannot be loaded to check the GGUF ({exc}).",
            hint="Download the tokenizer files again, or pass --no-verify-tokenizer.",
            path=folder,
            code=ErrorCode.TOKENIZER_INVALID,
        ) from None
    reporter.emit("verify", 1, steps, unit="check")
    if logits:
        try:
            report.logits = compare_logits(gguf_path, folder)
        except Cancelled:
            raise
        except BllossomError as exc:  # the tokenizer results stay; the report says why
            report.record_not_run(exc)
            return report
        reporter.emit("verify", 2, steps, unit="check")
    return report


def as_clause(sentence: str) -> str:
    """``sentence`` to follow "because": a leading capital goes unless it starts a name
    (``GGUF``, a path)."""
    if len(sentence) > 1 and sentence[0].isupper() and sentence[1].islower():
        return sentence[0].lower() + sentence[1:]
    return sentence
