"""Shared pytest fixtures: an isolated user profile and the tiny model checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures import real_models
from tests.fixtures.checkpoints import CheckpointSpec, checkpoint


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
