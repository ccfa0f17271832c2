"""Configuration from environment variables, with safe development defaults.

Production (SAPIEN_ENV=production) refuses to start while any development secret is still in use.
"""

from __future__ import annotations

import os
from pathlib import Path

DEV_SECRET_KEY = "dev-only-secret-key-change-me"
# The first well-known anvil account: only ever valid on a local development chain.
DEV_CHAIN_SIGNER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """Raised when the configuration is unsafe or inconsistent."""


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres URLs (Heroku-style `postgres://` too)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_config(overrides: dict | None = None) -> dict:
    env = os.environ
    instance_dir = Path(env.get("SAPIEN_INSTANCE_DIR", PROJECT_ROOT / "instance"))
    # An override of the environment's name counts before the settings that follow from it (cookie flags).
    sapien_env = (overrides or {}).get("SAPIEN_ENV") or env.get("SAPIEN_ENV", "development")
    config = {
        "SAPIEN_ENV": sapien_env,
        "SECRET_KEY": env.get("SECRET_KEY", DEV_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            env.get("DATABASE_URL", f"sqlite:///{instance_dir / 'sapien.db'}")
        ),
        # No pool_pre_ping: database.ping_idle_connections pings only connections that sat idle a while.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        # PostgreSQL sees each connection as "<this>-<pid>" in pg_stat_activity (job workers: sapien-worker).
        "DATABASE_APPLICATION_NAME": env.get("DATABASE_APPLICATION_NAME", "sapien-web"),
        "REDIS_URL": env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Every Redis key starts with this; empty: derived from the database (see sapien/redis_keys.py).
        "REDIS_KEY_PREFIX": env.get("REDIS_KEY_PREFIX", ""),
        "CHAIN_RPC_URL": env.get("CHAIN_RPC_URL", "http://127.0.0.1:8545"),
        "CHAIN_SIGNER_KEY": env.get("CHAIN_SIGNER_KEY", DEV_CHAIN_SIGNER_KEY),
        # Unset: each chain's count from the registry (sapien/chain/registry.py).
        "CHAIN_CONFIRMATIONS": env.get("CHAIN_CONFIRMATIONS") or None,
        # The chains members may use, by id (the registry knows anvil, Base, Base Sepolia and Polygon).
        "CHAIN_ENABLED_IDS": env.get("CHAIN_ENABLED_IDS", "31337"),
        # How long a job waits for a receipt before it lets RQ retry it later (the row stays "sent").
        "CHAIN_RECEIPT_TIMEOUT_SECONDS": float(env.get("CHAIN_RECEIPT_TIMEOUT_SECONDS", "60")),
        # A sent transaction still unmined after this long is replaced: same nonce, fees raised by the percent.
        "CHAIN_REPLACE_AFTER_SECONDS": float(env.get("CHAIN_REPLACE_AFTER_SECONDS", "180")),
        "CHAIN_FEE_BUMP_PERCENT": int(env.get("CHAIN_FEE_BUMP_PERCENT", "25")),
        # tokenURI's base for badges: the site's public address (the metadata route is appended).
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        "INSTANCE_DIR": str(instance_dir),
        # A conversion epoch's close (PostgreSQL) converts this many ranges of members side by side, each on
        # its own connection: about the database's cores (the pool holds 5 connections plus overflow).
        "ECONOMY_CLOSE_WORKERS": int(env.get("ECONOMY_CLOSE_WORKERS", "2")),
        # Failed sign-ins only: per client address and account name tried, and (looser) per client address.
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "LOGIN_ADDRESS_RATE_LIMIT": env.get("LOGIN_ADDRESS_RATE_LIMIT", "60 per minute"),
        # Per account, from every address: after LOGIN_FREE_FAILURES wrong passwords in a row the account
        # refuses sign-ins for LOGIN_BACKOFF_SECONDS, doubling with each further failure up to the cap.
        "LOGIN_FREE_FAILURES": int(env.get("LOGIN_FREE_FAILURES", "5")),
        "LOGIN_BACKOFF_SECONDS": int(env.get("LOGIN_BACKOFF_SECONDS", "30")),
        "LOGIN_BACKOFF_MAX_SECONDS": int(env.get("LOGIN_BACKOFF_MAX_SECONDS", "900")),
        # How many proxies in front of the site set X-Forwarded-For/-Proto/-Host (0: trust none of them).
        "TRUSTED_PROXY_COUNT": int(env.get("TRUSTED_PROXY_COUNT", "0")),
        "SIGNUP_RATE_LIMIT": env.get("SIGNUP_RATE_LIMIT", "20 per hour"),
        # Werkzeug's hash method for new passwords: scrypt, memory-hard. A stored hash names its own method,
        # so changing this never locks anyone out (the test suite uses a cheap one: hashing was its slowest part).
        "PASSWORD_HASH_METHOD": env.get("PASSWORD_HASH_METHOD", "scrypt"),
        # Every route without a limit of its own, per client address and route; counted in the one Redis round
        # trip each request makes (sapien/request_pipeline.py), with Flask-Limiter's sliding-window counter.
        "DEFAULT_RATE_LIMIT": env.get("RATELIMIT_DEFAULT", "600 per minute"),
        # A fixed window lets a burst straddle the boundary (twice the limit in a moment); this does not.
        "RATELIMIT_STRATEGY": "sliding-window-counter",
        # Redis down: the login and signup limits fail open with a logged warning, as the default limit does.
        "RATELIMIT_SWALLOW_ERRORS": True,
        # How long a member's rendered dashboard may be served from Redis (0 turns the cache off); any
        # event about the member makes it stale at once (see sapien/member_cache.py).
        "PAGE_CACHE_SECONDS": int(env.get("PAGE_CACHE_SECONDS", "60")),
        # How often the worker's scheduler runs the reconciler (abandoned jobs, pending rows, lost boards).
        "RECONCILE_EVERY_SECONDS": int(env.get("RECONCILE_EVERY_SECONDS", "60")),
        # How long the decision and settlement jobs wait after new work, so that one run takes a batch. Much of
        # a batch's work is per member (progress, quests, badges, boards), so a longer wait costs less per
        # answer: in the labeling bench 5 s took the worker from about 1.4 to 0.7 ms of CPU per answer. The
        # member sees the payment at the status bar's next poll (every 15 s, nav_pending.html) either way.
        "BATCH_JOB_DELAY_SECONDS": float(env.get("BATCH_JOB_DELAY_SECONDS", "5")),
        # How long the client API keeps an Idempotency-Key's first answer (a daily job deletes older ones).
        "API_IDEMPOTENCY_HOURS": int(env.get("API_IDEMPOTENCY_HOURS", "24")),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": sapien_env == "production",
        "REMEMBER_COOKIE_SECURE": sapien_env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # In production the cookies carry the `__Host-` prefix: browsers then keep them only when Secure,
        # for the whole site (Path=/) and this host alone (no Domain), so a sibling subdomain cannot set them.
        **({"SESSION_COOKIE_NAME": "__Host-session", "REMEMBER_COOKIE_NAME": "__Host-remember_token"}
           if sapien_env == "production" else {}),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "BABEL_TRANSLATION_DIRECTORIES": str(PROJECT_ROOT / "sapien" / "translations"),
        "LANGUAGES": {"en": "English", "fr": "Français", "id": "Bahasa Indonesia"},
        # Level curve: reaching level L needs LEVEL_XP_BASE * L * (L - 1) / 2 XP in total.
        "LEVEL_XP_BASE": int(env.get("LEVEL_XP_BASE", "100")),
        # Streak multiplier on rewards: +N% per consecutive day after the first, capped (see progression).
        "STREAK_BONUS_PER_DAY_PERCENT": int(env.get("STREAK_BONUS_PER_DAY_PERCENT", "5")),
        "STREAK_MULTIPLIER_CAP_PERCENT": int(env.get("STREAK_MULTIPLIER_CAP_PERCENT", "150")),
        "STREAK_FREEZE_PRICE_POINTS": int(env.get("STREAK_FREEZE_PRICE_POINTS", "200")),
        "STREAK_FREEZE_MAX_HELD": int(env.get("STREAK_FREEZE_MAX_HELD", "2")),
        # Daily and weekly quests from the default catalogue (progression/quest_catalogue.py, docs/quests.md).
        "QUEST_ROTATION": env.get("QUEST_ROTATION", "1") not in ("0", "false", "no"),
        # Leaderboards and guilds.
        "LEADERBOARD_ACCURACY_MIN_GOLD": int(env.get("LEADERBOARD_ACCURACY_MIN_GOLD", "20")),
        "GUILD_CREATE_MIN_LEVEL": int(env.get("GUILD_CREATE_MIN_LEVEL", "3")),
        "GUILD_CREATE_MIN_REPUTATION": int(env.get("GUILD_CREATE_MIN_REPUTATION", "700")),
        "GUILD_MAX_MEMBERS": int(env.get("GUILD_MAX_MEMBERS", "50")),
        # Labeling: pack media live under MEDIA_ROOT; one media file is at most MAX_MEDIA_BYTES, and an
        # upload request (an items file plus its media) at most MAX_CONTENT_LENGTH.
        "MEDIA_ROOT": env.get("MEDIA_ROOT", str(instance_dir / "media")),
        "MAX_MEDIA_BYTES": int(env.get("MAX_MEDIA_BYTES", str(10 * 1024 * 1024))),
        # A review no reviewer took within this many minutes goes to the moderators' queue (see quality/escalation.py).
        "REVIEW_ESCALATION_MINUTES": int(env.get("REVIEW_ESCALATION_MINUTES", "15")),
        "EXAM_RETAKE_COOLDOWN_HOURS": int(env.get("EXAM_RETAKE_COOLDOWN_HOURS", "12")),
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH", str(64 * 1024 * 1024))),
        # The client API (sapien/api): requests per minute per key (0: no limit), and the largest upload.
        "API_RATE_LIMIT_PER_MINUTE": int(env.get("API_RATE_LIMIT_PER_MINUTE", "600")),
        "API_MAX_UPLOAD_BYTES": int(env.get("API_MAX_UPLOAD_BYTES", str(32 * 1024 * 1024))),
    }
    if overrides:
        config.update(overrides)
    if not config["REDIS_KEY_PREFIX"]:
        from sapien.redis_keys import default_key_prefix

        config["REDIS_KEY_PREFIX"] = default_key_prefix(config["SQLALCHEMY_DATABASE_URI"])
    if config["SAPIEN_ENV"] == "production":
        check_production_config(config)
    return config


def check_production_config(config: dict) -> None:
    problems = []
    if config["SECRET_KEY"] == DEV_SECRET_KEY or len(config["SECRET_KEY"]) < 32:
        problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
    if config["CHAIN_SIGNER_KEY"].lower() == DEV_CHAIN_SIGNER_KEY:
        problems.append("CHAIN_SIGNER_KEY is the public anvil development key")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        problems.append("DATABASE_URL must point at PostgreSQL in production")
    if problems:
        raise ConfigError("Refusing to start in production: " + "; ".join(problems))
