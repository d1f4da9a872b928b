"""Status bar: model and quantization, where it runs, speed and context use."""

from __future__ import annotations

from bllossom_core.types import DeviceReport, GenerationStats
from desktop.i18n import is_language_change
from desktop.qt import QEvent, QLabel, QStatusBar, Qt, QWidget


class ChatStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel(self)
        self.device_label = QLabel(self)
        self.speed_label = QLabel(self)
        self.api_label = QLabel(self)
        self.api_label.setObjectName("apiServerLabel")
        self.api_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addWidget(self.model_label)
        self.addWidget(self.device_label, 1)
        self.addPermanentWidget(self.speed_label)
        self.addPermanentWidget(self.api_label)
        self._api: tuple[str | None, bool, bool] = (None, False, False)
        # A temporary message is drawn where the model and device labels are: Qt 6 no
        # longer hides them, and the two texts were drawn over each other.
        self.messageChanged.connect(self._make_room_for_message)
        self._model: tuple[str, str] | None = None
        self._device: DeviceReport | None = None
        self._stats: GenerationStats | None = None
        self._loading: str | None = None
        self.retranslate()

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def set_loading(self, name: str | None) -> None:
        self._loading = name
        self.retranslate()

    def set_model(self, name: str | None, quantization: str, device: DeviceReport | None) -> None:
        self._model = (name, quantization) if name else None
        self._device = device
        self._stats = None
        self._loading = None
        self.retranslate()

    def _make_room_for_message(self, message: str) -> None:
        for label in (self.model_label, self.device_label):
            label.setVisible(not message)

    def set_api_server(self, url: str | None, busy: bool, starting: bool = False) -> None:
        """The local API server's address while it serves (and whether an API request is
        being answered now)."""
        self._api = (url, busy, starting)
        self.retranslate()

    def set_stats(self, stats: GenerationStats | None) -> None:
        self._stats = stats
        self.retranslate()

    def retranslate(self) -> None:
        if self._loading:
            self.model_label.setText(self.tr("Loading %1…").replace("%1", self._loading))
        elif self._model:
            name, quant = self._model
            self.model_label.setText(f"{name} · {quant}" if quant else name)
        else:
            self.model_label.setText(self.tr("No model loaded"))
        self.device_label.setText(self._device_text())
        self.device_label.setToolTip(self._device.summary if self._device else "")
        self.speed_label.setText(self._speed_text())
        url, busy, starting = self._api
        if url is None:
            self.api_label.setText(self.tr("API: starting…") if starting else "")
        elif busy:
            self.api_label.setText(self.tr("API %1 · answering a request").replace("%1", url))
        else:
            self.api_label.setText(self.tr("API %1").replace("%1", url))
        self.api_label.setToolTip(
            self.tr("The local API server: other programs use the loaded model at this "
                    "OpenAI-compatible address.") if url else ""
        )  # fmt: skip
        self.api_label.setVisible(bool(self.api_label.text()))

    def _device_text(self) -> str:
        device = self._device
        if device is None or self._loading:
            return ""
        if device.backend == "cuda":
            return (
                self.tr("GPU: %1, %2/%3 layers")
                .replace("%1", device.gpu_name or "?")
                .replace("%2", str(device.gpu_layers))
                .replace("%3", str(device.total_layers))
            )
        if device.backend == "remote":
            return self.tr("Remote server")
        count = device.threads or 0
        threads = (
            self.tr("1 thread")
            if count == 1
            else self.tr("%1 threads").replace("%1", str(count or "?"))
        )
        causes = {
            "no_gpu": self.tr("CPU, %1 (no NVIDIA GPU found)"),
            "offload_off": self.tr("CPU, %1 (GPU offload turned off in the settings)"),
            "cpu_build": self.tr(
                "CPU, %1: GPU offload is not available; hover for why and what to do"
            ),
            "gpu_failed": self.tr(
                "CPU, %1: the model did not load on the GPU; hover for the reason"
            ),
            "gpu_unused": self.tr("CPU, %1 (the GPU was not used)"),
        }
        if device.cpu_variant:  # "AVX2, 8 threads": the backend the packaged app chose
            threads = f"{device.cpu_variant}, {threads}"
        text = causes.get(device.cpu_cause or "", self.tr("CPU, %1"))
        return text.replace("%1", threads)

    def _speed_text(self) -> str:
        stats = self._stats
        if stats is None:
            return ""
        parts = []
        if stats.tokens_per_second:
            parts.append(self.tr("%1 tokens/s").replace("%1", f"{stats.tokens_per_second:.1f}"))
        if stats.context_size:
            parts.append(
                self.tr("context %1/%2")
                .replace("%1", str(stats.context_used))
                .replace("%2", str(stats.context_size))
            )
        return " · ".join(parts)
