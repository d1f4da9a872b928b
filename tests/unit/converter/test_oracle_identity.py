"""Tensor bytes must equal llama.cpp's own pipeline (convert_hf_to_gguf.py + quantize)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from converter import convert
from tests.fixtures.llama_cpp_reference import oracle_convert, oracle_quantize, tensor_bytes

pytestmark = pytest.mark.slow

CASES = [
    pytest.param({"family": "llama2-spm-ko"}, "f32", id="llama2-spm-ko-f32"),
    pytest.param(
        {"family": "llama2-spm", "layout": "sharded", "dtype": "float16"},
        "f16",
        id="llama2-spm-sharded-f16",
    ),
    pytest.param(
        {"family": "llama3-bpe", "tied_embeddings": True, "rope_scaling": True},
        "f32",
        id="llama3-bpe-tied-rope31-f32",
    ),
    pytest.param(
        {"family": "llama3-bpe-ko", "dtype": "bfloat16", "legacy_merges": True},
        "bf16",
        id="llama3-bpe-ko-bf16",
    ),
]


def _assert_same_tensors(ours: Path, reference: Path) -> None:
    mine, theirs = tensor_bytes(ours), tensor_bytes(reference)
    assert sorted(mine) == sorted(theirs)
    for name, (qtype, data) in theirs.items():
        assert mine[name][0] == qtype, name
        assert mine[name][1] == data, f"tensor {name} differs from llama.cpp's"


VOCAB_KEYS = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.chat_template",
)


def _assert_same_vocabulary(ours: Path, reference: Path) -> None:
    from gguf import GGUFReader

    mine, theirs = GGUFReader(ours).fields, GGUFReader(reference).fields
    for key in VOCAB_KEYS:
        assert (key in mine) == (key in theirs), key
        if key in theirs:
            assert mine[key].contents() == theirs[key].contents(), key


@pytest.mark.parametrize(("fields", "outtype"), CASES)
def test_float_and_q4_k_m_bytes_match_llama_cpp(
    fields: dict[str, object],
    outtype: str,
    make_checkpoint: Callable[..., Path],
    tmp_path: Path,
) -> None:
    import llama_cpp

    source = make_checkpoint(**fields)
    # The BPE vocabularies take the script most of its time and do not shape tensor bytes.
    with_vocab = str(fields["family"]).startswith("llama2")
    reference = oracle_convert(source, tmp_path / "reference.gguf", outtype, vocab=with_vocab)
    reference_q = oracle_quantize(
        reference, tmp_path / "reference-q4km.gguf", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    )

    floats = convert(source, tmp_path / "ours.gguf", outtype.upper(), verify_tokenizer=False)
    _assert_same_tensors(floats.output, reference)
    if with_vocab:
        _assert_same_vocabulary(floats.output, reference)

    quantized = convert(source, tmp_path / "ours-q4km.gguf", "Q4_K_M", verify_tokenizer=False)
    _assert_same_tensors(quantized.output, reference_q)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ours.gguf", "ours-q4km.gguf", "reference.gguf", "reference-q4km.gguf"]
    ), "temporary files were left behind"
