"""``bllossom serve MODEL.gguf``: the model as a local OpenAI-compatible API.

Listens on 127.0.0.1 unless told otherwise; another address needs ``--api-key``. The
port is bound before the model loads, so a port in use is reported at once. Ctrl-C or
SIGTERM stops replies in progress and exits 0. One log line per request on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from bllossom_core.commands.generate import add_load_arguments, load_engine
from bllossom_core.server.options import (
    DEFAULT_HOST,
    DEFAULT_MAX_WAITING,
    DEFAULT_PORT,
    ServerOptions,
    default_alias,
)

API_KEY_ENV = "BLLOSSOM_API_KEY"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="Serve a GGUF model as an OpenAI-compatible API on this computer."
    )
    parser.add_argument("model", type=Path, metavar="MODEL.gguf")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to listen on (default %(default)s: this computer only; "
                        "any other needs --api-key)")  # fmt: skip
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="port (default %(default)s; 0 picks a free one)")  # fmt: skip
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                        help=f"key clients must send as 'Authorization: Bearer KEY' "
                        f"(default: ${API_KEY_ENV})")  # fmt: skip
    parser.add_argument("--model-alias", default=None,
                        help="model id clients see (default: the file name)")  # fmt: skip
    parser.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN call the API (repeatable; default: none)",
    )
    parser.add_argument("--queue", type=int, default=DEFAULT_MAX_WAITING, metavar="N",
                        help="requests that may wait for the model; more get HTTP 503 "
                        "(default %(default)s)")  # fmt: skip
    parser.add_argument("--log-prompts", action="store_true",
                        help="also log the messages of each request (off by default)")  # fmt: skip
    add_load_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bllossom_core.server import LocalServer, open_listening_socket

    options = ServerOptions(
        host=args.host, port=args.port, api_key=args.api_key,
        model_alias=args.model_alias or default_alias(args.model),
        cors_origins=tuple(args.cors), max_waiting=args.queue, log_prompts=args.log_prompts,
    )  # fmt: skip
    options.check()  # before the model loads: a refused option costs nothing
    sock = open_listening_socket(options.host, options.port)
    try:
        engine = load_engine(args)
    except BaseException:
        sock.close()
        raise
    _log_to_stderr()
    try:
        server = LocalServer(
            engine, host=options.host, port=options.port, api_key=options.api_key,
            model_alias=options.model_alias, cors_origins=options.cors_origins,
            max_waiting=options.max_waiting, log_prompts=options.log_prompts, sock=sock,
        )  # fmt: skip
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
        try:
            server.start()
            print(
                f"Serving {server.model_alias} at {server.url} "
                f"({engine.device.summary}); Ctrl-C stops.",
                file=sys.stderr,
                flush=True,
            )
            stop.wait()
            print("Stopping…", file=sys.stderr, flush=True)
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        sock.close()
        engine.close()
    return 0


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for name in ("bllossom_core.server", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
