"""The snapshot config form: plain HTML fields turned into the dict `parse_config` checks."""

from __future__ import annotations

from sapien.airdrops.config import CRITERIA


def config_from_form(form) -> dict:
    """The config dict from the moderators' form (weights and minimums per criterion)."""
    return {
        "name": form.get("name", ""),
        "as_of": form.get("as_of", ""),
        "total_tokens": form.get("total_tokens", ""),
        "floor_tokens": form.get("floor_tokens", "") or "0",
        "cap_tokens": form.get("cap_tokens", "") or "0",
        "sqrt": form.get("sqrt") in ("1", "on", "true", "y"),
        "weights": {name: form.get(f"weight_{name}", "") or "0" for name in CRITERIA},
        "minimums": {name: form.get(f"min_{name}", "") or "0" for name in CRITERIA},
    }
