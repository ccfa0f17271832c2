"""Claims: the statements that hand items out, each one round trip.

`leases` decides what a member gets next; these statements read the member's state and take the item: the
next ordinary item (`claim_ordinary_statement`: a guarded slot increment, SKIP LOCKED so racing members pass
each other), a random gold item (`pick_gold`), the lease's INSERT (`new_lease`), both in one statement
(`claim_and_lease_ordinary`), the member's state (`active_lease_and_daily_use`) and, on PostgreSQL, the
state read and the claim together (`state_and_claim`, every answer's next item unless it is a gold draw).
Constants are written into the SQL where a bound parameter would cost PostgreSQL its one kept plan.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.orm import aliased

from sapien.database import built_once, dialect_insert, is_postgres
from sapien.extensions import db
from sapien.labeling.models import Item, Lease, Submission, TaskPack
from sapien.labeling.packs import day_start
from sapien.labeling.settlement import PendingRewards, pending_rewards_subquery
from sapien.moderation import verdicts

# LIMIT 1 written into the SQL. As a parameter, the plan PostgreSQL keeps for a prepared statement is costed for
# an unknown limit, never beats a fresh one, and every execution was planned again (0.3 ms of the claim's 0.5 ms
# on the server); with the literal it keeps one plan.
ONE = literal_column("1")
# "active" written into the SQL for the same reason: PostgreSQL's statistics know few leases are active, but
# a plan made for any status estimates every lease of the member, and looks so costly next to a plan for the
# value that PostgreSQL plans the statement afresh on every execution instead of keeping one.
ACTIVE = literal_column("'active'")


def daily_use(user_id, pack_id, since, cap=None):
    """How much of today's cap in the pack the member used: answers since `since` (the UTC day's start)
    plus active leases. The arguments are values or bind parameters. With `cap`, answers are counted up to
    the cap only (enough to tell whether it is reached), so that the plan PostgreSQL keeps for a prepared
    statement, which cannot know how many answers a day start leaves, reckons with a few index entries."""
    answers = select(ONE).where(Submission.pack_id == pack_id, Submission.user_id == user_id, Submission.created_at >= since)
    if cap is not None:
        answers = answers.limit(cap)
    submitted = select(func.count()).select_from(answers.subquery()).scalar_subquery()
    active = select(func.count()).select_from(Lease).where(
        Lease.user_id == user_id, Lease.status == ACTIVE, Lease.pack_id == pack_id
    ).scalar_subquery()
    return submitted + active


@built_once
def _new_lease_statement(dialect_name: str):
    return (
        dialect_insert(Lease, dialect_name)
        .values(item_id=bindparam("new_item_id"), pack_id=bindparam("new_pack_id"), user_id=bindparam("new_user_id"), status="active",
                created_at=bindparam("new_created_at"), expires_at=bindparam("new_expires_at"))
        .on_conflict_do_nothing(index_elements=["item_id", "user_id"])
        .returning(Lease)
    )


def new_lease(user_id: int, pack: TaskPack, item_id: int, now: datetime) -> Lease | None:
    """Insert the lease; None when the member already holds one for the item (a double click racing)."""
    values = {"new_item_id": item_id, "new_pack_id": pack.id, "new_user_id": user_id, "new_created_at": now,
              "new_expires_at": now + timedelta(minutes=pack.lease_minutes)}
    return db.session.scalars(_new_lease_statement(db.engine.dialect.name), values, execution_options={"populate_existing": True}).first()


def not_leased_by(user_id: int):
    return ~exists().where(Lease.item_id == Item.id, Lease.user_id == user_id)


def pick_gold(user_id: int, pack: TaskPack) -> Item | None:
    """A random open gold item the member has not had. On PostgreSQL the draw reads a few index entries
    instead of sorting every gold item of the pack (`_gold_pick_statement`)."""
    if is_postgres():
        return db.session.scalar(_gold_pick_statement(), {"gold_pack_id": pack.id, "gold_user_id": user_id})
    return db.session.scalar(
        select(Item)
        .where(Item.pack_id == pack.id, Item.is_gold == true(), Item.is_exam.is_(False), Item.status == "open", not_leased_by(user_id))
        .order_by(func.random())
        .limit(ONE)
    )


@built_once
def _gold_pick_statement():
    """A random point between the first and last id of the pack's open gold items (`gold_pack_id`), then the
    first of them at or after it that the member (`gold_user_id`) has not had, wrapping round to the start:
    a few entries of `ix_items_pack_gold`, whose condition the literals below match (a bound parameter could
    not prove it for a prepared plan). An item that follows a wide gap in the ids, or items the member has
    had, comes up more often than one after a narrow gap; every one can, and none twice for the member."""
    pack_id, user_id = bindparam("gold_pack_id"), bindparam("gold_user_id")
    open_gold = (Item.pack_id == pack_id, Item.is_gold == true(), Item.is_exam == false(), Item.status == literal_column("'open'"))
    bounds = select(func.min(Item.id).label("low"), func.max(Item.id).label("high")).where(*open_gold).subquery()
    pivot = select(
        (bounds.c.low + func.floor(func.random() * (bounds.c.high - bounds.c.low + 1))).cast(Integer).label("at")
    ).cte("pivot")
    at = select(pivot.c.at).scalar_subquery()

    def first_from(where):
        return select(Item).where(*open_gold, where, not_leased_by(user_id)).order_by(Item.pack_id, Item.id).limit(ONE)

    drawn = union_all(first_from(Item.id >= at), first_from(Item.id < at)).subquery("drawn")
    return select(aliased(Item, drawn)).limit(ONE)


@built_once
def claim_ordinary_statement():
    """Take a slot of the next ordinary item for the member (`claimant_id`) in the pack (`claim_pack_id`) in
    one statement, returning the item.

    Items closest to done come first (they verify sooner), then the oldest; `ix_items_pack_open` holds
    that order, so the claim stops at the first entry the member has not leased. SKIP LOCKED lets racing
    members pass each other, and the outer condition is the same guarded increment as `leases._take_slot`.
    """
    user_id, pack_id = bindparam("claimant_id"), bindparam("claim_pack_id")
    candidate = (
        select(Item.id)
        .where(
            Item.pack_id == pack_id,
            Item.status == "open",
            Item.is_gold == false(),  # "=", not "IS": only an equality lets PostgreSQL use the index for it
            Item.slots_taken < Item.labels_target,
            not_leased_by(user_id),
        )
        .order_by(Item.slots_taken.desc(), Item.id)
        .limit(ONE)
        .with_for_update(skip_locked=True, of=Item)
        .scalar_subquery()
    )
    return (
        update(Item)
        .where(Item.id == candidate, Item.slots_taken < Item.labels_target, Item.status == "open")
        .values(slots_taken=Item.slots_taken + 1)
        .returning(Item)
    )


def claim_ordinary(user_id: int, pack: TaskPack) -> Item | None:
    return db.session.scalars(
        claim_ordinary_statement(), {"claimant_id": user_id, "claim_pack_id": pack.id},
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).first()


def claim_and_lease_ordinary(user_id: int, pack: TaskPack, now: datetime) -> tuple[Item | None, Lease | None]:
    """`claim_ordinary` then `new_lease`, in one round trip on PostgreSQL (every answer takes its next item
    this way): (None, None) when nothing is left, (item, None) when the member already holds a lease on the
    claimed item (a double click racing)."""
    if not is_postgres():  # SQLite has no INSERT or UPDATE inside WITH
        item = claim_ordinary(user_id, pack)
        return item, new_lease(user_id, pack, item.id, now) if item is not None else None
    values = {"claimant_id": user_id, "claim_pack_id": pack.id, "new_created_at": now,
              "new_expires_at": now + timedelta(minutes=pack.lease_minutes)}
    row = db.session.execute(
        _claim_and_lease_statement(), values, execution_options={"synchronize_session": False, "populate_existing": True}
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


@built_once
def _claim_and_lease_statement():
    """The claim's UPDATE and the lease's INSERT as one statement: the claimed item with the new lease (none
    when the member already held one on it). Parameters: `claimant_id`, `claim_pack_id`, `new_created_at`,
    `new_expires_at`."""
    claimed, inserted = _claim_and_lease_ctes(claim_ordinary_statement())
    item, lease = aliased(Item, claimed), aliased(Lease, inserted)
    return select(item, lease).select_from(claimed).outerjoin(inserted, inserted.c.item_id == claimed.c.id)


def _claim_and_lease_ctes(claim):
    claimed = claim.cte("claimed")
    inserted = (
        dialect_insert(Lease, "postgresql")
        .from_select(
            ["item_id", "pack_id", "user_id", "status", "created_at", "expires_at"],
            select(claimed.c.id, claimed.c.pack_id, bindparam("claimant_id"), literal("active"), bindparam("new_created_at"),
                   bindparam("new_expires_at")),
        )
        .on_conflict_do_nothing(index_elements=["item_id", "user_id"])
        .returning(*Lease.__table__.c)
        .cte("new_lease")
    )
    return claimed, inserted


def active_lease_and_daily_use(user_id: int, pack: TaskPack, now: datetime) -> tuple[Lease | None, int, bool, PendingRewards]:
    """The member's latest active lease in the pack (or None), their daily use there, whether moderation
    restricted them from labeling it and their pending rewards (which the nav shows beside the item), in one
    statement: the reads every "next item" starts with."""
    values = {"user_id": user_id, "state_pack_id": pack.id, "now": now, "day_start": day_start(now), "daily_cap": pack.daily_cap}
    lease, used, restricted, answers, points, xp = db.session.execute(_active_lease_and_daily_use_statement(), values).one()
    return lease, used or 0, bool(restricted), PendingRewards(int(answers), int(points), int(xp))


@built_once
def _active_lease_and_daily_use_statement():
    state, pending = _member_state()
    return (
        select(Lease, state.c.used, state.c.restricted, *pending.c)
        .select_from(state)
        .outerjoin(Lease, Lease.id == state.c.latest_id)
        .join(pending, true())
    )


def _member_state():
    """The member's latest active lease id, daily use and restriction in the pack (a one-row CTE) and their
    pending rewards (a one-row subquery). Parameters: `user_id`, `state_pack_id`, `now`, `day_start` and
    `daily_cap`; none is named like an item column, which `_state_and_claim_statement`'s ORM UPDATE would
    take for a value to SET."""
    user_id, pack_id, now = bindparam("user_id"), bindparam("state_pack_id"), bindparam("now")
    latest = select(func.max(Lease.id)).where(
        Lease.user_id == user_id, Lease.pack_id == pack_id, Lease.status == ACTIVE
    ).scalar_subquery()
    state = select(
        latest.label("latest_id"),
        daily_use(user_id, pack_id, bindparam("day_start"), bindparam("daily_cap")).label("used"),
        verdicts.restricted_clause(user_id, "labeling", now, pack_id).label("restricted"),
    ).cte("member_state")
    return state, pending_rewards_subquery(user_id)


def state_and_claim(user_id: int, pack: TaskPack, now: datetime):
    """`active_lease_and_daily_use` and `claim_and_lease_ordinary` in one round trip (PostgreSQL; every
    answer's next item, unless it is a gold draw): the claim happens only where the checks `leases._lease_next`
    makes of the state would let it (not restricted, no unexpired active lease, under the daily cap); the
    checks that need no state ran before. Returns the state's four values and the claimed item and lease
    (None, None when the claim did not happen or found nothing)."""
    values = {"user_id": user_id, "state_pack_id": pack.id, "now": now, "day_start": day_start(now), "daily_cap": pack.daily_cap,
              "claimant_id": user_id, "claim_pack_id": pack.id, "new_created_at": now,
              "new_expires_at": now + timedelta(minutes=pack.lease_minutes)}
    row = db.session.execute(
        _state_and_claim_statement(), values, execution_options={"synchronize_session": False, "populate_existing": True}
    ).one()
    lease, used, restricted, answers, points, xp, item, claimed_lease = row
    return lease, used or 0, bool(restricted), PendingRewards(int(answers), int(points), int(xp)), item, claimed_lease


@built_once
def _state_and_claim_statement():
    state, pending = _member_state()
    current = aliased(Lease)
    may_claim = (
        select(ONE).select_from(state).outerjoin(current, current.id == state.c.latest_id)
        .where(
            ~state.c.restricted,
            or_(current.id.is_(None), current.expires_at <= bindparam("now")),  # an expired lease is expired, then replaced
            state.c.used - case((current.id.is_(None), 0), else_=1) < bindparam("daily_cap"),
        )
        .exists()
    )
    claimed, inserted = _claim_and_lease_ctes(claim_ordinary_statement().where(may_claim))
    item, lease = aliased(Item, claimed), aliased(Lease, inserted)
    return (
        select(Lease, state.c.used, state.c.restricted, *pending.c, item, lease)
        .select_from(state)
        .outerjoin(Lease, Lease.id == state.c.latest_id)
        .join(pending, true())
        .outerjoin(claimed, true())
        .outerjoin(inserted, inserted.c.item_id == claimed.c.id)
    )
