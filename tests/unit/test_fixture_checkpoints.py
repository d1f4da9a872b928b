"""The fixture factory builds what real Bllossom checkpoints look like (issue: foundation)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pytest

from tests.fixtures import tokenizers as tk
from tests.fixtures.checkpoints import STANDARD_SPECS, CheckpointSpec, build_checkpoint, checkpoint

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

MIXED_TEXTS = [
    "안녕하세요, 저는 블로썸입니다.",
    "Bllossom은 한국어와 English를 함께 잘합니다 😀",
    "서울특별시 강남구 테헤란로 123, 2024년 5월",
    "가나다라마바사 ㄱㄴㄷ ㅏㅑㅓ",  # syllables and bare jamo
    "코드: def f(x):\n\treturn x ** 2  # 제곱",
    "줄바꿈\n\n두 번, 공백   세 칸",
]


def korean_sample(n: int = 400) -> list[str]:
    corpus = tk.korean_corpus()
    step = max(1, len(corpus) // n)
    return list(corpus[::step][:n]) + MIXED_TEXTS


@lru_cache(maxsize=8)
def _reference_encoder(is_spm: bool, path: Path) -> Callable[[str], list[int]]:
    if is_spm:
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor(model_file=str(path / "tokenizer.model"))
        return lambda text: [processor.bos_id(), *processor.encode(text)]
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    return lambda text: tokenizer.encode(text).ids


def reference_ids(spec: CheckpointSpec, path: Path, text: str) -> list[int]:
    """Token ids with BOS from the reference library for this tokenizer family."""
    return _reference_encoder(spec.is_spm, path)(text)


@pytest.mark.parametrize("spec", STANDARD_SPECS, ids=lambda s: s.name)
def test_fixture_loads_in_transformers_and_matches_reference_tokenizer(
    spec: CheckpointSpec,
) -> None:
    path = checkpoint(spec)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    mismatches = [
        text
        for text in korean_sample()
        if tokenizer(text)["input_ids"] != reference_ids(spec, path, text)
    ]
    if spec.is_spm:
        # transformers 5 turns runs of spaces into "▁▁" pieces where sentencepiece (the
        # reference, and llama.cpp) keeps "▁" + "▁x"; everything else must agree.
        assert all("  " in text or text.startswith(" ") for text in mismatches)
    else:
        assert mismatches == []

    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.dtype == getattr(torch, spec.dtype)
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA
    assert model.config.hidden_size % 256 == 0
    ids = torch.tensor([reference_ids(spec, path, "한국어 문장입니다.")])
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert torch.isfinite(logits.float()).all()


@pytest.mark.parametrize(
    ("family", "pieces", "bos", "rows"),
    [
        ("llama2-spm", 32_000, 1, 32_000),
        ("llama2-spm-ko", 39_478, 1, 39_478),
        ("llama3-bpe", 128_256, 128_000, 128_256),
        ("llama3-bpe-ko", 145_038, 144_782, 145_088),
    ],
)
def test_vocabulary_sizes_match_real_bllossom(
    family: str, pieces: int, bos: int, rows: int
) -> None:
    spec = CheckpointSpec(family=family)  # type: ignore[arg-type]
    path = checkpoint(spec)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    assert len(tokenizer) == pieces
    assert tokenizer.bos_token_id == bos
    config = json.loads((path / "config.json").read_text())
    assert config["vocab_size"] == rows
    assert config["bos_token_id"] == bos


def test_korean_expansion_shortens_korean_text() -> None:
    """The expanded vocabularies exist to encode Korean in fewer tokens."""
    text = " ".join(tk.korean_corpus()[:200])
    for base, expanded in (("llama2-spm", "llama2-spm-ko"), ("llama3-bpe", "llama3-bpe-ko")):
        b_spec, e_spec = CheckpointSpec(family=base), CheckpointSpec(family=expanded)  # type: ignore[arg-type]
        n_base = len(reference_ids(b_spec, checkpoint(b_spec), text))
        n_expanded = len(reference_ids(e_spec, checkpoint(e_spec), text))
        assert n_expanded < 0.75 * n_base, (base, n_base, n_expanded)


def test_expanded_bpe_keeps_base_tokens_and_inserts_korean_before_specials() -> None:
    base = json.loads(
        (checkpoint(CheckpointSpec(family="llama3-bpe")) / "tokenizer.json").read_text()
    )
    ko = json.loads(
        (checkpoint(CheckpointSpec(family="llama3-bpe-ko")) / "tokenizer.json").read_text()
    )
    base_vocab, ko_vocab = base["model"]["vocab"], ko["model"]["vocab"]
    assert all(ko_vocab[token] == i for token, i in base_vocab.items())
    new_ids = sorted(i for t, i in ko_vocab.items() if t not in base_vocab)
    assert new_ids == list(range(128_000, 144_782))
    assert ko["model"]["merges"][: len(base["model"]["merges"])] == base["model"]["merges"]
    specials = {t["content"]: t["id"] for t in ko["added_tokens"]}
    assert specials["<|begin_of_text|>"] == 144_782
    assert specials["<|eot_id|>"] == 144_782 + 9


def test_variants_have_the_files_real_checkpoints_have() -> None:
    by_name = {s.name: checkpoint(s) for s in STANDARD_SPECS}
    sharded = by_name["llama2-spm-float16-sharded"]
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) == 3 and all((sharded / s).is_file() for s in shards)
    assert (by_name["llama2-spm-ko-float16-bin"] / "pytorch_model.bin").is_file()
    jinja = by_name["llama3-bpe-bfloat16-sharded-tmpl-jinja"]
    assert (jinja / "chat_template.jinja").read_text().startswith("{% set loop_messages")
    assert "chat_template" not in json.loads((jinja / "tokenizer_config.json").read_text())
    tied = by_name["llama3-bpe-float32-single-tied-rope31"]
    config = json.loads((tied / "config.json").read_text())
    assert config["tie_word_embeddings"] is True
    assert config["rope_scaling"]["rope_type"] == "llama3"
    from safetensors import safe_open

    with safe_open(str(tied / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in set(f.keys())
    legacy = by_name["llama3-bpe-ko-bfloat16-single-legacy-merges"]
    merges = json.loads((legacy / "tokenizer.json").read_text())["model"]["merges"]
    assert isinstance(merges[0], str) and " " in merges[0]


def test_build_is_deterministic(tmp_path: Path) -> None:
    spec = CheckpointSpec(family="llama2-spm-ko")

    def digest(folder: Path) -> dict[str, str]:
        return {
            f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.iterdir())
            if f.is_file()
        }

    build_checkpoint(spec, tmp_path / "a")
    build_checkpoint(spec, tmp_path / "b")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def _llama_cpp_vectors(expected_name: str) -> list[tuple[str, list[int]]]:
    vocab_dir = tk.shared_data("llama.cpp-vocab")
    inputs = (vocab_dir / "ggml-vocab-llama-spm.gguf.inp").read_text("utf-8")
    cases = inputs.split("\n__ggml_vocab_test__\n")
    outputs = (vocab_dir / expected_name).read_text("utf-8").split("\n")
    return [(text, [int(i) for i in out.split()]) for text, out in zip(cases, outputs, strict=True)]


def test_reference_tokenizers_reproduce_llama_cpp_test_vectors() -> None:
    """The fixtures' tokenizers are the real ones: llama.cpp's own vectors agree."""
    import sentencepiece as spm
    from tokenizers import Tokenizer

    spm_path = checkpoint(CheckpointSpec(family="llama2-spm")) / "tokenizer.model"
    processor = spm.SentencePieceProcessor(model_file=str(spm_path))
    for text, expected in _llama_cpp_vectors("ggml-vocab-llama-spm.gguf.out"):
        # llama.cpp's SPM vectors are computed without the dummy-prefix space.
        assert processor.encode(text) == expected or processor.encode(" " + text)[1:] == expected
    bpe = Tokenizer.from_file(str(checkpoint(CheckpointSpec()) / "tokenizer.json"))
    for text, expected in _llama_cpp_vectors("ggml-vocab-llama-bpe.gguf.out"):
        assert bpe.encode(text, add_special_tokens=False).ids == expected
