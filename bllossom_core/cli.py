"""The ``bllossom`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` to a function taking the parsed arguments and returning an exit code.
Modules are imported only to register; heavy work is imported inside the handlers so
that ``bllossom --help`` stays instant.

Errors the user can cause are :class:`~bllossom_core.errors.BllossomError`: printed on
one line, exit status 1 (2 for bad arguments). Ctrl-C exits with 130 after cleanup;
a closed output pipe (``| head``) ends the command quietly with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from bllossom_core import __version__
from bllossom_core.commands import SUBCOMMANDS
from bllossom_core.errors import BllossomError, Cancelled, InputError
from bllossom_core.terminal_text import prepare_standard_streams, refuse_undecodable_arguments

SUBCOMMAND_MODULES = tuple(SUBCOMMANDS.values())
"""Each subcommand's module (``convert`` is the converter package's)."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` a subcommand's name, a parser that knows just
    that subcommand (the others' modules, some slow to import, are not loaded)."""
    parser = argparse.ArgumentParser(
        prog="bllossom",
        description="Convert Bllossom checkpoints to GGUF and chat with them, offline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(subparsers)
    return parser


def _named_subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when its first word names one: the rest of the
    command line is then that subcommand's alone. A bare ``--version`` gets ``""`` (no
    subcommand at all). Otherwise (an option such as --help, or a word that is no
    command) ``None``: the full parser answers."""
    if list(argv) == ["--version"]:
        return ""  # no subcommand is needed to print the version (a fraction of a second)
    return argv[0] if argv and argv[0] in SUBCOMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    prepare_standard_streams()  # text that is not UTF-8: see bllossom_core.terminal_text
    try:
        try:
            return _run(argv)
        finally:  # also after --help: a closed pipe shows up here, not at interpreter exit
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``bllossom info x.gguf | head``): stop quietly. Point
        # stdout at devnull so the interpreter's final flush does not fail again.
        _silence_stdout()
        return 1


def _run(argv: Sequence[str] | None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_named_subcommand(argv))
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        refuse_undecodable_arguments(parser, args)
        return int(handler(args) or 0)
    except Cancelled as exc:
        print(f"bllossom: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("bllossom: interrupted.", file=sys.stderr)
        return 130
    except InputError as exc:
        print(f"bllossom: error: {exc}", file=sys.stderr)
        return 2
    except BllossomError as exc:
        print(f"bllossom: error: {exc}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (tests capturing it)
        pass


if __name__ == "__main__":
    sys.exit(main())
