"""Render packaging/icons/bllossom.svg to PNGs at the hicolor sizes (a build step).

python packaging/make_icons.py OUT_DIR   ->  OUT_DIR/<size>x<size>/apps/<id>.png
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
APP_ID = "io.github.bllossom.BllossomDesktop"


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    out = Path(sys.argv[1])
    app = QGuiApplication([])  # noqa: F841 (QPainter needs one)
    renderer = QSvgRenderer(str(Path(__file__).parent / "icons" / "bllossom.svg"))
    if not renderer.isValid():
        raise SystemExit("bllossom.svg is not a valid SVG")
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target)):
            raise SystemExit(f"could not write {target}")


if __name__ == "__main__":
    main()
