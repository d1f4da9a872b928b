"""``bllossom serve`` under load, with clients that vanish, and with a real instruct model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.test_server import API_KEY, Served, serve
from tests.fixtures.gguf_models import fixture_gguf

pytestmark = pytest.mark.e2e

# This prompt makes the llama2-spm fixture ramble for hundreds of tokens without an end
# of text (see tests/e2e/test_remote_server.py), so a reply is still running when needed.
RAMBLE: list[Any] = [
    {"role": "system", "content": "You are a helpful assistant. 당신은 훌륭한 비서입니다."},
    {"role": "user", "content": "서울에 대해 알려주세요."},
]
QUEUE = 4
CLIENTS = 16
LOAD_SECONDS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = serve(tmp_path_factory.mktemp("serve-load"), fixture_gguf("llama2-spm"),
                    "--queue", str(QUEUE))  # fmt: skip
    yield running
    running.stop()


def health(server: Served) -> dict[str, Any]:
    with urllib.request.urlopen(server.url.removesuffix("/v1") + "/health", timeout=10) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


def wait_idle(server: Served, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while health(server) != {"status": "ok", "busy": False, "waiting": 0}:
        assert time.monotonic() < deadline, health(server)
        time.sleep(0.05)


def test_sixteen_streaming_clients_finish_or_get_503_and_memory_returns(server: Served) -> None:
    client = server.client(timeout=90)

    def one_reply() -> tuple[str, str | None]:
        try:
            finish = None
            for chunk in client.chat.completions.create(
                model="any", messages=RAMBLE, stream=True, max_tokens=32, temperature=0.7
            ):
                for choice in chunk.choices:
                    finish = choice.finish_reason or finish
            return "done", finish
        except openai.APIStatusError as error:
            return str(error.status_code), error.response.headers.get("retry-after")

    for _ in range(3):  # warm up: the first replies allocate the server's buffers
        one_reply()
    wait_idle(server)
    baseline = server.rss_kib()
    outcomes: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + LOAD_SECONDS

    def keep_asking() -> None:
        while time.monotonic() < deadline:
            outcome = one_reply()
            outcomes.append(outcome)
            if outcome[0] == "503":
                time.sleep(0.2)

    threads = [threading.Thread(target=keep_asking) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LOAD_SECONDS + 120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    done = [finish for kind, finish in outcomes if kind == "done"]
    refused = [retry for kind, retry in outcomes if kind == "503"]
    assert len(done) + len(refused) == len(outcomes), outcomes
    assert done and all(finish in ("length", "stop") for finish in done)
    assert refused and all(retry and int(retry) >= 1 for retry in refused)
    wait_idle(server)
    grown_mib = (server.rss_kib() - baseline) / 1024
    print(f"{len(done)} replies, {len(refused)} refused with 503; RSS {baseline / 1024:.0f} MiB "
          f"before, {grown_mib:+.1f} MiB after")  # fmt: skip
    assert grown_mib < 16, f"the server kept {grown_mib:.1f} MiB after the load"
    assert "POST /v1/chat/completions 503" in server.log_text()


CLIENT_SCRIPT = textwrap.dedent("""
    import sys, openai
    client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
    messages = [
        {"role": "system", "content": "You are a helpful assistant. 당신은 훌륭한 비서입니다."},
        {"role": "user", "content": "서울에 대해 알려주세요."},
    ]
    for chunk in client.chat.completions.create(model="any", messages=messages, stream=True,
                                                temperature=0, max_tokens=900):
        print("chunk", flush=True)
""")


def test_a_client_killed_mid_stream_frees_the_engine_within_one_token(server: Served) -> None:
    wait_idle(server)
    before = len(re.findall("tokens_after_disconnect", server.log_text()))
    victim = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, server.url, API_KEY],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert victim.stdout is not None
    for _ in range(20):
        assert victim.stdout.readline() == b"chunk\n", victim.stderr.read()  # type: ignore[union-attr]
    victim.kill()
    victim.wait(timeout=10)
    # the next request is answered at once: it does not wait for 900 tokens
    reply = server.client().chat.completions.create(
        model="any", messages=RAMBLE, max_tokens=1, temperature=0
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 1
    deadline = time.monotonic() + 30
    while len(found := re.findall(r"completion=(\d+) finish=cancelled tokens_after_disconnect="
                                  r"(\d+)", server.log_text())) <= before:  # fmt: skip
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.05)
    completion, after = (int(n) for n in found[-1])
    print(f"killed after {completion} tokens; {after} made after the disconnect")
    assert 20 <= completion < 900
    assert after <= 1, f"{after} tokens were generated after the client went away"
    wait_idle(server)


def test_the_real_model_answers_paris(tmp_path: Path) -> None:
    from tests.fixtures.real_models import smollm2_gguf

    real = serve(tmp_path, smollm2_gguf())
    try:
        reply = real.client().chat.completions.create(
            model="any", temperature=0, max_tokens=32,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )  # fmt: skip
    finally:
        real.stop()
    answer = reply.choices[0].message.content or ""
    assert "Paris" in answer, answer
