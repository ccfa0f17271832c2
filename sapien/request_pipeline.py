"""One Redis round trip per request: the rate limit, the signed-in user row and the cached page together.

Before a view runs, everything the request will ask Redis is known from the request alone: its client
address and endpoint (the default rate limit), the member id in its session cookie (their cached user
row) and, on a `member_cache.cached_page` view, the page and its stamps. One non-transactional pipeline
sends it all; the member-cache values wait in `g` for `member_cache.read`.

The default rate limit (`RATELIMIT_DEFAULT`, per client address and endpoint) is the `limits` library's
sliding-window counter, the strategy Flask-Limiter ran, on the same keys: its Lua script runs atomically
in Redis, so every process and every gunicorn worker counts against the same window. Routes marked
`@limiter.exempt` and static files are exempt. Limits a route declares with `@limiter.limit` (login,
signup) stay with Flask-Limiter, which checks them when the view is called.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from flask import Flask, abort, current_app, request
from flask_limiter import ExemptionScope
from limits import RateLimitItem, parse_many
from limits.storage.redis import RedisStorage
from redis import Redis
from redis.exceptions import NoScriptError, RedisError

from sapien import member_cache
from sapien.extensions import limiter
from sapien.queue import redis_connection

log = logging.getLogger(__name__)
SLIDING_WINDOW_SCRIPT = RedisStorage.SCRIPT_ACQUIRE_SLIDING_WINDOW
SLIDING_WINDOW_SHA = hashlib.sha1(SLIDING_WINDOW_SCRIPT).hexdigest()  # noqa: S324 - the name Redis gives the script


@dataclass
class DefaultLimit:
    items: list[RateLimitItem]
    key_prefix: str
    connection: Redis | None  # None: the limits live in the member cache's Redis, so they share its pipeline
    exempt: dict[str, bool]  # endpoint → exempt, worked out on first use

    def applies(self, app: Flask, endpoint: str | None) -> bool:
        if not (self.items and endpoint):
            return False
        if endpoint not in self.exempt:
            scope = limiter.limit_manager.exemption_scope(app, endpoint, endpoint.rpartition(".")[0] or None)
            self.exempt[endpoint] = endpoint.rpartition(".")[2] == "static" or bool(scope & ExemptionScope.DEFAULT)
        return not self.exempt[endpoint]

    def window_keys(self, item: RateLimitItem) -> tuple[str, str]:
        """(previous, current) window of the client's counter: Flask-Limiter's and `limits`' key names."""
        key = item.key_for(*filter(None, (self.key_prefix, request.remote_addr or "127.0.0.1", request.endpoint)))
        current = f"{RedisStorage.PREFIX}:{{{key}}}"
        return f"{current}/-1", current


def register_request_pipeline(app: Flask) -> None:
    config = app.config
    enabled = config.get("RATELIMIT_ENABLED", True)
    same_redis = config["RATELIMIT_STORAGE_URI"] == config["REDIS_URL"]
    default = DefaultLimit(
        items=parse_many(config["DEFAULT_RATE_LIMIT"]) if enabled and config["DEFAULT_RATE_LIMIT"] else [],
        key_prefix=config.get("RATELIMIT_KEY_PREFIX", ""),
        connection=None if same_redis else Redis.from_url(config["RATELIMIT_STORAGE_URI"]),
        exempt={},
    )
    if enabled and not (config.get("RATELIMIT_APPLICATION") or config.get("RATELIMIT_DEFAULT") or config.get("RATELIMIT_META")):
        # Flask-Limiter's own per-request check would find nothing to count (the default limit is ours,
        # decorated limits are checked by their decorator): skip its work on every request.
        app.before_request_funcs[None].remove(limiter._check_request_limit)

    @app.before_request
    def _one_round_trip():
        limited = default.applies(current_app, request.endpoint)
        keys = member_cache.keys_to_prefetch()
        if not (limited or keys):
            return
        shared = redis_connection()
        pipeline = shared.pipeline(transaction=False)
        limits_pipeline = pipeline if default.connection is None else default.connection.pipeline(transaction=False)
        if limited:
            for item in default.items:
                limits_pipeline.execute_command("EVALSHA", SLIDING_WINDOW_SHA, 2, *default.window_keys(item), item.amount, item.get_expiry(), 1)
        if keys:
            pipeline.mget(keys)
        try:
            answers = pipeline.execute(raise_on_error=False)
            if limits_pipeline is not pipeline:
                answers = limits_pipeline.execute(raise_on_error=False) + answers
        except RedisError as error:
            if limited:
                # Fail open: Redis holds only the counters, and a site that refuses every request while it
                # recovers is worse than one that does not count them for a moment.
                log.warning("rate limit not counted for %s, Redis is unavailable: %s", request.endpoint, error)
            return  # whoever needs the prefetched values asks Redis (and copes with it being down) itself
        if keys:
            values = answers.pop()
            if not isinstance(values, Exception):
                member_cache.keep_prefetched(keys, values)
        for item, allowed in zip(default.items if limited else [], answers, strict=True):
            if isinstance(allowed, NoScriptError):  # a restarted Redis forgot the script: load it, count again
                connection = default.connection or shared
                connection.script_load(SLIDING_WINDOW_SCRIPT)
                allowed = connection.evalsha(SLIDING_WINDOW_SHA, 2, *default.window_keys(item), item.amount, item.get_expiry(), 1)
            elif isinstance(allowed, RedisError):
                log.warning("rate limit not counted for %s, Redis is unavailable: %s", request.endpoint, allowed)
                continue
            elif isinstance(allowed, Exception):
                raise allowed
            if not allowed:
                abort(429)
