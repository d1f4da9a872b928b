"""The shipped Bllossom catalog: complete, honest about unknowns, and refreshable."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest

from bllossom_core.catalog import (
    find_entry,
    load_catalog,
    parse_catalog,
    quant_in_name,
    quant_rank,
    refresh_entry,
)
from bllossom_core.errors import ErrorCode, InputError
from tests.fixtures.local_hub import GGUF_REPO, LocalHub, gguf_name

HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_required_family_members_are_there() -> None:
    catalog = load_catalog()
    repos = {e.repo for e in catalog.entries}
    assert {
        "MLP-KTLim/llama-3-Korean-Bllossom-8B",
        "Bllossom/llama-3.2-Korean-Bllossom-3B",
        "Bllossom/llama-3-Korean-Bllossom-70B",
        "UNIVA-Bllossom/DeepSeek-llama3.1-Bllossom-8B",
        "UNIVA-Bllossom/DeepSeek-llama3.3-Bllossom-70B",
    } <= repos
    may = find_entry("bllossom-8b-vocab-2024-05")
    assert may.repo == "MLP-KTLim/llama-3-Korean-Bllossom-8B"
    assert HEX40.match(may.revision) and may.vocab_size == 145088
    current = find_entry("bllossom-8b")
    q4 = current.gguf_for("Q4_K_M")
    assert q4 is not None and q4.repo.endswith("-gguf-Q4_K_M") and HEX40.match(q4.revision)
    assert q4.sha256 == "36edb3ca5dfd7dd1cc7ea3ee440a461befa79efb5b2cbe6aa1304b3dbc34f39c"


def test_values_are_known_or_none() -> None:
    for entry in load_catalog().entries:
        assert entry.sources, entry.name
        assert entry.revision == "main" or HEX40.match(entry.revision), entry.name
        if entry.status == "unsupported":
            assert entry.status_reason and not entry.downloadable, entry.name
            continue
        assert entry.layers and entry.heads and entry.kv_heads and entry.head_dim, entry.name
        assert entry.params_b and entry.context_length and entry.license, entry.name
        for gguf in entry.ggufs:
            assert gguf.sha256 is None or HEX64.match(gguf.sha256)
            assert gguf.revision == "main" or HEX40.match(gguf.revision)
            assert gguf.size_bytes is None  # exact sizes come from the hub, never guessed
            assert gguf.approx_bytes and gguf.approx_bytes > 1e9


def test_unconvertible_architectures_are_marked() -> None:
    catalog = load_catalog()
    unsupported = {e.architecture for e in catalog.entries if e.status == "unsupported"}
    assert {"Qwen2ForCausalLM", "LlavaNextForConditionalGeneration"} <= unsupported
    assert all(e.convertible for e in catalog.entries if e.status == "supported" and not e.ggufs)


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(InputError) as caught:
        find_entry("blossom-3b")
    assert caught.value.code is ErrorCode.UNKNOWN_MODEL
    assert "bllossom-3b" in str(caught.value)
    with pytest.raises(InputError, match="--list"):
        find_entry("zzz")


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("llama-3-Korean-Bllossom-8B-Q4_K_M.gguf", "Q4_K_M"),
        ("llama-3.2-korean-bllossom-3b-q4_k_m.gguf", "Q4_K_M"),
        ("model.Q8_0.gguf", "Q8_0"),
        ("model-IQ4_XS.gguf", "IQ4_XS"),
        ("model-f16.gguf", "F16"),
        ("model.gguf", None),
        ("llama-3-Korean-Bllossom-70B-gguf-Q4_K_M.gguf", "Q4_K_M"),
    ],
)
def test_quant_in_name(name: str, quant: str | None) -> None:
    assert quant_in_name(name) == quant


def test_quant_rank_orders_quality() -> None:
    assert quant_rank("Q8_0") < quant_rank("Q5_K_M") < quant_rank("Q4_K_M") < quant_rank("Q2_K")
    assert quant_rank("nonsense") > quant_rank("Q2_K")


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHub]:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read at import
    with LocalHub() as served:
        served.add_repo(GGUF_REPO, {gguf_name("Q8_0"): b"GGUF" + bytes(5000)})
        yield served


def test_refresh_fills_size_hash_and_commit(hub: LocalHub) -> None:
    catalog = parse_catalog(
        f"""
schema = 1
catalog_version = "t"
[[model]]
name = "tiny"
title = "Tiny"
repo = "fixture/tiny"
architecture = "LlamaForCausalLM"
[[model.gguf]]
repo = "{GGUF_REPO}"
file = "{gguf_name("Q8_0")}"
quant = "Q8_0"
approx_gb = 0.0
"""
    )
    entry = catalog.entries[0]
    assert entry.ggufs[0].size_bytes is None and entry.ggufs[0].sha256 is None
    fresh = refresh_entry(entry, endpoint=hub.endpoint)
    data = b"GGUF" + bytes(5000)
    assert fresh.ggufs[0].size_bytes == len(data)
    assert fresh.ggufs[0].sha256 == hashlib.sha256(data).hexdigest()
    assert fresh.ggufs[0].revision == hub.repos[GGUF_REPO].commit
