"""Webhooks delivered to a real receiver on 127.0.0.1: signed, retried with backoff by RQ, marked failed
when the receiver stays down (nothing lost), redelivered from the log."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sapien_sdk import SignatureError, verify_signature

from tests.api.conftest import ApiClient, label_everything
from tests.api.test_api import create, upload


class Receiver:
    """A tiny threaded HTTP server that records every POST and answers `status`."""

    def __init__(self, status: int = 200):
        self.status = status
        self.closed = False
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def run_pending_jobs() -> list[str]:
    """Run every pending delivery's job twice (the second run must change nothing)."""
    from sqlalchemy import select

    from jobs.api import deliver_webhook
    from sapien.api.models import WebhookDelivery
    from sapien.extensions import db

    outcomes = []
    for delivery_id in db.session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.status == "pending").order_by(WebhookDelivery.id)).all():
        first = deliver_webhook(delivery_id)
        assert deliver_webhook(delivery_id) == first
        outcomes.append(first)
    return outcomes


def test_verified_items_campaign_done_and_budget_low_are_delivered_signed(ctx, app, api, receiver, redis_conn):
    from tests.labeling.conftest import make_user

    app.config["QUALITY_CONFIDENCE_THRESHOLD"] = 0.6
    hook = api.post("/api/v1/webhooks", {"url": receiver.url, "events": ["item.verified", "campaign.done", "budget.low"]}).get_json()
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in api.get("/api/v1/webhooks").get_json()["data"][0]
    campaign = create(api, budget_points=25)
    upload(api, campaign["id"], [{"external_id": f"t{n}", "text": f"Ticket {n}."} for n in range(3)])
    label_everything(campaign["packs"][0]["id"], [make_user() for _ in range(2)], lambda item: {"labels": ["neg"]})
    deliveries = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["data"]
    assert sorted(d["event"] for d in deliveries) == ["budget.low", "campaign.done"] + ["item.verified"] * 3
    assert redis_conn.exists(f"rq:job:api-webhooks-{hook['id']}")  # the webhook's sending job, under a deterministic id
    from jobs.api import deliver_webhooks

    assert deliver_webhooks(hook["id"]) == 5
    assert deliver_webhooks(hook["id"]) == 0  # a second run sends nothing
    assert run_pending_jobs() == []
    assert len(receiver.requests) == 5
    events = []
    for headers, body in receiver.requests:
        event = verify_signature(hook["secret"], body, headers["Sapien-Signature"])
        assert str(event["id"]) == headers["Sapien-Delivery"] and event["event"] == headers["Sapien-Event"]
        events.append(event)
    verified = [e["data"] for e in events if e["event"] == "item.verified"]
    assert {v["label"] for v in verified} == {"neg"} and all(0 < v["confidence"] <= 1 and v["answers"] >= 2 for v in verified)
    # Replay-safe: a wrong secret, a changed body or an old timestamp is refused.
    headers, body = receiver.requests[0]
    with pytest.raises(SignatureError):
        verify_signature("whsec_wrong", body, headers["Sapien-Signature"])
    with pytest.raises(SignatureError):
        verify_signature(hook["secret"], body + b" ", headers["Sapien-Signature"])
    with pytest.raises(SignatureError):
        verify_signature(hook["secret"], body, headers["Sapien-Signature"], now=time.time() + 3600)


def test_a_receiver_that_is_down_is_retried_then_failed_and_redelivered(ctx, app, api, receiver):
    from rq.registry import ScheduledJobRegistry

    from jobs.api import deliver_webhook, deliver_webhooks
    from sapien.api.webhooks import MAX_ATTEMPTS, DeliveryFailed, raise_event
    from sapien.database import utcnow
    from sapien.queue import get_queue, pending_rows

    receiver.status = 503
    hook = api.post("/api/v1/webhooks", {"url": receiver.url, "events": ["campaign.done"]}).get_json()
    org_id = api.get("/api/v1/me").get_json()["organization_id"]
    [delivery_id] = raise_event(org_id, "campaign.done", "campaign.done:1", {"campaign_id": 1}, now=utcnow())
    assert raise_event(org_id, "campaign.done", "campaign.done:1", {"campaign_id": 1}, now=utcnow()) == []  # once per event
    # The webhook's batch sends the first attempt; the failure gets the delivery's own job, after a backoff.
    assert deliver_webhooks(hook["id"]) == 0
    assert ScheduledJobRegistry(queue=get_queue()).get_job_ids() == [f"api-webhook-{delivery_id}-r1"]
    for _ in range(MAX_ATTEMPTS - 2):
        with pytest.raises(DeliveryFailed):  # RQ retries the job after its backoff
            deliver_webhook(delivery_id)
    assert any(work.job_id == f"api-webhook-{delivery_id}-r1" for _name, work in pending_rows())  # the reconciler would re-queue it
    assert deliver_webhook(delivery_id) == "failed"
    assert deliver_webhook(delivery_id) == "failed"  # a second run sends nothing
    assert len(receiver.requests) == MAX_ATTEMPTS
    [logged] = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["data"]
    assert logged["status"] == "failed" and logged["attempts"] == MAX_ATTEMPTS and logged["last_status_code"] == 503
    receiver.status = 204
    again = api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/redeliver")
    assert again.status_code == 202 and again.get_json()["status"] == "pending"
    assert run_pending_jobs() == ["delivered"]
    assert len(receiver.requests) == MAX_ATTEMPTS + 1
    # Nothing listens: a closed port is a failed attempt too, recorded with its error.
    receiver.close()
    [second] = raise_event(org_id, "campaign.done", "campaign.done:2", {"campaign_id": 2}, now=utcnow())
    with pytest.raises(DeliveryFailed):
        deliver_webhook(second)
    logged = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["data"][0]
    assert logged["status"] == "pending" and logged["last_error"] and logged["last_status_code"] is None


def test_webhook_urls_and_events_are_checked_and_private(ctx, api):
    from tests.api.conftest import make_org

    assert api.post("/api/v1/webhooks", {"url": "ftp://example.org", "events": ["item.verified"]}).status_code == 422
    assert api.post("/api/v1/webhooks", {"url": "http://example.org", "events": ["nope"]}).status_code == 422
    hook = api.post("/api/v1/webhooks", {"url": "http://example.org/h", "events": ["item.verified"]}).get_json()
    other = ApiClient(api.client, make_org().write_key)
    assert other.get(f"/api/v1/webhooks/{hook['id']}/deliveries").status_code == 404
