"""Every user-facing string is translated in every site language (DESIGN rule 8)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ["fr", "id"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def source_messages() -> set[str]:
    method_map = [("sapien/**.py", "python"), ("sapien/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}
    messages = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map, keywords=keywords):
        messages.add(message[0] if isinstance(message, tuple) else message)
    return messages


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_translates_every_message_in_the_code(language):
    path = ROOT / "sapien" / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle)
    missing, fuzzy, broken = [], [], []
    for msgid in sorted(source_messages()):
        message = catalog.get(msgid)
        strings = message.string if message else None
        translations = list(strings) if isinstance(strings, (list, tuple)) else [strings]
        if message is None or not all(translations):
            missing.append(msgid)
            continue
        if message.fuzzy:
            fuzzy.append(msgid)
        if any(set(PLACEHOLDER.findall(t)) != set(PLACEHOLDER.findall(msgid)) for t in translations):
            broken.append(msgid)
    assert not missing, f"{len(missing)} untranslated in {language}: {missing[:10]}"
    assert not fuzzy, f"fuzzy in {language}: {fuzzy[:10]}"
    assert not broken, f"placeholders differ in {language}: {broken[:10]}"
