"""Each member's criterion values as of a moment, read from the tables of the areas that own them.

Everything is filtered by `created_at <= as_of` (or its equivalent), so the same as-of time reads the
same values later on: points from the ledger, active days and gold accuracy and special tasks from
submissions, reputation from its event history, recognized guilds from memberships. On-chain activity
of linked wallets comes from `sapien.chain.airdrop_chain` and is added by the snapshot run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select

from sapien.accounts.models import User
from sapien.airdrops.models import RecognizedGuild
from sapien.chain.wallet_models import Wallet
from sapien.extensions import db
from sapien.guilds.models import Guild, GuildMembership
from sapien.labeling.models import Submission, TaskPack
from sapien.ledger.models import LedgerEntry
from sapien.quality.models import ReputationEvent

DEFAULT_REPUTATION = 500
SPECIAL_DIFFICULTIES = ("advanced", "expert")


@dataclass
class MemberInput:
    user_id: int
    username: str
    is_banned: bool
    address: str | None
    values: dict[str, int] = field(default_factory=dict)


def gather(as_of: datetime) -> dict[int, MemberInput]:
    """Member id → their data as of `as_of` (every account created by then)."""
    members: dict[int, MemberInput] = {}
    rows = db.session.execute(
        select(User.id, User.username, User.is_banned, Wallet.address)
        .outerjoin(Wallet, Wallet.user_id == User.id)
        .where(User.created_at <= as_of)
        .order_by(User.id)
    )
    for user_id, username, banned, address in rows:
        members[user_id] = MemberInput(user_id, username, bool(banned), address, {"reputation": DEFAULT_REPUTATION})

    def put(name: str, pairs) -> None:
        for user_id, value in pairs:
            if user_id in members:
                members[user_id].values[name] = int(value or 0)

    put("points", db.session.execute(
        select(LedgerEntry.user_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.currency == "points", LedgerEntry.created_at <= as_of)
        .group_by(LedgerEntry.user_id)
    ))
    put("active_days", db.session.execute(
        select(Submission.user_id, func.count(func.distinct(func.date(Submission.created_at))))
        .where(Submission.created_at <= as_of)
        .group_by(Submission.user_id)
    ))
    correct = func.sum(case((Submission.gold_correct.is_(True), 1), else_=0))
    gold = db.session.execute(
        select(Submission.user_id, correct, func.count())
        .where(Submission.is_gold.is_(True), Submission.gold_correct.is_not(None), Submission.created_at <= as_of)
        .group_by(Submission.user_id)
    )
    put("gold_accuracy", ((user_id, int(right or 0) * 100 // total) for user_id, right, total in gold if total))
    latest = (
        select(ReputationEvent.user_id, func.max(ReputationEvent.id).label("last_id"))
        .where(ReputationEvent.created_at <= as_of)
        .group_by(ReputationEvent.user_id)
        .subquery()
    )
    put("reputation", db.session.execute(select(ReputationEvent.user_id, ReputationEvent.score_after).join(latest, ReputationEvent.id == latest.c.last_id)))
    put("special_tasks", db.session.execute(
        select(Submission.user_id, func.count())
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .where(
            Submission.status == "accepted", Submission.created_at <= as_of,
            or_(TaskPack.difficulty.in_(SPECIAL_DIFFICULTIES), TaskPack.exam_required.is_(True)),
        )
        .group_by(Submission.user_id)
    ))
    put("recognized_guild", ((user_id, 1) for (user_id,) in db.session.execute(
        select(GuildMembership.user_id)
        .join(Guild, Guild.id == GuildMembership.guild_id)
        .join(RecognizedGuild, RecognizedGuild.guild_id == Guild.id)
        .where(GuildMembership.joined_at <= as_of, or_(Guild.disbanded_at.is_(None), and_(Guild.disbanded_at > as_of)))
    )))
    return members
