"""Where the app keeps remote servers' API keys: the system keyring, else settings.json.

Never the developer's real keyring: an in-memory backend, keyring's "fail" backend
(no keyring at all) or a locked one.
"""

from __future__ import annotations

import json
import os
import stat

import keyring
import pytest

from bllossom_core.api_keys import SERVICE
from bllossom_core.paths import settings_path
from desktop.settings import AppSettings, RegisteredModel
from tests.unit.core.test_api_keys import LockedKeyring, MemoryKeyring

SERVER = "http://gpu-box:8000/v1"


@pytest.fixture
def memory() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


def saved_file() -> dict:  # type: ignore[type-arg]
    return json.loads(settings_path().read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def remote(key: str = "sk-secret") -> RegisteredModel:
    return RegisteredModel(name="70b", base_url=SERVER, api_key=key, remote_model="70b")


def test_the_key_goes_to_the_keyring_not_the_file(memory: MemoryKeyring) -> None:
    settings = AppSettings()
    settings.register_model(remote())
    settings.save()
    assert memory.secrets == {(SERVICE, SERVER): "sk-secret"}
    assert "sk-secret" not in settings_path().read_text(encoding="utf-8")
    assert saved_file()["models"][0]["key_storage"] == "keyring"
    loaded = AppSettings.load()
    assert loaded.models[0].api_key == "sk-secret" and loaded.models[0].key_storage == "keyring"
    # A changed key replaces the stored one; a server removed from the list takes its
    # key out of the keyring with it.
    loaded.models[0].api_key = "sk-new"
    loaded.save()
    assert memory.secrets == {(SERVICE, SERVER): "sk-new"}
    loaded.forget_model(SERVER)
    loaded.save()
    assert memory.secrets == {}


def test_a_plain_key_is_moved_into_the_keyring_on_load(memory: MemoryKeyring) -> None:
    # settings.json written by an earlier version (or while there was no keyring).
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = {"models": [{"name": "70b", "base_url": SERVER, "api_key": "sk-old"}]}
    path.write_text(json.dumps(old), encoding="utf-8")
    loaded = AppSettings.load()
    assert loaded.models[0].api_key == "sk-old"
    assert memory.secrets == {(SERVICE, SERVER): "sk-old"}
    assert "sk-old" not in path.read_text(encoding="utf-8")  # rewritten at once


def test_no_keyring_keeps_the_key_in_a_file_only_the_user_reads() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}", encoding="utf-8")
    path.chmod(0o644)  # an older file, readable by others
    settings = AppSettings()
    settings.register_model(remote())
    previous = os.umask(0o022)
    try:
        settings.save()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert saved_file()["models"][0]["api_key"] == "sk-secret"
    assert saved_file()["models"][0]["key_storage"] == "file"
    assert AppSettings.load().models[0].api_key == "sk-secret"


def test_a_locked_keyring_falls_back_to_the_file_and_is_used_once_open() -> None:
    keyring.set_keyring(LockedKeyring())
    settings = AppSettings()
    settings.register_model(remote())
    settings.save()
    assert saved_file()["models"][0]["key_storage"] == "file"
    assert AppSettings.load().models[0].api_key == "sk-secret"
    # Unlocked next time: the key moves into the keyring and out of the file.
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    assert AppSettings.load().models[0].api_key == "sk-secret"
    assert memory.secrets == {(SERVICE, SERVER): "sk-secret"}
    assert "sk-secret" not in settings_path().read_text(encoding="utf-8")


def test_a_keyring_unreadable_this_session_keeps_the_key_for_the_next(
    memory: MemoryKeyring,
) -> None:
    settings = AppSettings()
    settings.register_model(remote())
    settings.save()
    keyring.set_keyring(LockedKeyring())
    loaded = AppSettings.load()
    assert loaded.models[0].api_key == ""  # not readable now
    loaded.save()  # must not forget where the key is
    keyring.set_keyring(memory)
    assert AppSettings.load().models[0].api_key == "sk-secret"


def test_a_server_without_a_key_touches_no_keyring(memory: MemoryKeyring) -> None:
    settings = AppSettings()
    settings.register_model(remote(key=""))
    settings.save()
    assert memory.secrets == {} and saved_file()["models"][0]["key_storage"] == ""
