"""Whose turn it is to use the engine: one reply at a time, a bounded line of waiters.

A :class:`LocalEngine` answers one message at a time and refuses a second one at once.
The server puts every request through :class:`ReplyGate` first: the request holding the
turn runs, the next ones wait in first-come order, and when the line is full a new
request is refused (:class:`LineFull`, sent as HTTP 503 with ``Retry-After``).

The desktop app, sharing the engine with the server, takes its turns through the same
gate (:meth:`ReplyGate.wait_blocking`, from its worker thread) and goes to the front of
the line: API clients can never lock the person at the keyboard out. The gate is
thread-safe; waiting is done by the event loop (:meth:`ReplyGate.wait`) or by a thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

Owner = Literal["api", "app"]
_POLL_S = 0.1
"""How often a thread waiting for its turn checks whether it should stop waiting."""


class LineFull(Exception):
    """Every place in the line is taken; ``retry_after_s`` is a rough wait estimate."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the line is full; retry in about {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Turn:
    """A place in the line, then the turn itself; :meth:`ReplyGate.leave` ends either."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.granted = False
        self._wake: Callable[[], None] = lambda: None
        self.granted_at = 0.0


class ReplyGate:
    """One holder at a time; at most ``max_waiting`` API requests waiting behind it."""

    def __init__(
        self, max_waiting: int, on_change: Callable[[Owner | None], None] | None = None
    ) -> None:
        if max_waiting < 0:
            raise ValueError("max_waiting must be 0 or more")
        self.max_waiting = max_waiting
        self._on_change = on_change
        self._lock = threading.Lock()
        self._holder: Turn | None = None
        self._line: deque[Turn] = deque()
        self._average_turn_s = 1.0

    @property
    def holder(self) -> Owner | None:
        """Who uses the engine now: ``"api"``, ``"app"`` or nobody."""
        holder = self._holder
        return holder.owner if holder is not None else None

    @property
    def waiting(self) -> int:
        return len(self._line)

    def join(self, owner: Owner, wake: Callable[[], None] | None = None) -> Turn:
        """Take the turn if it is free, else a place in the line (check ``granted``);
        ``wake`` is called, from whichever thread gives the turn back, when it comes."""
        turn = Turn(owner)
        if wake is not None:
            turn._wake = wake
        with self._lock:
            if self._holder is None and not self._line:
                self._grant(turn)
            elif owner == "app":
                self._line.appendleft(turn)
            elif sum(1 for t in self._line if t.owner == "api") >= self.max_waiting:
                raise LineFull(self._retry_after_s())
            else:
                self._line.append(turn)
        if turn.granted:
            self._changed()
        return turn

    async def wait(self, owner: Owner = "api") -> Turn:
        """Join and wait (on the event loop) for the turn; cancelling leaves the line."""
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, granted)

        turn = self.join(owner, wake)
        if turn.granted:
            return turn
        try:
            await granted
        except BaseException:
            self.leave(turn)  # the turn may have come meanwhile: pass it on
            raise
        return turn

    def wait_blocking(
        self,
        owner: Owner = "app",
        timeout: float | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Turn | None:
        """Join and wait in this thread; ``None`` (and out of the line) after ``timeout``
        or once ``should_stop()`` is true (checked a few times a second). ``on_wait`` is
        called once if the turn is not free at once (to tell the user why nothing moves).
        """
        event = threading.Event()
        turn = self.join(owner, event.set)
        if turn.granted:
            return turn
        if on_wait is not None:
            on_wait()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not turn.granted:
            remaining = None if deadline is None else deadline - time.monotonic()
            stop = should_stop is not None and should_stop()
            if stop or (remaining is not None and remaining <= 0):
                with self._lock:
                    if not turn.granted:  # still in the line: leave it, nothing to hand on
                        self._line.remove(turn)
                        return None
                break  # granted meanwhile: the caller has it (and must leave it)
            event.wait(_POLL_S if remaining is None else min(_POLL_S, remaining))
        return turn

    def leave(self, turn: Turn) -> None:
        """Give the turn back (or the place in the line); harmless when already left."""
        following: Turn | None = None
        with self._lock:
            if self._holder is turn:
                self._holder = None
                held_s = time.monotonic() - turn.granted_at
                self._average_turn_s = 0.8 * self._average_turn_s + 0.2 * held_s
                if self._line:
                    following = self._line.popleft()
                    self._grant(following)
            elif turn in self._line:
                self._line.remove(turn)
                return
            else:
                return
        if following is not None:
            following._wake()
        self._changed()

    def _grant(self, turn: Turn) -> None:
        turn.granted = True
        turn.granted_at = time.monotonic()
        self._holder = turn

    def _retry_after_s(self) -> int:
        return max(1, min(60, round(self._average_turn_s * (len(self._line) + 1))))

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.holder)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
