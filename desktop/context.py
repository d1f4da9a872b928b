"""What every part of the window shares: the store, the settings, the operation
runner, the status bar and the window itself (the parent of dialogs).

Passed to each controller at construction; controllers keep their own state and
talk to each other through signals, never through each other's attributes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bllossom_core.errors import BllossomError
from bllossom_core.store import ConversationStore
from bllossom_core.types import CancelToken
from desktop.errors import show_error
from desktop.ops import OpRunner
from desktop.qt import QWidget
from desktop.settings import AppSettings
from desktop.status_bar import ChatStatusBar

log = logging.getLogger(__name__)

EngineTurn = Callable[[CancelToken, Callable[[], None]], contextlib.AbstractContextManager[None]]
"""Hold the model for one of the app's replies: ``turn(cancel, on_wait)`` (see
:meth:`desktop.api_server.ApiServerSwitch.app_turn`)."""


@contextlib.contextmanager
def _free_turn(_cancel: CancelToken, _on_wait: Callable[[], None]) -> Iterator[None]:
    yield  # nothing else shares the model


@dataclass
class AppContext:
    store: ConversationStore
    settings: AppSettings
    ops: OpRunner
    status: ChatStatusBar
    window: QWidget
    engine_turn: EngineTurn = _free_turn
    """Set by the local API server switch, which shares the model with API requests."""

    def show_error(self, error: BaseException) -> None:
        show_error(self.window, error)

    def save_settings(self) -> None:
        """Write settings.json; a failure is logged (the app keeps working in memory)."""
        try:
            self.settings.save()
        except (OSError, BllossomError) as error:
            log.warning("could not save settings: %s", error)
