"""RemoteEngine against hostile or broken servers: surrogates, floods past max_tokens,
redirects, absurd chunk sizes, Ctrl-C before the headers; errors worded by what
happened; reasoning models' thinking apart from the answer."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bllossom_core.errors import ErrorCode, RemoteError
from bllossom_core.remote import RemoteEngine
from bllossom_core.remote_http import MAX_CHARS_PER_TOKEN
from bllossom_core.store import ConversationStore
from bllossom_core.types import CancelToken, GenerationSettings, StreamPiece
from tests.fixtures.signals import default_sigint
from tests.unit.core.test_remote import (
    HELLO,
    FakeServer,
    Handler,
    Script,
    chunk,
)

REPO = Path(__file__).resolve().parents[3]
Serve = Callable[[Script], FakeServer]


def raw_event(content_json: str, field: str = "content") -> bytes:
    """An event whose delta text is given as raw JSON (escapes kept as written)."""
    return (
        b'data: {"choices":[{"index":0,"delta":{"' + field.encode() + b'":'
        + content_json.encode() + b'},"finish_reason":null}]}\n\n'
    )  # fmt: skip


def events_script(*events: bytes, finish: bool = True) -> Script:
    def script(handler: Handler) -> None:
        handler.start_events()
        for event in events:
            handler.send_chunked(event)
        if finish:
            handler.send_chunked(chunk(finish="stop"))
            handler.send_chunked(b"data: [DONE]\n\n")
        handler.end_chunked()

    return script


def open_stream(server: FakeServer, **settings: int) -> object:
    return RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings(**settings))


# -- surrogates -------------------------------------------------------------------------


def test_lone_surrogate_escape_becomes_a_replacement_character(serve: Serve) -> None:
    server = serve(events_script(raw_event('"before \\ud800 after"'), raw_event('"\\udfff!"')))
    stream = RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    assert "".join(stream) == "before \ufffd after\ufffd!"
    assert stream.stats.stop_reason == "stop"


def test_surrogate_pair_split_across_events_is_joined(serve: Serve) -> None:
    server = serve(
        events_script(
            raw_event('"웃음 \\ud83d"'), raw_event('"\\ude00 끝"'), raw_event('"\\ud83d"')
        )
    )
    stream = RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    assert "".join(stream) == "웃음 \U0001f600 끝\ufffd"  # the last one never got its partner
    "".join(stream.text).encode("utf-8")


def test_the_store_keeps_a_partial_reply_with_surrogates_and_the_error(
    serve: Serve, tmp_path: Path
) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        handler.send_chunked(raw_event('"부분 \\ud83d"'))
        handler.send_chunked(raw_event('"\\ude00 \\udc00"'))
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    server = serve(script)
    with ConversationStore(tmp_path / "db.sqlite3") as store:
        conversation = store.create_conversation()
        store.add_message(conversation.id, "user", "안녕?")
        stream = RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
        with pytest.raises(RemoteError) as caught, store.start_reply(conversation.id) as writer:
            for piece in stream:
                writer.append(piece)
        assert caught.value.code is ErrorCode.REPLY_INTERRUPTED
        saved = store.get_message(writer.message_id)
        assert saved.text == "부분 \U0001f600 \ufffd" and not saved.complete
        assert saved.error and "middle of the reply" in saved.error


# -- bounded replies --------------------------------------------------------------------


def test_a_server_ignoring_max_tokens_is_cut_off(serve: Serve) -> None:
    sent = {"events": 0}

    def script(handler: Handler) -> None:
        handler.start_events()
        try:
            for _ in range(100_000):
                handler.send_chunked(chunk("토큰 "))
                sent["events"] += 1
        except OSError:
            pass  # the client hung up, as it should

    stream = RemoteEngine(serve(script).url, model="m").stream_chat(
        HELLO, GenerationSettings(max_tokens=16)
    )
    assert list(stream) == ["토큰 "] * 16
    assert stream.stats.stop_reason == "length" and stream.stats.generated_tokens == 16


def test_a_flood_in_huge_events_stays_bounded(serve: Serve) -> None:
    sent = {"bytes": 0}
    piece = "가" * 1_000_000  # 3 MB per event; 100 MB would follow

    def script(handler: Handler) -> None:
        handler.start_events()
        event = chunk(piece)
        try:
            while sent["bytes"] < 100_000_000:
                handler.send_chunked(event)
                sent["bytes"] += len(event)
        except OSError:
            pass

    stream = RemoteEngine(serve(script).url, model="m").stream_chat(
        HELLO, GenerationSettings(max_tokens=100)
    )
    text = "".join(stream)
    assert len(text) <= 100 * MAX_CHARS_PER_TOKEN + 4096 and text == "가" * len(text)
    assert stream.stats.stop_reason == "length"
    assert sent["bytes"] < 50_000_000  # the client stopped reading long before 100 MB


def test_reasoning_content_counts_against_max_tokens(serve: Serve) -> None:
    server = serve(events_script(*[raw_event('"think "', "reasoning_content")] * 50))
    stream = RemoteEngine(server.url, model="m").stream_chat(
        HELLO, GenerationSettings(max_tokens=5)
    )
    pieces = list(stream.events())
    assert pieces == [StreamPiece("thinking", "think ")] * 5
    assert stream.stats.stop_reason == "length"


# -- redirects, malformed bodies --------------------------------------------------------


def redirect(location: str, with_body: bool) -> Script:
    def script(handler: Handler) -> None:
        body = chunk("not a reply") if with_body else b""
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return script


@pytest.mark.parametrize("with_body", [False, True])
def test_redirect_to_a_file_is_refused(serve: Serve, with_body: bool) -> None:
    server = serve(redirect("file:///etc/passwd", with_body))
    engine = RemoteEngine(server.url, model="m")
    for call in (lambda: list(engine.stream_chat(HELLO, GenerationSettings())),
                 engine.list_models):  # fmt: skip
        with pytest.raises(RemoteError) as caught:
            call()
        assert caught.value.code is ErrorCode.SERVER_ERROR
        assert "'file:///etc/passwd'" in str(caught.value)
        assert "not a web address" in str(caught.value)
        assert "middle of the reply" not in str(caught.value)


def test_redirect_with_a_body_is_not_taken_as_a_reply(serve: Serve) -> None:
    server = serve(redirect("https://elsewhere.example/v1/chat/completions", with_body=True))
    with pytest.raises(RemoteError, match="does not follow redirects") as caught:
        RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    assert "https://elsewhere.example" in str(caught.value)


@pytest.mark.parametrize("started", [False, True])
def test_an_absurd_chunk_size_is_a_clear_error(serve: Serve, started: bool) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        if started:
            handler.send_chunked(chunk("앞부분"))
        handler.wfile.write(b"ffffffffffffffff\r\ndata: {}\r\n")
        handler.wfile.flush()
        handler.close_connection = True

    stream = RemoteEngine(serve(script).url, model="m").stream_chat(HELLO, GenerationSettings())
    with pytest.raises(RemoteError, match="malformed reply") as caught:
        list(stream)
    expected = ErrorCode.REPLY_INTERRUPTED if started else ErrorCode.SERVER_ERROR
    assert caught.value.code is expected
    assert stream.text == ("앞부분" if started else "")


# -- wording by what happened -----------------------------------------------------------


def test_nothing_started_is_could_not_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = RemoteEngine(f"http://127.0.0.1:{port}/v1", model="m", connect_timeout_s=5)
    for call in (lambda: engine.stream_chat(HELLO, GenerationSettings()), engine.list_models):
        with pytest.raises(RemoteError, match=f"Could not connect to 127.0.0.1:{port}") as caught:
            call()
        assert caught.value.code is ErrorCode.SERVER_UNREACHABLE


def test_a_server_closing_before_any_reply_is_not_called_midway(serve: Serve) -> None:
    def script(handler: Handler) -> None:
        handler.start_events()
        handler.end_chunked()

    stream = RemoteEngine(serve(script).url, model="m").stream_chat(HELLO, GenerationSettings())
    with pytest.raises(RemoteError, match="without a reply") as caught:
        list(stream)
    assert caught.value.code is ErrorCode.SERVER_ERROR
    assert "middle" not in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_keys_are_auth_failed(serve: Serve, status: int) -> None:
    server = serve(lambda handler: handler.send_json(status, {"error": {"message": "bad key"}}))
    engine = RemoteEngine(server.url, api_key="wrong", model="m")
    for call in (lambda: engine.stream_chat(HELLO, GenerationSettings()), engine.list_models):
        with pytest.raises(RemoteError, match="refused the API key") as caught:
            call()
        assert caught.value.code is ErrorCode.AUTH_FAILED


def test_list_models_is_the_connection_test(serve: Serve) -> None:
    server = serve(
        lambda handler: handler.send_json(200, {"data": [{"id": "bllossom-70b"}, {"id": "x"}]})
    )
    assert RemoteEngine(server.url).list_models() == ["bllossom-70b", "x"]


# -- cancelling before the server answers -------------------------------------------------


def silent_before_headers(handler: Handler) -> None:
    handler.server.release.wait(timeout=60)  # a loaded server queueing the request


def test_cancel_while_waiting_for_headers_stops_only_the_reply(serve: Serve) -> None:
    server = serve(silent_before_headers)
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    began = time.monotonic()
    engine = RemoteEngine(server.url, model="m", read_timeout_s=60)
    stream = engine.stream_chat(HELLO, GenerationSettings(), token)
    assert time.monotonic() - began < 30  # not the 60 s read timeout
    assert list(stream) == [] and stream.stats.stop_reason == "cancelled"


CTRL_C_CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    sys.path.insert(0, sys.argv[2])
    from bllossom_core.remote import RemoteEngine
    from bllossom_core.types import ChatMessage, GenerationSettings
    engine = RemoteEngine(sys.argv[1], model="m", read_timeout_s=60)
    stream = engine.stream_chat([ChatMessage("user", "hi")], GenerationSettings())
    print("reply:", list(stream), stream.stats.stop_reason)
    print("still running")
    """
)


def test_ctrl_c_while_waiting_for_headers_does_not_quit(serve: Serve, tmp_path: Path) -> None:
    server = serve(silent_before_headers)
    script = tmp_path / "child.py"
    script.write_text(CTRL_C_CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), server.url, str(REPO)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not server.requests and time.monotonic() < deadline:  # the request is out
            time.sleep(0.02)
        time.sleep(0.2)  # and the child waits for the headers
        child.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert out.splitlines() == ["reply: [] cancelled", "still running"]


# -- reasoning models ---------------------------------------------------------------------


def test_reasoning_content_is_thinking(serve: Serve) -> None:
    server = serve(events_script(
        raw_event('"The user greets. "', "reasoning_content"),
        raw_event('"Answer politely."', "reasoning_content"),
        raw_event('"안녕하세요!"'),
    ))  # fmt: skip
    stream = RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    assert list(stream.events()) == [
        StreamPiece("thinking", "The user greets. "),
        StreamPiece("thinking", "Answer politely."),
        StreamPiece("answer", "안녕하세요!"),
    ]
    assert stream.thinking == "The user greets. Answer politely." and stream.text == "안녕하세요!"
    assert stream.stats.thinking_seconds is not None and stream.stats.stop_reason == "stop"


def test_think_tags_split_across_events_go_through_the_splitter(serve: Serve) -> None:
    parts = ["<thi", "nk>\nLet me think", " about it.</th", "ink>\n\n", "답은 ", "4입니다."]
    server = serve(events_script(*(chunk(part) for part in parts)))
    stream = RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    events = list(stream.events())
    thinking = "".join(p.text for p in events if p.kind == "thinking")
    answer = "".join(p.text for p in events if p.kind == "answer")
    assert (thinking, answer) == ("Let me think about it.", "답은 4입니다.")
    plain = RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    assert "".join(plain) == "답은 4입니다."  # iteration gives the answer only


def test_a_think_tag_later_in_an_answer_is_text(serve: Serve) -> None:
    server = serve(events_script(chunk("Use the <think> tag like this.")))
    stream = RemoteEngine(server.url, model="m").stream_chat(HELLO, GenerationSettings())
    assert [p.kind for p in stream.events()] == ["answer"]
    assert stream.text == "Use the <think> tag like this."


def test_events_or_iteration_not_both(serve: Serve) -> None:
    stream = RemoteEngine(serve(events_script(chunk("a"))).url, model="m").stream_chat(
        HELLO, GenerationSettings()
    )
    assert "".join(stream) == "a"
    with pytest.raises(RuntimeError, match="only once"):
        list(stream.events())
    assert json.dumps(stream.stats.to_dict())
