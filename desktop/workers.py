"""Long work off the GUI thread: a QThread per job, results back through signals.

Every worker is a QObject moved to its own QThread; its ``run`` slot does the work
and finishes with exactly one of ``finished``/``failed``. Errors arrive as the
exception object so the window can show a :class:`~bllossom_core.BllossomError`'s
user-facing message (anything else is a bug and is shown with its type).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bllossom_core.errors import BllossomError, Cancelled
from bllossom_core.store import Message, ReplyWriter
from bllossom_core.types import (
    CancelToken,
    ChatEngine,
    ChatMessage,
    GenerationSettings,
    GenerationStats,
)
from desktop.qt import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)


class Worker(QObject):
    finished = Signal(object)
    failed = Signal(object)

    def run(self) -> None:  # overridden
        raise NotImplementedError


class FunctionWorker(Worker):
    """Runs ``fn()`` in the thread; ``finished`` carries its return value."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._fn = fn

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn()
        except BaseException as error:  # reported to the GUI, never swallowed
            log.debug("background job failed", exc_info=True)
            self.failed.emit(error)
        else:
            self.finished.emit(result)


@dataclass(frozen=True)
class GenerationOutcome:
    stats: GenerationStats | None
    """``None`` when the engine raised ``Cancelled`` before it had stats."""
    message: Message
    """The saved reply, as committed by the writer."""


class GenerationWorker(Worker):
    """Streams one reply into ``writer`` (the store) and, piece by piece, to ``pieces``.

    The writer is finished here too, so the final commit (an fsync) never runs on the
    GUI thread. ``finished`` carries a :class:`GenerationOutcome`; ``failed`` the error
    (the partial reply is saved with it).
    """

    pieces = Signal(str)

    def __init__(
        self,
        engine: ChatEngine,
        messages: list[ChatMessage],
        settings: GenerationSettings,
        writer: ReplyWriter,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.messages = messages
        self.settings = settings
        self.cancel = CancelToken()
        self.writer = writer

    @Slot()
    def run(self) -> None:
        # Every piece is signalled at once (a queued signal costs microseconds); the
        # chat view coalesces them into one repaint per frame. Holding pieces back here
        # would delay the last token of a slow model until the next one arrives.
        writer = self.writer
        try:
            # Closed on every way out: the engine is busy until its stream ends or closes.
            with contextlib.closing(
                self.engine.stream_chat(self.messages, self.settings, self.cancel)
            ) as stream:
                for piece in stream:
                    writer.append(piece)
                    self.pieces.emit(piece)
                    if self.cancel.cancelled:
                        break
                stats: GenerationStats | None = stream.stats
        except Cancelled:
            stats = None
        except BaseException as error:
            log.debug("generation failed", exc_info=True)
            if not writer.closed:
                try:
                    writer.fail(error)
                except BllossomError as store_error:
                    log.warning("could not record the failed reply: %s", store_error)
            self.failed.emit(error)
            return
        try:
            message = writer.finish(stats)
        except BaseException as error:
            self.failed.emit(error)
            return
        self.finished.emit(GenerationOutcome(stats, message))


class _Relay(QObject):
    """Lives in the GUI thread, so the worker's signals reach the callbacks there.

    (A plain Python callable connected to a signal would run in the emitting thread.)
    """

    def __init__(
        self,
        on_finished: Callable[[Any], None] | None,
        on_failed: Callable[[BaseException], None] | None,
    ) -> None:
        super().__init__()
        self._on_finished = on_finished
        self._on_failed = on_failed

    @Slot(object)
    def finished(self, result: object) -> None:
        if self._on_finished is not None:
            self._on_finished(result)

    @Slot(object)
    def failed(self, error: object) -> None:
        if self._on_failed is not None:
            assert isinstance(error, BaseException)
            self._on_failed(error)


class JobRunner(QObject):
    """Owns the threads of running workers and cleans them up when they end."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[tuple[QThread, Worker, _Relay]] = []

    def start(
        self,
        worker: Worker,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> Worker:
        thread = QThread()
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        relay = _Relay(on_finished, on_failed)
        worker.finished.connect(relay.finished)
        worker.failed.connect(relay.failed)
        worker.finished.connect(thread.quit)
        worker.failed.connect(thread.quit)
        thread.finished.connect(self._forget_finished)
        self._jobs.append((thread, worker, relay))
        thread.start()
        return worker

    def run_function(
        self,
        fn: Callable[[], Any],
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> Worker:
        return self.start(FunctionWorker(fn), on_finished, on_failed)

    @Slot()
    def _forget_finished(self) -> None:
        self._jobs = [job for job in self._jobs if not job[0].isFinished()]

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def wait_all(self, timeout_ms: int = 10_000) -> None:
        for thread, worker, _relay in list(self._jobs):
            cancel = getattr(worker, "cancel", None)
            if isinstance(cancel, CancelToken):
                cancel.cancel()
            thread.quit()
            thread.wait(timeout_ms)
