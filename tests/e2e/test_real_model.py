"""A real instruct model (SmolLM2-135M-Instruct, Q4_1) through the CLI, as a user runs it.

Random-weight fixtures can't show that a model gets the prompt it was trained on; a real
one answers correctly only when it does. References are plain llama-cpp-python
(``create_chat_completion``, which renders the GGUF's own template) and a fresh engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bllossom_core.engine import LocalEngine
from bllossom_core.store import ConversationStore
from bllossom_core.types import ChatMessage, GenerationSettings

ROOT = Path(__file__).resolve().parents[2]
MAX_TOKENS = 48
CONTEXT = 1024
REPEAT_PENALTY = 1.1  # the CLI's default (the Bllossom model card's)
# One thread everywhere: steadiest on a busy machine, and both sides of each comparison
# then do their arithmetic in the same order.
THREADS = "1"


def bllossom(
    *args: str, stdin: str | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["BLLOSSOM_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "bllossom_core.cli", *args], input=stdin,
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip


def generate_json(model: Path, prompt: str) -> dict[str, Any]:
    done = bllossom("generate", str(model), "--prompt", prompt, "--json", "--temperature", "0",
                    "--max-tokens", str(MAX_TOKENS), "--context-size", str(CONTEXT),
                    "--threads", THREADS)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def plain_chat_completion(model: Path, prompt: str) -> str:
    """llama-cpp-python on its own: the GGUF's template, greedy, the same repeat penalty."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), n_ctx=CONTEXT, n_threads=int(THREADS),
                n_threads_batch=int(THREADS), verbose=False)  # fmt: skip
    try:
        reply: Any = llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}], temperature=0.0,
            repeat_penalty=REPEAT_PENALTY, max_tokens=MAX_TOKENS,
        )  # fmt: skip
    finally:
        llm.close()
    return str(reply["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    ("question", "answer"),
    [("What is the capital of Germany?", "Berlin"), ("What is 2 plus 2?", "4")],
)
def test_generate_answers_correctly(smollm2_gguf: Path, question: str, answer: str) -> None:
    result = generate_json(smollm2_gguf, question)
    assert answer in result["text"], result["text"]
    assert result["thinking"] == ""  # not a reasoning model


@pytest.mark.parametrize("question", ["What is the capital of Germany?", "What is 2 plus 2?"])
def test_greedy_generate_equals_plain_llama_cpp_chat_completion(
    smollm2_gguf: Path, question: str
) -> None:
    result = generate_json(smollm2_gguf, question)
    assert result["text"] == plain_chat_completion(smollm2_gguf, question)


def test_multi_turn_chat_reuses_the_cache_without_changing_answers(
    smollm2_gguf: Path, bllossom_home: Path
) -> None:
    script = "Which city is the capital of France?\nAnd of Germany?\n/quit\n"
    done = bllossom("chat", str(smollm2_gguf), "--temperature", "0", "--max-tokens",
                    str(MAX_TOKENS), "--context-size", str(CONTEXT), "--threads", THREADS,
                    stdin=script,
                    home=bllossom_home)  # fmt: skip
    assert done.returncode == 0, done.stderr

    store = ConversationStore()
    try:
        (conversation,) = store.list_conversations()
        thread = store.thread(conversation.id)
        system = conversation.system_prompt
    finally:
        store.close()
    assert [m.role for m in thread] == ["user", "assistant", "user", "assistant"]
    first_reply, second_reply = thread[1].text, thread[3].text
    assert "Paris" in first_reply, first_reply
    assert "Berlin" in second_reply, second_reply

    # A fresh engine (empty KV cache) given the same history gives the same second reply.
    history = [ChatMessage("system", system)] if system else []
    history += [
        ChatMessage("user", thread[0].text),
        ChatMessage("assistant", first_reply),
        ChatMessage("user", thread[2].text),
    ]
    engine = LocalEngine.load(smollm2_gguf, context_size=CONTEXT, threads=int(THREADS))
    try:
        settings = GenerationSettings(
            temperature=0.0, max_tokens=MAX_TOKENS, repeat_penalty=REPEAT_PENALTY
        )
        stream = engine.stream_chat(history, settings)
        with stream:
            fresh = "".join(stream)
        assert stream.stats.evaluated_prompt_tokens == stream.stats.prompt_tokens
    finally:
        engine.close()
    assert fresh == second_reply


def test_continue_writes_on_exactly_where_a_cut_reply_stopped(
    smollm2_gguf: Path, tmp_path: Path
) -> None:
    """A reply cut at the length limit, continued, is the reply the model would have
    written without the limit (greedy): the prompt ends with the cut reply's text."""
    from bllossom_core.session import ChatSession, ConversationOptions

    question = "Write three sentences about Seoul."
    short = GenerationSettings(temperature=0.0, max_tokens=12, repeat_penalty=1.0)
    engine = LocalEngine.load(smollm2_gguf, context_size=CONTEXT, threads=int(THREADS))
    try:
        with ConversationStore(tmp_path / "c.sqlite3") as store:
            session = ChatSession(store, engine, options=ConversationOptions(None, "auto", short))
            cut = session.ask(question).run()
            assert cut.stop_reason == "length" and cut.text
            continued = session.continue_reply(cut.id).run()
            assert continued.id == cut.id and continued.text.startswith(cut.text)
            assert len(continued.text) > len(cut.text)
            assert [m.id for m in store.thread(continued.conversation_id)] == [
                cut.parent_id, cut.id,
            ]  # fmt: skip
        whole = engine.stream_chat([ChatMessage("user", question)],
                                   GenerationSettings(temperature=0.0, max_tokens=24,
                                                      repeat_penalty=1.0))  # fmt: skip
        with whole:
            uninterrupted = "".join(whole)
    finally:
        engine.close()
    assert continued.text == uninterrupted
