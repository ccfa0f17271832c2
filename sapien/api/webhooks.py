"""Webhooks: clients register URLs for events; each event becomes a delivery row per webhook, sent by an
RQ job (`jobs.api.deliver_webhook`) with retries and backoff, then marked delivered or failed.

Nothing is lost: the row is written before any job runs, the reconciler re-enqueues every pending
delivery, and a failed one can be redelivered from the log. An event raised twice (`event_key`, unique
per webhook) is delivered once.

Signature (replay-safe): each request carries
    Sapien-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    Sapien-Delivery: <delivery id>      Sapien-Event: <event name>
A receiver recomputes the HMAC over the timestamp and the raw body, compares in constant time, refuses a
timestamp more than five minutes away from its clock, and ignores a delivery id it has already handled
(the SDK's `verify_signature` does the first three).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, g
from flask_babel import lazy_gettext as _l
from rq import Retry
from sqlalchemy import bindparam, case, select, update
from sqlalchemy.exc import IntegrityError

from sapien.api.campaigns import spent_points
from sapien.api.errors import ApiError, NotFound
from sapien.api.models import WEBHOOK_EVENTS, CampaignTerms, Webhook, WebhookDelivery
from sapien.api.status import forget_status
from sapien.database import after_commit, as_utc, claimed, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.labeling.models import Campaign, Item, TaskPack
from sapien.labeling.packs import pack_counts
from sapien.quality import exports
from sapien.quality.models import VerifiedLabel
from sapien.queue import PendingWork, enqueue_once, get_queue, is_live, job_timeout_for, pending_work_source

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Sapien-Signature"
MAX_ATTEMPTS = 5
DELIVERY_LOCK = "api-webhook-delivery"  # `claimed` by whichever run is sending a delivery
# Seconds RQ waits before each retry of a failed delivery (backoff).
RETRY = Retry(max=MAX_ATTEMPTS - 1, interval=[10, 60, 300, 1800])
TIMEOUT_SECONDS = 10
MAX_URL = 2000


class DeliveryFailed(DomainError):
    """The receiver did not answer 2xx; RQ retries the job after its backoff."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise ApiError(_l("The webhook URL must be an http:// or https:// address."), field="url")
    if current_app.config.get("SAPIEN_ENV") == "production" and parts.scheme != "https":
        raise ApiError(_l("The webhook URL must use https."), field="url")
    return url


def _check_events(events) -> list[str]:
    if not isinstance(events, list) or not events or any(event not in WEBHOOK_EVENTS for event in events):
        raise ApiError(_l("Choose events among %(events)s.", events=", ".join(WEBHOOK_EVENTS)), field="events")
    return sorted(set(events))


def register_webhook(organization_id: int, *, url: str, events: list[str], now: datetime) -> tuple[Webhook, str]:
    """A webhook and its signing secret (shown to the client now; it stays readable on the dashboard)."""
    url = _check_url(url)
    events = _check_events(events)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with unit_of_work() as session:
        webhook = Webhook(organization_id=organization_id, url=url, secret=secret, events=events, active=True, created_at=now)
        session.add(webhook)
        session.flush()
    return webhook, secret


def own_webhook(organization_id: int, webhook_id: int) -> Webhook:
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None or webhook.organization_id != organization_id:
        raise NotFound(_l("There is no such webhook."))
    return webhook


def organization_webhooks(organization_id: int) -> list[Webhook]:
    return list(db.session.scalars(select(Webhook).where(Webhook.organization_id == organization_id).order_by(Webhook.id)))


def disable_webhook(organization_id: int, webhook_id: int) -> Webhook:
    with unit_of_work():
        webhook = own_webhook(organization_id, webhook_id)
        webhook.active = False
    return webhook


def deliveries(organization_id: int, webhook_id: int, limit: int = 100) -> list[WebhookDelivery]:
    webhook = own_webhook(organization_id, webhook_id)
    return list(db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id).order_by(WebhookDelivery.id.desc()).limit(limit)
    ))


def _enqueue(delivery_id: int, round_: int) -> None:
    enqueue_once("jobs.api.deliver_webhook", delivery_id, job_id=f"api-webhook-{delivery_id}-r{round_}", retry=RETRY)


def _enqueue_batch(webhook_id: int) -> None:
    enqueue_once("jobs.api.deliver_webhooks", webhook_id, job_id=f"api-webhooks-{webhook_id}")


def _enqueue_retry(delivery_id: int, round_: int) -> None:
    """A first attempt failed: the delivery's own job tries again after the first backoff, then RQ retries it."""
    job = f"api-webhook-{delivery_id}-r{round_}"
    if is_live(job):
        return
    get_queue().enqueue_in(
        timedelta(seconds=RETRY.intervals[0]), "jobs.api.deliver_webhook", delivery_id, job_id=job, retry=RETRY,
        job_timeout=job_timeout_for("jobs.api.deliver_webhook"), result_ttl=86400, failure_ttl=7 * 86400,
    )


def raise_event(organization_id: int, event: str, event_key: str, data: dict, *, now: datetime) -> list[int]:
    """A delivery for each active webhook of the organization that listens to `event` (once per event key);
    each webhook's sending job (`deliver_pending`) is queued after the commit."""
    created: list[tuple[int, int]] = []
    with unit_of_work() as session:
        hooks = session.scalars(select(Webhook).where(Webhook.organization_id == organization_id, Webhook.active.is_(True))).all()
        for webhook in hooks:
            if event not in (webhook.events or []):
                continue
            exists = session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.event_key == event_key))
            if exists is not None:
                continue
            delivery = WebhookDelivery(
                webhook_id=webhook.id, event=event, event_key=event_key, status="pending", attempts=0, round=1, last_error="", created_at=now,
                payload={"event": event, "created_at": as_utc(now).isoformat(), "data": data},
            )
            try:
                with session.begin_nested():
                    session.add(delivery)
                    session.flush()
            except IntegrityError:
                continue  # raised at the same moment elsewhere: that one is delivered
            created.append((delivery.id, webhook.id))
        for webhook_id in sorted({hook_id for _, hook_id in created}):
            after_commit(lambda webhook_id=webhook_id: _enqueue_batch(webhook_id))
    return [delivery_id for delivery_id, _ in created]


# --- the events -----------------------------------------------------------------------------------

def _client_campaign_of(pack_id: int) -> tuple[int, int | None] | None:
    """(campaign, organization) of a pack, remembered for the app context: a batch aggregation announces
    tens of thousands of items of one pack, and a pack never changes campaign."""
    known = g.setdefault("_api_campaign_of_pack", {})
    if pack_id not in known:
        known[pack_id] = db.session.execute(
            select(Campaign.id, Campaign.organization_id).join(TaskPack, TaskPack.campaign_id == Campaign.id).where(TaskPack.id == pack_id)
        ).first()
    return known[pack_id]


def on_item_verified(_sender=None, *, item_id: int, pack_id: int, confidence: float, now: datetime, **_payload) -> None:
    """item.verified for the campaign's organization; then campaign.done and budget.low once each."""
    row = _client_campaign_of(pack_id)
    if row is None or row[1] is None:
        return
    campaign_id, organization_id = row
    forget_status(campaign_id)
    label = db.session.execute(
        select(VerifiedLabel.answer, VerifiedLabel.labels_used, Item.external_id).join(Item, Item.id == VerifiedLabel.item_id)
        .where(VerifiedLabel.item_id == item_id)
    ).first()
    if label is None:
        return
    answer, answers, external_id = label
    raise_event(organization_id, "item.verified", f"item.verified:{item_id}", {
        "campaign_id": campaign_id, "pack_id": pack_id, "item_id": item_id, "external_id": external_id,
        "label": exports._flat_answer(answer or {}), "answer": answer, "confidence": confidence, "answers": answers,
    }, now=now)
    check_campaign(campaign_id, now=now)


def check_campaign(campaign_id: int, *, now: datetime) -> None:
    """Raise campaign.done once every item is finished, and budget.low once under a fifth of the budget is left."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.organization_id is None:
        return
    pack_ids = list(db.session.scalars(select(TaskPack.id).where(TaskPack.campaign_id == campaign_id)))
    counts = pack_counts(pack_ids)
    terms = db.session.get(CampaignTerms, campaign_id)
    done = bool(counts) and all(count.unfinished == 0 for count in counts.values()) and sum(c.items for c in counts.values()) > 0
    if done and (terms is None or terms.done_at is None):
        with unit_of_work() as session:
            if terms is None:
                terms = CampaignTerms(campaign_id=campaign_id)
                session.add(terms)
            claimed = session.execute(
                update(CampaignTerms).where(CampaignTerms.campaign_id == campaign_id, CampaignTerms.done_at.is_(None)).values(done_at=now)
            ).rowcount
            if claimed:
                verified = db.session.scalar(select(db.func.count()).select_from(VerifiedLabel).where(VerifiedLabel.pack_id.in_(pack_ids)))
                raise_event(campaign.organization_id, "campaign.done", f"campaign.done:{campaign_id}", {
                    "campaign_id": campaign_id, "reason": "finished", "verified": verified, "unfinished": 0,
                }, now=now)
    if terms is not None and terms.budget_points and terms.budget_low_at is None:
        spent = spent_points(campaign_id)
        left = terms.budget_points - spent
        if left < terms.budget_points * 0.2:
            with unit_of_work() as session:
                claimed = session.execute(
                    update(CampaignTerms).where(CampaignTerms.campaign_id == campaign_id, CampaignTerms.budget_low_at.is_(None)).values(budget_low_at=now)
                ).rowcount
                if claimed:
                    raise_event(campaign.organization_id, "budget.low", f"budget.low:{campaign_id}", {
                        "campaign_id": campaign_id, "budget_points": terms.budget_points, "spent_points": spent, "left_points": max(left, 0),
                    }, now=now)


# --- delivering -----------------------------------------------------------------------------------

_clients = threading.local()


def _http_client():
    import httpx2

    client = getattr(_clients, "client", None)
    if client is None:
        client = _clients.client = httpx2.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    return client


def _post(url: str, secret: str, delivery_id: int, event: str, payload: dict) -> tuple[int | None, str]:
    """POST one signed delivery; (status code, error) where the error is empty for a 2xx answer."""
    import httpx2

    body = json.dumps({"id": delivery_id, **payload}, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Sapien-Webhooks/1",
        "Sapien-Event": event,
        "Sapien-Delivery": str(delivery_id),
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
    }
    try:
        response = _http_client().post(url, content=body, headers=headers)
    except httpx2.HTTPError as failure:
        return None, f"{type(failure).__name__}: {failure}"[:500]
    return response.status_code, "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


BATCH = 200


def deliver_pending(webhook_id: int, *, now: datetime, batch: int = BATCH) -> int:
    """Send a webhook's new deliveries (their first attempt), oldest first, a batch at a time over one
    kept-alive connection, writing each batch's outcomes in one statement. A delivery that failed gets its
    own job (`attempt_delivery`), retried with backoff. Returns how many were delivered."""
    hook = db.session.execute(select(Webhook.url, Webhook.secret).where(Webhook.id == webhook_id)).first()
    db.session.commit()
    if hook is None:
        return 0
    delivered = 0
    after = 0
    table = WebhookDelivery.__table__
    record = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.round == bindparam("b_round"), table.c.status == "pending", table.c.attempts == 0)
        .values(attempts=1, last_attempt_at=now, last_status_code=bindparam("b_code"), last_error=bindparam("b_error"),
                status=bindparam("b_status"), delivered_at=bindparam("b_at"))
    )
    while True:
        rows = db.session.execute(
            select(WebhookDelivery.id, WebhookDelivery.round, WebhookDelivery.event, WebhookDelivery.payload)
            .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == "pending", WebhookDelivery.attempts == 0,
                   WebhookDelivery.id > after)
            .order_by(WebhookDelivery.id).limit(batch)
        ).all()
        db.session.commit()  # no transaction stays open while the receiver answers
        if not rows:
            return delivered
        # Another run sending some of them this moment (the same job twice, a delivery's own job) keeps them.
        with claimed(DELIVERY_LOCK, [row.id for row in rows]) as mine:
            still_new = set(db.session.scalars(select(WebhookDelivery.id).where(
                WebhookDelivery.id.in_(mine), WebhookDelivery.status == "pending", WebhookDelivery.attempts == 0)))
            db.session.commit()
            outcomes = []
            for row in rows:
                if row.id not in still_new:
                    continue
                code, error = _post(hook.url, hook.secret, row.id, row.event, row.payload)
                outcomes.append({"b_id": row.id, "b_round": row.round, "b_code": code, "b_error": error,
                                 "b_status": "pending" if error else "delivered", "b_at": None if error else now})
            if outcomes:
                with unit_of_work() as session:
                    session.connection().execute(record, outcomes)
                    for outcome in outcomes:
                        if outcome["b_error"]:
                            after_commit(lambda outcome=outcome: _enqueue_retry(outcome["b_id"], outcome["b_round"]))
        delivered += sum(1 for outcome in outcomes if not outcome["b_error"])
        after = rows[-1].id


def attempt_delivery(delivery_id: int, *, now: datetime) -> str:
    """Send one pending delivery. 2xx: delivered. Otherwise the attempt is written down and, before the
    last attempt, DeliveryFailed is raised so RQ retries after its backoff; the last failure marks it failed.
    While another run sends it (the same job twice at once, the webhook's batch) this one leaves it to that run."""
    with claimed(DELIVERY_LOCK, [delivery_id]) as mine:
        if not mine:
            return db.session.scalar(select(WebhookDelivery.status).where(WebhookDelivery.id == delivery_id)) or "missing"
        return _attempt_delivery(delivery_id, now)


def _attempt_delivery(delivery_id: int, now: datetime) -> str:
    row = db.session.execute(
        select(WebhookDelivery.status, WebhookDelivery.round, WebhookDelivery.event, WebhookDelivery.payload, Webhook.url, Webhook.secret)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id).where(WebhookDelivery.id == delivery_id)
    ).first()
    db.session.commit()  # no transaction stays open while the receiver answers
    if row is None or row.status != "pending":
        return row.status if row is not None else "missing"
    status_code, error = _post(row.url, row.secret, delivery_id, row.event, row.payload)
    # One guarded UPDATE records the attempt; a redelivery made meanwhile (another round) is left to its own job.
    attempts = WebhookDelivery.attempts + 1
    next_status = "delivered" if not error else case((attempts >= MAX_ATTEMPTS, "failed"), else_="pending")
    with unit_of_work() as session:
        status = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending", WebhookDelivery.round == row.round)
            .values(attempts=attempts, last_attempt_at=now, last_status_code=status_code, last_error=error, status=next_status,
                    delivered_at=now if not error else None)
            .returning(WebhookDelivery.status)
        ).scalar()
        if status is None:
            return session.scalar(select(WebhookDelivery.status).where(WebhookDelivery.id == delivery_id))
    if status == "pending":
        raise DeliveryFailed(f"delivery {delivery_id} to {row.url}: {error}")
    return status


def redeliver(organization_id: int, webhook_id: int, delivery_id: int, *, now: datetime) -> WebhookDelivery:
    """Send a delivery of one of the organization's webhooks again (a new round of attempts), whatever its state."""
    with unit_of_work() as session:
        own_webhook(organization_id, webhook_id)
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.webhook_id != webhook_id:
            raise NotFound(_l("There is no such delivery."))
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.round += 1
        delivery.last_error = ""
        delivery.delivered_at = None
        round_ = delivery.round
        after_commit(lambda: _enqueue(delivery_id, round_))
    return delivery


@pending_work_source("api-webhooks")
def _pending_deliveries():
    for delivery_id, round_ in db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.round).where(WebhookDelivery.status == "pending").order_by(WebhookDelivery.id)
    ):
        yield PendingWork("jobs.api.deliver_webhook", (delivery_id,), f"api-webhook-{delivery_id}-r{round_}")
