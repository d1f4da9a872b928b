"""RemoteEngine against a scripted stdlib HTTP server: SSE parsing, stats, every failure."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bllossom_core.errors import InputError, RemoteError
from bllossom_core.remote import RemoteEngine
from bllossom_core.remote_protocol import Endpoint, SSEError, iter_sse_data
from bllossom_core.types import CancelToken, ChatMessage, GenerationSettings

Script = Callable[["Handler"], None]
HELLO = [ChatMessage("system", "sys"), ChatMessage("user", "안녕?")]


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    delta = {} if content is None else {"content": content}
    event = {"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}
    ], **extra}  # fmt: skip
    return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        self.server.script(self)

    def start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunked(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.script = script
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def stream_until_first_piece(
    server: FakeServer, token: CancelToken
) -> tuple[RemoteEngine, Any, list[str], threading.Thread]:
    """Start a reply in a worker thread; return once its first piece has arrived."""
    engine = RemoteEngine(server.url, model="m", read_timeout_s=60)
    stream = engine.stream_chat(HELLO, GenerationSettings(), cancel=token)
    pieces: list[str] = []
    worker = threading.Thread(target=lambda: pieces.extend(stream))
    worker.start()
    deadline = time.monotonic() + 30
    while not pieces and time.monotonic() < deadline:
        time.sleep(0.01)
    return engine, stream, pieces, worker


def happy_script(handler: Handler) -> None:
    if handler.command == "GET":
        handler.send_json(200, {"object": "list", "data": [{"id": "bllossom-70b"}, {"id": "b"}]})
        return
    handler.start_events()
    handler.send_chunked(b": keep-alive comment\n\n")
    handler.send_chunked(b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n')
    for piece in ["안녕", "하세요", "! Hello"]:
        handler.send_chunked(chunk(piece))
    handler.send_chunked(chunk(finish="stop"))
    usage = {"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22,
             "prompt_tokens_details": {"cached_tokens": 4}}  # fmt: skip
    handler.send_chunked(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
    handler.send_chunked(b"data: [DONE]\n\n")
    handler.end_chunked()


def test_streams_pieces_and_reads_usage_stats(serve: Callable[[Script], FakeServer]) -> None:
    server = serve(happy_script)
    engine = RemoteEngine(server.url + "/v1/", api_key="secret-key", model="bllossom-70b")
    settings = GenerationSettings(temperature=0.4, top_p=0.8, top_k=30, max_tokens=64, seed=3)
    stream = engine.stream_chat(HELLO, settings)
    assert list(stream) == ["안녕", "하세요", "! Hello"]
    assert stream.text == "안녕하세요! Hello"
    stats = stream.stats
    assert (stats.prompt_tokens, stats.evaluated_prompt_tokens, stats.generated_tokens) == (
        17, 13, 5,
    )  # fmt: skip
    assert stats.stop_reason == "stop" and stats.context_used == 22
    assert stats.time_to_first_token_s is not None and stats.time_to_first_token_s >= 0
    assert stats.tokens_per_second is None or stats.tokens_per_second > 0

    method, path, headers, body = server.requests[-1]
    assert (method, path) == ("POST", "/v1/chat/completions")
    assert headers["Authorization"] == "Bearer secret-key"
    request = json.loads(body)
    assert request["messages"] == [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "안녕?"},
    ]  # fmt: skip
    assert request["stream"] is True and request["model"] == "bllossom-70b"
    assert (request["temperature"], request["top_p"], request["max_tokens"]) == (0.4, 0.8, 64)
    assert (request["seed"], request["top_k"], request["repeat_penalty"]) == (3, 30, 1.1)


def test_model_defaults_to_the_servers_first_and_device_names_it(
    serve: Callable[[Script], FakeServer],
) -> None:
    server = serve(happy_script)
    engine = RemoteEngine(server.url, send_extra_sampling=False)
    assert engine.list_models() == ["bllossom-70b", "b"]
    assert "".join(engine.stream_chat(HELLO, GenerationSettings())) == "안녕하세요! Hello"
    request = json.loads(server.requests[-1][3])
    assert request["model"] == "bllossom-70b" and "top_k" not in request
    assert "Authorization" not in server.requests[-1][2]
    assert engine.device.backend == "remote"
    assert engine.device.summary == "Remote: 127.0.0.1 (bllossom-70b)"
    assert engine.display_name == f"bllossom-70b @ 127.0.0.1:{server.server_address[1]}"


def test_length_stop_and_chunk_count_without_usage(serve: Callable[[Script], FakeServer]) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        for piece in ["a", "b", "c"]:
            handler.send_chunked(chunk(piece))
        handler.send_chunked(chunk(finish="length"))
        handler.end_chunked()  # no [DONE]: a finish_reason is enough

    stream = RemoteEngine(serve(script).url, model="m").stream_chat(HELLO, GenerationSettings())
    assert "".join(stream) == "abc"
    assert (stream.stats.generated_tokens, stream.stats.stop_reason) == (3, "length")
    assert stream.stats.prompt_tokens == 0


@pytest.mark.parametrize("clean_close", [True, False])
def test_server_dying_mid_stream_keeps_the_partial_reply(
    serve: Callable[[Script], FakeServer], clean_close: bool
) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        handler.send_chunked(chunk("부분 "))
        handler.send_chunked(chunk("답변"))
        if clean_close:
            handler.end_chunked()  # the body ends without finish_reason or [DONE]
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    stream = RemoteEngine(serve(script).url, model="m").stream_chat(HELLO, GenerationSettings())
    received = []
    with pytest.raises(RemoteError, match="stopped in the middle of the reply") as caught:
        for piece in stream:
            received.append(piece)
    assert received == ["부분 ", "답변"] and stream.text == "부분 답변"
    assert stream.stats.stop_reason == "error" and stream.stats.generated_tokens == 2
    assert "partial" in str(caught.value) or "kept" in str(caught.value)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"data: {not json}\n\n", "cannot read"),
        (b'data: {"error": {"message": "CUDA out of memory"}}\n\n', "CUDA out of memory"),
        (b"data: [1, 2]\n\n", "unexpected event"),
    ],
)
def test_malformed_or_error_events_raise_remote_error(
    serve: Callable[[Script], FakeServer], payload: bytes, message: str
) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        handler.send_chunked(chunk("ok"))
        handler.send_chunked(payload)
        handler.end_chunked()

    stream = RemoteEngine(serve(script).url, model="m").stream_chat(HELLO, GenerationSettings())
    with pytest.raises(RemoteError, match=message):
        list(stream)
    assert stream.text == "ok" and stream.stats.stop_reason == "error"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, {"error": {"message": "Invalid API key"}}, "refused the API key.*Invalid API key"),
        (403, {"detail": "forbidden"}, "refused the API key"),
        (404, {"detail": "Not Found"}, "no OpenAI-compatible API.*ends in /v1"),
        (500, {"error": {"message": "model crashed"}}, "HTTP 500.*model crashed"),
    ],
)
def test_http_errors_name_the_cause(
    serve: Callable[[Script], FakeServer], status: int, body: Any, message: str
) -> None:
    server = serve(lambda handler: handler.send_json(status, body))
    engine = RemoteEngine(server.url, api_key="wrong", model="m")
    with pytest.raises(RemoteError, match=message):
        engine.stream_chat(HELLO, GenerationSettings())
    with pytest.raises(RemoteError, match=message):
        engine.list_models()


def test_non_streaming_answer_is_refused(serve: Callable[[Script], FakeServer]) -> None:
    server = serve(lambda handler: handler.send_json(200, {"choices": []}))
    with pytest.raises(RemoteError, match="did not stream"):
        RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    with pytest.raises(RemoteError, match="not an OpenAI model list"):
        RemoteEngine(server.url, model="m").list_models()


def test_connection_refused_is_explained() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = RemoteEngine(f"http://127.0.0.1:{port}/v1", model="m", connect_timeout_s=5)
    with pytest.raises(RemoteError, match="nothing is listening") as caught:
        engine.stream_chat(HELLO, GenerationSettings())
    assert "Start the server" in str(caught.value)


@pytest.mark.parametrize("use_token", [True, False])
def test_cancel_from_another_thread_while_the_server_is_silent(
    serve: Callable[[Script], FakeServer], use_token: bool
) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        handler.send_chunked(chunk("first"))
        handler.server.release.wait(timeout=60)  # then nothing: a model thinking hard

    server = serve(script)
    token = CancelToken()
    engine, stream, pieces, worker = stream_until_first_piece(server, token)
    if use_token:
        token.cancel()
    else:
        engine.close()
    worker.join(timeout=20)
    assert not worker.is_alive(), "cancel did not unblock the read"
    assert pieces == ["first"] and stream.stats.stop_reason == "cancelled"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://gpu-box:8000", "http://gpu-box:8000/v1"),
        ("gpu-box:8000/v1/", "http://gpu-box:8000/v1"),
        ("https://api.example.com/openai/v1/chat/completions", "https://api.example.com:443/openai/v1"),
        ("http://[::1]:11434/v1/models", "http://[::1]:11434/v1"),
    ],
)  # fmt: skip
def test_base_url_forms(url: str, expected: str) -> None:
    assert Endpoint.parse(url).url == expected


@pytest.mark.parametrize("url", ["ftp://host/v1", "http://", "http://host:99999/v1"])
def test_bad_base_urls_are_input_errors(url: str) -> None:
    with pytest.raises(InputError):
        RemoteEngine(url)


def test_sse_parser_follows_the_spec() -> None:
    raw = (
        ": comment\r\n"
        "event: message\r\n"
        "data: line one\r\n"
        "data:line two\r\n"
        "\r\n"
        "id: 7\n\n"  # an event without data is skipped
        'data: {"k": "한국어"}\n\n'
        "data: last event without blank line"
    ).encode()
    events = list(iter_sse_data(io.BytesIO(raw).readline))
    assert events == ["line one\nline two", '{"k": "한국어"}', "last event without blank line"]
    with pytest.raises(SSEError, match="UTF-8"):
        list(iter_sse_data(io.BytesIO(b"data: \xff\xfe\n\n").readline))


def test_a_server_that_goes_silent_times_out_with_the_partial_reply(
    serve: Callable[[Script], FakeServer],
) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        handler.send_chunked(chunk("시작"))
        handler.server.release.wait(timeout=60)

    engine = RemoteEngine(serve(script).url, model="m", read_timeout_s=0.3)
    stream = engine.stream_chat(HELLO, GenerationSettings())
    with pytest.raises(RemoteError, match=r"nothing arrived for 0\.3 s"):
        list(stream)
    assert stream.text == "시작" and stream.stats.stop_reason == "error"


def test_stats_are_current_when_the_caller_stops_iterating_after_cancel(
    serve: Callable[[Script], FakeServer],
) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        for piece in ["a", "b", "c", "d"]:
            handler.send_chunked(chunk(piece))
        handler.server.release.wait(timeout=60)

    token = CancelToken()
    stream = RemoteEngine(serve(script).url, model="m").stream_chat(
        HELLO, GenerationSettings(), token
    )
    for piece in stream:  # the desktop's worker breaks out of the loop on cancel
        if piece == "b":
            token.cancel()
            break
    assert stream.stats.generated_tokens == 2 and stream.stats.stop_reason == "cancelled"
    assert stream.stats.time_to_first_token_s is not None


def test_cancel_unblocks_a_stalled_close_delimited_response(
    serve: Callable[[Script], FakeServer],
) -> None:
    # No Content-Length and not chunked: the body ends when the server closes, and
    # http.client hands the socket to the response (``connection.sock`` becomes None).
    def script(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(chunk("first"))
        handler.wfile.flush()
        handler.server.release.wait(timeout=60)  # then the model stalls

    server = serve(script)
    token = CancelToken()
    _engine, stream, pieces, worker = stream_until_first_piece(server, token)
    token.cancel()
    worker.join(timeout=10)  # far below the 60 s read timeout
    assert not worker.is_alive(), "cancel did not unblock the read"
    assert pieces == ["first"] and stream.stats.stop_reason == "cancelled"


def test_a_server_down_at_the_first_message_gets_its_model_named_once_back() -> None:
    # The model is looked up with the first message; a server not running then must
    # not leave the engine sending no model name for good (vLLM refuses that).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = RemoteEngine(f"http://127.0.0.1:{port}/v1", connect_timeout_s=5)
    with pytest.raises(RemoteError, match="Could not connect"):
        engine.stream_chat(HELLO, GenerationSettings())
    server = FakeServer(happy_script, port=port)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()  # fmt: skip
    try:
        assert "".join(engine.stream_chat(HELLO, GenerationSettings())) == "안녕하세요! Hello"
        assert json.loads(server.requests[-1][3])["model"] == "bllossom-70b"
    finally:
        server.shutdown()
        server.server_close()
