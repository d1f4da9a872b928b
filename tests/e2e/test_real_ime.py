"""Korean typed through real input-method engines into the real app, then sent.

Not synthetic ``QInputMethodEvent``s: ibus-hangul and fcitx5-hangul run in a private
D-Bus session (see :mod:`tests.fixtures.ime`), xdotool types 2-set keys as X key
events, and the test reads what the app stored in its conversation database. The two
engines order things differently: fcitx5-hangul (through fcitx5's IBus frontend, the
way fcitx5 users reach a PySide6 app) lets Space or Return reach the app *before* it
commits the syllable being composed, and loses the syllable when the focus moves;
ibus-hangul commits first. An app that sends only the committed text, or lets a key
overtake the syllable, fails here.

Each case waits until the last syllable is really composing (the app's input box
shows it as pre-edit) before the key or click that sends, so the case cannot pass by
timing luck.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.fixtures import ime
from tests.fixtures.xvfb import wait_for, xvfb

pytestmark = pytest.mark.e2e

IN_CI = bool(os.environ.get("CI"))


def user_messages(data: Path) -> list[str]:
    """Every user message the app stored, in the order it stored them."""
    path = data / "conversations.sqlite3"
    if not path.exists():
        return []
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        rows = db.execute("SELECT text FROM messages WHERE role = 'user' ORDER BY id")
        return [str(text) for (text,) in rows]


@pytest.fixture(scope="module")
def model() -> Path:
    from tests.fixtures.gguf_models import fixture_gguf

    return fixture_gguf("llama3-bpe-ko")


@pytest.fixture(scope="module", params=ime.ENGINES)
def app(
    request: pytest.FixtureRequest, model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ime.ProbedApp]:
    """The app, with the Hangul engine active in its input box."""
    engine = str(request.param)
    absent = ime.missing(engine)
    if absent:
        reason = f"needs {', '.join(absent)} (installed by scripts/setup)"
        if IN_CI:
            pytest.fail(f"{engine}: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp(f"ime-{engine}")
    data = root / "data"
    data.mkdir()
    with xvfb() as display, ime.input_method(engine, display, root) as env:
        app = ime.ProbedApp(env, data, ["--model", str(model)])
        try:
            app.xdotool("windowfocus", "--sync", app.window)
            app.wait_state("the input box focused", focus="InputBox")
            # The engine is in Hangul mode: ㄱ (r) composes.
            app.type_keys("r")
            app.wait_state("ㄱ composing in the input box", preedit="ㄱ")
            app.xdotool("key", "BackSpace")
            app.wait_state("the input box empty", text="", preedit="")
            yield app
            assert app.quit() == 0, app.output()
        finally:
            app.close()
        logs = "\n".join(path.read_text(errors="replace") for path in root.glob("*.log"))
        assert "Traceback" not in app.output() + logs


def type_until_composing(app: ime.ProbedApp, text: str) -> None:
    """Type ``text``'s 2-set keys into an empty box; returns once the keys are all in
    and the last syllable is still being composed (pre-edit)."""
    state = app.state()
    if state.get("generating"):
        app.click("send")  # Stop: an earlier case failed before stopping its reply
    if state.get("text") or state.get("preedit") or state.get("focus") != "InputBox":
        app.click("input")  # an earlier case failed and left text or the focus elsewhere
        app.xdotool("key", "ctrl+a", "BackSpace")
    app.wait_state("an empty input box", text="", preedit="", generating=False)
    app.type_keys(ime.KEYS[text])

    def last_syllable_composing() -> bool:
        state = app.state()
        return state["preedit"] == text[-1] and len(state["text"]) == len(text) - 1

    try:
        wait_for(last_syllable_composing, 10, f"{text[-1]!r} composing")
    except AssertionError as error:
        raise AssertionError(f"{error}; the input box: {app.state()}") from None


def sent(app: ime.ProbedApp, before: int) -> str:
    """The one user message stored since there were ``before``; stops the reply."""
    try:
        stored = wait_for(lambda: user_messages(app.data)[before:], 20, "a stored message")
    except AssertionError as error:
        raise AssertionError(f"{error}; the input box: {app.state()}") from None
    import time

    t0 = time.monotonic()
    app.wait_state("the reply generating", generating=True)
    t1 = time.monotonic()
    app.click("send")  # now the Stop button
    t2 = time.monotonic()
    app.wait_state("the reply stopped", timeout=60, generating=False)
    print("TIMING", t1 - t0, t2 - t1, time.monotonic() - t2, app.state())
    assert len(stored) == 1, stored
    return str(stored[0])


def test_return_while_composing(app: ime.ProbedApp) -> None:
    before = len(user_messages(app.data))
    type_until_composing(app, "감사합니다")
    app.xdotool("key", "Return")
    assert sent(app, before) == "감사합니다"


def test_space_while_composing_then_return(app: ime.ProbedApp) -> None:
    """The space arrives while 은 is composing; Return while 침 is."""
    before = len(user_messages(app.data))
    type_until_composing(app, "좋은 아침")
    app.xdotool("key", "Return")
    assert sent(app, before) == "좋은 아침"


def test_send_button_while_composing(app: ime.ProbedApp) -> None:
    before = len(user_messages(app.data))
    type_until_composing(app, "감사합니다")
    app.click("send")
    assert sent(app, before) == "감사합니다"


def test_click_elsewhere_while_composing_keeps_the_syllable(app: ime.ProbedApp) -> None:
    """The focus moves to the search box mid-syllable; back in the box, Return sends."""
    before = len(user_messages(app.data))
    type_until_composing(app, "감사합니다")
    app.click("search")
    app.wait_state("the search box focused", focus="QLineEdit")
    app.click("input")
    app.wait_state("the input box focused again", focus="InputBox")
    state = app.state()
    assert (state["text"], state["search_text"]) == ("감사합니다", "")
    app.xdotool("key", "End", "Return")
    assert sent(app, before) == "감사합니다"


DEBIAN_FCITX5_QT6_PLUGIN = Path(
    "/usr/lib/x86_64-linux-gnu/qt6/plugins/platforminputcontexts"
    "/libfcitx5platforminputcontextplugin.so"
)


def test_fcitx_users_module_setting_reaches_fcitx5(model: Path, tmp_path: Path) -> None:
    """A fcitx5 user's ``QT_IM_MODULE=fcitx``: PySide6's Qt has no fcitx plugin, and
    Debian's (fcitx5-frontend-qt6, put on ``QT_PLUGIN_PATH`` here) does not load into
    it, so Qt would run with no input method and type Latin letters. The app switches
    to fcitx5's IBus frontend before Qt starts, and the Korean arrives."""
    absent = ime.missing("fcitx5")
    if absent:
        reason = f"needs {', '.join(absent)} (installed by scripts/setup)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    data = tmp_path / "data"
    data.mkdir()
    with xvfb() as display, ime.input_method("fcitx5", display, tmp_path) as env:
        env = {**env, "QT_IM_MODULE": "fcitx"}
        if DEBIAN_FCITX5_QT6_PLUGIN.exists():
            plugins = tmp_path / "qt-plugins" / "platforminputcontexts"
            plugins.mkdir(parents=True)
            (plugins / DEBIAN_FCITX5_QT6_PLUGIN.name).symlink_to(DEBIAN_FCITX5_QT6_PLUGIN)
            env["QT_PLUGIN_PATH"] = str(plugins.parent)
        app = ime.ProbedApp(env, data, ["--model", str(model)])
        try:
            app.xdotool("windowfocus", "--sync", app.window)
            app.wait_state("the input box focused", focus="InputBox")
            type_until_composing(app, "감사합니다")
            app.xdotool("key", "Return")
            assert sent(app, 0) == "감사합니다"
            assert app.quit() == 0
        finally:
            app.close()
        assert "typing through fcitx5's IBus frontend" in app.output()
