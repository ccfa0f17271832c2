"""A campaign's deadline: when it passes with items still unfinished, the campaign ends there.

The reconciler lists every campaign whose deadline has passed and is not done yet
(`_campaigns_past_deadline`); the job ``jobs.api.close_campaign_at_deadline`` closes its packs (members
get no new items from them; answers already given still verify and pay), marks it done, and tells the
client with ``campaign.done`` (``"reason": "deadline"``, with how many items were verified and how many
were left). A campaign that finished first is done already and left alone; running the job twice closes
once (the terms row is locked and `done_at` set in the same transaction).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from sapien.api.campaigns import campaign_packs
from sapien.api.models import CampaignTerms
from sapien.api.status import forget_status
from sapien.api.webhooks import raise_event
from sapien.database import after_commit, as_utc, unit_of_work, utcnow
from sapien.extensions import db
from sapien.labeling import packs
from sapien.labeling.models import Campaign
from sapien.quality.models import VerifiedLabel
from sapien.queue import PendingWork, pending_work_source

DEADLINE_JOB = "jobs.api.close_campaign_at_deadline"


def deadline_job_id(campaign_id: int) -> str:
    return f"api-campaign-deadline-{campaign_id}"


@pending_work_source("api-deadlines")
def _campaigns_past_deadline():
    past = select(CampaignTerms.campaign_id).where(CampaignTerms.deadline <= utcnow(), CampaignTerms.done_at.is_(None))
    for campaign_id in db.session.scalars(past.order_by(CampaignTerms.campaign_id)):
        yield PendingWork(DEADLINE_JOB, (campaign_id,), deadline_job_id(campaign_id))


def close_at_deadline(campaign_id: int, *, now: datetime) -> bool:
    """Close a campaign whose deadline has passed; True when this call closed it."""
    with unit_of_work() as session:
        terms = session.scalar(select(CampaignTerms).where(CampaignTerms.campaign_id == campaign_id).with_for_update())
        if terms is None or terms.deadline is None or terms.done_at is not None or as_utc(terms.deadline) > as_utc(now):
            return False
        campaign = session.get(Campaign, campaign_id)
        pack_ids = []
        for pack in campaign_packs(campaign_id):
            pack_ids.append(pack.id)
            if pack.status != "closed":
                packs.set_pack_status(pack.id, "closed", now=now)
        terms.done_at = now
        counts = packs.pack_counts(pack_ids)
        verified = session.scalar(select(func.count()).select_from(VerifiedLabel).where(VerifiedLabel.pack_id.in_(pack_ids))) if pack_ids else 0
        if campaign is not None and campaign.organization_id is not None:
            raise_event(campaign.organization_id, "campaign.done", f"campaign.done:{campaign_id}", {
                "campaign_id": campaign_id, "reason": "deadline", "verified": verified,
                "unfinished": sum(count.unfinished for count in counts.values()),
            }, now=now)
        after_commit(lambda: forget_status(campaign_id))
    return True
