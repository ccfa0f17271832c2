"""Idempotent POSTs: the first answer to an `Idempotency-Key` is kept and replayed for the same key.

The key is claimed (a row with no status) before the request runs, in its own commit, so two requests
with one key never both run: the second gets 409 while the first is still running, then the replay.
The same key with another method, path or body is refused (422). A 5xx answer is not kept: the client
may try again with the same key.

Keys are kept for ``API_IDEMPOTENCY_HOURS`` (24, as Stripe keeps them): the daily job
``jobs.api.expire_idempotency_keys`` deletes older ones, after which the same key runs as a new request.
A request still running is never deleted (its row has no status yet).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from sapien.api.errors import ApiError, Conflict
from sapien.api.models import IdempotentRequest
from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.queue import PendingWork, pending_work_source

MAX_KEY = 255
EXPIRY_JOB = "jobs.api.expire_idempotency_keys"


@dataclass(frozen=True)
class Replay:
    status: int
    content_type: str
    body: str


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim(organization_id: int, key: str, print_: str, *, now: datetime) -> int | Replay:
    """The new claim's id, or the first answer to replay; raises for a reused key or one still running."""
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise ApiError(_l("The Idempotency-Key header is 1 to 255 printable characters."), field="Idempotency-Key")
    session = db.session
    session.commit()  # the claim is its own transaction
    try:
        row = IdempotentRequest(organization_id=organization_id, key=key, fingerprint=print_, status=None, content_type="", body="", created_at=now)
        session.add(row)
        session.commit()
        return row.id
    except IntegrityError:
        session.rollback()
    found = session.scalar(select(IdempotentRequest).where(IdempotentRequest.organization_id == organization_id, IdempotentRequest.key == key))
    if found is None:  # the first request failed and let its key go meanwhile
        raise Conflict(_l("A request with this Idempotency-Key is still running. Try again in a moment."))
    if found.fingerprint != print_:
        raise ApiError(_l("This Idempotency-Key was already used for a different request."), field="Idempotency-Key")
    if found.status is None:
        raise Conflict(_l("A request with this Idempotency-Key is still running. Try again in a moment."))
    return Replay(found.status, found.content_type, found.body)


def finish(claim_id: int, *, status: int, content_type: str, body: str) -> None:
    """Keep the answer (or let the key go after a server error)."""
    session = db.session
    session.rollback()  # whatever the request left open is over
    if status >= 500:
        session.execute(delete(IdempotentRequest).where(IdempotentRequest.id == claim_id))
    else:
        session.execute(update(IdempotentRequest).where(IdempotentRequest.id == claim_id).values(status=status, content_type=content_type, body=body))
    session.commit()


# --- expiry ---------------------------------------------------------------------------------------

def kept_for() -> timedelta:
    return timedelta(hours=int(current_app.config["API_IDEMPOTENCY_HOURS"]))


def expire_keys(now: datetime) -> int:
    """Delete the finished requests older than the keeping period; returns how many went."""
    with unit_of_work() as session:
        result = session.execute(
            delete(IdempotentRequest).where(IdempotentRequest.created_at < now - kept_for(), IdempotentRequest.status.is_not(None))
        )
    return result.rowcount or 0


def expiry_job_id(at: datetime) -> str:
    """One run per day (safe twice): the day's number is the id."""
    return f"api-idempotency-expiry-{int(at.timestamp()) // 86400}"


@pending_work_source("api-idempotency-expiry", periodic=True)
def _expiry_pending():
    from sapien.database import utcnow

    yield PendingWork(EXPIRY_JOB, (), expiry_job_id(utcnow()))
