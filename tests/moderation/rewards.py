"""A cheat with rewards earned indirectly: an honest quest reward (joining a guild) two days before the fraud's
first answer, then fraudulent answers that completed a labeling quest paying points, XP and a badge."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from sapien.extensions import db
from tests.conftest import verify_and_settle

HONEST_QUEST_POINTS = 20
FRAUD_QUEST_POINTS, FRAUD_QUEST_XP = 50, 15


def earn_indirect_rewards(app, cheat: int, founder: int, pack_id: int, now: datetime) -> dict:
    """Run the story up to `now` (the quests claimed, the answers paid); returns the moments and quest ids."""
    from sapien.guilds import founding
    from sapien.guilds import membership as guilds_membership
    from sapien.labeling.leases import lease_item
    from sapien.labeling.models import Item
    from sapien.labeling.submissions import submit_answer
    from sapien.progression import quest_cards, quests

    honest_at, fraud_at = now - timedelta(days=2), now - timedelta(days=1)
    app.config["GUILD_CREATE_MIN_LEVEL"] = 1
    guild = founding.create_guild(founder, founding.GuildDraft(name="Night Owls"), honest_at)
    join_quest = quests.create_quest(
        quests.QuestDefinition(
            title="Join a guild",
            period="once",
            objective="join_guild",
            target=1,
            starts_at=honest_at - timedelta(hours=1),
            ends_at=now + timedelta(days=7),
            reward_points=HONEST_QUEST_POINTS,
        ),
        actor_id=founder,
        now=honest_at,
    )
    label_quest = quests.create_quest(
        quests.QuestDefinition(
            title="Label two items",
            period="once",
            objective="label_items",
            target=2,
            starts_at=honest_at - timedelta(hours=1),
            ends_at=now + timedelta(days=7),
            reward_points=FRAUD_QUEST_POINTS,
            reward_xp=FRAUD_QUEST_XP,
            reward_badge="founding-member",
        ),
        actor_id=founder,
        now=honest_at,
    )
    guilds_membership.join(cheat, guild.id, honest_at)
    quest_cards.claim_quest(cheat, join_quest.id, honest_at)
    for item_id in db.session.scalars(
        select(Item.id).where(Item.pack_id == pack_id, Item.is_gold.is_(False)).order_by(Item.id).limit(2)
    ):
        lease = lease_item(cheat, item_id, fraud_at)
        submit_answer(cheat, lease.id, {"labels": ["pos"]}, now=fraud_at, time_spent_ms=300)
    verify_and_settle(pack_id=pack_id, now=fraud_at)
    quest_cards.claim_quest(cheat, label_quest.id, fraud_at)
    return {"honest_at": honest_at, "fraud_at": fraud_at, "join_quest": join_quest.id, "label_quest": label_quest.id}
