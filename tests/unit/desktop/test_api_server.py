"""The desktop's "Local API server" switch: the loaded model served to other programs,
the address in the status bar, and the app's chats taking turns with API requests."""

from __future__ import annotations

import json
import socket
import urllib.request

from bllossom_core.session import ConversationOptions
from bllossom_core.store import ConversationStore
from bllossom_core.types import GenerationSettings
from desktop.api_server_settings import ApiServerSettingsBox
from desktop.qt import QApplication, Qt
from desktop.settings import AppSettings
from desktop.settings_dialog import SettingsDialog
from tests.fixtures.gguf_models import fixture_gguf
from tests.fixtures.ports import unused_port
from tests.unit.desktop.test_main_window import settle


def load_fixture_model(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.conversation.apply_options(
        ConversationOptions("", "auto", GenerationSettings(max_tokens=8))
    )
    window.models.open_file(fixture_gguf("llama2-spm-ko"))
    qtbot.waitUntil(lambda: window.models.engine is not None, timeout=60_000)
    settle(qtbot, window)


def open_settings_box(window) -> ApiServerSettingsBox:  # type: ignore[no-untyped-def]
    window.show_settings()
    (dialog,) = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, SettingsDialog) and w.isVisible()]  # fmt: skip
    box = dialog.findChild(ApiServerSettingsBox)
    assert box is not None
    return box


def serving(qtbot, window):  # type: ignore[no-untyped-def]
    """The window's API server switched on over a loaded fixture model."""
    load_fixture_model(qtbot, window)
    box = open_settings_box(window)
    box.enabled_box.setChecked(True)
    box.port_spin.setValue(unused_port())
    box.apply()
    qtbot.waitUntil(lambda: window.api_server.running, timeout=30_000)
    return window.api_server


def get_json(url: str, key: str | None = None, body: dict | None = None) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_switch_serves_the_loaded_model_and_shows_the_address(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    load_fixture_model(qtbot, window)
    box = open_settings_box(window)
    assert not box.enabled_box.isChecked() and not box.network_box.isChecked()  # off by default
    assert box.state_label.text() == "Off." and not box.apply_button.isEnabled()
    port = unused_port()
    box.enabled_box.setChecked(True)
    box.port_spin.setValue(port)
    assert box.state_label.text() == "Press Apply to use these settings."
    qtbot.mouseClick(box.apply_button, Qt.MouseButton.LeftButton)
    switch = window.api_server
    qtbot.waitUntil(lambda: switch.running, timeout=30_000)
    url = f"http://127.0.0.1:{port}/v1"
    assert switch.url == url
    assert window.status.api_label.text() == f"API {url}"
    assert box.state_label.text() == f"Serving at {url}"
    models = get_json(f"{url}/models")
    assert [m["id"] for m in models["data"]] == [switch._server.model_alias]  # type: ignore[union-attr]
    question = {"messages": [{"role": "user", "content": "안녕"}], "max_tokens": 4}
    reply = get_json(f"{url}/chat/completions", body=question)
    assert reply["usage"]["completion_tokens"] >= 1
    saved = AppSettings.load().api_server
    assert saved["enabled"] is True and saved["port"] == port and saved["allow_network"] is False
    # Switched off: the address goes and the port is free again.
    box.enabled_box.setChecked(False)
    qtbot.mouseClick(box.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not switch.running and not switch.starting, timeout=30_000)
    assert window.status.api_label.isHidden()
    with socket.socket() as probe:  # nothing listens there any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_app_chat_waits_for_an_api_reply_and_says_so(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    switch = serving(qtbot, window)
    server = switch._server
    assert server is not None
    api_turn = server.gate.join("api")  # an API request holds the model
    qtbot.waitUntil(lambda: switch.api_busy, timeout=5000)
    assert "answering a request" in window.status.api_label.text()
    window.chat.input.setPlainText("기다려 주세요")
    window.chat.input.submit()
    qtbot.waitUntil(lambda: "Busy: answering an API request" in window.status.currentMessage(),
                    timeout=5000)  # fmt: skip
    assert ConversationStore().list_conversations() == []  # nothing stored while waiting
    server.gate.leave(api_turn)
    qtbot.waitUntil(lambda: not window.busy, timeout=60_000)
    settle(qtbot, window)
    (conversation,) = ConversationStore().list_conversations()
    thread = ConversationStore().thread(conversation.id)
    assert thread[0].text == "기다려 주세요" and thread[1].complete
    assert "Busy" not in window.status.currentMessage()


def test_stop_while_waiting_for_the_api_keeps_the_message(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    switch = serving(qtbot, window)
    assert switch._server is not None
    api_turn = switch._server.gate.join("api")
    window.chat.input.setPlainText("취소할 메시지")
    window.chat.input.submit()
    qtbot.waitUntil(lambda: "Busy" in window.status.currentMessage(), timeout=5000)
    window.conversation.stop()
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    assert window.chat.input.toPlainText() == "취소할 메시지"
    assert ConversationStore().list_conversations() == []
    switch._server.gate.leave(api_turn)


def test_other_devices_need_a_key_and_get_one(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    box = open_settings_box(window)
    box.enabled_box.setChecked(True)
    box.network_box.setChecked(True)
    key = box.key_edit.text()
    assert key.startswith("bllossom-") and len(key) > 30  # generated at once
    box.key_edit.clear()
    assert box.state_label.text().startswith("Other devices need an API key")
    assert not box.apply_button.isEnabled()
    qtbot.mouseClick(box.generate_button, Qt.MouseButton.LeftButton)
    assert box.key_edit.text() and box.apply_button.isEnabled()
    box.apply()
    # No model loaded yet: it waits for one; the key is kept (no keyring in the tests:
    # the settings file, readable only by the user).
    assert box.state_label.text() == "Starts when a model on this computer is loaded."
    saved = AppSettings.load().api_server
    assert saved["api_key"] == box.key_edit.text() and saved["key_storage"] == "file"
    window.languages.apply("ko")
    qtbot.waitUntil(lambda: box.title() == "로컬 API 서버", timeout=2000)
