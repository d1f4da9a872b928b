"""Worker threads, and the PySide6 reference bug that used to abort the app.

PySide6 6.12.0 on CPython < 3.12 returns ``None``/``True`` without owning a reference
(see ``desktop.qt``); each call lowers their counts, and the interpreter aborted once
they reached zero. These tests make far more calls than the counts hold.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from bllossom_core.store import ConversationStore
from bllossom_core.types import ChatMessage, GenerationSettings
from desktop.workers import GenerationOutcome, GenerationWorker, JobRunner
from tests.unit.desktop.scripted import ScriptedEngine

REPO = Path(__file__).resolve().parents[3]
PIECES = 3000

HAMMER = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, {repo!r})
{import_line}
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Sender(QObject):
    text = Signal(str)

app = QCoreApplication([])
sender = Sender()
received = []
sender.text.connect(received.append)
start_none, start_true = sys.getrefcount(None), sys.getrefcount(True)
for index in range({calls}):
    sender.setObjectName("x")          # returns None
    sender.text.emit("piece")          # returns True
app.processEvents()
print(len(received), start_none, start_true, flush=True)
"""


def run_hammer(import_line: str, calls: int) -> subprocess.CompletedProcess[str]:
    script = HAMMER.format(repo=str(REPO), import_line=import_line, calls=calls)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hundreds_of_thousands_of_qt_calls_then_a_clean_exit() -> None:
    calls = 200_000
    result = run_hammer("import desktop.qt", calls)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Fatal Python error" not in result.stderr
    assert int(result.stdout.split()[0]) == calls


def test_the_same_calls_abort_without_the_workaround_while_pyside_has_the_bug() -> None:
    import desktop.qt

    result = run_hammer("", 200_000)
    if desktop.qt.PYSIDE_STEALS_SINGLETONS:
        # The bug the workaround exists for: None or True is deallocated (SIGABRT).
        assert result.returncode != 0
        assert "_dealloc" in result.stderr, result.stderr[-2000:]
    else:  # a fixed PySide6 (or CPython >= 3.12): no workaround needed, none applied
        assert result.returncode == 0
        assert sys.getrefcount(None) < desktop.qt.IMMORTAL_BOOST


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
