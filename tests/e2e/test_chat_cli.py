"""``bllossom chat`` driven through stdin: streaming, commands, Ctrl-C, saved history."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bllossom_core.store import ConversationStore
from tests.fixtures.gguf_models import fixture_gguf
from tests.fixtures.signals import default_sigint

ROOT = Path(__file__).resolve().parents[2]


def _start(home: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BLLOSSOM_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "bllossom_core.cli", "chat", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        preexec_fn=default_sigint,
    )  # fmt: skip


def test_chat_session_saves_history(bllossom_home: Path, tmp_path: Path) -> None:
    model = fixture_gguf("llama3-bpe-ko")
    export = tmp_path / "chat.md"
    script = "\n".join([
        "첫 질문입니다", "/system 너는 해적이다", "두 번째 질문", f"/save {export}",
        "/new", "새 대화", "/quit",
    ]) + "\n"  # fmt: skip
    proc = _start(bllossom_home, str(model), "--max-tokens", "12", "--temperature", "0",
                  "--context-size", "512", "--threads", "1")  # fmt: skip
    out, err = proc.communicate(script.encode(), timeout=120)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert (
        "CPU: " in text and "System prompt set." in text and "Started a new conversation." in text
    )
    assert export.is_file() and "두 번째 질문" in export.read_text("utf-8")

    store = ConversationStore()
    conversations = sorted(store.list_conversations(), key=lambda c: c.id)
    assert len(conversations) == 2
    first, second = conversations
    assert first.system_prompt == "너는 해적이다"
    thread = store.thread(first.id)
    assert [m.role for m in thread] == ["user", "assistant", "user", "assistant"]
    assert thread[0].text == "첫 질문입니다" and thread[2].text == "두 번째 질문"
    assert all(m.text for m in thread[1::2])
    assert thread[1].text in text and thread[3].text in text  # what streamed is what was saved
    assert store.thread(second.id)[0].text == "새 대화"
    store.close()


def test_ctrl_c_stops_a_reply_not_the_program(bllossom_home: Path) -> None:
    model = fixture_gguf("llama3-bpe-ko")
    proc = _start(bllossom_home, str(model), "--max-tokens", "3000", "--temperature", "1",
                  "--context-size", "4096", "--threads", "1")  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("길게 말해줘\n".encode())
    proc.stdin.flush()
    seen = b""
    while seen.count(b"> ") < 1 or len(seen.split(b"> ", 1)[1]) < 20:
        chunk = os.read(proc.stdout.fileno(), 256)
        assert chunk, "chat exited early"
        seen += chunk
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    out, err = proc.communicate(b"/quit\n", timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"[stopped]" in seen + out
    store = ConversationStore()
    (conversation,) = store.list_conversations()
    reply = store.thread(conversation.id)[-1]
    assert reply.role == "assistant" and reply.text
    store.close()


def test_chat_with_an_endpoint_streams_and_saves(bllossom_home: Path) -> None:
    import threading

    from tests.unit.core.test_remote import FakeServer, happy_script

    server = FakeServer(happy_script)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()  # fmt: skip
    try:
        proc = _start(bllossom_home, "--endpoint", server.url, "--api-key", "k")
        out, err = proc.communicate("인사해줘\n/quit\n".encode(), timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, err.decode()
    assert "안녕하세요! Hello" in out.decode()
    store = ConversationStore()
    (conversation,) = store.list_conversations()
    assert [m.text for m in store.thread(conversation.id)] == ["인사해줘", "안녕하세요! Hello"]
    store.close()


def test_a_message_too_long_for_the_context_is_not_saved(bllossom_home: Path) -> None:
    model = fixture_gguf("llama3-bpe-ko")
    proc = _start(bllossom_home, str(model), "--max-tokens", "4", "--temperature", "0",
                  "--context-size", "256", "--threads", "1")  # fmt: skip
    script = "안녕하세요 " * 400 + "\n짧은 질문\n/quit\n"
    _, err = proc.communicate(script.encode(), timeout=120)
    assert proc.returncode == 0, err.decode()
    assert "The message is too long" in err.decode()
    store = ConversationStore()
    (conversation,) = store.list_conversations()
    thread = store.thread(conversation.id)
    assert [m.role for m in thread] == ["user", "assistant"]
    assert thread[0].text == "짧은 질문" and thread[1].complete
    store.close()
