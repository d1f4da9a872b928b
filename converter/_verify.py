"""Checking a converted GGUF against the checkpoint it came from.

Tokenizer parity: llama.cpp (through llama-cpp-python) must produce exactly the token
ids of the reference tokenizer -- sentencepiece for SentencePiece models, ``tokenizers``
for BPE -- on a built-in Korean/English probe set. Logits: next-token logits from
llama.cpp against transformers' float32 model on a few prompts; differences for float
types, KL divergence and top-1 agreement for quantized ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bllossom_core._llama_vocab import LlamaVocab, open_vocab
from bllossom_core._native import quiet_native_output
from bllossom_core.errors import ModelLoadError, TokenizerError
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
        if self.skipped:
            return f"Tokenizer parity: skipped ({self.skipped})"
        ok = self.tokenizer_cases - len(self.tokenizer_mismatches)
        lines = [f"Tokenizer parity: {ok}/{self.tokenizer_cases} probe texts identical"]
        for miss in self.tokenizer_mismatches[:3]:
            lines.append(f"  differs on {miss.text!r}: expected {miss.expected} got {miss.actual}")
        if self.logits:
            lines.append(
                f"Logits vs transformers ({len(self.logits)} prompts): "
                f"max |diff| {self.max_abs_diff:.4g}, mean KL {self.mean_kl:.4g}, "
                f"top-1 agreement {100 * (self.top1_agreement or 0):.1f}%"
            )
        return "\n".join(lines)


def _load_llama(path: Path, **kwargs: Any) -> Any:
    import llama_cpp

    with quiet_native_output() as native:
        try:
            return llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
        except (ValueError, RuntimeError) as exc:
            failure: Exception = exc
    raise _cannot_load(path, failure, native.last_line)


def _load_vocab(path: Path) -> LlamaVocab:
    with quiet_native_output() as native:
        try:
            return open_vocab(path)
        except (ValueError, RuntimeError) as exc:
            failure: Exception = exc
    raise _cannot_load(path, failure, native.last_line)


def _cannot_load(path: Path, exc: Exception, native_reason: str) -> ModelLoadError:
    reason = f"{exc}; llama.cpp said: {native_reason}" if native_reason else str(exc)
    return ModelLoadError(
        f"llama.cpp cannot load the converted file {path} ({reason}).",
        hint="Please report this with the model name and the --quant you used.",
        path=path,
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

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))

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
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def compare_logits(
    gguf_path: Path, folder: Path, prompts: tuple[str, ...] = LOGIT_PROMPTS
) -> list[LogitComparison]:
    try:
        import torch
        import transformers
    except ImportError:
        raise ModelLoadError(
            "Comparing logits needs torch and transformers.",
            hint="pip install 'bllossom-desktop[verify]'.",
        ) from None

    reference = reference_tokenizer(folder)
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    llama = _load_llama(gguf_path, n_ctx=128, logits_all=True, n_threads=os.cpu_count() or 1)
    results: list[LogitComparison] = []
    try:
        for prompt in prompts:
            ids = reference(prompt)[:128]
            with torch.no_grad():
                expected = model(torch.tensor([ids])).logits[0].float().numpy()
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
        ) from None
    reporter.emit("verify", 1, steps, unit="check")
    if logits:
        report.logits = compare_logits(gguf_path, folder)
        reporter.emit("verify", 2, steps, unit="check")
    return report
