"""Adding a remote server: the connection is tested off the GUI thread, its models are
offered, failures are worded by what happened, and the form says where the key goes.

A real HTTP server on 127.0.0.1 (the core tests' scripted OpenAI server), a closed
port, and a server refusing the key; never the developer's real keyring.
"""

from __future__ import annotations

import socket
from pathlib import Path

import keyring

from bllossom_core.api_keys import SERVICE
from bllossom_core.paths import settings_path
from bllossom_core.store import ConversationStore
from desktop.models import ModelsDialog
from desktop.ops import OpRunner
from desktop.qt import QMessageBox
from desktop.settings import AppSettings, RegisteredModel
from tests.fixtures.ports import unused_port
from tests.unit.core.test_api_keys import MemoryKeyring
from tests.unit.core.test_remote import Handler, happy_script

SHOTS = Path("/work/notes/shots")


def refuse_the_key(handler: Handler) -> None:
    handler.send_json(401, {"error": {"message": "Invalid API key"}})


def make_dialog(qtbot) -> ModelsDialog:  # type: ignore[no-untyped-def]
    ops = OpRunner()
    dialog = ModelsDialog([], current="", ops=ops)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def wait_for_test(qtbot, dialog: ModelsDialog) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: dialog.remote.state.kind in ("connected", "failed"), timeout=20_000)


def test_test_connection_offers_the_servers_models(qtbot, serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(happy_script)
    dialog = make_dialog(qtbot)
    form = dialog.remote
    form.url_edit.setText(server.url + "/v1")
    form.key_edit.setText("sk-test")
    form.test_button.click()
    assert form.testing and not form.test_button.isEnabled()  # off the GUI thread
    assert "Connecting to 127.0.0.1:" in form.status.text()
    wait_for_test(qtbot, dialog)
    assert "Connected. The server offers 2 models" in form.status.text()
    items = [form.model_combo.itemText(i) for i in range(form.model_combo.count())]
    assert items == ["bllossom-70b", "b"] and form.model_combo.currentText() == "bllossom-70b"
    assert form.model_combo.isEditable()  # a model the list leaves out can be typed
    method, path, headers, _ = server.requests[-1]
    assert (method, path, headers["Authorization"]) == ("GET", "/v1/models", "Bearer sk-test")
    # The user picks the second model; Add uses the test that just passed.
    form.model_combo.setCurrentIndex(1)
    chosen: list[RegisteredModel] = []
    dialog.model_chosen.connect(chosen.append)
    asked = len(server.requests)
    form.add_button.click()
    assert chosen == [
        RegisteredModel(name="b", base_url=server.url + "/v1", api_key="sk-test", remote_model="b")
    ]
    assert len(server.requests) == asked and not dialog.isVisible()


def test_add_tests_first_and_refuses_a_server_that_is_not_there(qtbot) -> None:  # type: ignore[no-untyped-def]
    port = unused_port()
    dialog = make_dialog(qtbot)
    form = dialog.remote
    chosen: list[RegisteredModel] = []
    dialog.model_chosen.connect(chosen.append)
    form.url_edit.setText(f"http://127.0.0.1:{port}/v1")
    form.add_button.click()
    wait_for_test(qtbot, dialog)
    assert chosen == [] and dialog.isVisible()
    text = form.status.text()
    assert f"Could not connect to 127.0.0.1:{port}." in text
    assert "nothing is listening there" in text
    assert "stopped" not in text and "midway" not in text
    assert form.add_button.isEnabled() and form.test_button.isEnabled()


def test_add_tests_first_then_adds(qtbot, serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(happy_script)
    dialog = make_dialog(qtbot)
    chosen: list[RegisteredModel] = []
    dialog.model_chosen.connect(chosen.append)
    dialog.remote.url_edit.setText(server.url)
    dialog.remote.add_button.click()
    qtbot.waitUntil(lambda: bool(chosen), timeout=20_000)
    assert chosen[0].remote_model == "bllossom-70b" and chosen[0].name == "bllossom-70b"
    assert [r[1] for r in server.requests] == ["/v1/models"]


def test_a_refused_key_is_said_so(qtbot, serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(refuse_the_key)
    dialog = make_dialog(qtbot)
    form = dialog.remote
    form.url_edit.setText(server.url + "/v1")
    form.key_edit.setText("wrong")
    form.test_button.click()
    wait_for_test(qtbot, dialog)
    text = form.status.text()
    assert f"The server at 127.0.0.1:{server.server_address[1]} refused the API key." in text
    assert "HTTP 401" in text and "Invalid API key" in text
    assert form.model_combo.count() == 0


def test_a_web_server_that_is_not_an_openai_api(qtbot, serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(lambda handler: handler.send_json(200, {"hello": "world"}))
    dialog = make_dialog(qtbot)
    dialog.remote.url_edit.setText(server.url)
    dialog.remote.test_button.click()
    wait_for_test(qtbot, dialog)
    assert "did not answer as an OpenAI-compatible API" in dialog.remote.status.text()


def test_editing_the_address_asks_for_a_new_test(qtbot, serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(happy_script)
    dialog = make_dialog(qtbot)
    form = dialog.remote
    form.url_edit.setText(server.url)
    form.test_button.click()
    wait_for_test(qtbot, dialog)
    qtbot.keyClicks(form.key_edit, "sk-other")
    assert form.status.text() == ""
    form.add_button.click()  # tests again, with the new key
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20_000)
    assert server.requests[-1][2]["Authorization"] == "Bearer sk-other"


def test_closing_the_dialog_stops_a_test_in_progress(qtbot) -> None:  # type: ignore[no-untyped-def]
    silent = socket.socket()  # accepts, never answers: the test waits
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        dialog = make_dialog(qtbot)
        dialog.remote.url_edit.setText(f"http://127.0.0.1:{silent.getsockname()[1]}")
        dialog.remote.test_button.click()
        assert dialog.remote.testing
        dialog.reject()
        assert not dialog.remote.testing and dialog.remote.test_button.isEnabled()
        # The cancelled test ends at once (it does not wait for the server's timeout).
        qtbot.waitUntil(lambda: not dialog.remote._ops.busy, timeout=5_000)
    finally:
        silent.close()


def test_the_form_says_where_the_key_is_kept(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot)
    note = dialog.remote.key_note.text()
    assert "No system keyring found" in note and "readable only by you" in note
    keyring.set_keyring(MemoryKeyring())
    dialog = make_dialog(qtbot)
    assert dialog.remote.key_note.text() == "The key is saved in the system keyring."


# -- in the app ----------------------------------------------------------------------


def test_remote_endpoint_is_tested_registered_and_used(qtbot, make_window, serve) -> None:  # type: ignore[no-untyped-def]
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    server = serve(happy_script)
    url = server.url + "/v1"
    window = make_window()
    window.models.show_models_dialog()
    dialog = window.findChild(ModelsDialog)
    form = dialog.remote
    assert form.key_note.text() == "The key is saved in the system keyring."
    form.url_edit.setText(url)
    form.key_edit.setText("sk-test")
    form.add_button.click()  # tests the connection, then adds the server
    qtbot.waitUntil(lambda: window.models.engine is not None, timeout=20_000)
    assert window.models.engine.device.backend == "remote"
    assert window.status.device_label.text() == "Remote server"
    saved = AppSettings.load()
    assert saved.last_model == url
    assert saved.models[0].remote_model == "bllossom-70b"
    # The key is in the keyring, not in settings.json.
    assert saved.models[0].api_key == "sk-test" and saved.models[0].key_storage == "keyring"
    assert memory.secrets == {(SERVICE, url): "sk-test"}
    assert "sk-test" not in settings_path().read_text(encoding="utf-8")
    # The server stops: the reply cannot start, and the user is told that the app could
    # not connect (not that a reply stopped midway); nothing was stored and the
    # question stays in the input box to send again.
    server.shutdown()
    server.server_close()
    window.chat.input.setPlainText("들리나요?")
    window.chat.input.submit()
    qtbot.waitUntil(lambda: not window.busy, timeout=30_000)
    box = window.findChild(QMessageBox, "errorBox")
    assert box is not None and "Could not connect to the server." in box.text()
    assert f"Could not connect to 127.0.0.1:{server.server_address[1]}" in box.text()
    assert "midway" not in box.text() + box.informativeText()
    assert window.chat.input.toPlainText() == "들리나요?"
    assert ConversationStore().list_conversations() == []


def test_a_server_that_cannot_be_reached_is_not_added(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    window.models.show_models_dialog()
    dialog = window.findChild(ModelsDialog)
    dialog.remote.url_edit.setText("http://127.0.0.1:9/v1")
    dialog.remote.add_button.click()
    qtbot.waitUntil(lambda: dialog.remote.state.kind == "failed", timeout=20_000)
    assert "Could not connect to 127.0.0.1:9." in dialog.remote.status.text()
    assert dialog.isVisible() and window.models.loading is None
    assert window.models.engine is None and AppSettings.load().models == []
    dialog.reject()


def test_the_list_says_where_each_servers_key_is_kept(qtbot) -> None:  # type: ignore[no-untyped-def]
    # key_storage is what saving did: a keyring that refused (locked) means the file.
    models = [
        RegisteredModel(name="a", base_url="http://a/v1", api_key="k", key_storage="keyring"),
        RegisteredModel(name="b", base_url="http://b/v1", api_key="k", key_storage="file"),
        RegisteredModel(name="c", base_url="http://c/v1"),
    ]
    dialog = ModelsDialog(models, current="")
    qtbot.addWidget(dialog)
    assert [dialog.table.item(r, 2).text() for r in range(3)] == [
        "remote, key in the keyring",
        "remote, key in settings.json",
        "remote",
    ]


def test_in_the_app_the_test_runs_on_the_apps_runner(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    # Closing the app cancels and waits for the app's operations: a test included.
    window = make_window()
    window.models.show_models_dialog()
    assert window.findChild(ModelsDialog).remote._ops is window.ops


def test_closing_the_app_during_a_test_stops_it(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    silent = socket.socket()  # accepts, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        window = make_window()
        window.models.show_models_dialog()
        form = window.findChild(ModelsDialog).remote
        form.url_edit.setText(f"http://127.0.0.1:{silent.getsockname()[1]}")
        form.test_button.click()
        assert "test remote server" in window.ops.running()
        window.close()
        qtbot.waitUntil(lambda: window.closed, timeout=10_000)
        assert not window.ops.busy
    finally:
        silent.close()
