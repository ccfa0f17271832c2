"""Revenue share: an enterprise payment for a campaign (or a sale of a community dataset), split and paid.

The split
---------
``revenue.split`` gives the contributors', stakers' and treasury's shares (basis points adding up to
100 %). Within a part, each member gets ``part × weight ÷ total weight``, rounded down:

- contributors of an enterprise or dual campaign weigh their accepted, verified labels in it times their
  reputation (0–1000, 500 for a new member): quality counts, not only volume;
- holders of a community campaign's dataset weigh the revenue shares labeling recorded for their verified
  answers (voided shares count nothing);
- stakers weigh each staked position's amount times the seconds it has been staked (stake × time).

What rounding leaves of each part, and a part nobody can receive (no contributors, no stakers), goes to
the treasury, so contributors + stakers + treasury is the payment to the unit (a database check holds it).

Exactly once
------------
A payment is unique per (campaign, external reference): recording it again returns the first
distribution and pays nothing. Every credit has its key: ``revenue:<payment>:<role>:<member>`` and
``revenue:<payment>:treasury``. Members' statements are the `StatementLine` rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from sapien.database import as_utc, dialect_insert, unit_of_work
from sapien.economy.errors import EconomyError, EconomyNotFound
from sapien.economy.models import RevenuePayment, StakePosition, StatementLine
from sapien.economy.parameters import BASIS, LEDGER_MAX, get_parameter
from sapien.economy.treasury import treasury_id
from sapien.extensions import db
from sapien.labeling.models import Campaign, RevenueShare, Submission, TaskPack
from sapien.ledger import service as ledger
from sapien.quality.models import Reputation
from sapien.quality.reputation import DEFAULT_REPUTATION


def allocate(part: int, weights: dict[int, int]) -> dict[int, int]:
    """Split `part` by integer weights, rounding each down (members with nothing left out)."""
    total = sum(weights.values())
    if part <= 0 or total <= 0:
        return {}
    shares = {user_id: part * weight // total for user_id, weight in weights.items() if weight > 0}
    return {user_id: amount for user_id, amount in shares.items() if amount > 0}


def contributor_weights(campaign: Campaign) -> tuple[str, dict[int, int]]:
    """(statement role, {member: weight}) of the campaign's contributors (see the module docstring)."""
    session = db.session
    if campaign.kind == "community":
        rows = session.execute(
            select(RevenueShare.user_id, func.sum(RevenueShare.shares))
            .where(RevenueShare.campaign_id == campaign.id, RevenueShare.void.is_(False)).group_by(RevenueShare.user_id)
        ).all()
        return "holder", {user_id: int(shares) for user_id, shares in rows}
    labels = (
        select(Submission.user_id, func.count().label("labels"))
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .where(TaskPack.campaign_id == campaign.id, Submission.status == "accepted", Submission.reward_state.in_(("verified", "paid")))
        .group_by(Submission.user_id)
        .subquery()
    )
    rows = session.execute(
        select(labels.c.user_id, labels.c.labels, func.coalesce(Reputation.score, DEFAULT_REPUTATION))
        .outerjoin(Reputation, Reputation.user_id == labels.c.user_id)
    ).all()
    return "contributor", {user_id: int(count) * max(int(score), 1) for user_id, count, score in rows}


def staker_weights(now: datetime) -> dict[int, int]:
    weights: dict[int, int] = defaultdict(int)
    rows = db.session.execute(
        select(StakePosition.user_id, StakePosition.amount, StakePosition.staked_at).where(StakePosition.status == "staked", StakePosition.amount > 0)
    )
    for user_id, amount, staked_at in rows:
        seconds = int((now - as_utc(staked_at)).total_seconds())
        if seconds > 0:
            weights[user_id] += int(amount) * seconds
    return dict(weights)


@dataclass(frozen=True)
class Recorded:
    payment: RevenuePayment
    created: bool  # False: this reference was recorded before, nothing was paid again


def record_campaign_payment(campaign_id: int, amount: int, *, external_ref: str, actor_id: int | None, now: datetime) -> Recorded:
    """Record a payment of `amount` token base units for a campaign and pay its split (the enterprise API
    calls this too). The same (campaign, reference) again returns the first distribution."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise EconomyError(_l("Enter an amount above zero."), field="amount")
    if amount > LEDGER_MAX:
        raise EconomyError(_l("That is more than the ledger can hold in one payment."), field="amount")
    external_ref = (external_ref or "").strip()
    if not 1 <= len(external_ref) <= 128:
        raise EconomyError(_l("Give the payment's reference (an invoice number), at most 128 characters."), field="external_ref")
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise EconomyNotFound(_l("That campaign does not exist."), field="campaign_id")
    split = get_parameter("revenue.split")
    if sum(split.values()) != BASIS:  # the store refuses this; an old row must not pay out wrongly
        raise EconomyError(_l("The revenue split does not add up to 100 percent; fix it on the economy page."))
    existing = _existing(campaign_id, external_ref)
    if existing is not None:
        return Recorded(existing, created=False)
    role, contributors = contributor_weights(campaign)
    stakers = staker_weights(now)
    contributors_part = amount * split["contributors"] // BASIS
    stakers_part = amount * split["stakers"] // BASIS
    paid_contributors = allocate(contributors_part, contributors)
    paid_stakers = allocate(stakers_part, stakers)
    to_contributors, to_stakers = sum(paid_contributors.values()), sum(paid_stakers.values())
    remainder = (contributors_part - to_contributors if paid_contributors else 0) + (stakers_part - to_stakers if paid_stakers else 0)
    to_treasury = amount - to_contributors - to_stakers
    with unit_of_work() as session:
        payment_id = session.execute(
            dialect_insert(RevenuePayment).values(
                campaign_id=campaign_id, external_ref=external_ref, amount=amount, split=split, contributors=to_contributors,
                stakers=to_stakers, treasury=to_treasury, remainder=remainder, recipients=len(paid_contributors) + len(paid_stakers),
                actor_id=actor_id, created_at=now,
            ).on_conflict_do_nothing(index_elements=["campaign_id", "external_ref"]).returning(RevenuePayment.id)
        ).scalar()
        if payment_id is None:  # recorded by a concurrent call meanwhile: theirs is the distribution
            return Recorded(_existing(campaign_id, external_ref), created=False)
        memo = f"{campaign.name[:180]} · {external_ref[:60]}"
        credits = [ledger.BulkCredit(user_id, "token", share, f"revenue:{payment_id}:{role}:{user_id}", "revenue", memo)
                   for user_id, share in sorted(paid_contributors.items())]
        credits += [ledger.BulkCredit(user_id, "token", share, f"revenue:{payment_id}:staker:{user_id}", "revenue", memo)
                    for user_id, share in sorted(paid_stakers.items())]
        if to_treasury:
            credits.append(ledger.BulkCredit(treasury_id(now), "token", to_treasury, f"revenue:{payment_id}:treasury", "revenue", memo))
        ledger.credit_bulk(credits, now=now)
        lines = [dict(payment_id=payment_id, user_id=user_id, role=role, amount=share, created_at=now)
                 for user_id, share in paid_contributors.items()]
        lines += [dict(payment_id=payment_id, user_id=user_id, role="staker", amount=share, created_at=now)
                  for user_id, share in paid_stakers.items()]
        if lines:
            session.execute(StatementLine.__table__.insert(), lines)
    return Recorded(db.session.get(RevenuePayment, payment_id), created=True)


def _existing(campaign_id: int, external_ref: str) -> RevenuePayment | None:
    return db.session.scalar(select(RevenuePayment).where(RevenuePayment.campaign_id == campaign_id,
                                                          RevenuePayment.external_ref == external_ref))


@dataclass(frozen=True)
class Statement:
    at: datetime
    campaign: str
    kind: str
    role: str
    amount: int
    external_ref: str


def statements(user_id: int, limit: int = 100) -> list[Statement]:
    """What each campaign or dataset earned the member, and when, newest first."""
    rows = db.session.execute(
        select(StatementLine.created_at, Campaign.name, Campaign.kind, StatementLine.role, StatementLine.amount, RevenuePayment.external_ref)
        .join(RevenuePayment, RevenuePayment.id == StatementLine.payment_id)
        .join(Campaign, Campaign.id == RevenuePayment.campaign_id)
        .where(StatementLine.user_id == user_id)
        .order_by(StatementLine.created_at.desc(), StatementLine.id.desc()).limit(limit)
    )
    return [Statement(*row) for row in rows]


def payments(limit: int = 50) -> list[tuple[RevenuePayment, str]]:
    return list(db.session.execute(
        select(RevenuePayment, Campaign.name).join(Campaign, Campaign.id == RevenuePayment.campaign_id)
        .order_by(RevenuePayment.id.desc()).limit(limit)
    ))
