"""The "Local API server" switch: the model the app has loaded, served to other programs.

:class:`ApiServerSwitch` owns one :class:`bllossom_core.server.LocalServer` over the
loaded local engine. It starts and stops it off the GUI thread, starts it again over a
newly loaded model, and lets the app's own replies take turns with API requests
(:meth:`ApiServerSwitch.app_turn`): a reply asked while an API request is answered
waits for it, and the chat says so, instead of failing with "busy".

Safe by default, as ``bllossom serve``: only this computer (127.0.0.1) unless "allow
other devices" is on, which needs an API key (the core refuses to start without one).
The key is kept in the system keyring when there is one.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bllossom_core import LocalEngine, api_keys
from bllossom_core.server import LocalServer
from bllossom_core.types import CancelToken, ChatEngine
from desktop.context import AppContext
from desktop.ops import OpContext
from desktop.qt import QObject, Signal

log = logging.getLogger(__name__)

KEYRING_NAME = "bllossom-local-api-server"
"""The keyring entry (user name under the app's service) of the server's own API key."""
DEFAULT_PORT = 8080
ALL_ADDRESSES = "0.0.0.0"
THIS_COMPUTER = "127.0.0.1"


@dataclass(frozen=True)
class ApiServerConfig:
    """The switch's settings (saved in settings.json; the key in the keyring)."""

    enabled: bool = False
    port: int = DEFAULT_PORT
    allow_network: bool = False
    api_key: str = ""

    @property
    def host(self) -> str:
        return ALL_ADDRESSES if self.allow_network else THIS_COMPUTER

    def to_dict(self, key_in_keyring: bool) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "port": self.port,
            "allow_network": self.allow_network,
            "api_key": "" if key_in_keyring else self.api_key,
            "key_storage": "keyring" if key_in_keyring else "file",
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ApiServerConfig:
        port = data.get("port", DEFAULT_PORT)
        key = data.get("api_key", "")
        if data.get("key_storage") == "keyring":
            key = api_keys.load_key(KEYRING_NAME) or ""
        return cls(
            enabled=data.get("enabled") is True,
            port=port if isinstance(port, int) and 0 < port < 65536 else DEFAULT_PORT,
            allow_network=data.get("allow_network") is True,
            api_key=key if isinstance(key, str) else "",
        )


def new_api_key() -> str:
    """A fresh random key, for the "Generate" button."""
    return "bllossom-" + secrets.token_urlsafe(24)


def lan_address() -> str:
    """This computer's address on its network, as other devices reach it (no packet is
    sent: a UDP socket only picks the interface its route would use)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.254.254.254", 1))
        return str(probe.getsockname()[0])
    return socket.gethostname()


class ApiServerSwitch(QObject):
    state_changed = Signal()
    """Started, stopped, failed, or an API request began or ended holding the model."""
    _busy_from_server = Signal(bool)

    def __init__(self, context: AppContext, engine: Callable[[], ChatEngine | None]) -> None:
        super().__init__(context.window)
        self._context = context
        self._engine = engine
        self._server: LocalServer | None = None
        self._starting = False
        self._restart_again = False
        self.api_busy = False
        """An API request is using the model right now."""
        self.problem: str | None = None
        """Why the server is not running although switched on (shown in the settings)."""
        self.config = ApiServerConfig.from_dict(context.settings.api_server)
        # The server calls back from its own threads: hop to the GUI thread.
        self._busy_from_server.connect(self._set_busy)

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def starting(self) -> bool:
        """Being started or stopped (off the GUI thread)."""
        return self._starting

    @property
    def url(self) -> str | None:
        """What other programs use (``http://127.0.0.1:8080/v1``), when running."""
        server = self._server
        if server is None:
            return None
        if self.config.allow_network:
            return f"http://{lan_address()}:{server.port}/v1"
        return server.url

    # ------------------------------------------------------------------ settings
    def apply(self, config: ApiServerConfig) -> None:
        """Save ``config`` and start, restart or stop the server to match it."""
        in_keyring = False
        if config.api_key:
            storage = api_keys.save_key(KEYRING_NAME, config.api_key)
            in_keyring = storage is api_keys.KeyStorage.KEYRING
        else:
            api_keys.forget_key(KEYRING_NAME)
        self._context.settings.api_server = config.to_dict(in_keyring)
        self._context.save_settings()
        self.config = config
        self.restart()

    def restart(self) -> None:
        """Serve the model loaded now (or stop, when switched off or none is loaded)."""
        if self._starting:  # one switch at a time: the port must be free before it is reused
            self._restart_again = True
            return
        old, self._server = self._server, None
        self.problem = None
        self._set_busy(False)
        engine = self._engine()
        wanted = self.config.enabled and isinstance(engine, LocalEngine)
        if self.config.enabled and engine is not None and not isinstance(engine, LocalEngine):
            self.problem = self.tr("The local API server serves models on this computer only.")
        config = self.config

        def switch(_ctx: OpContext) -> LocalServer | None:
            if old is not None:
                old.stop()
            if not wanted:
                return None
            assert isinstance(engine, LocalEngine)
            server = LocalServer(engine, host=config.host, port=config.port,
                                 api_key=config.api_key or None,
                                 on_busy_change=self._busy_from_server.emit)  # fmt: skip
            server.start()
            return server

        def started(server: LocalServer | None) -> None:
            self._starting = False
            self._server = server
            self.state_changed.emit()
            self._restart_if_asked()

        def failed(error: BaseException) -> None:
            self._starting = False
            self.problem = str(error)
            self.state_changed.emit()
            if not self._restart_if_asked():
                self._context.show_error(error)

        self._starting = True
        self.state_changed.emit()
        self._context.ops.run("API server", switch, started, failed)

    def _restart_if_asked(self) -> bool:
        """Settings or the model changed while switching: switch again to match them."""
        if self._restart_again:
            self._restart_again = False
            self.restart()
            return True
        return False

    def stop(self) -> None:
        """Stop serving (the app is closing); blocks briefly."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    # ------------------------------------------------------------------ sharing the model
    @contextlib.contextmanager
    def app_turn(self, cancel: CancelToken, on_wait: Callable[[], None]) -> Iterator[None]:
        """The app's own reply holds the model (waiting, after ``on_wait()``, for an API
        reply in progress); without a server, at once."""
        server = self._server
        if server is None:
            yield
            return
        with server.app_turn(cancel=cancel, on_wait=on_wait):
            yield

    def _set_busy(self, busy: bool) -> None:
        if busy != self.api_busy:
            self.api_busy = busy
            self.state_changed.emit()
