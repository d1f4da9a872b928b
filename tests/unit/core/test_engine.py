"""The local engine against plain llama-cpp-python, on tiny fixture GGUFs."""

from __future__ import annotations

import gc
import itertools
import os
import threading
from collections.abc import Iterator

import pytest

from bllossom_core._utf8 import Utf8Assembler
from bllossom_core.engine import LocalEngine, LocalStream, common_prefix_length
from bllossom_core.errors import GGUFError, InputError, ModelLoadError, TemplateError
from bllossom_core.native import quiet_native_output
from bllossom_core.templates import TEMPLATE_NAMES
from bllossom_core.types import CancelToken, ChatMessage, GenerationSettings
from tests.fixtures.checkpoints import Family
from tests.fixtures.gguf_models import fixture_gguf
from tests.fixtures.tokenizers import korean_corpus

GREEDY = GenerationSettings(temperature=0.0, max_tokens=24)
QUESTION = [ChatMessage("user", "한국의 수도는 어디인가요? Tell me briefly.")]


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    engine = LocalEngine.load(fixture_gguf("llama3-bpe-ko"), context_size=512, threads=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def spm_engine() -> Iterator[LocalEngine]:
    engine = LocalEngine.load(fixture_gguf("llama2-spm"), context_size=256, threads=1)
    yield engine
    engine.close()


def _run(
    engine: LocalEngine,
    messages: list[ChatMessage],
    settings: GenerationSettings,
    cancel: CancelToken | None = None,
) -> tuple[str, LocalStream]:
    stream = engine.stream_chat(messages, settings, cancel)
    text = "".join(stream)
    return text, stream


def test_loads_on_cpu_and_reports_why(engine: LocalEngine) -> None:
    assert engine.device.backend == "cpu"
    assert engine.device.summary.startswith("CPU: ")
    assert engine.device.total_layers == 3 and engine.device.threads == 1
    assert engine.template_name == "llama3"
    assert engine.info.architecture == "llama"


@pytest.mark.parametrize(
    ("family", "temperature"), [("llama3-bpe-ko", 0.0), ("llama2-spm", 0.0), ("llama2-spm", 0.9)]
)
def test_greedy_and_seeded_equal_plain_llama_cpp(family: Family, temperature: float) -> None:
    from llama_cpp import Llama

    path = fixture_gguf(family)
    ours = LocalEngine.load(path, context_size=256, threads=1)
    prompt = ours.prompt_ids(QUESTION)
    settings = GenerationSettings(temperature=temperature, max_tokens=20, seed=4321)
    stream = ours.stream_prompt_ids(prompt, settings)
    text = "".join(stream)
    ours.close()
    plain = Llama(model_path=str(path), n_ctx=256, n_threads=1, seed=4321, verbose=False)
    tokens = plain.generate(prompt.ids, temp=temperature, repeat_penalty=1.1, top_k=40,
                            top_p=0.9, min_p=0.0)  # fmt: skip
    expected = list(itertools.islice(tokens, 20))
    plain.close()
    assert stream.token_ids == expected
    assert stream.stats.generated_tokens == 20 and stream.stats.stop_reason == "length"
    assert text  # the detokenized text is checked byte-exactly below


def test_seeded_runs_are_reproducible(engine: LocalEngine) -> None:
    settings = GenerationSettings(temperature=0.9, max_tokens=16, seed=1234)
    first, s1 = _run(engine, QUESTION, settings)
    again, s2 = _run(engine, QUESTION, settings)  # from the reused cache
    assert (first, s1.token_ids) == (again, s2.token_ids)
    _, s3 = _run(engine, QUESTION, GenerationSettings(temperature=0.9, max_tokens=16, seed=99))
    assert s3.token_ids != s1.token_ids


def test_stream_is_byte_exact_with_whole_detokenization(engine: LocalEngine) -> None:
    settings = GenerationSettings(temperature=1.0, top_k=0, top_p=1.0, max_tokens=200, seed=5)
    pieces = list(engine.stream_chat(QUESTION, settings))
    stream_tokens = engine.stream_chat(QUESTION, settings)
    text = "".join(stream_tokens)
    assert "".join(pieces) == text
    tokens = [
        t
        for t in stream_tokens.token_ids
        if t not in engine.vocab._info.special_token_ids().values()
    ]
    expected = engine.vocab.detokenize(tokens).decode("utf-8", errors="replace")
    assert text == expected
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text)  # it did stream Hangul


@pytest.mark.parametrize("family", ["llama2-spm", "llama3-bpe-ko"])
def test_korean_pieces_split_across_tokens_reassemble_exactly(family: Family) -> None:
    from bllossom_core.llama_vocab import open_vocab

    vocab = open_vocab(fixture_gguf(family))
    text = " ".join(korean_corpus()[:40])
    tokens = vocab.tokenize(text, special=False)
    assembler = Utf8Assembler()
    pieces = []
    split_chars = 0
    for index, token in enumerate(tokens):
        raw = vocab.piece(token, strip_space=index == 0 and vocab.strips_first_space)
        out = assembler.feed(raw)
        split_chars += assembler.pending
        pieces.append(out)
    pieces.append(assembler.flush())
    streamed = "".join(pieces)
    assert streamed == vocab.detokenize(tokens).decode("utf-8")
    assert streamed == text and "\ufffd" not in streamed
    assert split_chars > 0 or family == "llama3-bpe-ko"  # SPM byte-fallback splits syllables


def test_utf8_assembler_every_split() -> None:
    data = "안녕하세요, 세계! 🌸".encode()
    for cut in range(len(data) + 1):
        assembler = Utf8Assembler()
        parts = [assembler.feed(data[:cut]), assembler.feed(data[cut:]), assembler.flush()]
        assert "".join(parts) == data.decode() and all("\ufffd" not in p for p in parts)
    assembler = Utf8Assembler()
    assert [assembler.feed(bytes([b])) for b in "한".encode()] == ["", "", "한"]


def test_a_reply_cut_mid_character_ends_without_a_replacement_character() -> None:
    """Stopped at the length limit after two of 려's three bytes: the tail is dropped."""
    assembler = Utf8Assembler()
    cut = "고려".encode()[:-1]
    assert assembler.feed(cut) + assembler.flush() == "고"
    assert assembler.feed("다".encode()) == "다"  # the next reply starts clean


def test_cancel_from_another_thread_stops_within_one_token(engine: LocalEngine) -> None:
    cancel = CancelToken()
    started = threading.Event()
    settings = GenerationSettings(temperature=1.0, max_tokens=400, seed=3)
    stream = engine.stream_chat(QUESTION, settings, cancel)
    pieces: list[str] = []

    def consume() -> None:
        for piece in stream:
            pieces.append(piece)
            if len(pieces) == 3:
                started.set()
        started.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert started.wait(60)
    cancel.cancel()
    at_cancel = stream.stats.generated_tokens
    worker.join(60)
    assert not worker.is_alive()
    assert stream.stats.stop_reason == "cancelled"
    assert at_cancel <= stream.stats.generated_tokens <= at_cancel + 1 < 400
    # The engine is usable afterwards and the cancelled turn left a consistent cache.
    _, after = _run(engine, QUESTION, GREEDY)
    assert (
        after.stats.stop_reason in ("length", "stop") and after.stats.evaluated_prompt_tokens >= 1
    )


def test_follow_up_evaluates_only_new_tokens(engine: LocalEngine) -> None:
    first = [ChatMessage("system", "짧게 답해."), *QUESTION]
    reply, s1 = _run(engine, first, GREEDY)
    second = [*first, ChatMessage("assistant", reply), ChatMessage("user", "그럼 부산은?")]
    p1, p2 = engine.prompt_ids(first).ids, engine.prompt_ids(second).ids
    text2, s2 = _run(engine, second, GREEDY)
    assert p2[: len(p1)] == p1
    cached = p1 + s1.token_ids[:-1]
    assert s2.stats.evaluated_prompt_tokens == len(p2) - common_prefix_length(cached, p2)
    assert s2.stats.evaluated_prompt_tokens <= len(p2) - len(p1)
    assert s2.stats.prompt_tokens == len(p2)
    # Reusing the cache changes nothing: a fresh engine gives the same greedy reply.
    fresh = LocalEngine.load(fixture_gguf("llama3-bpe-ko"), context_size=512, threads=1)
    try:
        text_fresh, s_fresh = _run(fresh, second, GREEDY)
    finally:
        fresh.close()
    assert s_fresh.stats.evaluated_prompt_tokens == len(p2)
    assert s_fresh.token_ids == s2.token_ids and text_fresh == text2


def test_context_overflow_drops_oldest_turns_but_keeps_system(spm_engine: LocalEngine) -> None:
    system = ChatMessage("system", "SYSTEM-RULE: 항상 존댓말.")
    turns: list[ChatMessage] = []
    for i in range(8):
        turns += [ChatMessage("user", f"질문 {i}: " + "가나다라 " * 6),
                  ChatMessage("assistant", f"답 {i}: " + "마바사 " * 6)]  # fmt: skip
    messages = [system, *turns, ChatMessage("user", "마지막 질문")]
    settings = GenerationSettings(temperature=0, max_tokens=16)
    _, stream = _run(spm_engine, messages, settings)
    dropped = stream.stats.dropped_messages
    assert dropped > 0 and dropped % 2 == 0
    assert stream.stats.prompt_tokens + 16 <= 256 + 16
    kept = [system, *turns[dropped:], messages[-1]]
    prompt = spm_engine.prompt_ids(kept)
    assert stream.stats.prompt_tokens == len(prompt.ids)
    assert "SYSTEM-RULE" in spm_engine.vocab.detokenize(prompt.ids).decode()


def test_message_longer_than_context_is_an_input_error(spm_engine: LocalEngine) -> None:
    with pytest.raises(InputError, match="too long"):
        list(spm_engine.stream_chat([ChatMessage("user", "가 " * 400)], GREEDY))


def test_load_rejects_hostile_file_before_llama_cpp(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 35)
    with pytest.raises(GGUFError):
        LocalEngine.load(bad)
    with pytest.raises(TemplateError) as unknown:
        LocalEngine.load(fixture_gguf("llama2-spm"), template="vicuna")
    assert str(unknown.value) == (
        f"Unknown chat template 'vicuna'. Choose one of: {', '.join(TEMPLATE_NAMES)}."
    )
    # Well-formed but empty: no architecture, tensors, layers or vocabulary.
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(16) + bytes(32))
    with pytest.raises(GGUFError, match="not a usable language model: it names no architecture"):
        LocalEngine.load(empty)


def _in_thread(action: object) -> dict[str, object]:
    """Run ``action`` in a thread that must finish; its result or exception comes back."""
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["result"] = action()  # type: ignore[operator]
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the engine hung"
    return outcome


def test_suspended_stream_makes_a_second_reply_fail_fast(spm_engine: LocalEngine) -> None:
    settings = GenerationSettings(temperature=0, max_tokens=24)
    suspended = spm_engine.stream_chat(QUESTION, settings)
    first_piece = next(iter(suspended))
    assert first_piece
    outcome = _in_thread(lambda: spm_engine.stream_chat(QUESTION, settings))
    assert isinstance(outcome.get("error"), ModelLoadError)
    assert str(outcome["error"]) == "The model is still answering another message; stop it first."
    assert isinstance(_in_thread(spm_engine.reset).get("error"), ModelLoadError)
    suspended.close()
    assert suspended.stats.stop_reason == "cancelled"
    outcome = _in_thread(lambda: _run(spm_engine, QUESTION, settings))
    after = outcome["result"][1]  # type: ignore[index]
    assert after.stats.stop_reason in ("length", "stop") and after.token_ids


@pytest.mark.parametrize("started", [True, False])
def test_dropped_stream_releases_the_engine(spm_engine: LocalEngine, started: bool) -> None:
    settings = GenerationSettings(temperature=0, max_tokens=8)
    stream = spm_engine.stream_chat(QUESTION, settings)
    if started:
        next(iter(stream))
    del stream
    gc.collect()
    outcome = _in_thread(lambda: _run(spm_engine, QUESTION, settings))
    assert "error" not in outcome and outcome["result"][1].token_ids  # type: ignore[index]
    with spm_engine.stream_chat(QUESTION, settings) as held:
        next(iter(held))
    outcome = _in_thread(lambda: _run(spm_engine, QUESTION, settings))
    assert "error" not in outcome and outcome["result"][1].token_ids  # type: ignore[index]


def test_engine_closed_during_a_reply_frees_the_model_after_it() -> None:
    engine = LocalEngine.load(fixture_gguf("llama2-spm"), context_size=128, threads=1)
    stream = engine.stream_chat(QUESTION, GenerationSettings(temperature=0, max_tokens=8))
    next(iter(stream))
    assert "error" not in _in_thread(engine.close)
    assert engine._llm is not None  # the suspended reply still owns it
    stream.close()
    assert engine._llm is None


def test_context_size_above_training_is_refused() -> None:
    from bllossom_core.gguf_inspect import read_gguf_info

    path = fixture_gguf("llama2-spm")
    trained = read_gguf_info(path).context_length
    assert trained == 4096
    with pytest.raises(InputError) as caught:
        LocalEngine.load(path, context_size=trained + 1)
    assert caught.value.message == (
        "--context-size 4097 is too large: this model was trained for 4096 tokens."
    )
    with pytest.raises(InputError, match="trained for 4096 tokens"):
        LocalEngine.load(path, context_size=10**9)


def test_quiet_native_output_captures_fd2(capfd: pytest.CaptureFixture[str]) -> None:
    with quiet_native_output() as native:
        os.write(2, b"llama_context: first\nllama_context: the reason\n")
    assert native.last_line == "llama_context: the reason"
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_failed_load_quotes_native_reason_without_leaking_it(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import llama_cpp

    def failing_llama(*args: object, **kwargs: object) -> object:
        os.write(2, b"llama_init_from_model: failed to allocate 512 GiB for the KV cache\n")
        raise ValueError("Failed to create llama_context")

    monkeypatch.setattr(llama_cpp, "Llama", failing_llama)
    with pytest.raises(ModelLoadError) as caught:
        LocalEngine.load(fixture_gguf("llama2-spm"), context_size=128, threads=1)
    assert "0 GPU layers: Failed to create llama_context: llama_init_from_model: failed to " \
        "allocate 512 GiB for the KV cache" in str(caught.value)  # fmt: skip
    assert capfd.readouterr().err == ""
