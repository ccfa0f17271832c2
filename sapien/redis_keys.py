"""Every Redis key the app writes starts with the deployment's prefix (DESIGN rule 2).

Two deployments sharing one Redis (a staging site beside production, a `flask quality replay` against
another database) must not read or overwrite each other's boards, caches and rate limits. The prefix is
`REDIS_KEY_PREFIX`, or by default one derived from the database the deployment uses (`sapien-<hash>`), so
two apps on one database share their cache, as they should, and two on different databases never do.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from sqlalchemy.engine import make_url


def default_key_prefix(database_url: str) -> str:
    """`sapien-` and a short hash of the database's address (never of its password)."""
    try:
        url = make_url(database_url)
        where = f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy can parse: hash it as it is
        where = database_url
    return "sapien-" + hashlib.sha256(where.encode()).hexdigest()[:10]


def key_prefix() -> str:
    return current_app.config["REDIS_KEY_PREFIX"]


def redis_key(name: str) -> str:
    """The deployment's key for `name`."""
    return f"{key_prefix()}:{name}"
