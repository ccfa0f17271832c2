"""The admin economy page's figures: treasury, supply and distributions, read from the ledger and the rows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from sapien.accounts.models import User
from sapien.economy.models import Conversion, RevenuePayment, Slash
from sapien.economy.treasury import existing_treasury_id
from sapien.extensions import db
from sapien.labeling.models import Campaign
from sapien.ledger.models import Balance


@dataclass(frozen=True)
class EconomyTotals:
    treasury: int  # the treasury's token balance
    tokens: int  # every member's liquid tokens (the treasury's left out)
    staked: int  # every member's stake
    converted: int  # tokens made by conversions, all time
    paid_to_contributors: int
    paid_to_stakers: int
    paid_to_treasury: int
    payments: int
    slashed: int

    @property
    def supply(self) -> int:
        """Tokens in existence off the chain: liquid, staked and the treasury's."""
        return self.tokens + self.staked + self.treasury


def totals() -> EconomyTotals:
    session = db.session
    treasury_id = existing_treasury_id()
    balances = dict(session.execute(
        select(Balance.currency, func.coalesce(func.sum(Balance.amount), 0))
        .where(Balance.currency.in_(("token", "stake")), Balance.user_id != (treasury_id or 0)).group_by(Balance.currency)
    ).all())
    treasury = session.scalar(select(Balance.amount).where(Balance.user_id == (treasury_id or 0), Balance.currency == "token")) or 0
    contributors, stakers, to_treasury, count = session.execute(
        select(func.coalesce(func.sum(RevenuePayment.contributors), 0), func.coalesce(func.sum(RevenuePayment.stakers), 0),
               func.coalesce(func.sum(RevenuePayment.treasury), 0), func.count())
    ).one()
    return EconomyTotals(
        treasury=int(treasury),
        tokens=int(balances.get("token", 0)),
        staked=int(balances.get("stake", 0)),
        converted=int(session.scalar(select(func.coalesce(func.sum(Conversion.tokens), 0)))),
        paid_to_contributors=int(contributors),
        paid_to_stakers=int(stakers),
        paid_to_treasury=int(to_treasury),
        payments=int(count),
        slashed=int(session.scalar(select(func.coalesce(func.sum(Slash.amount), 0)))),
    )


def campaign_choices() -> list[tuple[int, str]]:
    """The campaigns an admin may record a payment for, by name."""
    return [(campaign.id, campaign.name) for campaign in db.session.scalars(select(Campaign).order_by(Campaign.name))]


def usernames(user_ids: set[int]) -> dict[int, str]:
    """Who made which change, for the parameter history."""
    if not user_ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())


def recent_slashes(limit: int = 50) -> list[tuple[Slash, str]]:
    """The latest slashes with the slashed member's username (the moderators' page)."""
    return list(db.session.execute(
        select(Slash, User.username).join(User, User.id == Slash.user_id).order_by(Slash.created_at.desc()).limit(limit)
    ))
