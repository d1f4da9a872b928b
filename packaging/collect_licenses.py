"""Copy the licence texts of everything the PyInstaller bundle carries into it.

    build/package/venv/bin/python packaging/collect_licenses.py WORK_DIR BUNDLE_DIR

Which Python distributions are in the bundle is read from PyInstaller's own tables of
what it packed (``PYZ-00.toc`` for modules, ``COLLECT-00.toc`` for binaries and data in
WORK_DIR): a distribution is carried when one of its installed files is. For each, the
licence files it installed (``LICENSE*``, ``COPYING*``, ``NOTICE*``, ``AUTHORS*``)
go to ``BUNDLE_DIR/licenses/<name>-<version>/``, CPython's own licence to
``licenses/python-<version>/``, and ``licenses/README.txt`` lists them all with the
licence each declares. The LGPL asks that Qt's text ship beside its libraries.

Exits with status 1, naming them, when a carried distribution installed no licence file
(its text must then be added by hand before the package ships).
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import shutil
import sys
import sysconfig
from pathlib import Path

LICENCE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|AUTHORS)([.\-_].*)?$", re.IGNORECASE)
COMMON_LICENCES = Path("/usr/share/common-licenses")
"""Debian's full texts of the common licences (the build machine is Debian)."""
WITHOUT_FILES = {
    # These wheels install no licence file; their metadata declares the licence.
    "pyside6-essentials": ["LGPL-3", "GPL-3", "GPL-2"],
    "shiboken6": ["LGPL-3", "GPL-3", "GPL-2"],
    "sentencepiece": ["Apache-2.0"],
    "tokenizers": ["Apache-2.0"],
    "nvidia-ml-py": ["header:pynvml.py"],  # BSD-3-Clause, with NVIDIA's notice
}
"""Where the text comes from instead: a file in COMMON_LICENCES, or ``header:MODULE``
for the licence comment at the top of one of the distribution's own files."""
TOOLS_ONLY = {"pyinstaller", "pyinstaller-hooks-contrib", "altgraph", "pip", "setuptools"}
"""Build tools: PyInstaller's bootloader licence is added explicitly below."""


def packed_paths(work: Path) -> set[Path]:
    """Every source file PyInstaller put into the bundle (modules, binaries, data)."""
    paths: set[Path] = set()
    for name in ("PYZ-00.toc", "COLLECT-00.toc"):
        table = ast.literal_eval((work / name).read_text())
        # PYZ-00.toc is (archive name, [entries]); COLLECT-00.toc is ([entries], ...)
        entries = next(part for part in table if isinstance(part, list))
        for entry in entries:
            if len(entry) >= 2 and isinstance(entry[1], str):
                paths.add(Path(entry[1]).resolve())
    return paths


def licence_declared(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta["License-Expression"]
    if expression:
        return str(expression)
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::")]  # fmt: skip
    if classifiers:
        return ", ".join(classifiers)
    text = (meta["License"] or "").strip().splitlines()
    return text[0][:80] if text else "(not declared)"


def main(work: Path, bundle: Path) -> int:
    packed = packed_paths(work)
    target = bundle / "licenses"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    index: list[str] = []
    without: list[str] = []
    seen: set[str] = set()
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"]
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in TOOLS_ONLY or key in seen:
            continue
        files = [Path(str(dist.locate_file(f))).resolve() for f in dist.files or []]
        if not packed.intersection(files):
            continue
        seen.add(key)
        folder = target / f"{key}-{dist.version}"
        texts = [f for f in files if LICENCE_FILE.match(f.name) and f.is_file()]
        folder.mkdir()
        for text in texts:
            copy = folder / text.name
            shutil.copyfile(text, copy.with_name(f"{text.parent.name}-{text.name}")
                            if copy.exists() else copy)  # fmt: skip
        if not texts and not _fallback_texts(key, files, folder):
            without.append(f"{name} {dist.version}")
        index.append(f"{name} {dist.version}: {licence_declared(dist)}")
    python = target / f"python-{sys.version.split()[0]}"
    python.mkdir()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copyfile(stdlib / "LICENSE.txt", python / "LICENSE.txt")
    index.append(f"CPython {sys.version.split()[0]}: PSF-2.0")
    bootloader = _pyinstaller_licence()
    if bootloader is not None:
        (target / "pyinstaller-bootloader").mkdir()
        shutil.copyfile(bootloader, target / "pyinstaller-bootloader" / "COPYING.txt")
        index.append("PyInstaller bootloader: GPL-2.0-or-later with the bootloader exception")
    (target / "README.txt").write_text(
        "Licences of the software this bundle carries, one folder each.\n"
        "Qt and PySide6 (LGPL-3.0) are shared libraries under _internal/PySide6 and may be\n"
        "replaced by the user.\n\n" + "\n".join(index) + "\n",
        encoding="utf-8",
    )
    print(f"licences: {len(index)} components in {target}", file=sys.stderr)
    if without:
        print("no licence file installed by: " + ", ".join(without), file=sys.stderr)
        return 1
    return 0


def _fallback_texts(key: str, files: list[Path], folder: Path) -> bool:
    """Write the licence texts named in WITHOUT_FILES for ``key``; False if none."""
    written = False
    for source in WITHOUT_FILES.get(key, []):
        if source.startswith("header:"):
            module = next(f for f in files if f.name == source.removeprefix("header:"))
            lines = module.read_text(encoding="utf-8").splitlines()
            header = [line.lstrip("#").rstrip() for line in lines if line.startswith("#")]
            end = next((i for i, line in enumerate(lines) if not line.startswith("#")), 0)
            (folder / "LICENSE").write_text("\n".join(header[:end]).strip() + "\n")
        else:
            shutil.copyfile(COMMON_LICENCES / source, folder / f"LICENSE-{source}")
        written = True
    return written


def _pyinstaller_licence() -> Path | None:
    try:
        dist = metadata.distribution("pyinstaller")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if Path(str(file)).name.upper().startswith("COPYING"):
            return Path(str(dist.locate_file(file)))
    return None


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
