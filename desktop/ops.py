"""The one way the app runs work off the GUI thread: typed operations.

In the spirit of Anki's ``QueryOp``: an operation is a function run on a worker
thread; its result (a ``T``) or its error, and any progress it reports on the way,
arrive on the GUI thread through the callbacks given to :meth:`OpRunner.run`. Every
store, engine, converter and file call the window makes goes through here, so the
GUI never blocks on a disk or a model.

Closing: :meth:`OpRunner.cancel_all` sets every running operation's
:class:`~bllossom_core.types.CancelToken`; :meth:`OpRunner.wait_all` waits for their
threads and says whether they all ended, so the window closes its store only after.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from bllossom_core.types import CancelToken
from desktop.qt import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)
T = TypeVar("T")


class OpContext:
    """Handed to an operation's function: its cancel token and a progress channel."""

    def __init__(self, cancel: CancelToken, report: Callable[[object], None]) -> None:
        self.cancel = cancel
        self._report = report

    @property
    def cancelled(self) -> bool:
        return self.cancel.cancelled

    def report(self, value: object) -> None:
        """Send ``value`` to the operation's ``on_progress`` (on the GUI thread)."""
        self._report(value)


class _Worker(QObject):
    """Runs in the operation's thread; signals cross back to the GUI thread."""

    succeeded = Signal(object)
    failed = Signal(object)
    progressed = Signal(object)

    def __init__(self, fn: Callable[[OpContext], object], cancel: CancelToken) -> None:
        super().__init__()
        self._fn = fn
        self._context = OpContext(cancel, self.progressed.emit)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self._context)
        except BaseException as error:  # delivered to the GUI, never swallowed
            log.debug("operation failed", exc_info=True)
            self.failed.emit(error)
        else:
            self.succeeded.emit(result)


class Op(QObject, Generic[T]):
    """A running operation: cancel it, or ask whether it is still running.

    Lives in the GUI thread, so the worker's signals run the callbacks there.
    """

    ended = Signal()

    def __init__(
        self,
        name: str,
        fn: Callable[[OpContext], T],
        on_success: Callable[[T], None] | None,
        on_failure: Callable[[BaseException], None] | None,
        on_progress: Callable[[Any], None] | None,
    ) -> None:
        super().__init__()
        self.name = name
        self.cancel_token = CancelToken()
        self._on_success = on_success
        self._on_failure = on_failure
        self._on_progress = on_progress
        self._thread = QThread()
        self._thread.setObjectName(f"op:{name}")
        self._worker = _Worker(fn, self.cancel_token)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.succeeded.connect(self._succeeded)
        self._worker.failed.connect(self._failed)
        self._worker.progressed.connect(self._progressed)
        # Direct: quit() is called from the worker's own thread the moment it is done. A
        # queued call would wait for the GUI thread, which may be blocked in wait().
        direct = Qt.ConnectionType.DirectConnection
        self._worker.succeeded.connect(self._thread.quit, direct)
        self._worker.failed.connect(self._thread.quit, direct)
        self._thread.finished.connect(self.ended)
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Block until the operation's thread has ended; True if it has."""
        if not self._started:
            return True
        if timeout_ms is None:
            return bool(self._thread.wait())
        return bool(self._thread.wait(timeout_ms))

    @property
    def running(self) -> bool:
        return self._started and not self._thread.isFinished()

    @Slot(object)
    def _succeeded(self, result: object) -> None:
        if self._on_success is not None:
            self._on_success(result)  # type: ignore[arg-type]  # the worker returned a T

    @Slot(object)
    def _failed(self, error: object) -> None:
        assert isinstance(error, BaseException)
        if self._on_failure is not None:
            self._on_failure(error)
        else:
            log.error("operation %s failed: %s", self.name, error)

    @Slot(object)
    def _progressed(self, value: object) -> None:
        if self._on_progress is not None:
            self._on_progress(value)


class OpRunner(QObject):
    """Starts operations and owns them until their threads end."""

    all_ended = Signal()
    """Emitted when the last running operation has ended."""

    def __init__(
        self,
        default_failure: Callable[[BaseException], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ops: list[Op[Any]] = []
        self._default_failure = default_failure
        self._closed = False

    def run(
        self,
        name: str,
        fn: Callable[[OpContext], T],
        on_success: Callable[[T], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Op[T]:
        """Run ``fn`` on a worker thread; callbacks run on the GUI thread.

        Without ``on_failure`` the runner's default (an error dialog) is used. After
        :meth:`close` nothing new starts (the returned operation never runs).
        """
        op: Op[T] = Op(name, fn, on_success, on_failure or self._default_failure, on_progress)
        if self._closed:
            log.debug("not starting %s: the app is closing", name)
            return op
        # Each op is forgotten by its own ``ended``, which Qt delivers after its result:
        # forgetting an op whose result is still queued would drop that result.
        op.ended.connect(functools.partial(self._forget, op))
        self._ops.append(op)
        op.start()
        return op

    def close(self) -> None:
        """Start nothing new from now on (the app is shutting down)."""
        self._closed = True

    def _forget(self, op: Op[Any]) -> None:
        if op in self._ops:
            self._ops.remove(op)
        if not self._ops:
            self.all_ended.emit()

    @property
    def busy(self) -> bool:
        """True until every operation has ended *and* its result has been delivered."""
        return bool(self._ops)

    def running(self) -> list[str]:
        return [op.name for op in self._ops]

    def cancel_all(self) -> None:
        for op in self._ops:
            op.cancel()

    def wait_all(self, timeout_ms: int) -> bool:
        """Wait for every operation's thread; True when all have ended.

        The callbacks of operations that end meanwhile are *not* run (their signals are
        queued for the GUI thread): callers are shutting down.
        """
        deadline_ok = True
        for op in list(self._ops):
            if not op.wait(timeout_ms):
                deadline_ok = False
        return deadline_ok
