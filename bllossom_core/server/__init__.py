"""A local OpenAI-compatible API server over a loaded :class:`~bllossom_core.engine.LocalEngine`.

``bllossom serve MODEL.gguf`` runs it from the command line; the desktop app starts
:class:`LocalServer` on the engine it already has loaded. Needs Starlette and uvicorn
(runtime dependencies of Bllossom).
"""

from typing import TYPE_CHECKING

from bllossom_core._lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use: `bllossom serve --help` needs no Starlette
    from bllossom_core.server.local_server import API_BUSY_MESSAGE, LocalServer
    from bllossom_core.server.options import (
        ServerOptions,
        is_local_host,
        open_listening_socket,
    )

_EXPORTS = {
    "bllossom_core.server.local_server": ("API_BUSY_MESSAGE", "LocalServer"),
    "bllossom_core.server.options": ("ServerOptions", "is_local_host", "open_listening_socket"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "API_BUSY_MESSAGE",
    "LocalServer",
    "ServerOptions",
    "is_local_host",
    "open_listening_socket",
]
