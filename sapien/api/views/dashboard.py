"""The organization dashboard (HTML): campaigns, quality, spend, keys and webhooks."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("org", __name__, url_prefix="/org")
