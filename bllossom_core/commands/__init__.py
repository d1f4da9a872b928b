"""The ``bllossom`` subcommands, each in its own module with ``register(subparsers)``.

``SUBCOMMANDS`` maps each command name to its module, in the order ``bllossom --help``
lists them. The CLI imports only the module of the command being run (``bllossom
convert`` never loads the server stack that ``serve`` needs), and all of them only to
list them all (``bllossom --help``, or a name that is no command).
"""

from __future__ import annotations

SUBCOMMANDS: dict[str, str] = {
    "convert": "converter.command",
    "info": "bllossom_core.commands.info",
    "generate": "bllossom_core.commands.generate",
    "chat": "bllossom_core.commands.chat",
    "pull": "bllossom_core.commands.pull",
    "serve": "bllossom_core.commands.serve",
}
