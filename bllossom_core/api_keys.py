"""API keys of remote servers, kept in the system keyring when there is one.

The keyring is the desktop's own secret store, reached through the maintained
``keyring`` package: the Secret Service (GNOME Keyring, KWallet) on Linux, the
Keychain on macOS, the Credential Manager on Windows. A key is stored under the
service :data:`SERVICE` with the server's base URL as the user name, so any
Secret Service browser (Seahorse, KWalletManager) shows what it belongs to.

When there is no keyring (a server or minimal desktop without a Secret Service,
where ``keyring`` falls back to its "fail" backend) or it refuses (locked, the
unlock prompt dismissed, D-Bus gone), :func:`save_key` answers
:attr:`KeyStorage.FILE`: the caller keeps the key in its own settings file,
readable only by the user, and says so in its UI. Nothing here raises because of
the keyring: a keyring that fails is logged and treated as absent.

Calls may block briefly (D-Bus), or until the user answers an unlock prompt.
"""

from __future__ import annotations

import logging
from enum import Enum

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import PasswordDeleteError

log = logging.getLogger(__name__)

SERVICE = "bllossom-desktop"
"""The keyring service name every Bllossom API key is stored under."""


class KeyStorage(str, Enum):
    """Where an API key is kept."""

    KEYRING = "keyring"
    """The system keyring (encrypted by the desktop)."""
    FILE = "file"
    """The app's settings file, readable only by the user (no usable keyring)."""


def _is_real(backend: KeyringBackend) -> bool:
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(_is_real(chained) for chained in backend.backends)
    return True


def keyring_available() -> bool:
    """Whether a real system keyring is there (not ``keyring``'s fail or null backend,
    nor a chainer with nothing to chain). It may still be locked: see :func:`save_key`."""
    try:
        return _is_real(keyring.get_keyring())
    except Exception as error:  # a broken backend must not stop the app
        log.warning("no usable keyring: %s", error)
        return False


def save_key(server: str, key: str) -> KeyStorage:
    """Store ``key`` for ``server`` in the keyring; :attr:`KeyStorage.FILE` when there is
    none or it refused, and the caller must keep the key itself."""
    if not keyring_available():
        return KeyStorage.FILE
    try:
        keyring.set_password(SERVICE, server, key)
    except Exception as error:  # locked, prompt dismissed, D-Bus gone: any backend's error
        log.warning("the keyring did not take the API key for %s: %s", server, error)
        return KeyStorage.FILE
    return KeyStorage.KEYRING


def load_key(server: str) -> str | None:
    """The key stored for ``server``; ``None`` when there is none or the keyring cannot
    be read now (no keyring, locked)."""
    if not keyring_available():
        return None
    try:
        return keyring.get_password(SERVICE, server)
    except Exception as error:  # any backend's error: the key is just not available now
        log.warning("could not read the API key for %s from the keyring: %s", server, error)
        return None


def forget_key(server: str) -> None:
    """Delete the key stored for ``server``, if any (a server removed from the list)."""
    if not keyring_available():
        return
    try:
        keyring.delete_password(SERVICE, server)
    except PasswordDeleteError:
        pass  # there was none
    except Exception as error:  # the entry stays; nothing else depends on it
        log.warning("could not delete the API key for %s from the keyring: %s", server, error)


__all__ = ["SERVICE", "KeyStorage", "forget_key", "keyring_available", "load_key", "save_key"]
