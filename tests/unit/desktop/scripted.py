"""The scripted engine for the desktop tests (see ``tests/fixtures/scripted_engine.py``)
and a helper that makes the window use it as if it had been loaded."""

from __future__ import annotations

from tests.fixtures.scripted_engine import ScriptedEngine, ScriptedStream

__all__ = ["ScriptedEngine", "ScriptedStream", "use_engine"]


def use_engine(window, engine: ScriptedEngine, name: str = "tiny") -> None:  # type: ignore[no-untyped-def]
    from desktop.settings import RegisteredModel

    window.models._loaded(RegisteredModel(name=name, path=f"/models/{name}.gguf"), engine, "auto")
