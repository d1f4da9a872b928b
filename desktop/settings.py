"""App settings persisted as JSON at ``bllossom_core.paths.settings_path()``.

Plain data, no Qt: the window stores its geometry as base64 strings here too, so a
single file (inside ``BLLOSSOM_HOME`` in tests) holds everything the app remembers.
Writes are atomic (bllossom_core.fileio) so a killed app never leaves a torn file.

Remote servers' API keys go to the system keyring (:mod:`bllossom_core.api_keys`);
the file keeps a key only when no keyring would take it (``key_storage == "file"``),
and a key found there is moved into the keyring as soon as one is available.
"""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from bllossom_core import api_keys
from bllossom_core.api_keys import KeyStorage
from bllossom_core.errors import StorageError
from bllossom_core.fileio import atomic_write_text
from bllossom_core.paths import settings_path

log = logging.getLogger(__name__)

Language = Literal["system", "ko", "en"]
ThemeChoice = Literal["system", "light", "dark"]
NEW_CONVERSATION_KEY = "new"
SETTINGS_FILE_MODE = 0o600
"""settings.json may hold API keys (no keyring): readable and writable by its owner only."""


def _make_private(path: Path) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) & ~SETTINGS_FILE_MODE:
            path.chmod(SETTINGS_FILE_MODE)
    except FileNotFoundError:
        pass
    except OSError as error:  # not the owner: the write below says what is wrong
        log.warning("could not make %s private: %s", path, error)


@dataclass
class RegisteredModel:
    """A GGUF file or remote endpoint the user has opened or converted."""

    name: str
    path: str = ""
    """The GGUF file; empty for a remote endpoint."""
    base_url: str = ""
    api_key: str = ""
    """In memory only while the key is in the keyring (``key_storage``)."""
    key_storage: str = ""
    """Where ``api_key`` is kept: a :class:`~bllossom_core.api_keys.KeyStorage` value,
    or "" when there is no key."""
    remote_model: str = ""
    size_bytes: int = 0
    quantization: str = ""

    @property
    def is_remote(self) -> bool:
        return bool(self.base_url)

    @property
    def key(self) -> str:
        return self.base_url if self.is_remote else self.path


@dataclass
class AppSettings:
    language: Language = "system"
    theme: ThemeChoice = "system"
    last_model: str = ""
    """Key of the model (path or base URL) to reopen on start."""
    chat_template: str = "auto"
    models: list[RegisteredModel] = field(default_factory=list)
    window_geometry: str = ""
    window_state: str = ""
    splitter_state: str = ""
    sidebar_visible: bool = True
    """False when the user collapsed the conversation list (Ctrl+B)."""
    drafts: dict[str, str] = field(default_factory=dict)
    """Unsent input per conversation id (``"new"`` for a chat not yet saved)."""
    last_conversation: str = ""
    model_settings: dict[str, Any] = field(default_factory=dict)
    """How local models are loaded (:class:`bllossom_core.model_settings.ModelSettings`)."""
    api_server: dict[str, Any] = field(default_factory=dict)
    """The local API server switch (:class:`desktop.api_server.ApiServerConfig`)."""

    def __post_init__(self) -> None:
        # server URL -> the key the keyring holds for it (what was read or written), so
        # that saving touches the keyring only when a key changed. Not a field: never
        # written to the file.
        self._in_keyring: dict[str, str] = {}
        # The file these settings were read from: saving writes back there, even when
        # BLLOSSOM_HOME has changed since (a late save must not land in another profile).
        self._path: Path | None = None

    # ------------------------------------------------------------------ models
    def register_model(self, model: RegisteredModel) -> None:
        self.models = [m for m in self.models if m.key != model.key]
        self.models.insert(0, model)

    def find_model(self, key: str) -> RegisteredModel | None:
        return next((m for m in self.models if m.key == key), None)

    def forget_model(self, key: str) -> None:
        self.models = [m for m in self.models if m.key != key]
        if self.last_model == key:
            self.last_model = ""

    # ------------------------------------------------------------------ persistence
    @classmethod
    def load(cls, path: Path | None = None) -> AppSettings:
        """Read the settings; a missing or damaged file gives the defaults."""
        path = path or settings_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            defaults = cls()
            defaults._path = path
            return defaults
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        model_fields = {f.name for f in fields(RegisteredModel)}
        values["models"] = [
            RegisteredModel(**{k: v for k, v in m.items() if k in model_fields})
            for m in values.get("models", [])
            if isinstance(m, dict) and "name" in m
        ]
        if not isinstance(values.get("drafts", {}), dict):
            values["drafts"] = {}
        settings = cls(**values)
        settings._path = path
        if settings._read_keys():
            try:  # a plain key moved into the keyring: take it out of the file now
                settings.save(path)
            except (OSError, StorageError) as error:
                log.warning("could not rewrite the settings without the API key: %s", error)
        return settings

    def save(self, path: Path | None = None) -> None:
        """Write the settings atomically (the project's one atomic writer).

        A failure raises :class:`~bllossom_core.errors.StorageError` (a full disk, a
        read-only folder); callers log it and keep the settings in memory.
        """
        path = path or self._path or settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._store_keys()
        data = asdict(self)
        for model in data["models"]:
            if model["key_storage"] == KeyStorage.KEYRING:
                model["api_key"] = ""
        payload = json.dumps(data, ensure_ascii=False, indent=2)
        # Remote API keys may be stored here (no keyring): only the user may read the file.
        # A replaced file keeps its permissions, so an older, wider one is narrowed first.
        _make_private(path)
        atomic_write_text(path, payload, overwrite=True, mode=SETTINGS_FILE_MODE)

    # ------------------------------------------------------------------ API keys
    def _read_keys(self) -> bool:
        """Fill in the keys kept in the keyring; move plain keys into it when it takes
        them. True when a plain key was moved (the file must be rewritten)."""
        moved = False
        for model in self.models:
            if not model.is_remote:
                continue
            if model.key_storage == KeyStorage.KEYRING:
                key = api_keys.load_key(model.base_url)
                if key is None:  # locked or gone: the key is missing for this session
                    log.warning("the API key of %s is not in the keyring", model.base_url)
                    continue
                model.api_key = key
                self._in_keyring[model.base_url] = key
            elif model.api_key:
                moved = self._store_key(model) or moved
        return moved

    def _store_keys(self) -> None:
        """Put new or changed keys into the keyring (or mark them for the file) and
        delete the keyring's keys of servers removed or no longer given one."""
        keep: set[str] = set()
        for model in self.models:
            if not model.is_remote:
                continue
            if model.key_storage == KeyStorage.KEYRING and not model.api_key:
                keep.add(model.base_url)  # unreadable this session: keep it for the next
            elif model.api_key:
                self._store_key(model)
                if model.key_storage == KeyStorage.KEYRING:
                    keep.add(model.base_url)
            else:
                model.key_storage = ""
        for server in [s for s in self._in_keyring if s not in keep]:
            api_keys.forget_key(server)
            del self._in_keyring[server]

    def _store_key(self, model: RegisteredModel) -> bool:
        """Keep ``model``'s key in the keyring if it takes it; True when it was written."""
        if self._in_keyring.get(model.base_url) == model.api_key:
            model.key_storage = KeyStorage.KEYRING.value
            return False
        model.key_storage = api_keys.save_key(model.base_url, model.api_key).value
        if model.key_storage != KeyStorage.KEYRING:
            return False
        self._in_keyring[model.base_url] = model.api_key
        return True
