"""RemoteEngine against a live OpenAI-compatible server: llama-cpp-python's own
``llama_cpp.server`` serving a fixture GGUF on 127.0.0.1, started by the test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bllossom_core.errors import ErrorCode, RemoteError
from bllossom_core.remote import RemoteEngine
from bllossom_core.store import ConversationStore
from bllossom_core.types import CancelToken, ChatMessage, GenerationSettings
from tests.fixtures.gguf_models import fixture_gguf

pytestmark = pytest.mark.e2e

API_KEY = "test-key-123"
ALIAS = "bllossom-fixture"
PROMPT = [
    ChatMessage("system", "You are a helpful assistant. 당신은 훌륭한 비서입니다."),
    ChatMessage("user", "서울에 대해 알려주세요."),
]
GREEDY = GenerationSettings(temperature=0.0, top_k=1, max_tokens=24, seed=7)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)  # uvicorn waits for running replies
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def die_with_parent() -> None:
    """Linux: the server gets SIGKILL if the test process dies (no orphaned servers)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(log_dir: Path, n_ctx: int) -> Server:
    model = fixture_gguf("llama2-spm")
    port = free_port()
    log = log_dir / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
             "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", str(n_ctx), "--n_threads", "1", "--api_key", API_KEY],
            stdout=sink, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    server = Server(process, port, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if get_json(server, "/models")["data"]:
                return server
        except (OSError, ValueError):
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")


def get_json(server: Server, path: str, payload: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(payload).encode() if payload is not None else None,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("llama-server"), n_ctx=1024)
    yield running
    running.stop()


@pytest.fixture
def engine(server: Server) -> Iterator[RemoteEngine]:
    remote = RemoteEngine(server.url, api_key=API_KEY, read_timeout_s=120)
    yield remote
    remote.close()


def test_lists_the_served_model_and_names_it(engine: RemoteEngine) -> None:
    assert engine.list_models() == [ALIAS]
    assert "".join(engine.stream_chat(PROMPT, GREEDY))  # resolves the model on first use
    assert engine.model == ALIAS
    assert engine.device.summary == f"Remote: 127.0.0.1 ({ALIAS})"


def test_streamed_reply_matches_the_servers_own_non_streamed_reply(
    engine: RemoteEngine, server: Server
) -> None:
    stream = engine.stream_chat(PROMPT, GREEDY)
    events = list(stream.events())
    assert {piece.kind for piece in events} == {"answer"}  # not a reasoning model
    pieces = [piece.text for piece in events]
    reference = get_json(server, "/chat/completions", {
        "model": ALIAS, "messages": [{"role": m.role, "content": m.content} for m in PROMPT],
        "temperature": 0.0, "top_k": 1, "max_tokens": GREEDY.max_tokens, "seed": 7,
        "repeat_penalty": GREEDY.repeat_penalty,
    })  # fmt: skip
    choice = reference["choices"][0]
    assert len(pieces) > 1 and "".join(pieces) == choice["message"]["content"]
    stats = stream.stats
    assert stats.stop_reason == choice["finish_reason"] == "length"
    assert 1 <= stats.generated_tokens <= reference["usage"]["completion_tokens"]
    assert stats.time_to_first_token_s is not None and stats.time_to_first_token_s > 0
    assert stats.tokens_per_second is not None and stats.tokens_per_second > 0


def test_cancel_from_another_thread_stops_the_stream(engine: RemoteEngine, server: Server) -> None:
    token = CancelToken()
    long_run = GenerationSettings(temperature=0.0, top_k=1, max_tokens=900)
    stream = engine.stream_chat(PROMPT, long_run, cancel=token)
    pieces: list[str] = []
    three = threading.Event()

    def consume() -> None:
        for piece in stream:
            pieces.append(piece)
            if len(pieces) == 3:
                three.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert three.wait(timeout=120)
    threading.Thread(target=token.cancel).start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert stream.stats.stop_reason == "cancelled"
    assert 3 <= len(pieces) < long_run.max_tokens
    # The server shrugs off the dropped connection and keeps serving.
    assert "".join(engine.stream_chat(PROMPT, GREEDY))


def test_wrong_api_key_and_wrong_base_url(server: Server) -> None:
    with pytest.raises(RemoteError, match="refused the API key") as caught:
        RemoteEngine(server.url, api_key="wrong", model=ALIAS).stream_chat(PROMPT, GREEDY)
    assert caught.value.code is ErrorCode.AUTH_FAILED
    with pytest.raises(RemoteError, match="refused the API key") as caught:
        RemoteEngine(server.url).list_models()
    assert caught.value.code is ErrorCode.AUTH_FAILED
    wrong_path = f"http://127.0.0.1:{server.port}/api/v1"
    with pytest.raises(RemoteError, match="no OpenAI-compatible API"):
        RemoteEngine(wrong_path, api_key=API_KEY, model=ALIAS).stream_chat(PROMPT, GREEDY)


def test_server_killed_mid_reply_keeps_the_partial_reply_in_the_store(tmp_path: Path) -> None:
    doomed = start_server(tmp_path, n_ctx=4096)
    try:
        engine = RemoteEngine(doomed.url, api_key=API_KEY, model=ALIAS, read_timeout_s=60)
        with ConversationStore(tmp_path / "conversations.sqlite3") as store:
            # This prompt makes the fixture model ramble for hundreds of tokens (no early
            # end of text), so the server is still generating when it is killed.
            conversation = store.create_conversation(
                model=engine.display_name, system_prompt=PROMPT[0].content
            )
            store.add_message(conversation.id, "user", PROMPT[1].content)
            writer = store.start_reply(conversation.id)
            stream = engine.stream_chat(
                store.chat_messages(conversation.id, up_to=writer.parent_id),
                GenerationSettings(temperature=0.0, top_k=1, max_tokens=4000),
            )
            with pytest.raises(RemoteError, match="stopped in the middle") as caught:
                for piece in stream:
                    writer.append(piece)
                    if doomed.process.poll() is None:
                        doomed.process.send_signal(signal.SIGKILL)
            saved = writer.fail(caught.value)
            assert doomed.process.wait(timeout=30) == -signal.SIGKILL
            assert stream.text and saved.text == stream.text
            thread = store.thread(conversation.id)
            assert [m.text for m in thread] == [PROMPT[1].content, stream.text]
            assert not saved.complete and "stopped in the middle" in (saved.error or "")
            assert caught.value.code is ErrorCode.REPLY_INTERRUPTED
            assert stream.stats.stop_reason == "error"
            assert stream.stats.generated_tokens < 4000
    finally:
        doomed.stop()
