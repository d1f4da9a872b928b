"""``pull``: a catalog name or hub id in, a registered GGUF in the models folder out.

A GGUF repo gives one file (chosen by ``file`` or by the quantization in its name); a
checkpoint repo gives its safetensors and tokenizer files, which the converter turns into
a GGUF of the wanted quantization. Everything is checked before the first byte moves
(names, files, gated access, disk space), downloads resume, and the result is registered
in :mod:`bllossom_core.hub.registry`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bllossom_core import hardware
from bllossom_core.catalog import (
    Catalog,
    CatalogEntry,
    find_entry,
    load_catalog,
    quant_in_name,
    quant_rank,
)
from bllossom_core.errors import DiskFullError, ErrorCode, InputError, RemoteError, StorageError
from bllossom_core.fileio import storage_error
from bllossom_core.hub import registry
from bllossom_core.hub.download import (
    ProgressCallback,
    ProgressMeter,
    PullPhase,
    PullProgress,
    RemoteFile,
    RepoListing,
    check_access,
    download_file,
    list_repo,
    partial_path,
)
from bllossom_core.paths import data_dir, models_dir
from bllossom_core.types import CancelToken

DEFAULT_QUANT = "Q4_K_M"
"""The converter's default type too, and the one official Bllossom GGUFs use."""
CHECKPOINT_PATTERNS = (
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
)
"""What the converter reads from a checkpoint (legacy ``pytorch_model*.bin`` weights are
fetched only when a repo has no safetensors)."""
LEGACY_WEIGHT_PATTERNS = ("pytorch_model*.bin", "pytorch_model.bin.index.json")
DISK_MARGIN_MIN = 256 * 1024**2
DISK_MARGIN_SHARE = 0.02
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SPLIT_GGUF = re.compile(r"^(?P<stem>.*)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.I)


def looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.match(source))


@dataclass(frozen=True)
class PullPlan:
    source: str
    repo_id: str
    revision: str
    kind: Literal["gguf", "checkpoint"]
    files: tuple[RemoteFile, ...]
    quant: str
    target: Path
    """The GGUF that will be registered (the first part of a split GGUF)."""
    download_dir: Path
    entry: CatalogEntry | None

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def remaining_bytes(self) -> int:
        left = 0
        for remote in self.files:
            target = self.download_dir / remote.path
            if target.exists():
                continue
            partial = partial_path(target, remote)
            have = partial.stat().st_size if partial.exists() else 0
            left += max((remote.size or 0) - have, 0)
        return left

    def output_estimate(self) -> int:
        """Bytes the converter writes: an F16/F32 intermediate plus the final type."""
        if self.kind != "checkpoint":
            return 0
        weights = sum(f.size or 0 for f in self.files if f.path.endswith((".safetensors", ".bin")))
        bits = hardware.convert_bits_per_weight(self.quant) or 16.0
        return weights + int(weights * bits / 16 * 1.1)


@dataclass(frozen=True)
class PulledModel:
    path: Path
    plan: PullPlan
    model: registry.DownloadedModel


def checkpoint_folder(repo_id: str, revision: str) -> Path:
    """Where a checkpoint's files collect (kept for conversions, removed after a pull)."""
    return data_dir() / "checkpoints" / repo_id.replace("/", "--") / revision[:12]


def checkpoint_files(listing: RepoListing) -> tuple[RemoteFile, ...]:
    def wanted(patterns: tuple[str, ...]) -> list[RemoteFile]:
        return [f for f in listing.files if any(fnmatch.fnmatch(f.path, p) for p in patterns)]

    files = wanted(CHECKPOINT_PATTERNS)
    if not any(f.path.endswith(".safetensors") for f in files):
        files += wanted(LEGACY_WEIGHT_PATTERNS)
    return tuple(f for f in files if "/" not in f.path)  # the converter reads the top folder


def _is_checkpoint(listing: RepoListing) -> bool:
    paths = {f.path for f in listing.files}
    weights = any(
        p.endswith(".safetensors") or fnmatch.fnmatch(p, "pytorch_model*.bin") for p in paths
    )
    return "config.json" in paths and weights


def _gguf_parts(listing: RepoListing, chosen: RemoteFile) -> tuple[RemoteFile, ...]:
    split = _SPLIT_GGUF.match(chosen.path)
    if split is None:
        return (chosen,)
    stem, count = split["stem"], split["count"]
    parts = [
        f
        for f in listing.files
        if (m := _SPLIT_GGUF.match(f.path)) and m["stem"] == stem and m["count"] == count
    ]
    return tuple(sorted(parts, key=lambda f: f.path))


def _pick_gguf(listing: RepoListing, quant: str, file: str | None) -> tuple[RemoteFile, ...]:
    ggufs = [f for f in listing.files if f.path.lower().endswith(".gguf")]
    if file is not None:
        chosen = next((f for f in ggufs if file in (f.path, f.name)), None)
        if chosen is None:
            names = ", ".join(f.path for f in ggufs) or "no GGUF files"
            raise RemoteError(
                f"{listing.repo_id} has no file {file!r} (it has {names}).",
                hint="Pass one of those names to --file.",
                code=ErrorCode.REMOTE_FILE_NOT_FOUND,
            )
        return _gguf_parts(listing, chosen)
    matching = [f for f in ggufs if quant_in_name(f.name) == quant]
    first_parts = [
        f for f in matching if not (m := _SPLIT_GGUF.match(f.path)) or int(m["part"]) == 1
    ]
    if not first_parts:
        quants = sorted({q for f in ggufs if (q := quant_in_name(f.name))})
        there = ", ".join(quants) if quants else "none named by type (use --file NAME)"
        nearest = min(quants, key=lambda q: abs(quant_rank(q) - quant_rank(quant)), default=None)
        raise InputError(
            f"{listing.repo_id} has no {quant} GGUF file; the types there are: {there}.",
            hint=f"Pass --quant {nearest}, for example." if nearest else "Pass --file NAME.",
            code=ErrorCode.QUANT_NOT_AVAILABLE,
        )
    return _gguf_parts(listing, min(first_parts, key=lambda f: (f.path.count("/"), f.path)))


def plan_pull(
    source: str,
    *,
    quant: str | None = None,
    file: str | None = None,
    revision: str | None = None,
    output_dir: Path | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    catalog: Catalog | None = None,
) -> PullPlan:
    """Resolve ``source`` to the files to fetch, without downloading any of them."""
    wanted = (quant or DEFAULT_QUANT).upper()
    out = Path(output_dir) if output_dir is not None else models_dir()
    catalog = catalog or load_catalog()
    entry = catalog.get(source)
    if entry is None and not looks_like_hub_id(source):
        find_entry(source, catalog)  # raises UNKNOWN_MODEL with the closest names
    repo_id, pinned, expected_sha = source, revision, None
    mode: Literal["gguf", "checkpoint"] | None = "gguf" if file is not None else None
    if entry is not None:
        if not entry.downloadable:
            raise InputError(
                f"{entry.title} cannot be used by Bllossom Desktop: {entry.status_reason}",
                code=ErrorCode.MODEL_UNSUPPORTED,
            )
        gguf = entry.gguf_for(wanted) if file is None else next(iter(entry.ggufs), None)
        if gguf is not None:
            mode, repo_id, pinned = "gguf", gguf.repo, revision or gguf.revision
            file, expected_sha = file or gguf.file, gguf.sha256
        elif entry.convertible and file is None:
            mode, repo_id, pinned = "checkpoint", entry.repo, revision or entry.revision
        else:
            quants = ", ".join(f.quant for f in entry.ggufs) or "no GGUF file"
            raise InputError(
                f"{entry.title} has no {wanted} file here; it comes as {quants}.",
                hint=f"Pass --quant {entry.ggufs[0].quant}." if entry.ggufs else None,
                code=ErrorCode.QUANT_NOT_AVAILABLE,
            )
    listing = list_repo(repo_id, pinned, endpoint=endpoint, token=token)
    if mode is None:
        if any(f.path.lower().endswith(".gguf") for f in listing.files):
            mode = "gguf"
        elif _is_checkpoint(listing):
            mode = "checkpoint"
        else:
            raise InputError(
                f"{repo_id} has neither GGUF files nor a checkpoint (config.json and "
                "safetensors) that Bllossom can convert.",
                code=ErrorCode.CHECKPOINT_UNSUPPORTED,
            )
    if mode == "gguf":
        files = _pick_gguf(listing, wanted, file)
        quant_name = quant_in_name(files[0].name) or wanted
        download_dir, target = out, out / files[0].name
        if expected_sha and files[0].sha256 and expected_sha != files[0].sha256:
            raise RemoteError(
                f"{files[0].name} in {repo_id} is not the file the Bllossom catalog pins "
                f"(sha256 {files[0].sha256[:12]}… instead of {expected_sha[:12]}…).",
                hint="Update Bllossom Desktop, or pass the hub id and --file to take it anyway.",
                code=ErrorCode.CHECKSUM_MISMATCH,
            )
    else:
        if not _is_checkpoint(listing):
            raise InputError(
                f"{repo_id} at {listing.revision[:12]} has no config.json with safetensors "
                "weights to convert.",
                code=ErrorCode.CHECKPOINT_INVALID,
            )
        files, quant_name = checkpoint_files(listing), wanted
        download_dir = checkpoint_folder(repo_id, listing.revision)
        target = out / f"{repo_id.rsplit('/', 1)[-1]}-{wanted}.gguf"
    check_access(files[0], endpoint=endpoint, token=token)
    return PullPlan(
        source, repo_id, listing.revision, mode, files, quant_name, target, download_dir, entry
    )


def check_disk(plan: PullPlan) -> None:
    """Refuse to start when the downloads (and a conversion's output) cannot fit."""
    needs: dict[Path, int] = {}
    download = plan.remaining_bytes()
    needs[plan.download_dir] = download
    output = plan.output_estimate()
    if output:
        needs[plan.target.parent] = needs.get(plan.target.parent, 0) + output
    same_disk = _device(plan.download_dir) == _device(plan.target.parent)
    if same_disk and len(needs) == 2:
        needs = {plan.target.parent: download + output}
    for folder, need in needs.items():
        need += max(DISK_MARGIN_MIN, int(need * DISK_MARGIN_SHARE))
        free = hardware.disk_free(folder)
        if free < need:
            what = "download and convert" if plan.kind == "checkpoint" else "download"
            raise DiskFullError(
                f"Not enough disk space in {folder} to {what} {plan.repo_id}: it needs "
                f"{need / 1e9:.1f} GB, {free / 1e9:.1f} GB are free.",
                hint="Free some space, or choose another folder with -o DIR.",
                path=folder,
                code=ErrorCode.DISK_FULL,
            )


def _device(folder: Path) -> int:
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe.stat().st_dev


def pull(
    source: str,
    *,
    quant: str | None = None,
    file: str | None = None,
    revision: str | None = None,
    output_dir: Path | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    catalog: Catalog | None = None,
) -> PulledModel:
    """Download (and, for a checkpoint, convert) ``source`` and register the GGUF.

    Raises a :class:`~bllossom_core.errors.BllossomError` with a code for every failure
    (UNKNOWN_MODEL, REPO_NOT_FOUND, REMOTE_FILE_NOT_FOUND, QUANT_NOT_AVAILABLE,
    REPO_GATED, OFFLINE, DISK_FULL, DOWNLOAD_INTERRUPTED, CHECKSUM_MISMATCH, CANCELLED…);
    only resumable partial files are left behind. Call it again with the same arguments
    (see :func:`registry.pending_pulls`) to continue.
    """
    out = Path(output_dir) if output_dir is not None else models_dir()
    if progress is not None:
        progress(PullProgress(PullPhase.RESOLVING, source, 0, None, None, None))
    plan = plan_pull(
        source, quant=quant, file=file, revision=revision, output_dir=out,
        endpoint=endpoint, token=token, catalog=catalog,
    )  # fmt: skip
    pending = registry.PendingPull(source, plan.quant, file, revision, str(out), registry.now_iso())
    if plan.kind == "checkpoint" and plan.target.exists():
        raise StorageError(
            f"{plan.target} already exists; it was left unchanged.",
            hint="Move it away, or convert into another folder with -o DIR.",
            path=plan.target,
            code=ErrorCode.OUTPUT_EXISTS,
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, plan.target) from None
    check_disk(plan)
    registry.add_pending(pending)
    for index, remote in enumerate(plan.files, start=1):
        download_file(
            remote, plan.download_dir / remote.path, endpoint=endpoint, token=token,
            progress=progress, cancel=cancel, file_index=index, file_count=len(plan.files),
        )  # fmt: skip
    path = plan.target
    if plan.kind == "checkpoint":
        convert_checkpoint(plan.download_dir, plan.target, plan.quant, progress, cancel)
        shutil.rmtree(plan.download_dir, ignore_errors=True)
    model = registry.DownloadedModel(
        path=str(path),
        name=plan.entry.title if plan.entry else path.stem,
        repo_id=plan.repo_id,
        revision=plan.revision,
        file=plan.files[0].path if plan.kind == "gguf" else "",
        quant=plan.quant,
        size_bytes=sum((plan.download_dir / f.path).stat().st_size for f in plan.files)
        if plan.kind == "gguf"
        else path.stat().st_size,
        sha256=plan.files[0].sha256 if plan.kind == "gguf" else None,
        source="download" if plan.kind == "gguf" else "convert",
        catalog_name=plan.entry.name if plan.entry else None,
        template=plan.entry.template if plan.entry else None,
        added=registry.now_iso(),
    )
    registry.register_model(model)
    registry.remove_pending(pending)
    if progress is not None:
        size = model.size_bytes
        progress(PullProgress(PullPhase.DONE, path.name, size, size, None, 0.0))
    return PulledModel(path, plan, model)


def download_checkpoint(
    repo_id: str,
    revision: str | None = None,
    *,
    endpoint: str | None = None,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    quant: str = DEFAULT_QUANT,
) -> Path:
    """Download what the converter reads from checkpoint repo ``repo_id`` into
    :func:`checkpoint_folder` (resumable, verified, disk checked for the conversion to
    ``quant`` too) and return that folder."""
    listing = list_repo(repo_id, revision, endpoint=endpoint, token=token)
    if not _is_checkpoint(listing):
        raise InputError(
            f"{repo_id} has no config.json with safetensors weights: it is not a Hugging "
            "Face checkpoint the converter can read.",
            hint="For a GGUF repository use `bllossom pull`.",
            code=ErrorCode.CHECKPOINT_INVALID,
        )
    files = checkpoint_files(listing)
    folder = checkpoint_folder(repo_id, listing.revision)
    plan = PullPlan(
        repo_id, repo_id, listing.revision, "checkpoint", files, quant.upper(),
        folder / "output.gguf", folder, None,
    )  # fmt: skip
    check_disk(plan)
    for index, remote in enumerate(files, start=1):
        download_file(
            remote, folder / remote.path, endpoint=endpoint, token=token, progress=progress,
            cancel=cancel, file_index=index, file_count=len(files),
        )  # fmt: skip
    return folder


def convert_checkpoint(
    folder: Path,
    target: Path,
    quant: str,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    """Run the project's converter, relaying its stages as pull phases."""
    from bllossom_core.errors import TokenizerError
    from converter import ProgressEvent, convert

    phases = {
        "download": PullPhase.DOWNLOADING,
        "convert": PullPhase.CONVERTING,
        "quantize": PullPhase.QUANTIZING,
        "verify": PullPhase.CHECKING,
    }
    meters: dict[str, ProgressMeter] = {}

    def relay(event: ProgressEvent) -> None:
        meter = meters.get(event.stage)
        if meter is None:
            meter = meters[event.stage] = ProgressMeter(
                progress, phases[event.stage], target.name, event.total
            )
        meter.total = event.total
        meter.report(event.done)

    result = convert(folder, target, quant, progress=relay if progress else None, cancel=cancel)
    report = result.verification
    if report is not None and not report.cancelled and not report.tokenizer_ok:
        with contextlib.suppress(OSError):
            target.unlink()
        raise TokenizerError(
            f"The tokenizer in the converted {target.name} does not match the checkpoint's; "
            "the file was deleted.",
            hint="Please report this with the model name.",
            path=target,
        )
