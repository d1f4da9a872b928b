"""First run: no model yet. Offers the Bllossom model recommended for this machine first
(one click downloads it and opens it when done), then opening a GGUF file, converting a
checkpoint, browsing the catalog, or the models and remote servers."""

from __future__ import annotations

from desktop.get_models_page import gigabytes, progress_text, where_text, why_text
from desktop.i18n import is_language_change
from desktop.model_downloads import DownloadRequest, DownloadState, ModelDownloads
from desktop.qt import (
    QEvent,
    QLabel,
    QProgressBar,
    QPushButton,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.theme import ui_font


class WelcomePage(QWidget):
    open_requested = Signal()
    convert_requested = Signal()
    models_requested = Signal()
    get_models_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.downloads: ModelDownloads | None = None
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel(self)
        self.title.setFont(ui_font(8, bold=True))
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subtitle = QLabel(self)
        self.subtitle.setWordWrap(True)
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.recommended_caption = QLabel(self)
        self.recommended_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.recommended_button = QPushButton(self)
        self.recommended_button.setFont(ui_font(1, bold=True))
        self.recommended_button.setMinimumHeight(48)
        self.recommended_button.setStyleSheet("padding: 4px 20px;")
        self.recommended_button.setDefault(True)
        self.recommended_button.clicked.connect(self.get_recommended)
        self.recommended_why = QLabel(self)
        self.recommended_why.setWordWrap(True)
        self.recommended_why.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.recommended_why.setEnabled(False)  # secondary text colour
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setFixedWidth(420)
        self.progress_text = QLabel(self)
        self.progress_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.recommended = (
            self.recommended_caption,
            self.recommended_button,
            self.recommended_why,
            self.progress_bar,
            self.progress_text,
        )
        for widget in self.recommended:
            widget.hide()
        self.open_button = QPushButton(self)
        self.convert_button = QPushButton(self)
        self.get_models_button = QPushButton(self)
        self.models_button = QPushButton(self)
        self.choices = (
            self.open_button,
            self.convert_button,
            self.get_models_button,
            self.models_button,
        )
        for button in self.choices:
            button.setMinimumHeight(40)
            button.setMinimumWidth(320)
        self.open_button.clicked.connect(self.open_requested)
        self.convert_button.clicked.connect(self.convert_requested)
        self.get_models_button.clicked.connect(self.get_models_requested)
        self.models_button.clicked.connect(self.models_requested)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addSpacing(16)
        for widget in self.recommended:
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(12)
        for button in self.choices:
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self.retranslate()

    # ------------------------------------------------------------------ recommendation
    def attach_downloads(self, downloads: ModelDownloads) -> None:
        """Show ``downloads``' recommendation for this machine (probed off the GUI thread)."""
        self.downloads = downloads
        downloads.hardware_changed.connect(self.refresh_recommendation)
        downloads.changed.connect(lambda _key: self.refresh_recommendation())
        if downloads.hardware is None:
            downloads.probe()
        self.refresh_recommendation()

    def recommended_request(self) -> DownloadRequest | None:
        choice = self.downloads.recommendation() if self.downloads is not None else None
        if choice is None:
            return None
        option = choice.assessment.option
        return DownloadRequest(option.entry.name, option.quant)

    def get_recommended(self) -> None:
        """One click: download the recommended model (or resume it) and open it when done."""
        downloads, request = self.downloads, self.recommended_request()
        if downloads is None or request is None:
            return
        status = downloads.status(request.key)
        if status is not None and status.state is DownloadState.DONE:
            downloads.open(request.key)
            return
        downloads.start(status.request if status else request, open_when_done=True)

    def refresh_recommendation(self) -> None:
        downloads = self.downloads
        choice = downloads.recommendation() if downloads is not None else None
        if downloads is None or choice is None or downloads.hardware is None:
            for widget in self.recommended:
                widget.hide()
            return
        assessment = choice.assessment
        option = assessment.option
        size = gigabytes(option.size_bytes)
        label = " · ".join((option.entry.title, option.quant, size, where_text(assessment.fit.fit)))
        why = why_text(assessment, downloads.hardware)
        if option.action == "convert":
            why += " · " + self.tr("converted here from the official checkpoint")
        key = DownloadRequest(option.entry.name, option.quant).key
        status = downloads.status(key)
        state = status.state if status is not None else DownloadState.IDLE
        running = state is DownloadState.RUNNING
        prefix = {
            DownloadState.PAUSED: self.tr("Resume: %1"),
            DownloadState.FAILED: self.tr("Try again: %1"),
            DownloadState.DONE: self.tr("Open: %1"),
        }.get(state, "%1")
        self.recommended_button.setText(prefix.replace("%1", label))
        self.recommended_button.setEnabled(not running)
        self.recommended_why.setText(why)
        progress = status.progress if status is not None else None
        if progress is not None and progress.total_bytes:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * progress.done_bytes / progress.total_bytes))
        else:
            self.progress_bar.setRange(0, 0)
        paused = state is DownloadState.PAUSED
        self.progress_text.setText(progress_text(progress, paused=paused) if progress else "")
        for widget in (self.recommended_caption, self.recommended_button, self.recommended_why):
            widget.show()
        self.progress_bar.setVisible(running or (paused and progress is not None))
        self.progress_text.setVisible(progress is not None and (running or paused))

    # ------------------------------------------------------------------ language
    def retranslate(self) -> None:
        self.title.setText(self.tr("Welcome to Bllossom"))
        self.subtitle.setText(
            self.tr(
                "A private Korean and English assistant that runs on this computer. "
                "Choose a model to begin."
            )
        )
        self.recommended_caption.setText(self.tr("Recommended for this computer:"))
        self.open_button.setText(self.tr("Open a GGUF file…"))
        self.convert_button.setText(self.tr("Convert a Hugging Face model…"))
        self.get_models_button.setText(self.tr("Browse Bllossom models…"))
        self.models_button.setText(self.tr("Models and remote servers…"))
        self.refresh_recommendation()

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)
