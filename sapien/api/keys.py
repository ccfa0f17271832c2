"""API keys: made per organization, shown once, stored as a SHA-256 hash, scoped read or write,
rotatable and revocable, with a last-used time; and the per-key rate limit, counted in Redis.

A token is `sk_<prefix>_<secret>`: 256 random bits, so a plain SHA-256 (no salt, no stretching) is a safe
way to store it and one indexed lookup finds it. Revoking stamps `revoked_at`; the row stays, so the
dashboard can list what a key did and when it was last used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from sqlalchemy import or_, select, update

from sapien.api.errors import ApiError, Forbidden, NotFound, RateLimited, Unauthorized
from sapien.api.models import KEY_SCOPES, ApiKey, Organization
from sapien.database import after_commit, unit_of_work
from sapien.extensions import db
from sapien.queue import redis_connection
from sapien.redis_keys import redis_key

log = logging.getLogger(__name__)
TOKEN_START = "sk_"
LAST_USED_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often per key (see `authenticate`)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _new_token() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_START}{prefix}_{secrets.token_urlsafe(32)}"


def create_key(organization_id: int, *, name: str, scope: str, actor_id: int | None, now: datetime, rotated_from_id: int | None = None) -> tuple[ApiKey, str]:
    """A new key and its token (the only time the token is seen)."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 120:
        raise ApiError(_l("Key names are 1 to 120 characters long."), field="name")
    if scope not in KEY_SCOPES:
        raise ApiError(_l("Choose read or write."), field="scope")
    prefix, token = _new_token()
    with unit_of_work() as session:
        if session.get(Organization, organization_id) is None:
            raise NotFound(_l("There is no such organization."))
        key = ApiKey(
            organization_id=organization_id, name=name, prefix=f"{TOKEN_START}{prefix}", secret_hash=hash_token(token), scope=scope,
            created_by=actor_id, created_at=now, rotated_from_id=rotated_from_id,
        )
        session.add(key)
        session.flush()
    return key, token


def _own_key(session, organization_id: int, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id, with_for_update=True)
    if key is None or key.organization_id != organization_id:
        raise NotFound(_l("There is no such key."))
    return key


def revoke_key(organization_id: int, key_id: int, *, now: datetime) -> ApiKey:
    with unit_of_work() as session:
        key = _own_key(session, organization_id, key_id)
        if key.revoked_at is None:
            key.revoked_at = now
        secret_hash = key.secret_hash
        after_commit(lambda: _forget_key(secret_hash))
    return key


def rotate_key(organization_id: int, key_id: int, *, actor_id: int | None, now: datetime) -> tuple[ApiKey, str]:
    """Revoke a key and make its replacement (same name and scope) in one transaction."""
    with unit_of_work() as session:
        key = _own_key(session, organization_id, key_id)
        if key.revoked_at is not None:
            raise ApiError(_l("A revoked key cannot be rotated: create a new one."))
        key.revoked_at = now
        secret_hash = key.secret_hash
        after_commit(lambda: _forget_key(secret_hash))
        return create_key(organization_id, name=key.name, scope=key.scope, actor_id=actor_id, now=now, rotated_from_id=key.id)


def organization_keys(organization_id: int) -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.id.desc())))


@dataclass(frozen=True)
class Caller:
    key_id: int
    organization_id: int
    scope: str

    def require(self, scope: str) -> None:
        if scope == "write" and self.scope != "write":
            raise Forbidden(_l("This key may only read. Use a key with the write scope."))


KEY_CACHE_SECONDS = 60  # a known key is read from Redis for this long; revoking or rotating forgets it at once


def _key_cache(secret_hash: str) -> str:
    return redis_key(f"api:key:{secret_hash}")


def _forget_key(secret_hash: str) -> None:
    try:
        redis_connection().delete(_key_cache(secret_hash))
    except RedisError as error:
        log.warning("API key cache unavailable: %s", error)


def authenticate(header: str | None, *, now: datetime) -> Caller:
    """The caller a request's `Authorization: Bearer <token>` header names (401 when missing, unknown or revoked).

    A valid key is kept in Redis for `KEY_CACHE_SECONDS` (its id, organization and scope: never the token),
    so a busy client's calls touch no table; each time it is read from the database its last-used time is
    written (so that time is exact to about a minute). Revoking or rotating deletes the entry after the commit.
    """
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_START):
        raise Unauthorized(_l("Send your API key as “Authorization: Bearer sk_…”."))
    secret_hash = hash_token(token)
    try:
        cached = redis_connection().get(_key_cache(secret_hash))
    except RedisError as error:
        log.warning("API key cache unavailable: %s", error)
        cached = None
    if cached is not None:
        key_id, organization_id, scope = json.loads(cached)
        return Caller(key_id, organization_id, scope)
    row = db.session.execute(
        select(ApiKey.id, ApiKey.organization_id, ApiKey.scope, ApiKey.revoked_at, ApiKey.last_used_at).where(ApiKey.secret_hash == secret_hash)
    ).first()
    if row is None:
        raise Unauthorized(_l("This API key is not valid."))
    key_id, organization_id, scope, revoked_at, last_used_at = row
    if revoked_at is not None:
        raise Unauthorized(_l("This API key was revoked."))
    if last_used_at is None or last_used_at < now - LAST_USED_EVERY:
        with unit_of_work() as session:
            session.execute(
                update(ApiKey).where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_EVERY))
                .values(last_used_at=now)
            )
    try:
        redis_connection().set(_key_cache(secret_hash), json.dumps([key_id, organization_id, scope]), ex=KEY_CACHE_SECONDS)
    except RedisError as error:
        log.warning("API key cache unavailable: %s", error)
    return Caller(key_id, organization_id, scope)


def count_request(key_id: int, *, now: datetime) -> int:
    """Count one request against the key's per-minute limit (`API_RATE_LIMIT_PER_MINUTE`) and return the
    requests left; raise RateLimited past it. Redis down: the request is let through (it only holds counters)."""
    limit = int(current_app.config.get("API_RATE_LIMIT_PER_MINUTE", 600))
    if limit <= 0:
        return -1
    window = int(now.timestamp()) // 60
    key = redis_key(f"api:rate:{key_id}:{window}")
    try:
        pipeline = redis_connection().pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, 120)
        used, _ = pipeline.execute()
    except RedisError as error:
        log.warning("API rate limit not counted for key %s, Redis is unavailable: %s", key_id, error)
        return limit
    if used > limit:
        raise RateLimited(_l("Too many requests for this key: at most %(limit)s a minute.", limit=limit), retry_after=60 - int(now.timestamp()) % 60)
    return limit - used
