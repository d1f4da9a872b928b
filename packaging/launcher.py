"""Entry point of the packaged app (PyInstaller onedir bundle in /opt/bllossom-desktop).

One executable, ``bllossom``; ``bllossom-desktop`` is a symlink to it and the name it is
started by picks the program (as busybox does). It also stands in for ``python -c CODE`` and
``python -m MODULE`` (with ``-I`` and the like before them), as the app starts child
processes with ``sys.executable``, which in the bundle is this launcher: chat templates are
rendered in ``sys.executable -I -c CODE ...`` (bllossom_core._template_worker), the
converter quantizes in ``sys.executable -m converter._quantize ...``.

Before the program starts, llama.cpp's backends are loaded from the bundle's own
directory: its CPU backend comes as one library per x86-64 level
(libggml-cpu-{x64,sse42,sandybridge,haswell,...}.so) and ggml loads the best one this CPU
runs. Loading them here, from an explicit path, keeps ggml's default search (the
executable's directory and the *current directory*) from ever running.
"""

from __future__ import annotations

import os
import sys

PYTHON_FLAGS = {"-I", "-E", "-s", "-S", "-B", "-u", "-O", "-OO"}


def python_mode(args: list[str]) -> tuple[str, list[str]] | None:
    """``("-c"|"-m", rest)`` where ``args`` is a Python command line (flags, then -c/-m)."""
    while args and args[0] in PYTHON_FLAGS:
        args = args[1:]
    if len(args) >= 2 and args[0] in ("-c", "-m"):
        return args[0], args[1:]
    return None


def run_python(mode: str, rest: list[str]) -> None:
    if mode == "-c":
        sys.argv = ["-c", *rest[1:]]
        code = compile(rest[0], "<string>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        return
    import runpy

    sys.argv = [rest[0], *rest[1:]]
    runpy.run_module(rest[0], run_name="__main__", alter_sys=True)


def load_llama_backends() -> None:
    import ctypes

    lib_dir = os.path.join(getattr(sys, "_MEIPASS", os.path.dirname(__file__)), "llama_cpp", "lib")
    ggml = ctypes.CDLL(os.path.join(lib_dir, "libggml.so"), mode=ctypes.RTLD_GLOBAL)
    count = ggml.ggml_backend_reg_count
    count.restype = ctypes.c_size_t
    if count() == 0:
        load = ggml.ggml_backend_load_all_from_path
        load.argtypes = [ctypes.c_char_p]
        load.restype = None
        load(os.fsencode(lib_dir))


def main() -> None:
    python = python_mode(sys.argv[1:])
    if python is not None:
        if python[0] == "-m":
            load_llama_backends()
        run_python(*python)
        return
    load_llama_backends()
    name = os.path.basename(sys.argv[0])
    if name.startswith("bllossom-desktop"):
        from desktop.app import main as program
    else:
        from bllossom_core.cli import main as program
    sys.exit(program())


if __name__ == "__main__":
    main()
