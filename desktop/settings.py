"""App settings persisted as JSON at ``bllossom_core.paths.settings_path()``.

Plain data, no Qt: the window stores its geometry as base64 strings here too, so a
single file (inside ``BLLOSSOM_HOME`` in tests) holds everything the app remembers.
Writes are atomic (bllossom_core.fileio) so a killed app never leaves a torn file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from bllossom_core.fileio import atomic_write_text
from bllossom_core.paths import settings_path

Language = Literal["system", "ko", "en"]
ThemeChoice = Literal["system", "light", "dark"]
NEW_CONVERSATION_KEY = "new"
SETTINGS_FILE_MODE = 0o600
"""settings.json may hold API keys: readable and writable by its owner only."""


@dataclass
class RegisteredModel:
    """A GGUF file or remote endpoint the user has opened or converted."""

    name: str
    path: str = ""
    """The GGUF file; empty for a remote endpoint."""
    base_url: str = ""
    api_key: str = ""
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
            return cls()
        if not isinstance(data, dict):
            return cls()
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
        return cls(**values)

    def save(self, path: Path | None = None) -> None:
        """Write the settings atomically (the project's one atomic writer).

        A failure raises :class:`~bllossom_core.errors.StorageError` (a full disk, a
        read-only folder); callers log it and keep the settings in memory.
        """
        path = path or settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(asdict(self), ensure_ascii=False, indent=2)
        # Remote API keys may be stored here: only the user may read the file.
        atomic_write_text(path, payload, overwrite=True, mode=SETTINGS_FILE_MODE)
