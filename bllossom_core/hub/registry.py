"""The models Bllossom downloaded or converted, and the pulls still to finish.

A small JSON file in the user's data folder (``downloaded-models.json``), written
atomically, read by the desktop app to list models and to offer "resume" for pulls that
were interrupted (cancelled, killed, offline): calling :func:`bllossom_core.hub.pull`
again with a pending entry's arguments continues its partial downloads.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from bllossom_core.fileio import atomic_write_text
from bllossom_core.paths import data_dir

REGISTRY_FILE = "downloaded-models.json"
_lock = threading.Lock()


@dataclass(frozen=True)
class DownloadedModel:
    path: str
    """The GGUF file (the first part, for a split GGUF)."""
    name: str
    """A display name: the catalog title, or the file name."""
    repo_id: str
    revision: str
    file: str
    """The file on the hub, or "" for a conversion."""
    quant: str
    size_bytes: int
    sha256: str | None
    source: Literal["download", "convert"]
    catalog_name: str | None = None
    template: str | None = None
    """The catalog's chat template family (llama3, deepseek-r1), when known."""
    added: str = ""


@dataclass(frozen=True)
class PendingPull:
    """The arguments of a pull that has not finished; pass them to ``pull`` to resume."""

    source: str
    quant: str
    file: str | None
    revision: str | None
    output_dir: str
    started: str = ""


def registry_path() -> Path:
    return data_dir() / REGISTRY_FILE


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _from_dict(kind: type[Any], raw: Any) -> Any | None:
    if not isinstance(raw, dict):
        return None
    known = {f.name for f in fields(kind)}
    try:
        return kind(**{k: v for k, v in raw.items() if k in known})
    except TypeError:  # a required field missing: an entry from elsewhere, skip it
        return None


def _read(path: Path) -> tuple[list[DownloadedModel], list[PendingPull]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], []
    if not isinstance(data, dict):
        return [], []
    models = [m for raw in data.get("models", []) if (m := _from_dict(DownloadedModel, raw))]
    pending = [p for raw in data.get("pending", []) if (p := _from_dict(PendingPull, raw))]
    return models, pending


def _write(path: Path, models: list[DownloadedModel], pending: list[PendingPull]) -> None:
    payload = {
        "version": 1,
        "models": [asdict(m) for m in models],
        "pending": [asdict(p) for p in pending],
    }
    atomic_write_text(
        path, json.dumps(payload, ensure_ascii=False, indent=2) + "\n", overwrite=True
    )


def load_registry(path: Path | None = None) -> list[DownloadedModel]:
    """Registered models, newest first; a missing or damaged file gives none."""
    return _read(path or registry_path())[0]


def pending_pulls(path: Path | None = None) -> list[PendingPull]:
    return _read(path or registry_path())[1]


def register_model(model: DownloadedModel, path: Path | None = None) -> None:
    """Add ``model`` (replacing an entry for the same file) and drop its pending pull."""
    path = path or registry_path()
    with _lock:
        models, pending = _read(path)
        models = [m for m in models if m.path != model.path]
        models.insert(0, model)
        _write(path, models, pending)


def forget_model(model_path: str | Path, path: Path | None = None) -> None:
    path = path or registry_path()
    with _lock:
        models, pending = _read(path)
        _write(path, [m for m in models if m.path != str(model_path)], pending)


def _same_pull(a: PendingPull, b: PendingPull) -> bool:
    return (a.source, a.quant, a.file, a.revision, a.output_dir) == (
        b.source,
        b.quant,
        b.file,
        b.revision,
        b.output_dir,
    )


def add_pending(pull: PendingPull, path: Path | None = None) -> None:
    path = path or registry_path()
    with _lock:
        models, pending = _read(path)
        if not any(_same_pull(p, pull) for p in pending):
            pending.append(pull)
            _write(path, models, pending)


def remove_pending(pull: PendingPull, path: Path | None = None) -> None:
    path = path or registry_path()
    with _lock:
        models, pending = _read(path)
        kept = [p for p in pending if not _same_pull(p, pull)]
        if len(kept) != len(pending):
            _write(path, models, kept)
