"""Worker threads: streaming into the store, closing every reply stream, and a guard
against PySide6 releases that lose references to ``None``/``True``.

PySide6 6.12.0 on CPython 3.11 lowered those counts once per call (a method returning
nothing, a ``Signal.emit``) and the interpreter aborted when they reached zero
("Fatal Python error: bool_dealloc"). ``pyproject.toml`` pins a release without the
bug; the guard below fails the suite if an upgrade brings it back.
"""

from __future__ import annotations

import sys

from bllossom_core.errors import ModelLoadError
from bllossom_core.store import ConversationStore
from bllossom_core.types import ChatMessage, GenerationSettings
from desktop.qt import QCoreApplication, QObject, Signal
from desktop.workers import GenerationOutcome, GenerationWorker, JobRunner
from tests.unit.desktop.scripted import ScriptedEngine

PIECES = 3000


class _Sender(QObject):
    text = Signal(str)


def test_qt_calls_and_signal_emits_never_lose_none_or_true_references(qtbot) -> None:  # type: ignore[no-untyped-def]
    sender = _Sender()
    received: list[str] = []
    sender.text.connect(received.append)
    calls = 20_000
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(calls):
        sender.setObjectName("x")  # a Qt method returning None
        sender.text.emit("piece")  # Signal.emit returns True
    QCoreApplication.processEvents()
    # Growth is harmless (new objects refer to them); a loss means the binding returns
    # them without owning a reference, and the process aborts after some thousands.
    assert sys.getrefcount(None) >= none_before - 100
    assert sys.getrefcount(True) >= true_before - 100
    assert len(received) == calls


def run_worker(qtbot, engine: ScriptedEngine, stop_after_first_piece: bool = False):  # type: ignore[no-untyped-def]
    """Streams one reply with ``engine``; returns (outcome or error, store, conversation id)."""
    store = ConversationStore()
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "질문")
    writer = store.start_reply(conversation.id)
    worker = GenerationWorker(engine, [ChatMessage("user", "질문")], GenerationSettings(), writer)
    if stop_after_first_piece:  # a plain callable runs in the worker thread: no delay
        worker.pieces.connect(lambda _piece: worker.cancel.cancel())
    outcomes: list[object] = []
    runner = JobRunner()
    runner.start(worker, outcomes.append, outcomes.append)
    qtbot.waitUntil(lambda: bool(outcomes), timeout=10_000)
    runner.wait_all()
    return outcomes[0], store, conversation.id


def test_streaming_thousands_of_tokens_in_a_worker_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    store = ConversationStore()
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "길게")
    writer = store.start_reply(conversation.id)
    engine = ScriptedEngine([["가"] * PIECES])
    worker = GenerationWorker(engine, [ChatMessage("user", "길게")], GenerationSettings(), writer)
    streamed: list[str] = []
    worker.pieces.connect(streamed.append)
    outcomes: list[object] = []
    runner = JobRunner()
    runner.start(worker, outcomes.append, outcomes.append)
    qtbot.waitUntil(lambda: bool(outcomes), timeout=30_000)
    runner.wait_all()
    (outcome,) = outcomes
    assert isinstance(outcome, GenerationOutcome)
    assert outcome.message.text == "가" * PIECES and outcome.message.complete
    qtbot.waitUntil(lambda: len(streamed) == PIECES, timeout=5000)
    assert store.thread(conversation.id)[-1].text == "가" * PIECES
    store.close()


def test_the_stream_is_closed_when_the_reply_ends_or_is_stopped(qtbot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine([["하나", "둘", "셋"]])
    outcome, store, _ = run_worker(qtbot, engine)
    assert isinstance(outcome, GenerationOutcome) and outcome.message.text == "하나둘셋"
    stopped, store_2, _ = run_worker(qtbot, engine, stop_after_first_piece=True)
    # Stopped mid-stream: the loop was left early, the stream was not exhausted.
    assert isinstance(stopped, GenerationOutcome) and stopped.message.text == "하나"
    # Closed both times: the engine is free for the next reply at once.
    assert [stream.closed for stream in engine.streams] == [True, True]
    store.close()
    store_2.close()


def test_the_stream_is_closed_after_an_error_and_the_partial_reply_kept(qtbot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine([["앞부분", "뒷부분"]], fail_after=1)
    error, store, conversation_id = run_worker(qtbot, engine)
    assert isinstance(error, ModelLoadError)
    assert [stream.closed for stream in engine.streams] == [True]
    reply = store.thread(conversation_id)[-1]
    assert reply.text == "앞부분" and not reply.complete
    store.close()
