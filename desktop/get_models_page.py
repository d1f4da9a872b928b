"""The "Get models" dialog: the Bllossom catalog with what fits this machine, and the
downloads (progress, pause, cancel, resume, open), all run by :class:`ModelDownloads`.

One row per catalog entry (unsupported ones greyed, with the reason) and one per
unfinished pull of another source (a hub id pulled from the terminal). The dialog only
shows state: closing it leaves the downloads running.
"""

from __future__ import annotations

import math

from bllossom_core import hardware
from bllossom_core.catalog import CatalogEntry
from bllossom_core.hub import DEFAULT_QUANT, PullPhase, PullProgress
from desktop.i18n import is_language_change
from desktop.model_downloads import (
    DownloadRequest,
    DownloadState,
    DownloadStatus,
    ModelDownloads,
    download_key,
)
from desktop.qt import (
    QComboBox,
    QCoreApplication,
    QDialog,
    QDialogButtonBox,
    QEvent,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from desktop.theme import ui_font

FIT_COLOURS = {
    "gpu": "#2e7d32",
    "partial_gpu": "#00838f",
    "cpu": "#1565c0",
    "too_big": "#c62828",
    "unknown": "#757575",
    "unsupported": "#757575",
}


def gigabytes(size: int | None) -> str:
    """Decimal units, as the hub shows sizes; MB below 1 GB so small files move."""
    if size is None:
        return "?"
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


translate = QCoreApplication.translate
"""Wording shared by the dialog and the welcome page: one translation context."""


def fit_badge(fit: str) -> str:
    return {
        "gpu": translate("GetModels", "Fits on your GPU"),
        "partial_gpu": translate("GetModels", "Partly on your GPU"),
        "cpu": translate("GetModels", "Runs on your CPU"),
        "too_big": translate("GetModels", "Too big for this computer"),
        "unsupported": translate("GetModels", "Not supported"),
    }.get(fit, translate("GetModels", "Fit unknown"))


def where_text(fit: str) -> str:
    return {
        "gpu": translate("GetModels", "runs on your GPU"),
        "partial_gpu": translate("GetModels", "runs partly on your GPU"),
        "cpu": translate("GetModels", "runs on your CPU"),
    }.get(fit, translate("GetModels", "too big for this computer"))


def why_text(assessment: hardware.Assessment, machine: hardware.HardwareInfo) -> str:
    """The fit reason in the UI's language, from the core's figures."""
    fit = assessment.fit
    need = gigabytes(fit.estimate.total)
    gpu = machine.usable_gpu
    if fit.fit == "gpu" and gpu is not None:
        text = translate("GetModels", "needs %1 of memory; %2 has %3 free")
        return (
            text.replace("%1", need)
            .replace("%2", gpu.name)
            .replace("%3", gigabytes(gpu.free_bytes))
        )
    if fit.fit == "partial_gpu" and gpu is not None:
        text = translate("GetModels", "needs %1 of memory: %2% on %3, the rest in RAM")
        return (
            text.replace("%1", need)
            .replace("%2", f"{fit.gpu_share * 100:.0f}")
            .replace("%3", gpu.name)
        )
    text = translate("GetModels", "needs %1 of memory; %2 of RAM available")
    return text.replace("%1", need).replace("%2", gigabytes(machine.available_ram))


def phase_text(phase: PullPhase) -> str:
    return {
        PullPhase.RESOLVING: translate("GetModels", "Looking up the files…"),
        PullPhase.DOWNLOADING: translate("GetModels", "Downloading"),
        PullPhase.VERIFYING: translate("GetModels", "Verifying"),
        PullPhase.CONVERTING: translate("GetModels", "Converting"),
        PullPhase.QUANTIZING: translate("GetModels", "Quantizing"),
        PullPhase.CHECKING: translate("GetModels", "Checking the tokenizer"),
        PullPhase.DONE: translate("GetModels", "Done"),
    }[phase]


def progress_text(p: PullProgress, *, paused: bool = False) -> str:
    """ "Downloading · 1.2 GB of 4.9 GB · 11.4 MB/s · 5 min left"; paused: the bytes only."""
    parts = [translate("GetModels", "Paused") if paused else phase_text(p.phase)]
    if p.file_count > 1:
        parts[0] += f" ({p.file_index}/{p.file_count})"
    if p.total_bytes:
        parts.append(
            translate("GetModels", "%1 of %2")
            .replace("%1", gigabytes(p.done_bytes))
            .replace("%2", gigabytes(p.total_bytes))
        )
    if paused:
        return " · ".join(parts)
    if p.speed:
        parts.append(f"{p.speed / 1e6:.1f} MB/s")
    if p.eta is not None and p.phase is not PullPhase.DONE:
        minutes = math.ceil(p.eta / 60) if p.eta >= 60 else 0
        left = (
            translate("GetModels", "%1 min left").replace("%1", str(minutes))
            if minutes
            else translate("GetModels", "%1 s left").replace("%1", str(int(p.eta)))
        )
        parts.append(left)
    return " · ".join(parts)


class ModelRow(QFrame):
    """One catalog entry (or one unfinished pull of another source)."""

    def __init__(
        self,
        downloads: ModelDownloads,
        entry: CatalogEntry | None,
        request: DownloadRequest | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.downloads, self.entry, self._request = downloads, entry, request
        self.options = hardware.options_for(entry) if entry is not None else []
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(self)
        self.title.setFont(ui_font(2, bold=True))
        self.badge = QLabel(self)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.reason = QLabel(self)
        self.reason.setWordWrap(True)
        self.reason.setEnabled(False)  # the palette's secondary text colour
        self.quant = QComboBox(self)
        self.quant.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for option in self.options:
            self.quant.addItem(option.quant)
        self.quant.setVisible(len(self.options) > 1)
        self.quant.currentIndexChanged.connect(lambda _i: self.refresh())
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setTextVisible(False)
        self.progress_text = QLabel(self)
        self.action = QPushButton(self)
        self.pause_button = QPushButton(self)
        self.cancel_button = QPushButton(self)
        self.action.clicked.connect(self._act)
        self.pause_button.clicked.connect(lambda: self.downloads.pause(self.key))
        self.cancel_button.clicked.connect(lambda: self.downloads.cancel(self.key))

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.badge)
        buttons = QHBoxLayout()
        buttons.addWidget(self.quant)
        buttons.addStretch(1)
        for button in (self.pause_button, self.cancel_button, self.action):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details)
        layout.addWidget(self.reason)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_text)
        layout.addLayout(buttons)
        self.select_default()
        self.refresh()

    # ------------------------------------------------------------------ state
    @property
    def option(self) -> hardware.FileOption | None:
        index = self.quant.currentIndex()
        return self.options[index] if 0 <= index < len(self.options) else None

    @property
    def request(self) -> DownloadRequest | None:
        if self._request is not None:
            return self._request
        option = self.option
        if self.entry is None or option is None:
            return None
        return DownloadRequest(self.entry.name, option.quant)

    @property
    def source(self) -> str:
        request = self.request
        return request.source if request is not None else ""

    @property
    def key(self) -> str:
        request = self.request
        return request.key if request is not None else ""

    def select_default(self) -> None:
        """A quant with a download under way, else the best fit, else Q4_K_M."""
        if self.entry is None or not self.options:
            return
        quants = [o.quant for o in self.options]
        started = [
            s.request.quant.upper()
            for s in self.downloads.statuses()
            if s.request.source == self.entry.name and s.state is not DownloadState.IDLE
        ]
        best = (
            hardware.best_for_entry(self.entry, self.downloads.hardware, self.downloads.n_ctx)
            if self.downloads.hardware is not None
            else None
        )
        for quant in (*started, best.option.quant if best else None, DEFAULT_QUANT):
            if quant in quants:
                self.quant.setCurrentIndex(quants.index(quant))
                return

    def refresh(self) -> None:
        entry, option = self.entry, self.option
        supported = entry is None or bool(self.options)
        if entry is None:
            request = self._request
            assert request is not None
            self.title.setText(request.source)
            self.details.setText(request.quant)
        else:
            self.title.setText(entry.title)
            self.details.setText(self._details(entry, option))
        assessment = self.downloads.assess(option) if option is not None else None
        fit = "unsupported" if not supported else (assessment.fit.fit if assessment else "unknown")
        self.badge.setText(fit_badge(fit))
        self.badge.setStyleSheet(
            f"color: white; background: {FIT_COLOURS[fit]}; border-radius: 4px; padding: 2px 6px;"
        )
        if entry is not None and not supported:
            self.reason.setText(entry.status_reason or self.tr("No file Bllossom can use."))
        elif assessment is not None and self.downloads.hardware is not None:
            self.reason.setText(why_text(assessment, self.downloads.hardware))
        else:
            self.reason.setText("")
        self.reason.setVisible(bool(self.reason.text()))
        for widget in (self.title, self.details, self.quant):
            widget.setEnabled(supported)
        self._show_status(self.downloads.status(self.key), option, supported)

    def _details(self, entry: CatalogEntry, option: hardware.FileOption | None) -> str:
        parts = [entry.base] if entry.base else []
        if option is not None:
            size = gigabytes(option.size_bytes)
            parts.append(f"{option.quant} · {size if option.exact else '≈ ' + size}")
            if option.action == "convert" and entry.checkpoint_bytes:
                checkpoint = self.tr("converted here from a %1 checkpoint")
                parts.append(checkpoint.replace("%1", gigabytes(entry.checkpoint_bytes)))
            elif option.action == "convert":
                parts.append(self.tr("converted here from the checkpoint"))
        licence = self.tr("licence: %1").replace("%1", entry.license or "?")
        if entry.gated:
            licence += " " + self.tr("(accept it on the model page first)")
        parts.append(licence)
        return " · ".join(parts)

    def _show_status(
        self, status: DownloadStatus | None, option: hardware.FileOption | None, supported: bool
    ) -> None:
        state = status.state if status is not None else DownloadState.IDLE
        progress = status.progress if status is not None else None
        running = state is DownloadState.RUNNING
        self.quant.setEnabled(supported and not running and state is not DownloadState.PAUSED)
        self.progress_bar.setVisible(running or (state is DownloadState.PAUSED and bool(progress)))
        self.progress_text.setVisible(self.progress_bar.isVisible())
        if progress is not None and progress.total_bytes:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * progress.done_bytes / progress.total_bytes))
        else:
            self.progress_bar.setRange(0, 0)  # busy: size not known yet
        paused = state is DownloadState.PAUSED
        if progress is not None:
            self.progress_text.setText(progress_text(progress, paused=paused))
        else:
            self.progress_text.setText(phase_text(PullPhase.RESOLVING))
        self.pause_button.setVisible(running)
        self.cancel_button.setVisible(running or state is DownloadState.PAUSED)
        self.action.setVisible(not running and supported)  # unsupported: the reason says why
        self.action.setEnabled(supported)
        if state is DownloadState.DONE:
            self.action.setText(self.tr("Open"))
        elif state is DownloadState.PAUSED:
            self.action.setText(self.tr("Resume"))
        elif state is DownloadState.FAILED:
            self.action.setText(self.tr("Try again"))
        elif option is not None and option.action == "convert":
            self.action.setText(self.tr("Convert"))
        else:
            self.action.setText(self.tr("Download"))
        self.pause_button.setText(self.tr("Pause"))
        self.cancel_button.setText(self.tr("Cancel"))

    def _act(self) -> None:
        request = self.request
        if request is None:
            return
        status = self.downloads.status(request.key)
        if status is not None and status.state is DownloadState.DONE:
            self.downloads.open(request.key)
        elif status is not None and status.state is not DownloadState.IDLE:
            self.downloads.start(status.request)  # the recorded request: resume as it was
        else:
            self.downloads.start(request)

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.refresh()
        super().changeEvent(event)


class GetModelsDialog(QDialog):
    def __init__(self, downloads: ModelDownloads, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.downloads = downloads
        self.setObjectName("getModelsDialog")
        self.resize(760, 640)
        self.heading = QLabel(self)
        self.heading.setFont(ui_font(4, bold=True))
        self.machine = QLabel(self)
        self.machine.setWordWrap(True)
        self.rows: list[ModelRow] = []
        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._list)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.machine)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.buttons)
        downloads.hardware_changed.connect(self._rebuild)
        downloads.changed.connect(self._changed)
        self._rebuild()
        self.retranslate()

    def row_for(self, source: str) -> ModelRow:
        """The row of a catalog name or of another source's unfinished pull."""
        return next(r for r in self.rows if source in (r.entry.name if r.entry else "", r.source))

    def _rebuild(self) -> None:
        for row in self.rows:
            row.deleteLater()
        self.rows = [
            ModelRow(self.downloads, e, parent=self._list) for e in self.downloads.catalog.entries
        ]
        catalog_names = set(self.downloads.catalog.names)
        for status in self.downloads.statuses():
            if status.request.source not in catalog_names:
                self.rows.append(ModelRow(self.downloads, None, status.request, self._list))
        for index, row in enumerate(self.rows):
            self._list_layout.insertWidget(index, row)
        self._describe_machine()

    def _changed(self, key: str) -> None:
        source = key.rsplit(":", 1)[0]
        known = any(r.entry is not None and r.entry.name == source for r in self.rows)
        if not known and not any(r.key == key for r in self.rows):
            status = self.downloads.status(key)
            if status is not None:
                row = ModelRow(self.downloads, None, status.request, self._list)
                self._list_layout.insertWidget(len(self.rows), row)
                self.rows.append(row)
        for row in self.rows:
            if row.key == key or (row.entry is not None and row.entry.name == source):
                if row.key != key and row.entry is not None:
                    row.select_default()
                row.refresh()

    def _describe_machine(self) -> None:
        machine = self.downloads.hardware
        if machine is None:
            self.machine.setText(self.tr("Checking this computer's memory and GPU…"))
            return
        ram = self.tr("%1 of RAM available").replace("%1", gigabytes(machine.available_ram))
        gpu = machine.usable_gpu
        if gpu is not None:
            where = self.tr("GPU %1 with %2 free").replace("%1", gpu.name)
            where = where.replace("%2", gigabytes(gpu.free_bytes))
        else:
            where = self.tr("no GPU Bllossom can use")
        context = self.tr("estimates for a %1-token context").replace(
            "%1", f"{self.downloads.n_ctx:,}"
        )
        self.machine.setText(" · ".join((ram, where, context)))

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Get models"))
        self.heading.setText(self.tr("Bllossom models for this computer"))
        self._describe_machine()

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)


def show_get_models(downloads: ModelDownloads, parent: QWidget) -> GetModelsDialog:
    """Show the one dialog of this window (created on first use), probing if needed."""
    dialog = parent.findChild(GetModelsDialog, "getModelsDialog")
    if not isinstance(dialog, GetModelsDialog):
        dialog = GetModelsDialog(downloads, parent)
    if downloads.hardware is None:
        downloads.probe()
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


__all__ = ["GetModelsDialog", "ModelRow", "download_key", "show_get_models"]
