"""The operation runner: results, errors and progress arrive on the GUI thread; cancel,
wait and close; a reply of thousands of pieces streams through it into the store. Also
a guard against PySide6 releases that lose references to ``None``/``True``.

PySide6 6.12.0 on CPython 3.11 lowered those counts once per call (a method returning
nothing, a ``Signal.emit``) and the interpreter aborted when they reached zero
("Fatal Python error: bool_dealloc"). ``pyproject.toml`` pins a release without the
bug; the guard below fails the suite if an upgrade brings it back.
"""

from __future__ import annotations

import sys
import threading
import time

from bllossom_core.errors import ErrorCode, InputError
from bllossom_core.session import ChatSession, ReplyPiece
from bllossom_core.store import ConversationStore
from desktop.ops import OpContext, OpRunner
from desktop.qt import QCoreApplication, QObject, QThread, Signal
from tests.fixtures.scripted_engine import ScriptedEngine

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


def test_results_errors_and_progress_arrive_on_the_gui_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    runner = OpRunner()
    gui = QThread.currentThread()
    seen: list[tuple[str, object, bool]] = []

    def work(ctx: OpContext) -> int:
        assert QThread.currentThread() is not gui  # off the GUI thread
        ctx.report("half")
        return 42

    def fail(_ctx: OpContext) -> int:
        raise InputError("bad", code=ErrorCode.INVALID_INPUT)

    runner.run(
        "work",
        work,
        lambda result: seen.append(("ok", result, QThread.currentThread() is gui)),
        on_progress=lambda value: seen.append(("progress", value, QThread.currentThread() is gui)),
    )
    runner.run(
        "fail",
        fail,
        on_failure=lambda error: seen.append(("error", error, QThread.currentThread() is gui)),
    )
    qtbot.waitUntil(lambda: not runner.busy and len(seen) == 3, timeout=5000)
    assert ("progress", "half", True) in seen and ("ok", 42, True) in seen
    (error,) = [entry for entry in seen if entry[0] == "error"]
    assert isinstance(error[1], InputError) and error[2]


def test_cancel_wait_and_close(qtbot) -> None:  # type: ignore[no-untyped-def]
    runner = OpRunner()
    started = threading.Event()

    def wait_for_cancel(ctx: OpContext) -> str:
        started.set()
        while not ctx.cancelled:
            time.sleep(0.01)
        return "stopped"

    results: list[str] = []
    runner.run("long", wait_for_cancel, results.append)
    assert started.wait(5)
    assert runner.running() == ["long"]
    assert not runner.wait_all(50)  # still running: the caller must not tear down yet
    runner.cancel_all()
    assert runner.wait_all(5000)
    qtbot.waitUntil(lambda: results == ["stopped"], timeout=5000)
    runner.close()
    never = runner.run("after close", lambda _ctx: "ran")
    assert not never.running and not runner.busy


def test_a_long_reply_streams_through_an_op_into_the_store(qtbot) -> None:  # type: ignore[no-untyped-def]
    store = ConversationStore()
    engine = ScriptedEngine([["가"] * PIECES])
    session = ChatSession(store, engine)
    streamed: list[str] = []
    outcomes: list[object] = []

    def run(ctx: OpContext) -> str:
        return session.ask("길게", cancel=ctx.cancel).run(ctx.report).text

    def piece(value: object) -> None:
        assert isinstance(value, ReplyPiece)
        streamed.append(value.text)

    runner = OpRunner()
    runner.run("reply", run, outcomes.append, outcomes.append, piece)
    qtbot.waitUntil(lambda: bool(outcomes), timeout=30_000)
    assert outcomes == ["가" * PIECES]
    qtbot.waitUntil(lambda: len(streamed) == PIECES, timeout=5000)
    assert session.thread()[-1].text == "가" * PIECES and session.thread()[-1].complete
    assert engine.open_stream is None
    store.close()
