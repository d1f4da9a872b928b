"""Fixtures shared by the core unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from tests.unit.core.test_remote import FakeServer, Script


@pytest.fixture
def serve() -> Iterator[Callable[[Script], FakeServer]]:
    """``serve(script)`` starts a scripted OpenAI-style server; all stop after the test."""
    servers: list[FakeServer] = []

    def start(script: Script) -> FakeServer:
        server = FakeServer(script)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()  # fmt: skip
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()
