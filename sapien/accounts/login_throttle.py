"""Per-account sign-in backoff: after a few wrong passwords for one account, from any address, the account
refuses further attempts for a while, doubling with each further failure.

The per-address limits (see `accounts.views.login`) stop one address guessing many accounts; this stops
many addresses guessing one. A locked account's password is not even checked, so a botnet gets a handful
of guesses an hour instead of one per request. Success clears the count. The state lives in Redis (a
lost count costs an attacker's few guesses, nothing more) under a hash per account name tried:
`count` of failures and `until`, the epoch second the lock ends. Callers pass `now`.
"""

from __future__ import annotations

import math
from datetime import datetime

from flask import current_app

from sapien.queue import redis_connection
from sapien.redis_keys import redis_key

FORGET_SECONDS = 3600  # an hour without a failure forgets the count


def failures_key(account: str) -> str:
    return redis_key(f"login-failures:{account}")


def seconds_locked(account: str, now: datetime) -> int:
    """How long `account` still refuses sign-ins (0: not locked)."""
    until = redis_connection().hget(failures_key(account), "until")
    if until is None:
        return 0
    return max(0, math.ceil(float(until) - now.timestamp()))


def backoff_seconds(failures: int) -> int:
    """The lock after the `failures`-th failure in a row: none before the LOGIN_FREE_FAILURES-th, then base,
    2 × base, … up to the cap."""
    config = current_app.config
    over = failures - config["LOGIN_FREE_FAILURES"]
    if over < 0:
        return 0
    return min(config["LOGIN_BACKOFF_SECONDS"] * 2 ** min(over, 20), config["LOGIN_BACKOFF_MAX_SECONDS"])


def record_failure(account: str, now: datetime) -> int:
    """Count a wrong password for `account`; returns the lock it now has, in seconds."""
    key = failures_key(account)
    pipeline = redis_connection().pipeline()
    pipeline.hincrby(key, "count", 1)
    pipeline.expire(key, FORGET_SECONDS)
    failures, _ = pipeline.execute()
    lock = backoff_seconds(failures)
    if lock:
        redis_connection().hset(key, "until", now.timestamp() + lock)
        redis_connection().expire(key, max(FORGET_SECONDS, lock))
    return lock


def clear(account: str) -> None:
    redis_connection().delete(failures_key(account))
