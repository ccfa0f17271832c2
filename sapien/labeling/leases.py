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
a staking tier) may claim them (`_check_priority`). The statements that take the items are in `claims`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    case,
    false,
    func,
    select,
    update,
)

from sapien import events
from sapien.database import as_utc, is_postgres, unit_of_work, utcnow
from sapien.extensions import db
from sapien.labeling import claims
from sapien.labeling.access import check_unlocked, member_access
from sapien.labeling.errors import DailyCapReached, LabelingNotFound, NoWorkLeft, PackLocked
from sapien.labeling.models import (
    Item,
    Lease,
    Media,
    TaskPack,
)
from sapien.labeling.packs import day_start, get_media
from sapien.labeling.settlement import PendingRewards
from sapien.moderation import verdicts
from sapien.moderation.verdicts import restriction_message
from sapien.queue import PendingWork, pending_work_source


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


def _check_daily_cap(user_id: int, pack: TaskPack, now: datetime, used: int | None = None) -> None:
    if used is None:
        used = db.session.execute(select(claims.daily_use(user_id, pack.id, day_start(now)))).scalar() or 0
    if used >= pack.daily_cap:
        raise DailyCapReached(
            _l("You have done today's %(cap)s items in this pack. Come back tomorrow (UTC) or try another pack.", cap=pack.daily_cap)
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
    current, _used, _restricted, pending = claims.active_lease_and_daily_use(user_id, pack, now)
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
        access = member_access(user_id, pack)  # worked out once: it decides `claiming`, and refuses below
        # An ordinary draw claims in the statement that reads the state, when the checks that need no state pass.
        claiming = access.unlocked and not gold_first and is_postgres() and not _held_back_for_stakers(user_id, pack)
        if claiming:
            current, used, restricted, pending, claimed, claimed_lease = claims.state_and_claim(user_id, pack, now)
        else:
            current, used, restricted, pending = claims.active_lease_and_daily_use(user_id, pack, now)
        if restricted:
            raise PackLocked(restriction_message(verdicts.is_restricted(user_id, "labeling", now, pack.id)))
        if current is not None:
            if as_utc(current.expires_at) > now:
                return current, None, pending
            _expire(current)
            used -= 1  # counted while it was active
        check_unlocked(user_id, pack, access)
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
                item = claims.pick_gold(user_id, pack)
            if item is None:
                item, lease = claims.claim_and_lease_ordinary(user_id, pack, now)
                if item is None:
                    raise NoWorkLeft(_l("There is nothing left for you in this pack right now. Thank you!"))
                if lease is None:
                    free_slot(item.id)
                    continue
                return lease, item, pending
            lease = claims.new_lease(user_id, pack, item.id, now)
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
        lease = claims.new_lease(user_id, pack, item.id, now)
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
