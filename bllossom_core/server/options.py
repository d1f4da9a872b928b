"""The server's settings and the safety rules checked before anything listens.

Safe by default: the server listens on 127.0.0.1 (this computer only). Listening on any
other address lets other devices use the model, so it needs an API key; without one
the server refuses to start and says why.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path

from bllossom_core.errors import ErrorCode, InputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_WAITING = 8
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_BUSY_WAIT_S = 300.0


@dataclass(frozen=True)
class ServerOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    """0 picks a free port (see :attr:`LocalServer.port`)."""
    api_key: str | None = None
    """Required from clients as ``Authorization: Bearer KEY``; required for a non-local host."""
    model_alias: str | None = None
    """The model id clients see (default: the GGUF file name without ``.gguf``)."""
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    """Web origins allowed to call the API from a browser; none by default."""
    max_waiting: int = DEFAULT_MAX_WAITING
    """Requests that may wait for the engine; more get 503 with Retry-After."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    busy_wait_s: float = DEFAULT_BUSY_WAIT_S
    """How long a request waits for an engine busy outside the server (the app) before 503."""
    log_prompts: bool = False
    """Log the messages of each request (off: logs never contain prompt text)."""

    def check(self) -> None:
        """Refuse unsafe or impossible settings, with the reason and what to do."""
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be between 0 and 65535, not {self.port}.")
        if self.max_waiting < 0:
            raise InputError(f"--queue must be 0 or more, not {self.max_waiting}.")
        if self.max_body_bytes < 1024:
            raise InputError("The request body limit must be at least 1 KiB.")
        if self.api_key is not None and not self.api_key.strip():
            raise InputError("--api-key is empty; give a key or leave the option out.")
        if not self.api_key and not is_local_host(self.host):
            raise InputError(
                f"Refusing to listen on {self.host} without an API key: any device that can "
                "reach this computer could use the model.",
                hint="Give --api-key KEY (clients send it as 'Authorization: Bearer KEY'), "
                "or listen on 127.0.0.1 (this computer only).",
                code=ErrorCode.API_KEY_REQUIRED,
            )


def default_alias(model_path: Path | str) -> str:
    name = Path(model_path).name
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name


def is_local_host(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (127.x, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in found)


_BIND_HINTS = {
    errno.EACCES: "Ports below 1024 need administrator rights; use e.g. 8080.",
    errno.EADDRNOTAVAIL: "That address is not one of this computer's; use 127.0.0.1 (this "
    "computer only) or 0.0.0.0 (every network it is on).",
}


def open_listening_socket(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` now, so that a port in use is reported before a model loads."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as error:
        raise InputError(
            f"Cannot listen on '{host}': {error.strerror or error}.",
            hint="Use an IP address of this computer, e.g. 127.0.0.1.",
        ) from error
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise InputError(
                f"Port {port} on {host} is already in use (another server may be running).",
                hint="Choose another port with --port, or stop the other program.",
                code=ErrorCode.PORT_IN_USE,
            ) from error
        raise InputError(
            f"Cannot listen on {host}:{port}: {error.strerror or error}.",
            hint=_BIND_HINTS.get(error.errno or 0, "Check the address and port."),
        ) from error
    sock.setblocking(False)
    return sock
