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


_log_callback = None  # kept alive while ggml holds it


def load_llama_backends() -> None:
    import ctypes

    global _log_callback
    lib_dir = os.path.join(getattr(sys, "_MEIPASS", os.path.dirname(__file__)), "llama_cpp", "lib")
    ggml = ctypes.CDLL(os.path.join(lib_dir, "libggml.so"), mode=ctypes.RTLD_GLOBAL)
    count = ggml.ggml_backend_reg_count
    count.restype = ctypes.c_size_t
    if count() != 0:
        return
    # Only warnings and errors of the loading reach stderr ("loaded CPU backend from ..."
    # is not for users; the device report names the variant); llama_cpp sets its own
    # log callback when it loads a model.
    callback_type = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

    def log(level: int, text: bytes | None, _data: object) -> None:
        if level in (3, 4) and text:  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            sys.stderr.write(text.decode("utf-8", "replace"))

    _log_callback = callback_type(log)
    ggml.ggml_log_set.argtypes = [callback_type, ctypes.c_void_p]
    ggml.ggml_log_set(_log_callback, None)
    load = ggml.ggml_backend_load_all_from_path
    load.argtypes = [ctypes.c_char_p]
    load.restype = None
    load(os.fsencode(lib_dir))


def restore_library_path() -> None:
    """Give programs the app starts (a browser for a link, nvidia-smi) the user's
    LD_LIBRARY_PATH, not the bootloader's, which points at the bundle's libraries. (This
    process's own loader keeps the bundle's: glibc reads the variable at start.)"""
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)
    # Our own child processes (sys.executable, this bundle again) then start as a new
    # instance of it, which sets the variable afresh (PyInstaller's documented switch).
    os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"


def main() -> None:
    python = python_mode(sys.argv[1:])
    if python is not None:
        if python[0] == "-m":
            load_llama_backends()
        run_python(*python)
        return
    restore_library_path()
    load_llama_backends()
    name = os.path.basename(sys.argv[0])
    if name.startswith("bllossom-desktop"):
        from desktop.app import main as program
    else:
        from bllossom_core.cli import main as program
    sys.exit(program())


if __name__ == "__main__":
    main()
