"""The status a client polls (`GET /api/v1/campaigns/<id>/progress`), kept in Redis for a moment.

Clients poll it in loops (the SDK's `wait_until_done`), so the answer is cached per organization and
campaign for `STATUS_TTL` seconds: a poll is one indexed key lookup and one Redis read. What changes the
status forgets it at once (`forget_status`: an upload, a pause or resume, an item verified); what else
moves it (points paid by the settlement) shows within the TTL. Redis down: the status is computed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime

from redis.exceptions import RedisError

from sapien.api.campaigns import progress
from sapien.database import as_utc
from sapien.queue import redis_connection
from sapien.redis_keys import redis_key

log = logging.getLogger(__name__)
STATUS_TTL = 2  # seconds


def _key(campaign_id: int) -> str:
    return redis_key(f"api:status:{campaign_id}")


def _plain(value):
    if hasattr(value, "isoformat"):
        return as_utc(value).isoformat()
    return value


def campaign_status(organization_id: int, campaign_id: int) -> dict:
    """The campaign's progress as JSON values (raises NotFound for another organization's campaign)."""
    key = _key(campaign_id)
    try:
        cached = redis_connection().get(key)
    except RedisError as error:
        log.warning("status cache unavailable: %s", error)
        cached = None
    if cached is not None:
        found = json.loads(cached)
        if found["organization_id"] == organization_id:
            status = found["status"]
            status["deadline"] = datetime.fromisoformat(status["deadline"]) if status["deadline"] else None
            return status
    status = asdict(progress(organization_id, campaign_id))
    try:
        plain = {name: _plain(value) for name, value in status.items()}
        redis_connection().set(key, json.dumps({"organization_id": organization_id, "status": plain}), ex=STATUS_TTL)
    except RedisError as error:
        log.warning("status cache unavailable: %s", error)
    return status


def forget_status(campaign_id: int) -> None:
    """The campaign's status changed: the next poll computes it afresh."""
    try:
        redis_connection().delete(_key(campaign_id))
    except RedisError as error:
        log.warning("status cache unavailable: %s", error)
