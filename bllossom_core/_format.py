"""Small text formatting helpers shared by the CLI and the desktop app (no Qt)."""

from __future__ import annotations

_UNITS = ("B", "KB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KB``, ``5.0 GB`` (1 KB = 1024 bytes)."""
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
