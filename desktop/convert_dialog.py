"""Convert a Hugging Face checkpoint (folder or hub id) to GGUF in the background."""

from __future__ import annotations

import time
from pathlib import Path

from bllossom_core import human_size
from bllossom_core.errors import BllossomError, Cancelled
from bllossom_core.paths import models_dir
from converter import SUPPORTED_QUANTS, ConversionResult, convert
from desktop.errors import describe_error
from desktop.i18n import is_language_change
from desktop.ops import Op, OpContext, OpRunner
from desktop.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QEvent,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)


class ConvertDialog(QDialog):
    converted = Signal(object)
    """The :class:`converter.ConversionResult` of a finished conversion."""

    def __init__(self, ops: OpRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ops = ops
        self.resize(640, 460)
        self._op: Op[ConversionResult] | None = None
        self._stage_started = 0.0
        self._stage = ""
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.source_label, self.output_label, self.quant_label = (QLabel(self) for _ in range(3))
        self.source_edit = QLineEdit(self)
        self.browse_button = QPushButton(self)
        self.browse_button.clicked.connect(self._browse)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_edit, 1)
        source_row.addWidget(self.browse_button)
        self.output_edit = QLineEdit(self)
        self.quant_combo = QComboBox(self)
        for quant in SUPPORTED_QUANTS:
            self.quant_combo.addItem(quant, quant)
        self.quant_combo.setCurrentIndex(self.quant_combo.findData("Q4_K_M"))
        self.verify_check = QCheckBox(self)
        # Off by default: verifying needs the heavy `verify` extra and loads the whole
        # checkpoint in float32.
        self.verify_check.setChecked(False)
        form.addRow(self.source_label, source_row)
        form.addRow(self.output_label, self.output_edit)
        form.addRow(self.quant_label, self.quant_combo)
        form.addRow("", self.verify_check)
        layout.addLayout(form)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress_label = QLabel(self)
        self.progress_label.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        self.report = QPlainTextEdit(self)
        self.report.setReadOnly(True)
        layout.addWidget(self.report, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = QPushButton(self)
        self.cancel_button = QPushButton(self)
        self.close_button = QPushButton(self)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        for button in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.cancel_button.setEnabled(False)
        self._output_chosen = False
        self.output_edit.textEdited.connect(self._on_output_edited)
        self.source_edit.textChanged.connect(self._suggest_output)
        self.quant_combo.currentIndexChanged.connect(lambda _i: self._suggest_output())
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Convert a Hugging Face model"))
        self.source_label.setText(self.tr("Checkpoint folder or hub id"))
        self.source_edit.setPlaceholderText(
            self.tr("a folder, or e.g. MLP-KTLim/llama-3-Korean-Bllossom-8B")
        )
        self.browse_button.setText(self.tr("Browse…"))
        self.output_label.setText(self.tr("Save as"))
        self.quant_label.setText(self.tr("Quantization"))
        self.verify_check.setText(self.tr("Verify the result against the original"))
        self.start_button.setText(self.tr("Convert"))
        self.cancel_button.setText(self.tr("Cancel conversion"))
        self.close_button.setText(self.tr("Close"))

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Choose the checkpoint folder"))
        if folder:
            self.source_edit.setText(folder)

    def _on_output_edited(self, text: str) -> None:
        self._output_chosen = bool(text.strip())

    def _suggest_output(self) -> None:
        """Propose models_dir()/<name>-<quant>.gguf until the user types their own."""
        source = self.source_edit.text().strip().rstrip("/")
        if source and not self._output_chosen:
            name = source.replace("\\", "/").split("/")[-1]
            quant = str(self.quant_combo.currentData())
            self.output_edit.setText(str(models_dir() / f"{name}-{quant}.gguf"))

    @property
    def running(self) -> bool:
        return self._op is not None

    def start(self) -> None:
        source = self.source_edit.text().strip()
        output = self.output_edit.text().strip()
        if not source or not output or self.running:
            return
        quant = str(self.quant_combo.currentData())
        verify = self.verify_check.isChecked()
        self.report.clear()
        self.progress.setValue(0)
        self.progress_label.setText(self.tr("Starting…"))
        self._set_running(True)

        def run(ctx: OpContext) -> ConversionResult:
            return convert(
                source, Path(output), quant, verify=verify, progress=ctx.report, cancel=ctx.cancel
            )

        self._op = self._ops.run("convert", run, self._finished, self._failed, self._on_progress)

    def cancel(self) -> None:
        if self._op is not None:
            self._op.cancel()
            self.progress_label.setText(self.tr("Cancelling…"))

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.source_edit, self.output_edit, self.quant_combo, self.verify_check):
            widget.setEnabled(not running)

    @Slot(object)
    def _on_progress(self, event: object) -> None:
        stage = str(getattr(event, "stage", ""))
        done = int(getattr(event, "done", 0))
        total = getattr(event, "total", None)
        unit = str(getattr(event, "unit", "B"))
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._stage_started = stage, now
        stage_names = {
            "download": self.tr("Downloading"),
            "convert": self.tr("Converting"),
            "quantize": self.tr("Quantizing"),
            "verify": self.tr("Verifying"),
        }
        amount = human_size(done) if unit == "B" else str(done)
        text = stage_names.get(stage, stage)
        if total:
            self.progress.setValue(int(1000 * min(1.0, done / total)))
            whole = human_size(int(total)) if unit == "B" else str(total)
            text += f": {amount} / {whole}"
            elapsed = now - self._stage_started
            if done and elapsed > 1:
                remaining = elapsed * (total - done) / done
                text += " · " + self.tr("about %1 s left").replace("%1", str(round(remaining)))
        else:
            self.progress.setRange(0, 0)
            text += f": {amount}"
        self.progress_label.setText(text)

    def _finished(self, result: ConversionResult) -> None:
        self._op = None
        self._set_running(False)
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        output = getattr(result, "output", "")
        verification = getattr(result, "verification", None)
        saved = self.tr("Saved %1").replace("%1", str(output))
        if verification is not None and verification.cancelled:
            # The GGUF is complete and usable; only the check against the checkpoint is
            # missing, so the model is still registered and opened.
            unchecked = self.tr(
                "Verification was cancelled, so it was not checked against the checkpoint."
            )
            self.progress_label.setText(f"{saved}. {unchecked}")
            lines = [saved, unchecked]
        else:
            self.progress_label.setText(self.tr("Done."))
            lines = [saved]
            if verification is not None:
                lines += ["", self.tr("Verification report:"), verification.format()]
        self.report.setPlainText("\n".join(lines))
        self.converted.emit(result)

    def _failed(self, error: BaseException) -> None:
        self._op = None
        self._set_running(False)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        if isinstance(error, Cancelled):
            self.progress_label.setText(self.tr("Conversion cancelled; nothing was written."))
            return
        headline, advice = describe_error(error)
        self.progress_label.setText(headline)
        detail = str(error) if isinstance(error, BllossomError) else repr(error)
        self.report.setPlainText(f"{advice}\n\n{detail}")

    def reject(self) -> None:
        """Closing mid-conversion asks first; stopping waits until the partial output is
        removed (the converter does that before it returns)."""
        op = self._op
        if op is not None:
            if not self.confirm_stop():
                return
            self.cancel()
            op.wait()
        super().reject()

    def confirm_stop(self) -> bool:
        answer = QMessageBox.question(
            self,
            self.tr("Stop the conversion?"),
            self.tr("The conversion is still running. Stop it and delete the partial file?"),
        )
        return answer == QMessageBox.StandardButton.Yes
