"""Progress events and cancellation shared by every conversion stage.

Callers (the CLI's tqdm bars, the desktop's progress dialog) receive
:class:`ProgressEvent` objects; a :class:`~bllossom_core.types.CancelToken` set from
any thread stops the work at the next chunk and raises
:class:`~bllossom_core.errors.Cancelled`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bllossom_core.errors import Cancelled
from bllossom_core.types import CancelToken

Stage = Literal["download", "convert", "quantize", "verify"]


@dataclass(frozen=True)
class ProgressEvent:
    stage: Stage
    done: int
    """Units finished so far in this stage (bytes, except for ``verify``: checks)."""
    total: int | None
    """Units in the whole stage, when known."""
    unit: str = "B"
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[ProgressEvent], None]


class Reporter:
    """Sends progress to an optional callback and checks for cancellation."""

    def __init__(self, callback: ProgressCallback | None, cancel: CancelToken | None) -> None:
        self._callback = callback
        self._cancel = cancel
        self._last_sent = 0.0

    def check(self) -> None:
        if self._cancel is not None and self._cancel.cancelled:
            raise Cancelled("Conversion cancelled; no output was written.")

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.cancelled

    def emit(
        self,
        stage: Stage,
        done: int,
        total: int | None,
        *,
        unit: str = "B",
        message: str = "",
        force: bool = False,
    ) -> None:
        self.check()
        if self._callback is None:
            return
        now = time.monotonic()
        finished = total is not None and done >= total
        # Throttled so that a callback which repaints a window is not flooded.
        if force or finished or now - self._last_sent >= 0.05:
            self._last_sent = now
            self._callback(ProgressEvent(stage, done, total, unit, message))


class TqdmProgress:
    """A progress callback drawing one tqdm bar per stage (used by the CLI)."""

    def __init__(self) -> None:
        self._bars: dict[str, object] = {}

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.stage)
        if bar is None:
            bar = tqdm(
                # "Quantize (2/2: llama.cpp, 8 threads)": which step of a two-step run
                desc=event.stage.capitalize() + (f" ({event.message})" if event.message else ""),
                total=event.total,
                unit=event.unit,
                unit_scale=event.unit == "B",
                unit_divisor=1024 if event.unit == "B" else 1000,
                leave=True,
            )
            self._bars[event.stage] = bar
        assert isinstance(bar, tqdm)
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        bar.update(event.done - bar.n)
        if event.total is not None and event.done >= event.total:
            self._close(event.stage)

    def _close(self, stage: str) -> None:
        bar = self._bars.pop(stage, None)
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        for stage in list(self._bars):
            self._close(stage)
