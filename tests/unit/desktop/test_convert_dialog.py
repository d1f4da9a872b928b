"""Converting a checkpoint from the app: background progress, report, cancel, register."""

from __future__ import annotations

from pathlib import Path

import desktop.convert_dialog
from converter import ConversionResult, VerificationReport
from desktop.convert_dialog import ConvertDialog
from desktop.ops import OpRunner


def test_conversion_reports_progress_and_verification(qtbot, make_checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source: Path = make_checkpoint(family="llama2-spm")
    dialog = ConvertDialog(OpRunner())
    qtbot.addWidget(dialog)
    dialog.show()
    results: list[object] = []
    dialog.converted.connect(results.append)
    labels: list[str] = []
    dialog.progress.valueChanged.connect(lambda _v: labels.append(dialog.progress_label.text()))
    dialog.source_edit.setText(str(source))
    assert dialog.output_edit.text().endswith(f"{source.name}-Q4_K_M.gguf")
    dialog.quant_combo.setCurrentIndex(dialog.quant_combo.findData("F16"))
    assert dialog.output_edit.text().endswith("-F16.gguf")
    output = tmp_path / "tiny-f16.gguf"
    dialog.output_edit.clear()
    qtbot.keyClicks(dialog.output_edit, str(output))  # typed by the user: kept
    dialog.quant_combo.setCurrentIndex(dialog.quant_combo.findData("Q8_0"))
    assert dialog.output_edit.text() == str(output)
    dialog.quant_combo.setCurrentIndex(dialog.quant_combo.findData("F16"))
    # Off by default (it needs the heavy extra and the whole checkpoint in float32).
    assert not dialog.verify_check.isChecked()
    dialog.verify_check.setChecked(True)
    dialog.start()
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)
    assert len(results) == 1, dialog.report.toPlainText()
    assert output.is_file() and output.stat().st_size > 10_000
    assert any(" / " in label for label in labels)  # bytes done / total were shown
    report = dialog.report.toPlainText()
    assert str(output) in report and "Tokenizer parity" in report
    assert dialog.progress.value() == 1000


def test_cancel_leaves_nothing_behind(qtbot, make_checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source: Path = make_checkpoint(family="llama2-spm")
    dialog = ConvertDialog(OpRunner())
    qtbot.addWidget(dialog)
    dialog.source_edit.setText(str(source))
    output = tmp_path / "cancelled.gguf"
    dialog.output_edit.setText(str(output))
    dialog.verify_check.setChecked(False)
    dialog.start()
    dialog.cancel()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert dialog.progress_label.text() == "Conversion cancelled; nothing was written."
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_cancelled_verification_keeps_and_opens_the_model(qtbot, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "tiny-Q8_0.gguf"

    def convert_then_cancel_verify(source, out, quant, *, verify, progress, cancel):  # type: ignore[no-untyped-def]
        # What converter.convert returns when the user cancels during verification.
        return ConversionResult(
            output=out,
            quant=quant,
            source=Path(source),
            tokenizer="spm",
            pre_tokenizer="default",
            tensor_count=12,
            output_bytes=1234,
            seconds=0.1,
            verification=VerificationReport(out, cancelled=True),
        )

    monkeypatch.setattr(desktop.convert_dialog, "convert", convert_then_cancel_verify)
    dialog = ConvertDialog(OpRunner())
    qtbot.addWidget(dialog)
    results: list[object] = []
    dialog.converted.connect(results.append)
    dialog.source_edit.setText(str(tmp_path / "checkpoint"))
    dialog.output_edit.setText(str(output))
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)
    assert len(results) == 1  # still registered and opened by the main window
    expected = (
        f"Saved {output}. Verification was cancelled, so it was not checked against the checkpoint."
    )
    assert dialog.progress_label.text() == expected
    assert "Verification report" not in dialog.report.toPlainText()
