"""Downloads of catalog models, shared by the welcome page and the "Get models" dialog.

One :class:`ModelDownloads` per window owns every running pull (each an operation of
the window's :class:`~desktop.ops.OpRunner`, so it runs off the GUI thread and closing
the window cancels it), the hardware probe the fit badges come from, and the pulls left
unfinished by an earlier run (``pending_pulls()``), which it offers for resume.

Pause and cancel both stop the pull and keep the resumable partial file; a paused pull
stays pending (offered again at the next start), a cancelled one is forgotten (starting
it again still continues from the partial file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from bllossom_core import hardware
from bllossom_core.catalog import Catalog, load_catalog
from bllossom_core.engine import DEFAULT_CONTEXT
from bllossom_core.errors import BllossomError, ErrorCode
from bllossom_core.hub import PendingPull, PulledModel, PullProgress, pending_pulls, pull
from bllossom_core.hub.registry import remove_pending
from bllossom_core.paths import models_dir
from desktop.context import AppContext
from desktop.ops import Op, OpContext
from desktop.qt import QObject, Signal

log = logging.getLogger(__name__)


class DownloadState(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class DownloadRequest:
    """The arguments of one pull (the same fields a pending pull records)."""

    source: str
    quant: str
    file: str | None = None
    revision: str | None = None
    output_dir: str | None = None

    @property
    def key(self) -> str:
        return download_key(self.source, self.quant)

    @classmethod
    def from_pending(cls, pending: PendingPull) -> DownloadRequest:
        return cls(
            pending.source, pending.quant, pending.file, pending.revision, pending.output_dir
        )


def download_key(source: str, quant: str) -> str:
    return f"{source}:{quant.upper()}"


@dataclass(frozen=True)
class DownloadStatus:
    request: DownloadRequest
    state: DownloadState
    progress: PullProgress | None = None
    path: Path | None = None
    error: BaseException | None = None


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` as it is now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def is_cancel(error: BaseException) -> bool:
    return isinstance(error, BllossomError) and error.code is ErrorCode.CANCELLED


class ModelDownloads(QObject):
    hardware_changed = Signal()
    """The hardware probe (and the pending pulls) arrived: fits can be shown."""
    changed = Signal(str)
    """The status of the download with this key changed (state or progress)."""

    def __init__(
        self,
        context: AppContext,
        open_model: Callable[[Path], None],
        context_size: Callable[[], int | None] = lambda: None,
        catalog: Catalog | None = None,
    ) -> None:
        super().__init__(context.window)
        self._context = context
        self._open_model = open_model
        self._context_size = context_size
        self.catalog = catalog or load_catalog()
        self.hardware: hardware.HardwareInfo | None = None
        self._statuses: dict[str, DownloadStatus] = {}
        self._ops: dict[str, Op[PulledModel]] = {}
        self._pausing: set[str] = set()
        self._open_when_done: set[str] = set()
        self.probing = False

    # ------------------------------------------------------------------ machine
    @property
    def n_ctx(self) -> int:
        return self._context_size() or DEFAULT_CONTEXT

    def probe(self) -> None:
        """Probe the hardware and read the pending pulls, off the GUI thread."""
        if self.probing:
            return
        self.probing = True

        def probe(_ctx: OpContext) -> tuple[hardware.HardwareInfo, list[PendingPull]]:
            return hardware.probe_hardware(models_dir()), pending_pulls()

        def failed(error: BaseException) -> None:
            self.probing = False
            log.warning("hardware probe failed: %s", error)

        self._context.ops.run("probe hardware", probe, self._probed, failed)

    def _probed(self, found: tuple[hardware.HardwareInfo, list[PendingPull]]) -> None:
        self.probing = False
        self.hardware, pending = found
        for entry in pending:
            request = DownloadRequest.from_pending(entry)
            if request.key not in self._ops:
                self._statuses[request.key] = DownloadStatus(request, DownloadState.PAUSED)
        self.hardware_changed.emit()
        if pending:
            self._context.status.showMessage(
                self.tr("Unfinished downloads can be resumed: File ▸ Get models…"),
                10_000,
            )

    def recommendation(self) -> hardware.Recommendation | None:
        if self.hardware is None:
            return None
        return hardware.recommend(self.catalog, self.hardware, self.n_ctx)

    def assess(self, option: hardware.FileOption) -> hardware.Assessment | None:
        if self.hardware is None:
            return None
        return hardware.assess(option, self.hardware, self.n_ctx)

    # ------------------------------------------------------------------ state
    def status(self, key: str) -> DownloadStatus | None:
        return self._statuses.get(key)

    def statuses(self) -> list[DownloadStatus]:
        return list(self._statuses.values())

    def _set(self, status: DownloadStatus) -> None:
        self._statuses[status.request.key] = status
        self.changed.emit(status.request.key)

    # ------------------------------------------------------------------ actions
    def start(self, request: DownloadRequest, *, open_when_done: bool = False) -> None:
        """Download (or convert) off the GUI thread; continues any partial file."""
        key = request.key
        if key in self._ops:
            if open_when_done:
                self._open_when_done.add(key)
            return
        if open_when_done:
            self._open_when_done.add(key)
        self._pausing.discard(key)
        catalog, endpoint = self.catalog, hub_endpoint()

        def run(ctx: OpContext) -> PulledModel:
            return pull(
                request.source, quant=request.quant, file=request.file,
                revision=request.revision,
                output_dir=Path(request.output_dir) if request.output_dir else None,
                endpoint=endpoint, progress=ctx.report, cancel=ctx.cancel, catalog=catalog,
            )  # fmt: skip

        self._set(DownloadStatus(request, DownloadState.RUNNING))
        self._ops[key] = self._context.ops.run(
            f"download {key}",
            run,
            lambda result: self._finished(request, result),
            lambda error: self._failed(request, error),
            lambda progress: self._progressed(request, progress),
        )

    def pause(self, key: str) -> None:
        op = self._ops.get(key)
        if op is not None:
            self._pausing.add(key)
            op.cancel()

    def cancel(self, key: str) -> None:
        """Stop and forget the pull (its partial file stays for a later start)."""
        op = self._ops.get(key)
        if op is not None:
            self._pausing.discard(key)
            op.cancel()
            return
        status = self._statuses.get(key)
        if status is not None and status.state is DownloadState.PAUSED:
            self._forget_pending(status.request)
            self._set(replace(status, state=DownloadState.IDLE, progress=None))

    def open(self, key: str) -> None:
        status = self._statuses.get(key)
        if status is not None and status.path is not None:
            self._open_model(status.path)

    # ------------------------------------------------------------------ results
    def _progressed(self, request: DownloadRequest, progress: object) -> None:
        status = self._statuses.get(request.key)
        if status is not None and isinstance(progress, PullProgress):
            self._set(replace(status, progress=progress))

    def _finished(self, request: DownloadRequest, result: PulledModel) -> None:
        key = request.key
        self._ops.pop(key, None)
        status = self._statuses.get(key) or DownloadStatus(request, DownloadState.RUNNING)
        self._set(replace(status, state=DownloadState.DONE, path=result.path, error=None))
        if key in self._open_when_done:
            self._open_when_done.discard(key)
            self._open_model(result.path)

    def _failed(self, request: DownloadRequest, error: BaseException) -> None:
        key = request.key
        self._ops.pop(key, None)
        self._open_when_done.discard(key)
        status = self._statuses.get(key) or DownloadStatus(request, DownloadState.RUNNING)
        if is_cancel(error):
            if key in self._pausing:
                self._pausing.discard(key)
                self._set(replace(status, state=DownloadState.PAUSED))
            else:
                self._forget_pending(request)
                self._set(replace(status, state=DownloadState.IDLE, progress=None))
            return
        self._set(replace(status, state=DownloadState.FAILED, error=error))
        self._context.show_error(error)

    def _forget_pending(self, request: DownloadRequest) -> None:
        def forget(_ctx: OpContext) -> None:
            for entry in pending_pulls():
                if download_key(entry.source, entry.quant) == request.key:
                    remove_pending(entry)

        self._context.ops.run("forget download", forget)
