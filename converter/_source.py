"""Resolving SOURCE: a local checkpoint folder, or a Hugging Face hub id to download."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from bllossom_core.errors import CheckpointError, RemoteError
from converter._progress import Reporter

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_FILES = [
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "README.md",
]


def looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.match(source)) and not Path(source).exists()


def resolve_source(source: str | Path, reporter: Reporter) -> tuple[Path, str]:
    """The local checkpoint folder for ``source``, and the model's name."""
    path = Path(source).expanduser()
    if path.exists() or not looks_like_hub_id(str(source)):
        if not path.exists():
            raise CheckpointError(f"Checkpoint folder not found: {path}.", path=path)
        return path, path.absolute().name
    return _download(str(source), reporter), str(source).rsplit("/", 1)[-1]


def _offline() -> bool:
    return any(
        os.environ.get(name, "").lower() in ("1", "true", "yes")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "BLLOSSOM_OFFLINE")
    )


def _relay_bar(reporter: Reporter) -> type:
    """A tqdm class for huggingface_hub that forwards its progress to ``reporter``."""
    from tqdm.auto import tqdm

    class RelayBar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.relay_total = kwargs.get("total")
            self.relay_unit = str(kwargs.get("unit", "B"))
            self.relay_done = 0
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            self.relay_done += int(n or 0)
            reporter.emit("download", self.relay_done, self.relay_total, unit=self.relay_unit)
            return None

    return RelayBar


def _download(repo_id: str, reporter: Reporter) -> Path:
    offline_message = (
        f"{repo_id!r} is not a local folder, and downloading it from Hugging Face needs "
        "an internet connection."
    )
    if _offline():
        raise RemoteError(offline_message, hint="Download the model on a connected machine first.")
    try:
        import huggingface_hub
        from huggingface_hub.utils import HfHubHTTPError
    except ImportError:
        raise RemoteError(
            f"{repo_id!r} is not a local folder, and huggingface_hub is not installed to "
            "download it.",
            hint="pip install huggingface_hub, or give a local folder.",
        ) from None
    try:
        reporter.emit("download", 0, None, force=True)
        folder = huggingface_hub.snapshot_download(
            repo_id, allow_patterns=_HUB_FILES, etag_timeout=5, tqdm_class=_relay_bar(reporter)
        )
    except (OSError, HfHubHTTPError, ValueError) as exc:
        name = type(exc).__name__
        if "Offline" in name or "Connect" in name or "Timeout" in name or "LocalEntry" in name:
            raise RemoteError(offline_message, hint="Check the connection.") from None
        raise RemoteError(f"Could not download {repo_id!r} from Hugging Face: {exc}.") from None
    return Path(folder)
