"""A campaign's deadline: once it passes with items unfinished, the campaign closes, members get no new
items from it, and the client is told once, with what was verified and what was left."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.api.conftest import label_everything
from tests.api.test_api import create, upload


def test_a_passed_deadline_closes_the_campaign_once_and_tells_the_client(ctx, api):
    from jobs.api import close_campaign_at_deadline
    from sapien.api.deadlines import _campaigns_past_deadline, deadline_job_id
    from sapien.api.models import CampaignTerms, WebhookDelivery
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import leases
    from sapien.labeling.errors import LabelingError
    from tests.labeling.conftest import make_user

    hook = api.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["campaign.done"]}).get_json()
    campaign = create(api, deadline=(utcnow() + timedelta(days=2)).isoformat())
    upload(api, campaign["id"], [{"external_id": f"t{n}", "text": f"Ticket {n}."} for n in range(4)])
    pack_id = campaign["packs"][0]["id"]
    assert [work.job_id for work in _campaigns_past_deadline()] == []  # not due yet
    assert close_campaign_at_deadline(campaign["id"]) is False

    # Two days later, with half the items labeled by one member (redundancy 2: nothing verified yet).
    label_everything(pack_id, [make_user()], lambda item: {"labels": ["neg"]})
    db.session.execute(update(CampaignTerms).where(CampaignTerms.campaign_id == campaign["id"]).values(deadline=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert [work.job_id for work in _campaigns_past_deadline()] == [deadline_job_id(campaign["id"])]

    assert close_campaign_at_deadline(campaign["id"]) is True
    assert close_campaign_at_deadline(campaign["id"]) is False  # a second run closes nothing
    assert [work.job_id for work in _campaigns_past_deadline()] == []
    status = api.get(f"/api/v1/campaigns/{campaign['id']}").get_json()
    assert status["status"] == "done" and {pack["status"] for pack in status["packs"]} == {"closed"}
    with pytest.raises(LabelingError, match="closed"):
        leases.lease_next_item(make_user(), pack_id, utcnow())
    [payload] = db.session.scalars(select(WebhookDelivery.payload).where(WebhookDelivery.webhook_id == hook["id"])).all()
    assert payload["event"] == "campaign.done"
    assert payload["data"] | {"verified": None} == {"campaign_id": campaign["id"], "reason": "deadline", "verified": None, "unfinished": 4}
