"""API keys in the system keyring, and the honest fallback when there is none.

The developer's real keyring is never touched: every test here runs against an
in-memory backend, keyring's own "fail" backend (what a machine without a Secret
Service gets), or one that refuses like a locked keyring.
"""

from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.compat import properties
from keyring.errors import KeyringLocked

from bllossom_core import api_keys
from bllossom_core.api_keys import SERVICE, KeyStorage


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps its secrets in a dict (like the Secret Service would)."""

    @properties.classproperty
    def priority(cls) -> float:
        # Not viable: keyring discovers every backend class, and must never pick this
        # one (or chain it) for the tests that do not set it themselves.
        raise RuntimeError("a test keyring, set explicitly")

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


class LockedKeyring(MemoryKeyring):
    """A Secret Service whose collection stays locked (the unlock prompt dismissed)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


def test_a_key_goes_to_the_keyring_under_the_servers_url() -> None:
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    assert api_keys.keyring_available()
    assert api_keys.save_key("http://gpu-box:8000/v1", "sk-1") is KeyStorage.KEYRING
    assert memory.secrets == {(SERVICE, "http://gpu-box:8000/v1"): "sk-1"}
    assert api_keys.load_key("http://gpu-box:8000/v1") == "sk-1"
    assert api_keys.load_key("http://other/v1") is None
    api_keys.forget_key("http://gpu-box:8000/v1")
    api_keys.forget_key("http://gpu-box:8000/v1")  # already gone: nothing to do
    assert memory.secrets == {}


@pytest.mark.parametrize(
    "backend",
    [fail.Keyring(), null.Keyring(), chainer.ChainerBackend()],
    ids=["fail", "null", "chainer-with-nothing"],
)
def test_no_real_keyring_is_detected(backend: KeyringBackend) -> None:
    # What keyring gives a machine without any Secret Service / KWallet (this CI box).
    keyring.set_keyring(backend)
    assert not api_keys.keyring_available()
    assert api_keys.save_key("http://h/v1", "sk-1") is KeyStorage.FILE
    assert api_keys.load_key("http://h/v1") is None
    api_keys.forget_key("http://h/v1")  # no error


def test_a_chainer_with_a_real_backend_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = MemoryKeyring()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [memory])
    keyring.set_keyring(chainer.ChainerBackend())
    assert api_keys.keyring_available()
    assert api_keys.save_key("http://h/v1", "sk-1") is KeyStorage.KEYRING
    assert memory.secrets == {(SERVICE, "http://h/v1"): "sk-1"}


def test_a_locked_keyring_falls_back_to_the_file() -> None:
    keyring.set_keyring(LockedKeyring())
    assert api_keys.keyring_available()  # it is there, it just refuses now
    assert api_keys.save_key("http://h/v1", "sk-1") is KeyStorage.FILE
    assert api_keys.load_key("http://h/v1") is None
