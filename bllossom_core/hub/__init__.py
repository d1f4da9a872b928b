"""Getting models from the Hugging Face Hub: catalog pulls, resumable verified
downloads, conversion of checkpoints, and the registry of downloaded models.

The public API for the CLI and the desktop app (no Qt here; run ``pull`` off the GUI
thread and cancel it with a :class:`~bllossom_core.types.CancelToken`)::

    from bllossom_core.hub import pull, PullProgress, pending_pulls, load_registry

    def on_progress(p: PullProgress) -> None:   # called from the pulling thread
        print(p.phase.value, p.file, p.done_bytes, p.total_bytes, p.speed, p.eta)

    result = pull("bllossom-8b", quant="Q4_K_M", progress=on_progress, cancel=token)
    result.path                                   # the registered GGUF

Interrupted pulls (cancelled, killed, offline) stay in ``pending_pulls()``; calling
``pull`` again with a pending entry's fields continues from the partial files.
"""

from bllossom_core.hub._errors import translate as translate_hub_error
from bllossom_core.hub.download import (
    ProgressCallback,
    PullPhase,
    PullProgress,
    RemoteFile,
    RepoListing,
    download_file,
    list_repo,
)
from bllossom_core.hub.pull import (
    CHECKPOINT_PATTERNS,
    DEFAULT_QUANT,
    PulledModel,
    PullPlan,
    check_disk,
    checkpoint_files,
    checkpoint_folder,
    download_checkpoint,
    looks_like_hub_id,
    plan_pull,
    pull,
)
from bllossom_core.hub.registry import (
    DownloadedModel,
    PendingPull,
    forget_model,
    load_registry,
    pending_pulls,
    registry_path,
)

__all__ = [
    "CHECKPOINT_PATTERNS",
    "DEFAULT_QUANT",
    "DownloadedModel",
    "PendingPull",
    "ProgressCallback",
    "PullPhase",
    "PullPlan",
    "PullProgress",
    "PulledModel",
    "RemoteFile",
    "RepoListing",
    "check_disk",
    "checkpoint_files",
    "checkpoint_folder",
    "download_checkpoint",
    "download_file",
    "forget_model",
    "list_repo",
    "load_registry",
    "looks_like_hub_id",
    "pending_pulls",
    "plan_pull",
    "pull",
    "registry_path",
    "translate_hub_error",
]
