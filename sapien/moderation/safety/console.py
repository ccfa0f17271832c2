"""What the moderator console shows: the flag queue, a member's trust page with their cluster, the packs a
restriction can cover."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from sapien.accounts.models import User
from sapien.extensions import db
from sapien.labeling.models import TaskPack
from sapien.moderation.models import Decision, DecisionAppeal, Flag
from sapien.moderation.verdicts import Cluster, Restriction, active_restrictions, shared_signal_clusters, signal_edges

QUEUE_LIMIT = 100


@dataclass
class QueueRow:
    user: User
    flags: list[Flag]
    score: float
    cluster_size: int = 1


def flag_queue(limit: int = QUEUE_LIMIT) -> list[QueueRow]:
    """Members with open flags, the strongest evidence first."""
    flags = db.session.scalars(select(Flag).where(Flag.status == "open").order_by(Flag.score.desc(), Flag.id)).all()
    by_member: dict[int, list[Flag]] = defaultdict(list)
    for flag in flags:
        by_member[flag.user_id].append(flag)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(list(by_member))))} if by_member else {}
    rows = [QueueRow(users[uid], member_flags, max(f.score for f in member_flags)) for uid, member_flags in by_member.items() if uid in users]
    rows.sort(key=lambda row: (-row.score, row.user.id))
    rows = rows[:limit]
    sizes = {m: len(c.member_ids) for c in shared_signal_clusters([row.user.id for row in rows]) for m in c.member_ids}
    for row in rows:
        row.cluster_size = sizes.get(row.user.id, 1)
    return rows


@dataclass(frozen=True)
class SharedValue:
    kind: str  # network, device, wallet
    shown: str  # the network; a shortened device id or wallet
    member_ids: tuple[int, ...]


@dataclass
class TrustPage:
    user: User
    cluster: Cluster | None
    members: list[User]
    shared: list[SharedValue]
    flags: dict[int, list[Flag]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    appeals: dict[int, DecisionAppeal] = field(default_factory=dict)
    restrictions: list[Restriction] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # every member the evidence names


def _shown(kind: str, value: str) -> str:
    return value if kind == "network" else f"{value[:8]}…"


def trust_page(user_id: int, now: datetime) -> TrustPage | None:
    user = db.session.get(User, user_id)
    if user is None:
        return None
    cluster = next((c for c in shared_signal_clusters() if user_id in c.member_ids), None)
    member_ids = list(cluster.member_ids) if cluster else [user_id]
    members = list(db.session.scalars(select(User).where(User.id.in_(member_ids)).order_by(User.id)))
    shared = []
    for kind, pairs in signal_edges(member_ids).items():
        holders: dict[str, set[int]] = defaultdict(set)
        for holder, value in pairs:
            holders[value].add(holder)
        shared += [SharedValue(kind, _shown(kind, value), tuple(sorted(ids))) for value, ids in sorted(holders.items()) if len(ids) > 1]
    flags: dict[int, list[Flag]] = defaultdict(list)
    for flag in db.session.scalars(select(Flag).where(Flag.user_id.in_(member_ids)).order_by(Flag.status != "open", Flag.score.desc())):
        flags[flag.user_id].append(flag)
    decisions = list(db.session.scalars(select(Decision).where(Decision.user_id.in_(member_ids)).order_by(Decision.id.desc())))
    appeals = {a.decision_id: a for a in db.session.scalars(select(DecisionAppeal).where(DecisionAppeal.user_id.in_(member_ids)))}
    named = {other for member_flags in flags.values() for flag in member_flags for other in (flag.evidence or {}).get("members", [])}
    names = dict(db.session.execute(select(User.id, User.username).where(User.id.in_(sorted(named | set(member_ids))))).all())
    return TrustPage(user, cluster, members, shared, dict(flags), decisions, appeals, active_restrictions(user_id, now), names)


def pack_choices() -> list[tuple[str, str]]:
    return [(str(pid), name) for pid, name in db.session.execute(select(TaskPack.id, TaskPack.name).where(TaskPack.status != "draft").order_by(TaskPack.name))]


def member_standing(user_id: int, now: datetime) -> tuple[list[Restriction], list[Decision], dict[int, DecisionAppeal]]:
    """A member's own view: what is restricted now, every decision about them, their appeals."""
    decisions = list(db.session.scalars(
        select(Decision).where(Decision.user_id == user_id, Decision.action != "dismiss").order_by(Decision.id.desc())
    ))
    appeals = {a.decision_id: a for a in db.session.scalars(select(DecisionAppeal).where(DecisionAppeal.user_id == user_id))}
    return active_restrictions(user_id, now), decisions, appeals
