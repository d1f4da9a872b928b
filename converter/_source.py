"""Resolving SOURCE: a local checkpoint folder, or a Hugging Face hub id to download.

Hub downloads go through :func:`bllossom_core.hub.download_checkpoint` (resumable,
sha256-verified, disk-checked); nothing is reported before the first byte arrives, so an
offline machine gets the error alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bllossom_core.errors import CheckpointError
from converter._progress import Reporter

if TYPE_CHECKING:
    from bllossom_core.hub import PullProgress


def resolve_source(source: str | Path, reporter: Reporter) -> tuple[Path, str]:
    """The local checkpoint folder for ``source``, and the model's name."""
    path = Path(source).expanduser()
    if path.exists():
        return path, path.absolute().name
    # The hub client is imported only for what may be a hub id (a local folder is the
    # common case, and the client takes ~50 ms to import).
    from bllossom_core.hub import looks_like_hub_id

    if not looks_like_hub_id(str(source)):
        raise CheckpointError(f"Checkpoint folder not found: {path}.", path=path)
    repo_id = str(source)
    return _download(repo_id, reporter), repo_id.rsplit("/", 1)[-1]


def _download(repo_id: str, reporter: Reporter) -> Path:
    from bllossom_core.hub import download_checkpoint

    done_per_file: dict[str, int] = {}
    total_per_file: dict[str, int] = {}

    def relay(event: PullProgress) -> None:
        # One "download" bar for the whole checkpoint: the sum over the files so far.
        if event.phase.value != "downloading":
            return
        done_per_file[event.file] = event.done_bytes
        if event.total_bytes is not None:
            total_per_file[event.file] = event.total_bytes
        reporter.emit("download", sum(done_per_file.values()), sum(total_per_file.values()) or None)

    # reporter.emit raises Cancelled when the conversion's token is set, which stops the
    # download between chunks and keeps its partial files for the next attempt.
    return download_checkpoint(repo_id, progress=relay)
