"""The colour theme: light, dark, or the system's (the default), kept in a cookie so it works signed out.

The server writes the choice on `<html data-theme>`, so the page is drawn in the right colours from the
first paint without a script; with no choice the stylesheet follows `prefers-color-scheme`.
"""

from __future__ import annotations

from flask import has_request_context, request
from flask_babel import lazy_gettext as _l

THEME_COOKIE = "sapien_theme"
THEMES = {"system": _l("System"), "light": _l("Light"), "dark": _l("Dark")}


def current_theme() -> str:
    """The reader's chosen theme ("system" when none or an unknown one is stored)."""
    if not has_request_context():
        return "system"
    theme = request.cookies.get(THEME_COOKIE, "system")
    return theme if theme in THEMES else "system"
