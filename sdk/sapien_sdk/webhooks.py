"""Verify a Sapien webhook: `Sapien-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

DEFAULT_TOLERANCE = 300  # seconds


class SignatureError(ValueError):
    """The signature is missing, malformed, wrong, or too old (a replay)."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value Sapien sends for `body` (handy in a receiver's tests)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, body: bytes | str, header: str | None, *, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None) -> dict[str, Any]:
    """Check a delivery's signature against the raw body and return the parsed event.

    Raises SignatureError when the header is missing or malformed, no `v1` signature matches, or the
    timestamp is more than `tolerance` seconds away from now (so a captured delivery cannot be replayed
    later). Also remember the `Sapien-Delivery` ids you handled: a redelivery sends the same id again.
    """
    raw = body.encode() if isinstance(body, str) else body
    if not header:
        raise SignatureError("missing Sapien-Signature header")
    parts: dict[str, list[str]] = {}
    for piece in header.split(","):
        name, _, value = piece.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("the signature has no timestamp") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("the signature's timestamp is too old or in the future")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("the signature does not match")
    return json.loads(raw)
