"""``bllossom serve`` as a user runs it, driven by the official ``openai`` client, our own
RemoteEngine and ``bllossom chat --endpoint``; every server is a real process on
127.0.0.1 serving a fixture GGUF."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from bllossom_core.remote import RemoteEngine
from bllossom_core.types import ChatMessage, GenerationSettings
from tests.fixtures.gguf_models import fixture_gguf
from tests.fixtures.signals import default_sigint

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-123"
SYSTEM = "You are a helpful assistant. 당신은 훌륭한 비서입니다."
QUESTION = "서울에 대해 알려주세요. Keep it short."
MESSAGES: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
CONTEXT = "1024"


def bllossom(*args: str, **popen: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "bllossom_core.cli", *args], env=env, cwd=ROOT,
                            preexec_fn=die_with_parent, **popen)  # fmt: skip


def die_with_parent() -> None:
    """Linux: the server gets SIGKILL if the test process dies (no orphaned servers); and
    SIGINT, which stops it, is not left ignored (see default_sigint)."""
    default_sigint()
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    model: Path

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def client(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(**{"base_url": self.url, "api_key": API_KEY, "max_retries": 0,
                                "timeout": 120, **options})  # fmt: skip

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def serve(log_dir: Path, model: Path, *extra: str, key: str | None = API_KEY) -> Served:
    log = log_dir / f"serve-{time.monotonic_ns()}.log"
    key_args = ["--api-key", key] if key else []
    with log.open("wb") as sink:
        process = bllossom("serve", str(model), "--port", "0", "--context-size", CONTEXT,
                           "--threads", "1", *key_args, *extra,
                           stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = re.search(r"Serving \S+ at (http://\S+/v1)", log.read_text(errors="replace"))
        if found:
            return Served(process, found.group(1), log, model)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the server did not start:\n{log.read_text(errors='replace')[-3000:]}")


def post(url: str, body: bytes, key: str | None = API_KEY) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def greedy(client: openai.OpenAI, messages: list[Any], max_tokens: int = 24, **extra: Any) -> Any:
    return client.chat.completions.create(model="any", messages=messages, temperature=0,
                                          max_tokens=max_tokens, **extra)  # fmt: skip


def streamed(client: openai.OpenAI, messages: list[Any], **extra: Any) -> tuple[str, Any, Any]:
    """The concatenated deltas, the finish reason and the usage chunk's usage."""
    pieces, finish, usage = [], None, None
    for chunk in client.chat.completions.create(model="any", messages=messages, stream=True,
                                                **extra):  # fmt: skip
        usage = chunk.usage or usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(pieces), finish, usage


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = serve(tmp_path_factory.mktemp("serve"), fixture_gguf("llama3-bpe-ko"),
                    "--model-alias", "bllossom-test")  # fmt: skip
    yield running
    running.stop()
    assert running.process.returncode == 0, running.log_text()[-3000:]


def test_models_health_and_the_key(server: Served) -> None:
    assert [m.id for m in server.client().models.list()] == ["bllossom-test"]
    with urllib.request.urlopen(server.url.removesuffix("/v1") + "/health", timeout=10) as r:
        assert json.loads(r.read()) == {"status": "ok", "busy": False, "waiting": 0}
    for wrong in ("wrong-key", API_KEY[:-1]):
        with pytest.raises(openai.AuthenticationError) as refused:
            openai.OpenAI(base_url=server.url, api_key=wrong, max_retries=0).models.list()
        assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    status, body = post(
        server.url + "/chat/completions", json.dumps({"messages": MESSAGES}).encode(), key=None
    )
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert "GET /v1/models 401" in server.log_text()


def test_streamed_korean_equals_the_whole_reply_byte_for_byte(server: Served) -> None:
    client = server.client()
    whole = greedy(client, MESSAGES, max_tokens=48)
    text, finish, usage = streamed(client, MESSAGES, temperature=0, max_tokens=48,
                                   stream_options={"include_usage": True})  # fmt: skip
    answer = whole.choices[0].message.content
    assert text.encode("utf-8") == answer.encode("utf-8")
    # The Korean fixture answers in Hangul, whose syllables span tokens: a split one would
    # show up as U+FFFD in the deltas but not in the whole reply.
    assert re.search("[가-힣]", answer), answer
    assert finish == whole.choices[0].finish_reason == "length"
    assert usage.completion_tokens == whole.usage.completion_tokens == 48
    assert usage.prompt_tokens == whole.usage.prompt_tokens > 20
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # the same messages again: the whole prompt came from the KV cache but its last token
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens - 1


def test_greedy_reply_equals_bllossom_generate(server: Served) -> None:
    generate = bllossom("generate", str(server.model), "--prompt", QUESTION, "--system", SYSTEM,
                        "--temperature", "0", "--max-tokens", "24", "--json",
                        "--context-size", CONTEXT, "--threads", "1",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = generate.communicate(timeout=120)
    assert generate.returncode == 0, err.decode()
    expected = json.loads(out)
    reply = greedy(server.client(), MESSAGES)
    assert reply.choices[0].message.content == expected["text"]
    assert reply.usage.prompt_tokens == expected["stats"]["prompt_tokens"]
    assert reply.usage.completion_tokens == expected["stats"]["generated_tokens"]
    timings = (reply.model_extra or {})["timings"]  # the engine's own figures, llama.cpp's names
    assert timings["predicted_n"] == reply.usage.completion_tokens
    assert timings["first_token_ms"] > 0 and timings["predicted_per_second"] > 0


def test_stop_strings_cut_the_reply_streamed_or_not(server: Served) -> None:
    client = server.client()
    full = greedy(client, MESSAGES, max_tokens=40).choices[0].message.content
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    expected = full[: full.find(stop)]
    cut = greedy(client, MESSAGES, max_tokens=40, stop=[stop, "never-appears"])
    assert cut.choices[0].message.content == expected
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage.completion_tokens < 40
    text, finish, _ = streamed(client, MESSAGES, temperature=0, max_tokens=40, stop=stop)
    assert (text, finish) == (expected, "stop")


def test_seeded_sampling_repeats(server: Served) -> None:
    client = server.client()

    def sample(seed: int) -> str:
        reply = client.chat.completions.create(model="any", messages=MESSAGES, temperature=1.0,
                                               top_p=1.0, max_tokens=24, seed=seed)  # fmt: skip
        return reply.choices[0].message.content or ""

    assert sample(42) == sample(42)
    assert len({sample(seed) for seed in (1, 2, 3)}) > 1


def test_a_follow_up_evaluates_only_its_new_tokens(server: Served) -> None:
    engine = RemoteEngine(server.url, api_key=API_KEY, read_timeout_s=120)
    settings = GenerationSettings(temperature=0.0, max_tokens=16)
    history = [ChatMessage("system", "짧게 답하세요."), ChatMessage("user", "첫 번째 질문")]
    first = engine.stream_chat(history, settings)
    reply = "".join(first)
    history += [ChatMessage("assistant", reply), ChatMessage("user", "두 번째 질문입니다")]
    second = engine.stream_chat(history, settings)
    assert "".join(second)
    new_tokens = second.stats.prompt_tokens - first.stats.prompt_tokens
    assert 0 < second.stats.evaluated_prompt_tokens <= new_tokens
    assert second.stats.evaluated_prompt_tokens < second.stats.prompt_tokens // 2


def test_bad_requests_get_openai_errors(server: Served) -> None:
    url = server.url + "/chat/completions"
    status, body = post(url, b'{"messages": [')
    assert status == 400 and body["error"]["code"] == "invalid_json"
    client = server.client()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 5000}, "max_tokens"),
        ({"n": 3}, "n"),
    ]
    for fields, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="any", messages=MESSAGES, **fields)
        assert refused.value.status_code == 400
        assert refused.value.param == param, refused.value.body
    with pytest.raises(openai.BadRequestError) as refused:
        greedy(client, [{"role": "user", "content": "긴 질문 " * 2000}])
    assert refused.value.code == "context_length_exceeded"
    # A body over the limit (8 MiB) is refused from its declared length, before it is read.
    address = url.removeprefix("http://").split("/")[0]
    connection = http.client.HTTPConnection(address, timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    for name, value in (("Authorization", f"Bearer {API_KEY}"),
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(9 * 1024 * 1024))):  # fmt: skip
        connection.putheader(name, value)
    connection.endheaders(b"{")
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "request_too_large"
    connection.close()
    # the server is unharmed
    assert greedy(client, MESSAGES, max_tokens=4).choices[0].message.content is not None


def test_raw_completions(server: Served) -> None:
    client = server.client()
    whole = client.completions.create(model="any", prompt="한국의 수도는", temperature=0,
                                      max_tokens=16)  # fmt: skip
    pieces = [
        c.choices[0].text
        for c in client.completions.create(
            model="any", prompt="한국의 수도는", temperature=0, max_tokens=16, stream=True
        )
    ]
    assert "".join(pieces) == whole.choices[0].text
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 16 and whole.choices[0].finish_reason == "length"


def test_remote_engine_and_chat_cli_against_our_server(server: Served, bllossom_home: Path) -> None:
    engine = RemoteEngine(server.url, api_key=API_KEY, read_timeout_s=120)
    assert engine.list_models() == ["bllossom-test"]
    settings = GenerationSettings(temperature=0.0, max_tokens=16)
    stream = engine.stream_chat([ChatMessage("user", "안녕하세요")], settings)
    remote_text = "".join(stream)
    reference = greedy(server.client(), [{"role": "user", "content": "안녕하세요"}], max_tokens=16)
    assert remote_text == reference.choices[0].message.content
    assert stream.stats.stop_reason == "length" and stream.stats.generated_tokens == 16

    chat = bllossom("chat", "--endpoint", server.url, "--api-key", API_KEY, "--temperature", "0",
                    "--max-tokens", "16", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)  # fmt: skip
    out, err = chat.communicate("안녕하세요\n/quit\n".encode(), timeout=120)
    assert chat.returncode == 0, err.decode()
    assert remote_text in out.decode()
    assert f"@ {server.url.removeprefix('http://').removesuffix('/v1')}" in out.decode()


def test_listening_beyond_this_computer_without_a_key_is_refused(tmp_path: Path) -> None:
    refused = bllossom("serve", str(fixture_gguf("llama3-bpe-ko")), "--host", "0.0.0.0",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 2
    message = err.decode()
    assert "Refusing to listen on 0.0.0.0 without an API key" in message and "--api-key" in message
    assert "Traceback" not in message


def test_a_port_in_use_is_reported_before_loading(server: Served) -> None:
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    second = bllossom("serve", str(server.model), "--port", port, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)  # fmt: skip
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2 and f"Port {port} on 127.0.0.1 is already in use" in err.decode()
