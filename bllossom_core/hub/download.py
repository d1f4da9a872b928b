"""Resumable, verified downloads of single hub files, through huggingface_hub.

huggingface_hub resolves everything (``model_info`` for the file list, sizes and LFS
hashes; ``get_hf_file_metadata`` for the commit and the CDN location; ``build_hf_headers``
for ``HF_TOKEN`` / ``hf auth login``; its HTTP session for ``HF_ENDPOINT``, proxies and
``HF_HUB_OFFLINE``). What it lacks, and this module adds with the least code:

- **resume**: huggingface_hub 2.4 writes each download to ``<name>.<random>.incomplete``
  and deletes it on any failure, so a killed process or a dropped connection starts again
  from byte 0 (its own retry only resumes after whole 10 MB chunks, within one call).
  Here the bytes go to a stable partial file ``.<file>.<hash>.partial`` beside the target;
  every attempt, in this process or the next, continues it with ``Range: bytes=N-`` through
  the same session and headers huggingface_hub uses;
- a sha256 check of every LFS file against the hub's hash (a mismatch deletes the file);
- reuse of a file already in huggingface_hub's cache at the same commit (no download);
- progress with speed and ETA, and cancellation between 1 MiB chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from bllossom_core.errors import Cancelled, ErrorCode, RemoteError, StorageError
from bllossom_core.fileio import publish, storage_error
from bllossom_core.hub._errors import hub_exceptions, offline_error, translate
from bllossom_core.types import CancelToken

CHUNK_BYTES = 1024 * 1024
MAX_ATTEMPTS_WITHOUT_PROGRESS = 5
RETRY_PAUSE_SECONDS = 1.0
SPEED_WINDOW_SECONDS = 5.0
PARTIAL_SUFFIX = ".partial"


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


class PullPhase(str, Enum):
    RESOLVING = "resolving"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    CONVERTING = "converting"
    QUANTIZING = "quantizing"
    CHECKING = "checking"
    """The converter's tokenizer check of the finished GGUF."""
    DONE = "done"


@dataclass(frozen=True)
class PullProgress:
    phase: PullPhase
    file: str
    done_bytes: int
    total_bytes: int | None
    speed: float | None
    """Bytes per second over the last few seconds; None until measurable."""
    eta: float | None
    """Seconds left at that speed; None when unknown."""
    file_index: int = 1
    file_count: int = 1


ProgressCallback = Callable[[PullProgress], None]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a repo at one commit, as the hub lists it."""

    repo_id: str
    revision: str
    """The commit (40 hex digits) the listing was made at."""
    path: str
    size: int | None
    sha256: str | None
    """The LFS object id; None for small files stored in git."""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RepoListing:
    repo_id: str
    revision: str
    files: tuple[RemoteFile, ...]
    gated: bool


def list_repo(
    repo_id: str,
    revision: str | None = None,
    *,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> RepoListing:
    """The files of ``repo_id`` at ``revision`` with sizes and LFS hashes."""
    from huggingface_hub import HfApi, constants

    if constants.is_offline_mode() or _env_true("HF_HUB_OFFLINE"):
        # huggingface_hub reads the variable once, at import; a long-running app may
        # have been told later.
        raise offline_error(repo_id)
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(
            repo_id, revision=revision, files_metadata=True
        )
    except hub_exceptions() as exc:
        raise translate(exc, repo_id, endpoint=endpoint) from None
    files = tuple(
        RemoteFile(
            repo_id,
            str(info.sha),
            s.rfilename,
            s.size,
            s.lfs.sha256 if s.lfs is not None else None,
        )
        for s in info.siblings or ()
    )
    return RepoListing(repo_id, str(info.sha), files, bool(info.gated))


class ProgressMeter:
    """Speed over a sliding window and the ETA it implies, for one file or phase."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        phase: PullPhase,
        file: str,
        total: int | None,
        *,
        index: int = 1,
        count: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.callback, self.phase, self.file, self.total = callback, phase, file, total
        self.index, self.count, self.clock = index, count, clock
        self.samples: deque[tuple[float, int]] = deque()
        self.last_sent = 0.0

    def speed(self, done: int) -> float | None:
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > SPEED_WINDOW_SECONDS:
            self.samples.popleft()
        first_time, first_done = self.samples[0]
        if now - first_time < 0.5:
            return None
        return max(done - first_done, 0) / (now - first_time)

    def report(self, done: int, *, force: bool = False) -> None:
        speed = self.speed(done)
        if self.callback is None:
            return
        now = self.clock()
        finished = self.total is not None and done >= self.total
        if not (force or finished or now - self.last_sent >= 0.1):
            return
        self.last_sent = now
        eta = None
        if speed and self.total is not None:
            eta = max(self.total - done, 0) / speed
        self.callback(
            PullProgress(
                self.phase, self.file, done, self.total, speed, eta, self.index, self.count
            )
        )


def check_access(
    remote: RemoteFile, *, endpoint: str | None = None, token: str | bool | None = None
) -> None:
    """Ask the hub for ``remote``'s download metadata: a gated repo, a missing file or a
    refused token fails here, before anything is written."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(remote.repo_id, remote.path, revision=remote.revision, endpoint=endpoint)
    try:
        get_hf_file_metadata(url, token=token, endpoint=endpoint)
    except hub_exceptions() as exc:
        raise translate(exc, remote.repo_id, filename=remote.path, endpoint=endpoint) from None


def partial_path(target: Path, remote: RemoteFile) -> Path:
    """The stable name the bytes of ``remote`` collect under until they are complete;
    the content hash in it keeps bytes of a changed upstream file from being mixed in."""
    key = (remote.sha256 or remote.revision)[:16]
    return target.with_name(f".{target.name}.{key}{PARTIAL_SUFFIX}")


def sha256_of(
    path: Path, meter: ProgressMeter | None = None, cancel: CancelToken | None = None
) -> str:
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(8 * CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            if cancel is not None and cancel.cancelled:
                raise Cancelled(f"Checking {path.name} was cancelled; the file is kept.")
            if meter is not None:
                meter.report(done)
    return digest.hexdigest()


def _check_cancel(cancel: CancelToken | None, remote: RemoteFile, partial: Path) -> None:
    if cancel is not None and cancel.cancelled:
        kept = partial.stat().st_size if partial.exists() else 0
        raise Cancelled(
            f"Download of {remote.name} cancelled; the {kept / 1e6:,.1f} MB downloaded so far "
            "are kept and the next pull continues from there."
        )


def _stream_into(
    partial: Path,
    remote: RemoteFile,
    url: str,
    headers: dict[str, str],
    meter: ProgressMeter,
    cancel: CancelToken | None,
) -> None:
    """One GET of the rest of the file, appended to ``partial``."""
    from huggingface_hub import constants, get_session, hf_raise_for_status

    have = partial.stat().st_size if partial.exists() else 0
    request_headers = dict(headers)
    if have:
        request_headers["Range"] = f"bytes={have}-"
    with get_session().stream(
        "GET",
        url,
        headers=request_headers,
        timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
        follow_redirects=True,
    ) as response:
        hf_raise_for_status(response)
        if have and response.status_code != 206:
            have = 0  # the server ignored the range: start over rather than corrupt the file
        try:
            with open(partial, "ab" if have else "wb") as out:
                done = have
                meter.report(done, force=True)
                for chunk in response.iter_bytes():  # as received: a cut loses nothing
                    out.write(chunk)
                    done += len(chunk)
                    meter.report(done)
                    _check_cancel(cancel, remote, partial)
        except OSError as exc:
            raise storage_error(exc, partial.with_name(remote.name)) from None


def download_file(
    remote: RemoteFile,
    target: Path,
    *,
    endpoint: str | None = None,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    file_index: int = 1,
    file_count: int = 1,
) -> Path:
    """Download ``remote`` to ``target``, continuing an earlier partial download.

    Returns ``target``. An existing ``target`` with the right size (and hash, for LFS
    files) is kept as it is. On failure or cancellation only the partial file stays;
    a sha256 mismatch deletes it too and raises ``CHECKSUM_MISMATCH``.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    # Public (documented under huggingface_hub.utils) but not re-exported for type checkers.
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined, unused-ignore]

    target = Path(target)
    meter = ProgressMeter(
        progress,
        PullPhase.DOWNLOADING,
        remote.name,
        remote.size,
        index=file_index,
        count=file_count,
    )
    if target.exists():
        return _existing(target, remote, meter, cancel)
    partial = partial_path(target, remote)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if _from_hf_cache(remote, partial):
            _verify(partial, remote, file_index, file_count, progress, cancel)
            publish(partial, target, overwrite=False)
            return target
        url = hf_hub_url(remote.repo_id, remote.path, revision=remote.revision, endpoint=endpoint)
        metadata = get_hf_file_metadata(url, token=token, endpoint=endpoint)
        headers = build_hf_headers(token=token)
        headers["Accept-Encoding"] = "identity"  # byte offsets must be those of the file
        if urlsplit(metadata.location).netloc != urlsplit(url).netloc:
            # A signed CDN URL: like huggingface_hub, never send the token off the hub.
            headers.pop("authorization", None)
        size = metadata.size if metadata.size is not None else remote.size
        meter.total = size
        failures = 0
        while True:
            _check_cancel(cancel, remote, partial)
            have = partial.stat().st_size if partial.exists() else 0
            if size is not None and have > size:
                partial.unlink()  # not this file's bytes: start again
                continue
            if size is not None and have == size:
                break
            try:
                _stream_into(partial, remote, metadata.location, headers, meter, cancel)
                if size is None:
                    break
            except hub_exceptions() as exc:
                if not _retryable(exc):
                    raise
                grew = (partial.stat().st_size if partial.exists() else 0) > have
                failures = 0 if grew else failures + 1
                if failures >= MAX_ATTEMPTS_WITHOUT_PROGRESS:
                    raise
                time.sleep(RETRY_PAUSE_SECONDS)
                if _status(exc) in (403, 410):
                    # a signed CDN URL expires (403/410): ask the hub for a fresh one
                    metadata = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    except hub_exceptions() as exc:  # before OSError: huggingface_hub's errors are OSErrors
        raise translate(exc, remote.repo_id, filename=remote.path, endpoint=endpoint) from None
    except OSError as exc:
        raise storage_error(exc, target) from None
    meter.report(partial.stat().st_size, force=True)
    _verify(partial, remote, file_index, file_count, progress, cancel)
    publish(partial, target, overwrite=False)
    return target


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _retryable(exc: BaseException) -> bool:
    """A dropped connection, a timeout, an expired signed URL or a busy server."""
    import httpx2

    if isinstance(exc, httpx2.TransportError):
        return True
    return _status(exc) in (403, 410, 429, 500, 502, 503, 504)


def _from_hf_cache(remote: RemoteFile, partial: Path) -> bool:
    """Take the file from huggingface_hub's cache (``HF_HUB_CACHE``) when an earlier
    download, by any Hugging Face tool, left it there at this commit: a hard link when
    the cache is on the same disk, else a copy."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(remote.repo_id, remote.path, revision=remote.revision)
    if not isinstance(cached, str):
        return False
    source = Path(cached).resolve()
    if remote.size is not None and source.stat().st_size != remote.size:
        return False
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    return True


def _verify(
    path: Path,
    remote: RemoteFile,
    index: int,
    count: int,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    if remote.sha256 is None:
        return
    size = path.stat().st_size
    meter = ProgressMeter(
        progress, PullPhase.VERIFYING, remote.name, size, index=index, count=count
    )
    actual = sha256_of(path, meter, cancel)
    if actual != remote.sha256:
        with contextlib.suppress(OSError):
            path.unlink()
        raise RemoteError(
            f"{remote.name} from {remote.repo_id} arrived damaged: its sha256 is {actual[:12]}…, "
            f"the hub's is {remote.sha256[:12]}…. The file was deleted.",
            hint="Run the same command again to download it anew.",
            code=ErrorCode.CHECKSUM_MISMATCH,
        )


def _existing(
    target: Path, remote: RemoteFile, meter: ProgressMeter, cancel: CancelToken | None
) -> Path:
    """Keep an already downloaded file if it is the hub's; refuse to replace another."""
    size = target.stat().st_size
    same = remote.size is None or size == remote.size
    if same and remote.sha256 is not None:
        meter.phase = PullPhase.VERIFYING
        same = sha256_of(target, meter, cancel) == remote.sha256
    if not same:
        raise StorageError(
            f"{target} already exists and is not {remote.name} from {remote.repo_id}; "
            "it was left unchanged.",
            hint="Move it away, or download into another folder with -o DIR.",
            path=target,
            code=ErrorCode.OUTPUT_EXISTS,
        )
    meter.report(size, force=True)
    return target
