"""First run: no model yet. Offers to open a GGUF file or convert a checkpoint."""

from __future__ import annotations

from desktop.i18n import is_language_change
from desktop.qt import QEvent, QLabel, QPushButton, Qt, QVBoxLayout, QWidget, Signal
from desktop.theme import ui_font


class WelcomePage(QWidget):
    open_requested = Signal()
    convert_requested = Signal()
    models_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel(self)
        self.title.setFont(ui_font(8, bold=True))
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subtitle = QLabel(self)
        self.subtitle.setWordWrap(True)
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton(self)
        self.convert_button = QPushButton(self)
        self.models_button = QPushButton(self)
        for button in (self.open_button, self.convert_button, self.models_button):
            button.setMinimumHeight(40)
            button.setMinimumWidth(320)
        self.open_button.clicked.connect(self.open_requested)
        self.convert_button.clicked.connect(self.convert_requested)
        self.models_button.clicked.connect(self.models_requested)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addSpacing(16)
        for button in (self.open_button, self.convert_button, self.models_button):
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(self.tr("Welcome to Bllossom"))
        self.subtitle.setText(
            self.tr(
                "A private Korean and English assistant that runs on this computer. "
                "Choose a model to begin."
            )
        )
        self.open_button.setText(self.tr("Open a GGUF file…"))
        self.convert_button.setText(self.tr("Convert a Hugging Face model…"))
        self.models_button.setText(self.tr("Models and remote servers…"))

    def changeEvent(self, event: QEvent) -> None:
        if is_language_change(event):
            self.retranslate()
        super().changeEvent(event)
