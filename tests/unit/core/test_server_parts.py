"""The API server's pieces on their own: stop strings, the engine's waiting line, request
checking and error mapping, and the bind-safety rules."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from typing import cast

import pytest

from bllossom_core.engine import LocalEngine
from bllossom_core.errors import ErrorCode, InputError, InvalidSettingError, ModelLoadError
from bllossom_core.server.api_errors import ApiError, from_core_error
from bllossom_core.server.app import ServerState
from bllossom_core.server.gate import LineFull, ReplyGate
from bllossom_core.server.options import ServerOptions, is_local_host, open_listening_socket
from bllossom_core.server.protocol import (
    ChatRequest,
    CompletionRequest,
    chat_messages,
    parse_json,
    reply_spec,
    validate,
)
from bllossom_core.server.replies import ReplyRun
from bllossom_core.server.stop_strings import StopStringFilter
from bllossom_core.types import ChatMessage, GenerationSettings

# -- stop strings --------------------------------------------------------------------


def _through_filter(pieces: list[str], stops: list[str]) -> tuple[str, bool]:
    stop_filter = StopStringFilter(stops)
    out = []
    for piece in pieces:
        out.append(stop_filter.feed(piece))
        if stop_filter.stopped:
            break
    out.append(stop_filter.flush())
    return "".join(out), stop_filter.stopped


def _cut_at_first_stop(pieces: list[str], stops: list[str]) -> str:
    """The obvious way: after each piece, look for every stop string in all the text so
    far (as llama.cpp's server does after each token) and cut at the earliest."""
    text = ""
    for piece in pieces:
        text += piece
        found = [text.find(s) for s in stops if s in text]
        if found:
            return text[: min(found)]
    return text


@pytest.mark.parametrize("seed", range(40))
def test_stop_strings_cut_the_same_text_whatever_the_split(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "ab\n한국어 "
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
    stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
             for _ in range(rng.randint(1, 3))]  # fmt: skip
    cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 12))))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    streamed, stopped = _through_filter(pieces, stops)
    assert streamed == _cut_at_first_stop(pieces, stops)
    assert stopped == any(s in text for s in stops)


def test_stop_string_split_over_pieces_and_text_held_only_while_it_could_match() -> None:
    stop_filter = StopStringFilter(["\n\n"])
    assert stop_filter.feed("Hello\n") == "Hello"  # "\n" may start the stop string
    assert stop_filter.feed("world") == "\nworld"  # it did not
    assert stop_filter.feed("\n") == ""
    assert stop_filter.feed("\nmore") == ""
    assert stop_filter.stopped and stop_filter.flush() == ""
    assert _through_filter(["no", " stops"], []) == ("no stops", False)


# -- the waiting line ------------------------------------------------------------------


def test_gate_serves_in_order_and_refuses_beyond_the_line() -> None:
    changes: list[object] = []
    gate = ReplyGate(max_waiting=2, on_change=changes.append)
    first = gate.join("api")
    second, third = gate.join("api"), gate.join("api")
    assert first.granted and not second.granted and not third.granted
    with pytest.raises(LineFull) as full:
        gate.join("api")
    assert 1 <= full.value.retry_after_s <= 60
    assert gate.holder == "api" and gate.waiting == 2
    gate.leave(third)  # a waiter giving up leaves the line
    assert gate.waiting == 1
    gate.leave(first)
    assert second.granted and gate.waiting == 0
    gate.leave(second)
    gate.leave(second)  # harmless twice
    assert gate.holder is None and changes == ["api", "api", None]


def test_the_app_goes_before_waiting_requests_and_is_never_refused() -> None:
    gate = ReplyGate(max_waiting=1)
    running = gate.join("api")
    waiting_api = gate.join("api")
    got: list[object] = []
    app = threading.Thread(target=lambda: got.append(gate.wait_blocking("app", timeout=10)))
    app.start()
    while gate.waiting < 2:
        threading.Event().wait(0.01)
    gate.leave(running)
    app.join(10)
    assert got and got[0] is not None and gate.holder == "app"
    assert not waiting_api.granted
    gate.leave(got[0])  # type: ignore[arg-type]
    assert waiting_api.granted
    assert gate.wait_blocking("app", timeout=0.05) is None  # the API request still runs
    assert gate.waiting == 0


def test_the_app_says_when_it_waits_and_stops_waiting_when_told() -> None:
    gate = ReplyGate(max_waiting=1)
    running = gate.join("api")
    told: list[bool] = []
    stop = threading.Event()
    got: list[object] = []
    app = threading.Thread(target=lambda: got.append(gate.wait_blocking(
        "app", should_stop=stop.is_set, on_wait=lambda: told.append(True))))  # fmt: skip
    app.start()
    while gate.waiting < 1:
        threading.Event().wait(0.01)
    assert told == [True]
    stop.set()  # the user pressed Stop while the API request still ran
    app.join(5)
    assert got == [None] and gate.waiting == 0 and gate.holder == "api"
    gate.leave(running)
    assert gate.holder is None
    free = gate.wait_blocking("app", on_wait=lambda: told.append(False))
    assert free is not None and told == [True]  # a free turn is not a wait


def test_async_waiters_wake_from_another_thread_and_cancelling_leaves_the_line() -> None:
    gate = ReplyGate(max_waiting=4)
    holder = gate.join("app")

    async def scenario() -> list[str]:
        order: list[str] = []

        async def request(name: str) -> None:
            turn = await gate.wait("api")
            order.append(name)
            gate.leave(turn)

        quitter = asyncio.create_task(gate.wait("api"))
        tasks = [asyncio.create_task(request(n)) for n in ("a", "b")]
        await asyncio.sleep(0.05)
        quitter.cancel()
        await asyncio.sleep(0.05)
        assert gate.waiting == 2
        threading.Thread(target=gate.leave, args=(holder,)).start()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return order

    assert asyncio.run(scenario()) == ["a", "b"]
    assert gate.holder is None and gate.waiting == 0


def test_a_reply_that_starts_while_the_server_stops_is_cancelled() -> None:
    """Before: a run added just after stop()'s cancel_all streamed all its tokens."""

    class Run:
        cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    state = ServerState(cast(LocalEngine, None), ServerOptions(), "m", ReplyGate(max_waiting=1))
    early, late = Run(), Run()
    state.add_run(cast(ReplyRun, early))
    state.closing = True  # what LocalServer.stop does first, from its own thread
    state.cancel_all()
    state.add_run(cast(ReplyRun, late))  # the event loop got there after cancel_all
    assert early.cancelled and late.cancelled


# -- requests ----------------------------------------------------------------------------


def _spec(**fields: object) -> GenerationSettings:
    body = validate(ChatRequest, {"messages": [{"role": "user", "content": "hi"}], **fields})
    return reply_spec(body, context_size=512).settings


def test_defaults_are_the_model_cards_and_fields_map_as_documented() -> None:
    card = GenerationSettings()
    assert _spec() == GenerationSettings(max_tokens=min(card.max_tokens, 512))
    assert _spec(max_completion_tokens=7).max_tokens == 7
    assert _spec(max_tokens=5, max_completion_tokens=7).max_tokens == 5
    assert _spec(frequency_penalty=0).repeat_penalty == 1.0
    assert _spec(frequency_penalty=2).repeat_penalty == 2.0
    assert _spec(frequency_penalty=-2).repeat_penalty == 0.5
    assert _spec(frequency_penalty=2, repeat_penalty=1.3).repeat_penalty == 1.3
    assert _spec(temperature=0, top_k=0, seed=9, unknown_field={"x": 1}) == GenerationSettings(
        temperature=0, top_k=0, seed=9, max_tokens=512
    )


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"temperature": -1}, "temperature", "0 or more"),
        ({"top_p": 0}, "top_p", "above 0 and at most 1"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        ({"max_completion_tokens": 513}, "max_completion_tokens", "context size (512)"),
        ({"repeat_penalty": 0}, "repeat_penalty", "above 0"),
        ({"seed": -3}, "seed", "0 or more"),
        ({"frequency_penalty": 3}, "frequency_penalty", "less than or equal to 2"),
        ({"temperature": "hot"}, "temperature", "valid number"),
        ({"n": 2}, "n", "n = 1"),
        ({"stop": ["x"] * 17}, "stop", "at most 16"),
        ({"messages": []}, "messages", "at least 1"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role", "'system'"),
    ],
)
def test_invalid_values_name_the_field_as_the_client_sent_it(
    fields: dict[str, object], param: str, words: str
) -> None:
    with pytest.raises(ApiError) as refused:
        _spec(**fields)
    error = refused.value
    assert error.status == 400 and error.param == param and words in error.message
    assert "--" not in error.message  # CLI option names are translated to the field's
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_messages_become_engine_messages() -> None:
    body = validate(
        ChatRequest,
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "안녕"},
                        {"type": "text", "text": "하세요"},
                    ],
                },
                {"role": "assistant", "content": None},
            ]
        },
    )
    assert chat_messages(body) == [ChatMessage("system", "Be brief."),
                                   ChatMessage("user", "안녕\n하세요"),
                                   ChatMessage("assistant", "")]  # fmt: skip
    for bad in ({"role": "tool", "content": "42"},
                {"role": "user", "content": [{"type": "image_url"}]},
                {"role": "user"}):  # fmt: skip
        with pytest.raises(ApiError) as refused:
            chat_messages(validate(ChatRequest, {"messages": [bad]}))
        assert refused.value.status == 400
        assert (refused.value.param or "").startswith("messages.0")


def test_bodies_that_are_not_json_objects_are_refused() -> None:
    for body in (b"{bad", b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(ApiError) as refused:
            parse_json(body)
        assert refused.value.status == 400 and refused.value.code == "invalid_json"
    with pytest.raises(ApiError):
        validate(CompletionRequest, {"prompt": ["one", "two"]})


def test_core_errors_map_to_http_by_code() -> None:
    too_long = from_core_error(InputError("long", code=ErrorCode.MESSAGE_TOO_LONG))
    assert (too_long.status, too_long.code) == (400, "context_length_exceeded")
    busy = from_core_error(ModelLoadError("busy", code=ErrorCode.ENGINE_BUSY))
    assert (busy.status, busy.code, busy.headers["Retry-After"]) == (503, "engine_busy", "1")
    setting = from_core_error(InvalidSettingError("--top-p must be…", "top_p"))
    assert (setting.status, setting.code) == (400, "invalid_value")
    broken = from_core_error(ModelLoadError("decode failed"))
    assert (broken.status, broken.type, broken.code) == (500, "server_error", "model_load_failed")


# -- safe by default ---------------------------------------------------------------------


def test_listening_beyond_this_computer_needs_an_api_key() -> None:
    ServerOptions().check()
    ServerOptions(host="localhost").check()
    ServerOptions(host="::1").check()
    for host in ("0.0.0.0", "192.168.0.10", "::"):
        with pytest.raises(InputError) as refused:
            ServerOptions(host=host).check()
        assert refused.value.code == ErrorCode.API_KEY_REQUIRED
        assert "--api-key" in str(refused.value) and host in str(refused.value)
        ServerOptions(host=host, api_key="secret").check()
    assert is_local_host("127.0.0.2") and not is_local_host("0.0.0.0")
    for bad in (ServerOptions(port=70000), ServerOptions(max_waiting=-1),
                ServerOptions(api_key="  ")):  # fmt: skip
        with pytest.raises(InputError):
            bad.check()


def test_a_port_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError) as refused:
            open_listening_socket("127.0.0.1", port).close()
    assert refused.value.code == ErrorCode.PORT_IN_USE and str(port) in str(refused.value)
    with pytest.raises(InputError, match="not one of this computer's"):
        open_listening_socket("192.0.2.1", 0).close()  # TEST-NET-1: never a local address
    free = open_listening_socket("127.0.0.1", 0)
    assert free.getsockname()[1] > 0
    free.close()
