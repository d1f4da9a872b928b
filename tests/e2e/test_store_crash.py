"""kill -9 a process streaming a reply into the store: nothing committed is lost.

The child commits finished messages and streams a reply through a ReplyWriter; the
parent kills it without warning once several checkpoints are on disk, then checks the
file: integrity intact, every message the child reported as committed present, and the
partial reply saved up to its last checkpoint and flagged incomplete.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bllossom_core.store import ConversationStore

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_INTERVAL_S = 0.2
MAX_LOSS_S = 1.0  # the promise: a crash loses at most the last second of a reply

CHILD = r"""
import sys, time
from bllossom_core.store import ConversationStore

store = ConversationStore(sys.argv[1])
history = store.create_conversation("history")
for i in range(10):
    message = store.add_message(history.id, "user" if i % 2 == 0 else "assistant", f"기록 {i}")
    print("committed", message.id, flush=True)
live = store.create_conversation("live")
store.add_message(live.id, "user", "긴 답변을 써 주세요")
writer = store.start_reply(live.id, checkpoint_interval_s=float(sys.argv[2]))
print("reply", writer.message_id, flush=True)
for i in range(1_000_000):
    writer.append(f"<{i:06d}조각>")
    print("appended", i, time.monotonic(), flush=True)
    if i % 20 == 0:
        message = store.add_message(history.id, "user", f"side {i}")
        print("committed", message.id, flush=True)
    time.sleep(0.002)
"""


def piece(i: int) -> str:
    return f"<{i:06d}조각>"


def saved_reply(path: Path, message_id: int) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT text FROM messages WHERE id = ?", (message_id,)).fetchone()
        return row[0] if row else ""
    finally:
        conn.close()


def run_and_kill(path: Path, extra_s: float) -> tuple[list[int], int, str, dict[int, float], float]:
    """Start the child, kill -9 it mid-stream; returns what it reported and when."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(CHECKPOINT_INTERVAL_S)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []

    def collect() -> None:
        assert child.stdout is not None
        lines.extend(child.stdout)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        reply_id = None
        seen = ""
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
            reply_id = next((int(s.split()[1]) for s in lines if s.startswith("reply")), None)
            if reply_id is not None:
                seen = saved_reply(path, reply_id)
                if seen.count("<") >= 60:  # several checkpoints are on disk
                    break
        assert reply_id is not None and seen.count("<") >= 60, "".join(lines[-5:])
        time.sleep(extra_s)  # land the kill somewhere between two checkpoints
        child.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
    reader.join(timeout=60)
    assert child.returncode == -signal.SIGKILL
    lines = [line for line in lines if line.endswith("\n")]  # the kill may cut the last one
    committed = [int(s.split()[1]) for s in lines if s.startswith("committed")]
    appended = {
        int(parts[1]): float(parts[2])
        for parts in (s.split() for s in lines if s.startswith("appended"))
        if len(parts) == 3
    }
    return committed, reply_id, seen, appended, killed_at


def test_kill_9_mid_reply_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    for extra_s in (0.33, 0.57):  # the second child reopens the file the first crashed on
        committed, reply_id, seen, appended, killed_at = run_and_kill(path, extra_s)

        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()

        with ConversationStore(path) as store:
            for message_id in committed:
                assert store.get_message(message_id).complete
            reply = store.get_message(reply_id)
            assert not reply.complete and reply.error is None
            count = reply.text.count("<")
            assert reply.text == "".join(piece(i) for i in range(count))
            assert reply.text.startswith(seen)  # what was on disk before the kill survives
            if count in appended:  # the first piece lost was appended shortly before the kill
                lost_s = killed_at - appended[count]
                assert lost_s <= MAX_LOSS_S + CHECKPOINT_INTERVAL_S, (count, max(appended))
            assert [h.message_id for h in store.search(piece(count - 1))] == [reply_id]


THINKING_CHILD = r"""
import sys, time
from bllossom_core.store import ConversationStore

store = ConversationStore(sys.argv[1])
conversation = store.create_conversation("reasoning")
store.add_message(conversation.id, "user", "2+2는?")
writer = store.start_reply(conversation.id, checkpoint_interval_s=0.1)
print("reply", writer.message_id, flush=True)
for i in range(1_000_000):
    writer.append_thinking(f"[step {i:06d}] ")
    time.sleep(0.002)
"""


def test_kill_9_while_thinking_keeps_the_thinking(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", THINKING_CHILD, str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        reply_id = int(child.stdout.readline().split()[1])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            row = conn.execute("SELECT thinking FROM messages WHERE id = ?", (reply_id,)).fetchone()
            conn.close()
            if row and row[0].count("[step") >= 30:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
    with ConversationStore(path) as store:
        reply = store.get_message(reply_id)
        steps = reply.thinking.count("[step")
        assert steps >= 30 and not reply.complete and reply.text == ""
        assert reply.thinking == "".join(f"[step {i:06d}] " for i in range(steps))
        assert reply.thinking_seconds is not None  # measured while it streamed
        assert store.search("step 000001") == []  # thinking is not searched by default
        (hit,) = store.search("step 000001", include_thinking=True)
        assert hit.message_id == reply_id and hit.in_thinking
