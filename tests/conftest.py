"""Shared pytest fixtures: an isolated user profile and the tiny model checkpoints."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures import real_models
from tests.fixtures.checkpoints import CheckpointSpec, checkpoint

if TYPE_CHECKING:
    from tests.unit.core.test_remote import FakeServer, Script


@pytest.fixture(autouse=True)
def bllossom_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own empty user data folder; the real profile is never touched."""
    home = tmp_path_factory.mktemp("bllossom-home")
    monkeypatch.setenv("BLLOSSOM_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_system_keyring() -> Iterator[None]:
    """No test reaches the developer's real keyring: API keys take the no-keyring path
    unless a test installs its own in-memory keyring."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def serve() -> Iterator[Callable[[Script], FakeServer]]:
    """``serve(script)`` starts a scripted OpenAI-style server; all stop after the test."""
    from tests.unit.core.test_remote import FakeServer

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


@pytest.fixture(scope="session")
def make_checkpoint() -> Callable[..., Path]:
    """``make_checkpoint(family="llama3-bpe-ko", dtype="bfloat16", ...)`` -> cached folder."""

    def make(**fields: object) -> Path:
        return checkpoint(CheckpointSpec(**fields))  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF (downloaded once; skips if offline)."""
    return real_models.smollm2_gguf()
