"""Refresh desktop/i18n/bllossom_ko.ts from the desktop sources (a developer tool).

Runs PySide6's lupdate over ``desktop/*.py`` (dropping strings no longer used), keeps
every existing translation (matched by source text, across contexts), fills new ones
from the JSON files given (``{"English source": "한국어"}``), and prints the sources
that still lack a translation. Run it with the project's venv:

    .venv/bin/python scripts/update_translations.py [more_ko.json ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import PySide6

ROOT = Path(__file__).resolve().parent.parent
TS_FILE = ROOT / "desktop" / "i18n" / "bllossom_ko.ts"


def known_translations(extra_files: list[Path]) -> dict[str, str]:
    known: dict[str, str] = {}
    for message in ET.parse(TS_FILE).getroot().iter("message"):
        translation = message.find("translation")
        if translation is not None and translation.text and translation.get("type") is None:
            known.setdefault(message.findtext("source") or "", translation.text)
    for extra in extra_files:
        known.update(json.loads(extra.read_text(encoding="utf-8")))
    return known


def main(arguments: list[str]) -> int:
    known = known_translations([Path(a) for a in arguments])
    lupdate = Path(PySide6.__file__).with_name("lupdate")
    sources = sorted(str(p) for p in (ROOT / "desktop").glob("*.py"))
    options = ["-silent", "-no-obsolete", "-locations", "none"]
    subprocess.run([str(lupdate), *options, *sources, "-ts", str(TS_FILE)], check=True)
    tree = ET.parse(TS_FILE)
    missing = []
    for message in tree.getroot().iter("message"):
        source = message.findtext("source") or ""
        translation = message.find("translation")
        assert translation is not None
        if source in known:
            translation.text = known[source]
            translation.attrib.pop("type", None)
        elif not (translation.text and translation.get("type") is None):
            missing.append(source)
    tree.write(TS_FILE, encoding="utf-8", xml_declaration=True)
    text = TS_FILE.read_text(encoding="utf-8").replace(
        "<?xml version='1.0' encoding='utf-8'?>",
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>',
        1,
    )
    TS_FILE.write_text(text, encoding="utf-8")
    if missing:
        print("Still untranslated:", json.dumps(missing, ensure_ascii=False, indent=1))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
