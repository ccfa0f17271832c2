"""Exactly once, on PostgreSQL with threads (each its own session): one Idempotency-Key runs its request
once, one payment reference is recorded once, one event is delivered once per webhook. And the status
endpoint's cost in statements."""

from __future__ import annotations

import threading

from sqlalchemy import event, func, select

from tests.api.conftest import CAMPAIGN, ApiClient


def at_once(count: int, work) -> list:
    """Run `work(i)` in `count` threads released together; returns their results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001 - returned to the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_one_idempotency_key_creates_one_campaign(app, org):
    from sapien.extensions import db
    from sapien.labeling.models import Campaign

    def post(_index):
        client = ApiClient(app.test_client(), org.write_key)
        return client.post("/api/v1/campaigns", CAMPAIGN, headers={"Idempotency-Key": "same-key"}).status_code

    statuses = at_once(4, post)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
    with app.app_context():
        assert db.session.scalar(select(func.count(Campaign.id))) == 1


def test_one_payment_reference_is_recorded_once(app, org, api):
    from sapien.api.models import CampaignPayment
    from sapien.extensions import db

    campaign_id = api.post("/api/v1/campaigns", CAMPAIGN).get_json()["id"]

    def pay(_index):
        client = ApiClient(app.test_client(), org.write_key)
        return client.post(f"/api/v1/campaigns/{campaign_id}/payments", {"amount": 700, "external_ref": "inv-77"}).status_code

    statuses = at_once(4, pay)
    assert sorted(statuses) == [200, 200, 200, 201], statuses
    with app.app_context():
        assert db.session.scalar(select(func.count(CampaignPayment.id))) == 1


def test_one_event_is_one_delivery_per_webhook(app, org):
    from sapien.api.models import WebhookDelivery
    from sapien.api.webhooks import raise_event, register_webhook
    from sapien.database import utcnow
    from sapien.extensions import db

    with app.test_request_context():
        register_webhook(org.id, url="http://127.0.0.1:9/h", events=["campaign.done"], now=utcnow())

    def fire(_index):
        with app.test_request_context():
            return raise_event(org.id, "campaign.done", "campaign.done:5", {"campaign_id": 5}, now=utcnow())

    outcomes = at_once(4, fire)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sorted(len(o) for o in outcomes) == [0, 0, 0, 1]
    with app.app_context():
        assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 1


def test_the_polled_status_costs_no_statement_once_cached(app, api):
    from sapien.extensions import db

    campaign_id = api.post("/api/v1/campaigns", CAMPAIGN).get_json()["id"]
    path = f"/api/v1/campaigns/{campaign_id}/progress"
    first = api.get(path).get_json()
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        again = api.get(path).get_json()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert again == first
    assert statements == []  # the key and the status both come from Redis
