"""The real ``bllossom-desktop`` process under Xvfb with a fixture GGUF model.

Types a Korean question with xdotool (real X key events), waits for the streamed
answer in the conversation database, quits, restarts (the model and the conversation
are remembered), asks again in the same conversation, then kills the app with
SIGKILL mid-reply and checks the partial reply was kept.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bllossom_core.store import ConversationStore, Message
from tests.fixtures.xvfb import wait_for, xvfb

pytestmark = pytest.mark.e2e

# The app's command beside the interpreter running the tests, whatever environment that
# is (a venv, an installed package, CI), not a fixed .venv path.
APP = Path(sys.executable).with_name("bllossom-desktop")
MISSING = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]


@pytest.fixture
def display() -> Iterator[str]:
    if MISSING:
        pytest.skip(f"needs {' and '.join(MISSING)} (installed by scripts/setup)")
    with xvfb() as name:
        yield name


class DesktopApp:
    def __init__(self, display: str, home: Path, args: list[str]) -> None:
        self.env = {
            **os.environ,
            "DISPLAY": display,
            "BLLOSSOM_HOME": str(home),
            "QT_QPA_PLATFORM": "xcb",
        }
        self.home = home
        self.log = home / f"app-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(APP), "--language", "ko", *args], env=self.env, stdout=log, stderr=log
            )
        self.window = wait_for(self._find_window, 30, "the main window")

    def _find_window(self) -> str:
        assert self.process.poll() is None, self.log.read_text(errors="replace")
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", "Bllossom"],
            env=self.env, capture_output=True, text=True,
        )  # fmt: skip
        return found.stdout.split()[0] if found.stdout.split() else ""

    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True, timeout=60)

    def draft(self) -> list[str]:
        try:
            settings = json.loads((self.home / "settings.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return list(settings.get("drafts", {}).values())

    def ask(self, question: str) -> None:
        """Type ``question`` with real key events and press Enter.

        xdotool types a Hangul syllable by re-mapping a spare keycode; when the X
        server is busy the app can see the key before the new mapping and drop it.
        The saved draft shows what the app received, so retype until it matches.
        """
        self.xdotool("windowfocus", "--sync", str(self.window))
        for _attempt in range(4):
            self.xdotool("key", "ctrl+a", "BackSpace")
            self.xdotool("type", "--delay", "60", question)
            try:
                wait_for(lambda: question in self.draft(), 5, "the typed draft")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"xdotool could not type {question!r}; got {self.draft()}")
        self.xdotool("key", "Return")

    def quit(self) -> int:
        """Ctrl+Q; the exit status, after checking the interpreter shut down cleanly."""
        self.xdotool("windowfocus", "--sync", str(self.window))
        self.xdotool("key", "ctrl+q")
        code = self.process.wait(30)
        output = self.log.read_text(errors="replace")
        for sign in ("Fatal Python error", "Aborted", "abort", "Traceback"):
            assert sign not in output, output
        return code


def thread_of_only_conversation(home: Path) -> list[Message]:
    store = ConversationStore(home / "conversations.sqlite3")
    try:
        conversations = store.list_conversations()
        return store.thread(conversations[0].id) if len(conversations) == 1 else []
    finally:
        store.close()


def test_chat_restart_and_kill(display: str, tmp_path: Path) -> None:
    from tests.fixtures.gguf_models import fixture_gguf

    model = fixture_gguf("llama3-bpe-ko")
    home = tmp_path / "home"
    home.mkdir()

    app = DesktopApp(display, home, ["--model", str(model)])
    first = "안녕하세요, 한국어로 자기소개를 해 주세요"
    app.ask(first)

    def answered(count: int) -> list[Message]:
        thread = thread_of_only_conversation(home)
        done = len(thread) == count and thread[-1].complete and thread[-1].text
        return thread if done else []

    thread = wait_for(lambda: answered(2), 240, "the streamed answer")
    assert (thread[0].role, thread[0].text) == ("user", first)  # once, every syllable
    assert thread[1].role == "assistant" and thread[1].generated_tokens > 0
    assert app.quit() == 0

    # Restart without --model: the last model and the last conversation come back.
    app = DesktopApp(display, home, [])
    second = "두 번째 질문입니다"
    app.ask(second)
    thread = wait_for(lambda: answered(4), 240, "the answer after the restart")
    assert [m.text for m in thread[:3]] == [first, thread[1].text, second]

    # Kill the app while it streams: the reply is kept up to its last checkpoint.
    app.ask("아주 길게 대답해 주세요")

    def streaming_reply() -> Message | None:
        thread = thread_of_only_conversation(home)
        if len(thread) == 6 and not thread[-1].complete and len(thread[-1].text) > 5:
            return thread[-1]
        return None

    partial = wait_for(streaming_reply, 90, "a checkpointed partial reply")
    os.kill(app.process.pid, signal.SIGKILL)
    app.process.wait(10)
    kept = thread_of_only_conversation(home)[-1]
    assert kept.id == partial.id  # type: ignore[union-attr]
    assert kept.text.startswith(partial.text)  # type: ignore[union-attr]
    assert not kept.complete

    # And the app starts again on the same data after the crash.
    app = DesktopApp(display, home, [])
    assert app.quit() == 0
    assert len(thread_of_only_conversation(home)) == 6


def test_the_app_answers_correctly_with_a_real_model(
    display: str, tmp_path: Path, smollm2_gguf: Path
) -> None:
    """SmolLM2-135M-Instruct in the real app: typed question, greedy reply naming Paris,
    the very reply the engine gives for the prompt the app sends (its system prompt and
    the question)."""
    from bllossom_core.engine import LocalEngine
    from bllossom_core.templates import DEFAULT_SYSTEM_PROMPT
    from bllossom_core.types import ChatMessage, GenerationSettings
    from desktop.settings import AppSettings

    home = tmp_path / "home"
    home.mkdir()
    greedy = GenerationSettings(temperature=0.0, max_tokens=48)
    # A conversation left open with greedy settings (as set in Conversation settings).
    with ConversationStore(home / "conversations.sqlite3") as store:
        conversation = store.create_conversation(
            "Geography", system_prompt=DEFAULT_SYSTEM_PROMPT, settings=greedy
        )
    AppSettings(last_conversation=str(conversation.id)).save(home / "settings.json")
    app = DesktopApp(display, home, ["--model", str(smollm2_gguf)])
    question = "What is the capital of France?"
    app.ask(question)

    def answered() -> list[Message]:
        thread = thread_of_only_conversation(home)
        return thread if len(thread) == 2 and thread[-1].complete else []

    thread = wait_for(answered, 120, "the real model's answer")
    assert app.quit() == 0
    assert thread[0].text == question
    assert "Paris" in thread[1].text, thread[1].text
    engine = LocalEngine.load(smollm2_gguf, context_size=4096)
    try:
        stream = engine.stream_chat(
            [ChatMessage("system", DEFAULT_SYSTEM_PROMPT), ChatMessage("user", question)], greedy
        )
        with stream:
            reference = "".join(stream)
    finally:
        engine.close()
    assert thread[1].text == reference
