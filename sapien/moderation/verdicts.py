"""What trust & safety has decided about members, for the areas that act on it (labeling, review, arena,
airdrops). Reads only moderation's own tables, so any area may import it.

A restriction is active from its decision's `starts_at` until `ends_at` (None: no end), unless it was
lifted (an overturned appeal, an expired ban lifted by the sweep). A ban is a restriction of every scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, exists, or_, select

from sapien.extensions import db
from sapien.moderation.models import Decision, Flag, TrustSignal


@dataclass(frozen=True)
class Restriction:
    decision_id: int
    user_id: int
    action: str  # "restrict" or "ban"
    scope: str  # one of RESTRICTION_SCOPES ("all" for a ban)
    pack_id: int | None
    reason: str
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class Cluster:
    """Accounts joined by shared signals: `shared` names the kinds ("network", "device", "wallet") that join them."""

    member_ids: tuple[int, ...]
    shared: tuple[str, ...]


def _active(now: datetime):
    return and_(
        Decision.action.in_(("restrict", "ban")),
        Decision.lifted_at.is_(None),
        Decision.starts_at <= now,
        or_(Decision.ends_at.is_(None), Decision.ends_at > now),
    )


def _scope_matches(scope: str, pack_id: int | None):
    matches = [Decision.scope == scope, Decision.scope == "all"]
    if scope in ("labeling", "pack") and pack_id is not None:
        matches.append(and_(Decision.scope == "pack", Decision.pack_id == pack_id))
    return or_(*matches)


def restricted_clause(user_id, scope: str, now: datetime, pack_id=None) -> ColumnElement[bool]:
    """An SQL EXISTS for "this member is restricted here": a hot path adds it to a statement it runs anyway."""
    return exists().where(Decision.user_id == user_id, _active(now), _scope_matches(scope, pack_id))


def _restriction(row: Decision) -> Restriction:
    return Restriction(row.id, row.user_id, row.action, row.scope or "all", row.pack_id, row.reason, row.starts_at, row.ends_at)


def is_restricted(user_id: int, scope: str, now: datetime, pack_id: int | None = None) -> Restriction | None:
    """The member's active restriction covering `scope` (a pack restriction covers labeling in that pack;
    a ban covers every scope), the one ending last; None when they are free to act."""
    rows = db.session.scalars(
        select(Decision).where(Decision.user_id == user_id, _active(now), _scope_matches(scope, pack_id))
    ).all()
    if not rows:
        return None
    return _restriction(max(rows, key=lambda row: (row.ends_at is None, row.ends_at or row.starts_at)))


def active_restrictions(user_id: int, now: datetime) -> list[Restriction]:
    rows = db.session.scalars(select(Decision).where(Decision.user_id == user_id, _active(now)).order_by(Decision.id))
    return [_restriction(row) for row in rows]


def flagged_member_ids(now: datetime) -> set[int]:
    """Members with an open flag or an active restriction or ban (airdrops exclude them, the arena pauses them)."""
    flagged = set(db.session.scalars(select(Flag.user_id).where(Flag.status == "open").distinct()))
    return flagged | set(db.session.scalars(select(Decision.user_id).where(_active(now)).distinct()))


def is_flagged(user_id: int, now: datetime) -> bool:
    """One member's answer to `flagged_member_ids` (governance asks it at every vote)."""
    return bool(
        db.session.scalar(
            select(
                exists().where(Flag.user_id == user_id, Flag.status == "open")
                | exists().where(Decision.user_id == user_id, _active(now))
            )
        )
    )


def signal_edges(member_ids: Iterable[int] | None = None) -> dict[str, list[tuple[int, str]]]:
    """{kind: [(member id, shared value)]} for the networks and devices members signed up or in from, and
    the wallets they linked."""
    ids = None if member_ids is None else sorted(set(member_ids))
    edges: dict[str, list[tuple[int, str]]] = {"network": [], "device": [], "wallet": []}
    rows = select(TrustSignal.user_id, TrustSignal.network, TrustSignal.device_id).distinct()
    if ids is not None:
        rows = rows.where(TrustSignal.user_id.in_(ids))
    for user_id, network, device in db.session.execute(rows):
        if network and network not in ("unknown", "local"):
            edges["network"].append((user_id, network))
        if device:
            edges["device"].append((user_id, device))
    # Wallets: every address a member linked, now or before (a used sign-in nonce is a completed link; the
    # wallets table holds only the current one), so a wallet passed from account to account joins them.
    nonces, wallets = db.metadata.tables["siwe_nonces"], db.metadata.tables["wallets"]
    used_nonces = select(nonces.c.user_id, nonces.c.address).where(nonces.c.used_at.is_not(None))
    current = select(wallets.c.user_id, wallets.c.address)
    if ids is not None:  # only these members' links (not every wallet ever linked: the arena asks this at every match)
        used_nonces, current = used_nonces.where(nonces.c.user_id.in_(ids)), current.where(wallets.c.user_id.in_(ids))
    for user_id, address in db.session.execute(used_nonces.union(current)):
        edges["wallet"].append((user_id, address.lower()))
    return edges


def clusters_from_edges(edges: dict[str, list[tuple[int, str]]]) -> list[Cluster]:
    """Connected components (union-find) of members joined by a shared value of any kind; single members
    are not clusters. Largest first, then by lowest member id."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    holders: dict[tuple[str, str], list[int]] = {}
    for kind, pairs in edges.items():
        for user_id, value in pairs:
            holders.setdefault((kind, value), []).append(user_id)
    joined: dict[tuple[str, str], list[int]] = {}
    for key, users in holders.items():
        users = sorted(set(users))
        if len(users) < 2:
            continue
        joined[key] = users
        for other in users[1:]:
            a, b = find(users[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    components: dict[int, set[int]] = {}
    kinds: dict[int, set[str]] = {}
    for (kind, _value), users in joined.items():
        root = find(users[0])
        components.setdefault(root, set()).update(users)
        kinds.setdefault(root, set()).add(kind)
    clusters = [Cluster(tuple(sorted(members)), tuple(sorted(kinds[root]))) for root, members in components.items()]
    return sorted(clusters, key=lambda c: (-len(c.member_ids), c.member_ids[0]))


def shared_signal_clusters(member_ids: Iterable[int] | None = None) -> list[Cluster]:
    """Accounts that share an IP network, a device or a wallet, as clusters (all members when None)."""
    return clusters_from_edges(signal_edges(member_ids))


def banned_member_ids(now: datetime) -> set[int]:
    return set(db.session.scalars(select(Decision.user_id).where(_active(now), Decision.action == "ban").distinct()))


def restriction_message(restriction: Restriction | None) -> str:
    """What a restricted member is told where the restriction stops them."""
    if restriction is None:
        return str(_l("Moderators restricted this for your account."))
    if restriction.ends_at is None:
        return str(_l("Moderators restricted this for your account: %(reason)s. See your standing page.", reason=restriction.reason))
    return str(_l("Moderators restricted this for your account until %(until)s: %(reason)s. See your standing page.",
                  until=f"{restriction.ends_at:%Y-%m-%d %H:%M} UTC", reason=restriction.reason))
