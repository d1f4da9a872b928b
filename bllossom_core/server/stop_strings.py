"""OpenAI ``stop`` strings over a stream of text pieces.

The engine stops on the model's own end-of-turn tokens; ``stop`` strings are text the
client chooses, which may be split over several pieces (``"\\n\\n"`` arriving as two
``"\\n"``). :class:`StopStringFilter` passes text on as soon as it cannot be the start
of a stop string, holds back the rest, and cuts the reply just before the first stop
string, so the streamed pieces always add up to the non-streamed text.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopStringFilter:
    """Feed text pieces; get back the text that is certainly part of the reply."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False
        """A stop string was found: the reply ends here (the caller stops generating)."""

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return text
        pending = self._held + text
        found = [at for at in (pending.find(stop) for stop in self._stops) if at >= 0]
        if found:
            self.stopped = True
            self._held = ""
            return pending[: min(found)]
        hold = max(self._partial_stop_length(pending, stop) for stop in self._stops)
        self._held = pending[len(pending) - hold :] if hold else ""
        return pending[: len(pending) - hold]

    def flush(self) -> str:
        """The text held back when the reply ends without reaching a stop string."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    @staticmethod
    def _partial_stop_length(text: str, stop: str) -> int:
        """Length of the longest end of ``text`` that begins ``stop`` (but is not all of it)."""
        for length in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:length]):
                return length
        return 0
