"""All four fixture families and the variant matrix: metadata, tokenizer parity, logits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf import GGUFReader

from bllossom_core.errors import Cancelled
from bllossom_core.types import CancelToken
from converter import ConversionResult, ProgressEvent, convert, verify_gguf
from tests.fixtures import tokenizers as tk
from tests.fixtures.checkpoints import FAMILIES, STANDARD_SPECS, CheckpointSpec

Converted = Callable[..., tuple[Path, ConversionResult]]


def _field(reader: GGUFReader, key: str) -> object:
    field = reader.fields[key]
    return field.contents()


@pytest.mark.parametrize("family", FAMILIES)
def test_family_metadata_and_tokenizer_parity(family: str, converted: Converted) -> None:
    _, result = converted("F16", family=family)
    report = result.verification
    assert report is not None and report.tokenizer_cases >= 10
    assert report.tokenizer_ok, report.format()

    reader = GGUFReader(result.output)
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "general.file_type") == 1
    tokens = reader.fields["tokenizer.ggml.tokens"]
    expanded = family.endswith("-ko")
    if family.startswith("llama2"):
        assert _field(reader, "tokenizer.ggml.model") == "llama"
        assert len(tokens.data) == (tk.SPM_EXPANDED_SIZE if expanded else tk.SPM_BASE_SIZE)
        assert _field(reader, "tokenizer.ggml.bos_token_id") == 1
        assert _field(reader, "tokenizer.ggml.eos_token_id") == 2
        assert "tokenizer.ggml.scores" in reader.fields
    else:
        assert _field(reader, "tokenizer.ggml.model") == "gpt2"
        assert _field(reader, "tokenizer.ggml.pre") == "llama-bpe"
        bos = tk.BPE_EXPANDED_BOS if expanded else tk.BPE_BASE_SIZE
        assert len(tokens.data) == (tk.BPE_EXPANDED_ROWS if expanded else bos + 256)
        assert _field(reader, "tokenizer.ggml.bos_token_id") == bos
        assert _field(reader, "tokenizer.ggml.eot_token_id") == bos + 9  # <|eot_id|>
        assert len(reader.fields["tokenizer.ggml.merges"].data) > 100_000
    assert _field(reader, "tokenizer.ggml.add_bos_token") is True
    assert "{% for message in" in str(_field(reader, "tokenizer.chat_template"))
    assert _field(reader, "llama.vocab_size") == len(tokens.data)


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers_at_f32_and_f16(family: str, converted: Converted) -> None:
    source, f32 = converted("F32", family=family)
    report = verify_gguf(f32.output, source)
    assert report.max_abs_diff is not None and report.max_abs_diff < 2e-3, report.format()
    assert report.top1_agreement == 1.0
    _, f16 = converted("F16", family=family)
    report16 = verify_gguf(f16.output, source)
    assert report16.max_abs_diff is not None and report16.max_abs_diff < 2e-2, report16.format()
    assert report16.mean_kl is not None and report16.mean_kl < 1e-5


def test_q4_k_m_reports_divergence(converted: Converted) -> None:
    source, f16 = converted("F16", family="llama2-spm")
    _, q4 = converted("Q4_K_M", family="llama2-spm")
    q4_report = verify_gguf(q4.output, source)
    f16_report = verify_gguf(f16.output, source)
    assert q4_report.tokenizer_ok
    assert q4_report.mean_kl is not None and f16_report.mean_kl is not None
    assert q4_report.mean_kl > 10 * f16_report.mean_kl  # quantization is visible...
    assert q4_report.mean_kl < 1.0  # ...but the model is still the same model
    assert "top-1 agreement" in q4_report.format()
    assert _field(GGUFReader(q4.output), "general.file_type") == 15


VARIANTS = [s for s in STANDARD_SPECS if s not in [CheckpointSpec(family=f) for f in FAMILIES]]


@pytest.mark.parametrize("spec", VARIANTS, ids=[s.name for s in VARIANTS])
def test_variants_convert_with_exact_tokenizer(spec: CheckpointSpec, converted: Converted) -> None:
    fields = dataclasses.asdict(spec)
    _, result = converted("Q8_0", **fields)
    assert result.verification is not None and result.verification.tokenizer_ok
    reader = GGUFReader(result.output)
    names = {t.name for t in reader.tensors}
    assert ("output.weight" in names) != fields["tied_embeddings"]
    assert ("rope_freqs.weight" in names) == fields["rope_scaling"]
    template = str(_field(reader, "tokenizer.chat_template"))
    assert "message" in template


def test_progress_events_and_cancel(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    source = make_checkpoint(family="llama2-spm")
    events: list[ProgressEvent] = []
    convert(source, tmp_path / "a.gguf", "Q4_0", progress=events.append, verify_tokenizer=False)
    stages = {e.stage for e in events}
    assert {"convert", "quantize"} <= stages
    last_convert = [e for e in events if e.stage == "convert"][-1]
    assert last_convert.total and last_convert.done == last_convert.total

    for stage in ("convert", "quantize"):
        token = CancelToken()

        def cancel_at(event: ProgressEvent, stage: str = stage, token: CancelToken = token) -> None:
            if event.stage == stage:
                token.cancel()

        with pytest.raises(Cancelled):
            convert(source, tmp_path / "b.gguf", "Q4_0", progress=cancel_at, cancel=token)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf"]


@pytest.mark.slow
def test_every_supported_quant_type(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    from converter._quantize import QUANT_TYPES

    source = make_checkpoint(family="llama2-spm")
    for name, quant in QUANT_TYPES.items():
        result = convert(source, tmp_path / f"{name}.gguf", name, verify_tokenizer=False)
        reader = GGUFReader(result.output)
        assert _field(reader, "general.file_type") == int(quant.file_type), name
        kinds = {t.tensor_type.name for t in reader.tensors}
        assert kinds == {"F32"} if name == "F32" else kinds - {"F32"}, name
    assert len(list(tmp_path.iterdir())) == len(QUANT_TYPES)
