"""Reasoning models in the engine: thinking told from answer, token by token.

The fixture is a tiny GGUF with DeepSeek-R1-distill's template and special tokens; its
weights are random, so replies are scripted: the sampler is replaced by one that returns
a given token sequence, and everything after it (piece bytes, UTF-8 assembly, the
splitter, stats) is the engine's real path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bllossom_core import engine as engine_module
from bllossom_core.engine import LocalEngine
from bllossom_core.reasoning import collect
from bllossom_core.types import ChatMessage, GenerationSettings, StreamPiece
from tests.fixtures.gguf_models import fixture_gguf, reasoning_gguf

GREEDY = GenerationSettings(temperature=0.0, max_tokens=64)
QUESTION = [ChatMessage("user", "What is 2 plus 2? 한국어로 답해 주세요.")]


@pytest.fixture(scope="module")
def r1_engine() -> Iterator[LocalEngine]:
    engine = LocalEngine.load(reasoning_gguf(), context_size=512, threads=1)
    yield engine
    engine.close()


class ScriptedSampler:
    """Stands in for llama.cpp's sampler: returns the scripted ids, then the EOS."""

    def __init__(self, ids: list[int], eos: int) -> None:
        self._ids = iter([*ids, eos])

    def sample(self, ctx: Any, index: int) -> int:
        return next(self._ids)

    def close(self) -> None:
        pass


def scripted_reply(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch, ids: list[int]
) -> tuple[list[StreamPiece], engine_module.LocalStream]:
    eos = engine.vocab.eos_id
    assert eos is not None
    monkeypatch.setattr(engine_module, "_make_sampler", lambda *_: ScriptedSampler(ids, eos))
    stream = engine.stream_chat(QUESTION, GREEDY)
    with stream:
        return list(stream.events()), stream


def text_ids(engine: LocalEngine, *fragments: str) -> list[int]:
    """Each fragment tokenized on its own, so a tag can be forced across tokens."""
    return [i for text in fragments for i in engine.vocab.tokenize(text, special=False)]


def test_deepseek_fixture_is_a_reasoning_model_whose_prompt_opens_thinking(
    r1_engine: LocalEngine,
) -> None:
    assert r1_engine.reasoning
    assert r1_engine.prompt_opens_thinking
    prompt = r1_engine.prompt_ids(QUESTION)
    tail = r1_engine.vocab.detokenize(prompt.ids[-3:])
    assert tail.endswith(b"<think>\n")
    for tag in ("<think>", "</think>"):  # single tokens, as in the real model
        assert len(r1_engine.vocab.tokenize(tag, special=False)) == 1


def test_block_opened_by_the_prompt_then_single_token_close(
    r1_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = text_ids(r1_engine, "The user asks 2+2. That is 4.\n", "</think>", "\n\n", "4입니다.")
    pieces, stream = scripted_reply(r1_engine, monkeypatch, ids)
    assert collect(pieces) == {"thinking": "The user asks 2+2. That is 4.", "answer": "4입니다."}
    kinds = [p.kind for p in pieces]
    assert kinds == sorted(kinds, key=["thinking", "answer"].index)
    assert stream.stats.thinking_seconds is not None and stream.stats.thinking_seconds >= 0
    assert stream.token_ids[:-1] == ids


@pytest.mark.parametrize(
    "close", [("</", "think", ">"), ("</th", "ink>"), ("<", "/", "t", "h", "i", "n", "k", ">")]
)
def test_close_tag_split_across_tokens(
    r1_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch, close: tuple[str, ...]
) -> None:
    ids = text_ids(r1_engine, "Hmm, simple.", *close, "\n\n", "Four.")
    assert len(ids) > len(text_ids(r1_engine, "Hmm, simple.</think>\n\nFour."))
    pieces, _ = scripted_reply(r1_engine, monkeypatch, ids)
    assert collect(pieces) == {"thinking": "Hmm, simple.", "answer": "Four."}


def test_model_that_opens_the_block_again(
    r1_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = text_ids(r1_engine, "<think>", "\nok", "</think>", "Done")
    pieces, _ = scripted_reply(r1_engine, monkeypatch, ids)
    assert collect(pieces) == {"thinking": "ok", "answer": "Done"}


def test_plain_iteration_gives_the_answer_only(
    r1_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = text_ids(r1_engine, "secret reasoning", "</think>", "서울")
    eos = r1_engine.vocab.eos_id
    assert eos is not None
    monkeypatch.setattr(engine_module, "_make_sampler", lambda *_: ScriptedSampler(ids, eos))
    stream = r1_engine.stream_chat(QUESTION, GREEDY)
    with stream:
        assert "".join(stream) == "서울"


def test_reply_cut_off_while_thinking_is_all_thinking(
    r1_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = text_ids(r1_engine, "step one, step two")
    monkeypatch.setattr(engine_module, "_make_sampler", lambda *_: ScriptedSampler(ids, ids[0]))
    stream = r1_engine.stream_chat(QUESTION, GenerationSettings(temperature=0.0, max_tokens=3))
    with stream:
        pieces = list(stream.events())
    assert stream.stats.stop_reason == "length"
    assert collect(pieces)["answer"] == ""
    assert "step one, step two".startswith(collect(pieces)["thinking"])
    assert stream.stats.thinking_seconds is not None


def test_greedy_random_model_streams_the_same_bytes_as_detokenization(
    r1_engine: LocalEngine,
) -> None:
    """Unscripted: what the splitter passes on is exactly the detokenized reply."""
    stream = r1_engine.stream_chat(QUESTION, GenerationSettings(temperature=0.0, max_tokens=24))
    with stream:
        pieces = list(stream.events())
    reply = r1_engine.vocab.detokenize(
        [t for t in stream.token_ids if not r1_engine.vocab.is_end_of_generation(t)]
    ).decode("utf-8", "replace")
    whole = collect(pieces)
    if "</think>" not in reply:
        assert whole == {"thinking": reply.strip(), "answer": ""}
    else:
        thinking, answer = reply.split("</think>", 1)
        assert whole == {"thinking": thinking.strip(), "answer": answer.lstrip()}


def test_non_reasoning_model_streams_answer_only() -> None:
    engine = LocalEngine.load(fixture_gguf("llama3-bpe"), context_size=256, threads=1)
    try:
        assert not engine.reasoning and not engine.prompt_opens_thinking
        stream = engine.stream_chat(QUESTION, GenerationSettings(temperature=0.0, max_tokens=12))
        with stream:
            pieces = list(stream.events())
        assert {p.kind for p in pieces} <= {"answer"}
        assert stream.stats.thinking_seconds is None
    finally:
        engine.close()
