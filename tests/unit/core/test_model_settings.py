"""Model loading settings: one check for the CLI, the app and the server, and a quantized
KV cache that llama.cpp really uses (same greedy text on a fixture model)."""

from __future__ import annotations

import pytest

from bllossom_core import ChatMessage, GenerationSettings, LocalEngine
from bllossom_core.errors import InvalidSettingError
from bllossom_core.model_settings import ModelSettings, check_model_settings
from tests.fixtures.gguf_models import fixture_gguf


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (ModelSettings(context_size=10), "context_size"),
        (ModelSettings(gpu_layers=-2), "gpu_layers"),
        (ModelSettings(threads=0), "threads"),
        (ModelSettings(kv_cache_type="q2_k"), "kv_cache_type"),
        (ModelSettings(kv_cache_type="q8_0"), "kv_cache_type"),  # needs flash attention
    ],
)
def test_bad_values_name_their_field(settings: ModelSettings, field: str) -> None:
    with pytest.raises(InvalidSettingError) as refused:
        check_model_settings(settings)
    assert refused.value.setting == field


def test_saved_settings_round_trip_and_damaged_ones_give_defaults() -> None:
    chosen = ModelSettings(8192, -1, 4, True, "q8_0")
    assert ModelSettings.from_dict(chosen.to_dict()) == chosen
    assert ModelSettings.from_dict({"threads": "many", "future_key": 1}) == ModelSettings()


def test_a_quantized_kv_cache_loads_and_answers() -> None:
    model = fixture_gguf("llama2-spm-ko")
    greedy = GenerationSettings(temperature=0, max_tokens=8)
    texts = []
    for settings in (
        ModelSettings(256),
        ModelSettings(256, flash_attention=True, kv_cache_type="q8_0"),
    ):
        engine = LocalEngine.load(model, **settings.load_arguments())
        try:
            texts.append("".join(engine.stream_chat([ChatMessage("user", "안녕")], greedy)))
        finally:
            engine.close()
    assert texts[0] and texts[1]  # both run; the text may differ by the cache's rounding
