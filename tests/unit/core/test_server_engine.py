"""LocalServer in-process over a real LocalEngine, as the desktop app runs it: sharing the
engine with the app, clients that go away, stopping, CORS and what the log may show."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from bllossom_core.engine import LocalEngine
from bllossom_core.errors import ErrorCode, ModelLoadError
from bllossom_core.server import LocalServer
from bllossom_core.types import ChatMessage, GenerationSettings
from tests.fixtures.gguf_models import fixture_gguf

RAMBLE = [
    {"role": "system", "content": "You are a helpful assistant. 당신은 훌륭한 비서입니다."},
    {"role": "user", "content": "서울에 대해 알려주세요."},
]
SECRET_PROMPT = "비밀 질문 secret-prompt-text"


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    loaded = LocalEngine.load(fixture_gguf("llama2-spm"), context_size=1024, threads=1)
    yield loaded
    loaded.close()


@pytest.fixture
def busy_changes() -> list[bool]:
    return []


@pytest.fixture
def server(engine: LocalEngine, busy_changes: list[bool]) -> Iterator[LocalServer]:
    with LocalServer(engine, port=0, on_busy_change=busy_changes.append) as running:
        yield running


def chat(server: LocalServer, max_tokens: int = 8, **extra: Any) -> dict[str, Any]:
    body = {"messages": RAMBLE, "max_tokens": max_tokens, "temperature": 0, **extra}
    response = httpx.post(server.url + "/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_serves_on_a_free_port_and_stops_cleanly(engine: LocalEngine) -> None:
    server = LocalServer(engine, port=0, model_alias="mine")
    server.start()
    assert server.running and server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/v1"
    assert httpx.get(server.url + "/models").json()["data"][0]["id"] == "mine"
    server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/models")
    assert "".join(
        engine.stream_chat([ChatMessage("user", "hi")], GenerationSettings(max_tokens=2))
    )


def test_an_api_request_waits_for_the_apps_reply_instead_of_failing(
    server: LocalServer, engine: LocalEngine, busy_changes: list[bool]
) -> None:
    results: list[dict[str, Any]] = []
    with server.app_turn(timeout=5):
        assert not server.busy  # the app, not an API request, holds the engine
        app_stream = engine.stream_chat(
            [ChatMessage("user", "앱의 질문")], GenerationSettings(temperature=0, max_tokens=4)
        )
        asking = threading.Thread(target=lambda: results.append(chat(server)))
        asking.start()
        wait_until(lambda: server.waiting == 1)
        assert "".join(app_stream)
        app_stream.close()
        assert not results
    asking.join(60)
    assert results and results[0]["choices"][0]["finish_reason"] == "length"
    assert busy_changes[:1] == [False] and True in busy_changes and busy_changes[-1] is False


def test_the_app_waits_for_an_api_reply_and_can_tell_why(server: LocalServer) -> None:
    streaming = httpx.stream("POST", server.url + "/chat/completions", timeout=120, json={
        "messages": RAMBLE, "max_tokens": 600, "temperature": 0, "stream": True})  # fmt: skip
    with streaming as response:
        lines = response.iter_lines()
        next(lines)
        assert server.busy
        with pytest.raises(ModelLoadError) as refused, server.app_turn(timeout=0.05):
            pass
        assert refused.value.code == ErrorCode.ENGINE_BUSY
        assert "busy answering an API request" in str(refused.value)
    wait_until(lambda: not server.busy)


def test_a_request_waits_while_the_engine_is_used_outside_the_server(
    server: LocalServer, engine: LocalEngine
) -> None:
    results: list[dict[str, Any]] = []
    direct = engine.stream_chat([ChatMessage("user", "직접")], GenerationSettings(max_tokens=4))
    asking = threading.Thread(target=lambda: results.append(chat(server)))
    asking.start()
    time.sleep(0.3)
    assert not results  # waiting politely, not failing with "busy"
    "".join(direct)
    direct.close()
    asking.join(60)
    assert results and results[0]["usage"]["completion_tokens"] == 8


def test_a_client_that_disconnects_frees_the_engine_within_one_token(
    server: LocalServer, engine: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bllossom_core.server")
    with httpx.stream(
        "POST",
        server.url + "/chat/completions",
        timeout=120,
        json={"messages": RAMBLE, "max_tokens": 600, "temperature": 0, "stream": True},
    ) as response:
        for index, _ in enumerate(response.iter_lines()):
            if index == 20:
                break
    wait_until(lambda: not server.busy)
    # the engine is free for anyone: no "busy" from a reply nobody reads
    with engine.stream_chat([ChatMessage("user", "다음")], GenerationSettings(max_tokens=2)) as s:
        assert "".join(s) is not None
    wait_until(lambda: "tokens_after_disconnect" in caplog.text)
    ended = [r.getMessage() for r in caplog.records if "tokens_after_disconnect" in r.getMessage()]
    after = int(ended[-1].rsplit("tokens_after_disconnect=", 1)[1].split()[0])
    assert "finish=cancelled" in ended[-1] and after <= 1


def test_a_client_that_gives_up_on_a_whole_reply_stops_it_too(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bllossom_core.server")
    body = {"messages": RAMBLE, "max_tokens": 900, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):  # not streaming: nothing arrives until the end
        httpx.post(server.url + "/chat/completions", json=body, timeout=httpx.Timeout(1.0))
    wait_until(lambda: "tokens_after_disconnect" in caplog.text)
    wait_until(lambda: not server.busy)
    ended = [r.getMessage() for r in caplog.records if "tokens_after_disconnect" in r.getMessage()]
    assert "finish=cancelled" in ended[-1]
    assert int(ended[-1].split("completion=")[1].split()[0]) < 900


def test_stopping_ends_replies_in_progress(engine: LocalEngine) -> None:
    server = LocalServer(engine, port=0)
    server.start()
    received: list[str] = []

    def read() -> None:
        try:
            with httpx.stream(
                "POST",
                server.url + "/chat/completions",
                timeout=120,
                json={"messages": RAMBLE, "max_tokens": 900, "stream": True},
            ) as response:
                received.extend(response.iter_lines())
        except httpx.HTTPError:
            received.append("closed")

    reader = threading.Thread(target=read)
    reader.start()
    wait_until(lambda: server.busy)
    server.stop()
    reader.join(30)
    assert not reader.is_alive() and not server.running
    assert len(received) < 900
    with engine.stream_chat([ChatMessage("user", "hi")], GenerationSettings(max_tokens=2)) as s:
        assert "".join(s) is not None


def test_no_cors_unless_asked_and_no_prompt_text_in_logs(
    engine: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bllossom_core.server")
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    secret = [{"role": "user", "content": SECRET_PROMPT}]
    with LocalServer(engine, port=0) as plain:
        answer = chat(plain, messages=secret)
        assert "access-control-allow-origin" not in httpx.options(
            plain.url + "/chat/completions", headers=preflight).headers  # fmt: skip
    assert answer["usage"]["completion_tokens"] == 8
    assert "POST /v1/chat/completions 200 prompt=" in caplog.text
    assert SECRET_PROMPT not in caplog.text
    with LocalServer(engine, port=0, cors_origins=("http://localhost:3000",),
                     log_prompts=True) as open_server:  # fmt: skip
        allowed = httpx.options(open_server.url + "/chat/completions", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
        chat(open_server, messages=secret)
    assert SECRET_PROMPT in caplog.text


def test_thinking_of_a_reasoning_model_is_sent_as_reasoning_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DeepSeek-R1-style fixture; its weights are random, so the reply is scripted by
    replacing the sampler (as tests/unit/core/test_engine_reasoning.py does): everything
    after it, engine and server, is the real path."""
    from bllossom_core import engine as engine_module
    from tests.fixtures.gguf_models import reasoning_gguf

    r1 = LocalEngine.load(reasoning_gguf(), context_size=512, threads=1)
    vocab = r1.vocab
    script = [i for text in ("2 더하기 2는 4.\n", "</think>", "\n\n", "4입니다.")
              for i in vocab.tokenize(text, special=False)]  # fmt: skip
    assert vocab.eos_id is not None
    script.append(vocab.eos_id)

    class ScriptedSampler:
        def __init__(self) -> None:
            self._ids = iter(script)

        def sample(self, ctx: Any, index: int) -> int:
            return next(self._ids)

        def close(self) -> None:
            pass

    monkeypatch.setattr(engine_module, "_make_sampler", lambda *_: ScriptedSampler())
    question = [{"role": "user", "content": "2 더하기 2는?"}]
    try:
        with LocalServer(r1, port=0) as server:
            whole = chat(server, max_tokens=64, messages=question)["choices"][0]["message"]
            deltas: dict[str, str] = {"reasoning_content": "", "content": ""}
            body = {"messages": question, "max_tokens": 64, "stream": True}
            with httpx.stream("POST", server.url + "/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:])["choices"]:
                            for field in deltas:
                                deltas[field] += choice["delta"].get(field) or ""
    finally:
        r1.close()
    assert whole["reasoning_content"] == deltas["reasoning_content"] == "2 더하기 2는 4."
    assert whole["content"] == deltas["content"] == "4입니다."
