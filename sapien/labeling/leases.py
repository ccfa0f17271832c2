"""Assignment: leasing items to members, one slot at a time, and the lease sweep.

Assignment
----------
A member works one item at a time through a *lease* that expires (``TaskPack.lease_minutes``). Each
ordinary item wants ``labels_target`` labels; a lease takes one of its slots with a single conditional
UPDATE (``slots_taken = slots_taken + 1 WHERE slots_taken < labels_target AND status = 'open'``), so
two members racing for the last slot cannot both win. A lease is unique per (item, member): nobody
gets the same item twice, even after their lease ran out. An expired lease or a rejected answer gives
its slot back. Gold items are mixed in at the pack's gold rate; they take no slots (every member may
answer each of them once) and look exactly like ordinary items to the member.

Priority access: when a pack's open items are down to economy's reserve, only staked members (those with
a staking tier) may claim them (`_check_priority`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
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

from sapien import events
from sapien.database import as_utc, built_once, dialect_insert, is_postgres, unit_of_work, utcnow
from sapien.extensions import db
from sapien.labeling.access import check_unlocked, is_unlocked
from sapien.labeling.errors import DailyCapReached, LabelingNotFound, NoWorkLeft, PackLocked
from sapien.labeling.models import (
    Item,
    Lease,
    Media,
    Submission,
    TaskPack,
)
from sapien.labeling.packs import day_start, get_media
from sapien.labeling.settlement import PendingRewards, pending_rewards_subquery
from sapien.moderation import verdicts
from sapien.moderation.verdicts import restriction_message
from sapien.queue import PendingWork, pending_work_source

# LIMIT 1 written into the SQL. As a parameter, the plan PostgreSQL keeps for a prepared statement is costed for
# an unknown limit, never beats a fresh one, and every execution was planned again (0.3 ms of the claim's 0.5 ms
# on the server); with the literal it keeps one plan.
ONE = literal_column("1")
# "active" written into the SQL for the same reason: PostgreSQL's statistics know few leases are active, but
# a plan made for any status estimates every lease of the member, and looks so costly next to a plan for the
# value that PostgreSQL plans the statement afresh on every execution instead of keeping one.
ACTIVE = literal_column("'active'")


def free_slot(item_id: int) -> None:
    db.session.execute(
        update(Item)
        .where(Item.id == item_id, Item.is_gold.is_(False), Item.slots_taken > 0)
        .values(slots_taken=Item.slots_taken - 1)
    )


def _take_slot(item_id: int) -> bool:
    """The one statement that hands out a slot: two members racing for the last one cannot both win."""
    taken = db.session.execute(
        update(Item)
        .where(Item.id == item_id, Item.slots_taken < Item.labels_target, Item.status == "open")
        .values(slots_taken=Item.slots_taken + 1)
        .returning(Item.id)
    ).scalar()
    return taken is not None


def _expire(lease: Lease) -> None:
    done = db.session.execute(
        update(Lease).where(Lease.id == lease.id, Lease.status == "active").values(status="expired").execution_options(synchronize_session=False)
    ).rowcount
    lease.status = "expired"
    if done:
        free_slot(lease.item_id)


def _daily_use(user_id, pack_id, since, cap=None):
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


def _check_daily_cap(user_id: int, pack: TaskPack, now: datetime, used: int | None = None) -> None:
    if used is None:
        used = db.session.execute(select(_daily_use(user_id, pack.id, day_start(now)))).scalar() or 0
    if used >= pack.daily_cap:
        raise DailyCapReached(
            _l("You have done today's %(cap)s items in this pack. Come back tomorrow (UTC) or try another pack.", cap=pack.daily_cap)
        )


@built_once
def _new_lease_statement(dialect_name: str):
    return (
        dialect_insert(Lease, dialect_name)
        .values(item_id=bindparam("new_item_id"), pack_id=bindparam("new_pack_id"), user_id=bindparam("new_user_id"), status="active",
                created_at=bindparam("new_created_at"), expires_at=bindparam("new_expires_at"))
        .on_conflict_do_nothing(index_elements=["item_id", "user_id"])
        .returning(Lease)
    )


def _new_lease(user_id: int, pack: TaskPack, item_id: int, now: datetime) -> Lease | None:
    """Insert the lease; None when the member already holds one for the item (a double click racing)."""
    values = {"new_item_id": item_id, "new_pack_id": pack.id, "new_user_id": user_id, "new_created_at": now,
              "new_expires_at": now + timedelta(minutes=pack.lease_minutes)}
    return db.session.scalars(_new_lease_statement(db.engine.dialect.name), values, execution_options={"populate_existing": True}).first()


def _not_leased_by(user_id: int):
    return ~exists().where(Lease.item_id == Item.id, Lease.user_id == user_id)


def _pick_gold(user_id: int, pack: TaskPack) -> Item | None:
    """A random open gold item the member has not had. On PostgreSQL the draw reads a few index entries
    instead of sorting every gold item of the pack (`_gold_pick_statement`)."""
    if is_postgres():
        return db.session.scalar(_gold_pick_statement(), {"gold_pack_id": pack.id, "gold_user_id": user_id})
    return db.session.scalar(
        select(Item)
        .where(Item.pack_id == pack.id, Item.is_gold == true(), Item.is_exam.is_(False), Item.status == "open", _not_leased_by(user_id))
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
        return select(Item).where(*open_gold, where, _not_leased_by(user_id)).order_by(Item.pack_id, Item.id).limit(ONE)

    drawn = union_all(first_from(Item.id >= at), first_from(Item.id < at)).subquery("drawn")
    return select(aliased(Item, drawn)).limit(ONE)


@built_once
def claim_ordinary_statement():
    """Take a slot of the next ordinary item for the member (`claimant_id`) in the pack (`claim_pack_id`) in
    one statement, returning the item.

    Items closest to done come first (they verify sooner), then the oldest; `ix_items_pack_open` holds
    that order, so the claim stops at the first entry the member has not leased. SKIP LOCKED lets racing
    members pass each other, and the outer condition is the same guarded increment as `_take_slot`.
    """
    user_id, pack_id = bindparam("claimant_id"), bindparam("claim_pack_id")
    candidate = (
        select(Item.id)
        .where(
            Item.pack_id == pack_id,
            Item.status == "open",
            Item.is_gold == false(),  # "=", not "IS": only an equality lets PostgreSQL use the index for it
            Item.slots_taken < Item.labels_target,
            _not_leased_by(user_id),
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


def _check_priority(user_id: int, pack: TaskPack) -> None:
    """Priority access: once a pack has no more open items than economy's ``staking.priority_reserve_items``
    (0: off), those scarce items go to members with a staking tier; the others are told why."""
    if _held_back_for_stakers(user_id, pack):
        raise NoWorkLeft(_l("Only a few items are left in this pack, and staked members are served first. Stake tokens to get them."))


def _held_back_for_stakers(user_id: int, pack: TaskPack) -> bool:
    reserve = int(events.economy_parameter.ask(name="staking.priority_reserve_items"))
    if reserve <= 0 or events.stake_multipliers.ask(user_ids=[user_id]):
        return False
    open_items = select(Item.id).where(
        Item.pack_id == pack.id, Item.status == "open", Item.is_gold == false(), Item.slots_taken < Item.labels_target
    ).limit(reserve + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(open_items)) <= reserve


def _claim_ordinary(user_id: int, pack: TaskPack) -> Item | None:
    return db.session.scalars(
        claim_ordinary_statement(), {"claimant_id": user_id, "claim_pack_id": pack.id},
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).first()


def _claim_and_lease_ordinary(user_id: int, pack: TaskPack, now: datetime) -> tuple[Item | None, Lease | None]:
    """`_claim_ordinary` then `_new_lease`, in one round trip on PostgreSQL (every answer takes its next item
    this way): (None, None) when nothing is left, (item, None) when the member already holds a lease on the
    claimed item (a double click racing)."""
    if not is_postgres():  # SQLite has no INSERT or UPDATE inside WITH
        item = _claim_ordinary(user_id, pack)
        return item, _new_lease(user_id, pack, item.id, now) if item is not None else None
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
    claimed, new_lease = _claim_and_lease_ctes(claim_ordinary_statement())
    item, lease = aliased(Item, claimed), aliased(Lease, new_lease)
    return select(item, lease).select_from(claimed).outerjoin(new_lease, new_lease.c.item_id == claimed.c.id)


def _claim_and_lease_ctes(claim):
    claimed = claim.cte("claimed")
    new_lease = (
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
    return claimed, new_lease


def _active_lease_and_daily_use(user_id: int, pack: TaskPack, now: datetime) -> tuple[Lease | None, int, bool, PendingRewards]:
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
        _daily_use(user_id, pack_id, bindparam("day_start"), bindparam("daily_cap")).label("used"),
        verdicts.restricted_clause(user_id, "labeling", now, pack_id).label("restricted"),
    ).cte("member_state")
    return state, pending_rewards_subquery(user_id)


def _state_and_claim(user_id: int, pack: TaskPack, now: datetime):
    """`_active_lease_and_daily_use` and `_claim_and_lease_ordinary` in one round trip (PostgreSQL; every
    answer's next item, unless it is a gold draw): the claim happens only where the checks `_lease_next`
    makes of the state would let it (not restricted, no unexpired active lease, under the daily cap); the
    checks that need no state ran before. Returns the state's four values and the claimed item and lease
    (None, None when the claim did not happen or found nothing)."""
    values = {"user_id": user_id, "state_pack_id": pack.id, "now": now, "day_start": day_start(now), "daily_cap": pack.daily_cap,
              "claimant_id": user_id, "claim_pack_id": pack.id, "new_created_at": now,
              "new_expires_at": now + timedelta(minutes=pack.lease_minutes)}
    row = db.session.execute(
        _state_and_claim_statement(), values, execution_options={"synchronize_session": False, "populate_existing": True}
    ).one()
    lease, used, restricted, answers, points, xp, item, new_lease = row
    return lease, used or 0, bool(restricted), PendingRewards(int(answers), int(points), int(xp)), item, new_lease


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
    claimed, new_lease = _claim_and_lease_ctes(claim_ordinary_statement().where(may_claim))
    item, lease = aliased(Item, claimed), aliased(Lease, new_lease)
    return (
        select(Lease, state.c.used, state.c.restricted, *pending.c, item, lease)
        .select_from(state)
        .outerjoin(Lease, Lease.id == state.c.latest_id)
        .join(pending, true())
        .outerjoin(claimed, true())
        .outerjoin(new_lease, new_lease.c.item_id == claimed.c.id)
    )


def lease_next_item(user_id: int, pack_id: int, now: datetime) -> Lease:
    """The member's next item in the pack: their unexpired lease if they have one, else a new one."""
    return _lease_next(user_id, pack_id, now)[0]


def next_work_item(user_id: int, pack_id: int, now: datetime) -> WorkItem:
    """`lease_next_item` with what the work page shows of it (a newly claimed item is not read twice)."""
    lease, item, pending = _lease_next(user_id, pack_id, now)
    return work_item(lease, item, pending)


def current_work_item(user_id: int, pack_id: int, now: datetime) -> WorkItem | None:
    """The item the member holds an unexpired lease on in the pack, or None. Reads only: a GET shows
    this, and only a POST takes a lease (a prefetcher must not reserve items)."""
    pack = db.session.get(TaskPack, pack_id)
    if pack is None:
        return None
    current, _used, _restricted, pending = _active_lease_and_daily_use(user_id, pack, now)
    if current is None or as_utc(current.expires_at) <= now:
        return None
    return work_item(current, pending=pending)


def _lease_next(user_id: int, pack_id: int, now: datetime) -> tuple[Lease, Item | None, PendingRewards]:
    """The lease, its item when this call claimed it (None for a lease the member already held) and the
    member's pending rewards as they stand in this transaction."""
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id)
        if pack is None:
            raise LabelingNotFound(_l("That pack does not exist."))
        gold_first = bool(pack.gold_rate_percent) and random.random() * 100 < pack.gold_rate_percent
        # An ordinary draw claims in the statement that reads the state, when the checks that need no state pass.
        claiming = not gold_first and is_postgres() and is_unlocked(user_id, pack) and not _held_back_for_stakers(user_id, pack)
        if claiming:
            current, used, restricted, pending, claimed, claimed_lease = _state_and_claim(user_id, pack, now)
        else:
            current, used, restricted, pending = _active_lease_and_daily_use(user_id, pack, now)
        if restricted:
            raise PackLocked(restriction_message(verdicts.is_restricted(user_id, "labeling", now, pack.id)))
        if current is not None:
            if as_utc(current.expires_at) > now:
                return current, None, pending
            _expire(current)
            used -= 1  # counted while it was active
        if not claiming:
            check_unlocked(user_id, pack)
        _check_daily_cap(user_id, pack, now, used)
        if claiming:  # the claim was made: what remains is what the loop below does with its result
            if claimed is None:
                raise NoWorkLeft(_l("There is nothing left for you in this pack right now. Thank you!"))
            if claimed_lease is not None:
                return claimed_lease, claimed, pending
            free_slot(claimed.id)
        else:
            _check_priority(user_id, pack)
        for attempt in range(5):
            item = None
            gold = gold_first if attempt == 0 else bool(pack.gold_rate_percent) and random.random() * 100 < pack.gold_rate_percent
            if gold:
                item = _pick_gold(user_id, pack)
            if item is None:
                item, lease = _claim_and_lease_ordinary(user_id, pack, now)
                if item is None:
                    raise NoWorkLeft(_l("There is nothing left for you in this pack right now. Thank you!"))
                if lease is None:
                    free_slot(item.id)
                    continue
                return lease, item, pending
            lease = _new_lease(user_id, pack, item.id, now)
            if lease is not None:
                return lease, item, pending
        raise NoWorkLeft(_l("Everyone is grabbing items at once. Try again in a moment."))


def lease_item(user_id: int, item_id: int, now: datetime) -> Lease:
    """Lease one specific item (crowd replay feeds answers through this), with the same rules."""
    with unit_of_work() as session:
        item = session.get(Item, item_id)
        if item is None or item.is_exam:
            raise LabelingNotFound(_l("That item does not exist."))
        pack = session.get(TaskPack, item.pack_id)
        existing = session.scalar(select(Lease).where(Lease.item_id == item.id, Lease.user_id == user_id))
        if existing is not None:
            if existing.status == "active" and as_utc(existing.expires_at) > now:
                return existing
            raise NoWorkLeft(_l("You have already had this item; nobody gets the same item twice."))
        check_unlocked(user_id, pack)
        _check_daily_cap(user_id, pack, now)
        if not item.is_gold and not _take_slot(item.id):
            raise NoWorkLeft(_l("This item has all the labels it needs."))
        if item.is_gold and item.status != "open":
            raise NoWorkLeft(_l("This item has all the labels it needs."))
        lease = _new_lease(user_id, pack, item.id, now)
        if lease is None:
            raise NoWorkLeft(_l("You have already had this item; nobody gets the same item twice."))
        return lease


@dataclass(frozen=True)
class WorkItem:
    lease: Lease
    item: Item
    pack: TaskPack
    media: Media | None
    pending: PendingRewards | None = None  # the member's pending rewards, when read with the lease


def work_item(lease: Lease, item: Item | None = None, pending: PendingRewards | None = None) -> WorkItem:
    session = db.session
    item = item if item is not None else session.get(Item, lease.item_id)
    return WorkItem(lease, item, session.get(TaskPack, item.pack_id), get_media(item.media_id), pending)


def release_lease(user_id: int, lease_id: int, *, now: datetime) -> None:
    """The member skips an item: the slot goes back to the pool (they will not get the item again)."""
    with unit_of_work() as session:
        lease = session.get(Lease, lease_id)
        if lease is None or lease.user_id != user_id:
            raise LabelingNotFound(_l("That item is not yours."))
        if lease.status != "active":
            return
        lease.status = "released"
        session.flush()
        free_slot(lease.item_id)


def expire_leases(now: datetime) -> int:
    """Mark leases past their expiry as expired and give their slots back; returns how many."""
    with unit_of_work() as session:
        rows = session.execute(
            update(Lease)
            .where(Lease.status == "active", Lease.expires_at <= now)
            .values(status="expired")
            .returning(Lease.item_id)
            .execution_options(synchronize_session=False)
        ).scalars().all()
        counts: dict[int, int] = {}
        for item_id in rows:
            counts[item_id] = counts.get(item_id, 0) + 1
        for item_id, count in sorted(counts.items()):
            session.execute(
                update(Item)
                .where(Item.id == item_id, Item.is_gold.is_(False))
                .values(slots_taken=case((Item.slots_taken >= count, Item.slots_taken - count), else_=0))
                .execution_options(synchronize_session=False)
            )
    return len(rows)


LEASE_SWEEP_EVERY = timedelta(minutes=1)


def lease_sweep_job_id(at: datetime) -> str:
    """One job id per minute: a sweep enqueued twice for the same minute runs once (and is safe twice)."""
    return f"labeling-expire-leases-{int(as_utc(at).timestamp()) // 60}"


@pending_work_source("labeling-lease-sweep", periodic=True)
def _lease_sweep_pending():
    # Always pending: the worker's start-up reconcile begins the chain, each run schedules the next.

    yield PendingWork("jobs.labeling.expire_leases", (), lease_sweep_job_id(utcnow()))
