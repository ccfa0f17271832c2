"""Taking back what fraudulent work earned indirectly, when a restrict or ban decision is undone.

An answer's own pay (its points, XP and partner tokens, streak bonus included: the streak multiplier is
part of what the answer was paid) is reversed with the answer, by labeling. What that work earned on top
of its pay is reversed here, by one rule:

    every reward credited to the member from the moment their fraudulent work began — the earliest answer
    or review the undo takes back — that pays for activity rather than for one answer, is reversed.

Those rewards are the ledger entries of kind ``quest_reward`` (a quest's points and XP), ``arena:pot``,
``arena:prize``, ``arena:stump``, ``arena:clash``, ``arena:clash-pot`` and ``arena:clash-prize`` (arena winnings and clash XP) and ``revenue`` paid to the member as a contributor
or dataset holder (a staker's share pays for stake, not for work, and stays). A reward credited before
that moment stays: it was earned before the fraud. Conversions of points to tokens are not touched: the
economy converts only the points balance minus what was converted before, so points taken back are made
up by later points.

Each reward is reversed by one compensating debit of kind ``reward_reversal`` keyed
``ledger-entry:<id>:reversal`` (never a delete or an edit). It takes what the member still holds of that
currency, never below zero: a short reversal is logged and reported, as labeling's are. The key makes a
second run post nothing.

Badges carry no points; the badges a rule or a quest reward awarded the member in the same window (not a
moderator's hand awards) are revoked through progression, which cancels a pending mint.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import and_, not_, or_, select

from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.ledger.models import Balance, LedgerEntry
from sapien.progression.awards import revoke_badge
from sapien.progression.models import BadgeAward

# Ledger kinds that pay for activity (quests, arena, revenue), not for one answer.
INDIRECT_KINDS = ("quest_reward", "arena:pot", "arena:prize", "arena:stump", "arena:clash", "arena:clash-pot", "arena:clash-prize", "revenue")
REVERSAL_KIND = "reward_reversal"


def reversal_key(entry_id: int) -> str:
    return f"ledger-entry:{entry_id}:reversal"


def indirect_rewards_since(user_id: int, since: datetime) -> list[LedgerEntry]:
    """The member's rewards for activity credited at or after `since`, oldest first."""
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.user_id == user_id,
                LedgerEntry.amount > 0,
                LedgerEntry.kind.in_(INDIRECT_KINDS),
                LedgerEntry.created_at >= since,
                not_(
                    and_(
                        LedgerEntry.kind == "revenue",
                        or_(
                            LedgerEntry.idempotency_key.like("revenue:%:staker:%"),
                            LedgerEntry.idempotency_key.like("revenue:%:treasury"),
                        ),
                    )
                ),
            )
            .order_by(LedgerEntry.id)
        )
    )


def _held(user_id: int, currency: str) -> int:
    """The member's balance, its row locked so a concurrent spend cannot race the debit."""
    return int(
        db.session.scalar(
            select(Balance.amount).where(Balance.user_id == user_id, Balance.currency == currency).with_for_update()
        )
        or 0
    )


def reverse_indirect_rewards(
    user_id: int, since: datetime, moderator_id: int | None, decision_id: int, now: datetime
) -> dict:
    """Reverse the rewards of the module's rule and revoke the badges; returns what was done:
    ``{"rewards": [{kind, currency, amount, short, memo}], "badges_revoked": [slug]}``. Runs inside the
    caller's transaction (the undo's)."""
    entries = indirect_rewards_since(user_id, since)
    done_keys = (
        set(
            db.session.scalars(
                select(LedgerEntry.idempotency_key).where(
                    LedgerEntry.idempotency_key.in_([reversal_key(e.id) for e in entries])
                )
            )
        )
        if entries
        else set()
    )
    rewards = []
    for entry in entries:
        key = reversal_key(entry.id)
        if key in done_keys:
            continue
        take = min(entry.amount, _held(user_id, entry.currency))
        short = entry.amount - take
        if take:
            memo = f"decision #{decision_id}: reversal of {entry.kind} #{entry.id}" + (
                f", {short} short" if short else ""
            )
            ledger.debit(user_id, entry.currency, take, kind=REVERSAL_KIND, key=key, now=now, memo=memo)
        if short:
            current_app.logger.info(
                "ledger entry %s reversal of %s %s was %s short", entry.id, entry.amount, entry.currency, short
            )
        rewards.append(
            {
                "kind": entry.kind,
                "currency": entry.currency,
                "amount": take,
                "short": short,
                "memo": (entry.memo or "")[:80],
            }
        )
    badges = list(
        db.session.scalars(
            select(BadgeAward)
            .where(
                BadgeAward.user_id == user_id,
                BadgeAward.awarded_by.is_(None),
                BadgeAward.revoked_at.is_(None),
                BadgeAward.awarded_at >= since,
            )
            .order_by(BadgeAward.id)
        )
    )
    for award in badges:
        revoke_badge(
            award.id,
            actor_id=moderator_id,
            reason=f"Earned during the fraud undone by moderation decision #{decision_id}",
            now=now,
        )
    return {"rewards": rewards, "badges_revoked": [award.badge_slug for award in badges]}
