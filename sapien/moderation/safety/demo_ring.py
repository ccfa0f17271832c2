"""A seeded ring of cheating accounts for the demo (and the tests and the browser journey): a handful of
accounts signed up within minutes from one network and one browser, answering the same items of one pack
with the same answers in well under a second, wrong on the gold items together, so their agreement
verified their own labels and got them paid. The detectors and the fraud model find them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from sapien.accounts import service as accounts
from sapien.extensions import db
from sapien.labeling.errors import LabelingError
from sapien.labeling.leases import lease_item
from sapien.labeling.models import Item, TaskPack
from sapien.labeling.settlement import settle_verified_rewards
from sapien.labeling.submissions import submit_answer
from sapien.moderation.signals import record_signal
from sapien.quality.decisions import decide_awaiting_items

RING_SIZE = 5
RING_PREFIX = "quickclick"
RING_NETWORK_ADDRESS = "203.0.113.{}"  # TEST-NET-3: documentation addresses, nobody's real network
RING_DEVICE = "0badc0de" * 4
RING_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AutoClicker/1.0"


def ring_pack() -> TaskPack | None:
    """An open classification pack anyone may label, with gold items and open items (the first by id)."""
    packs = db.session.scalars(
        select(TaskPack).where(
            TaskPack.status == "open", TaskPack.task_type.in_(("text_classification", "image_classification")),
            TaskPack.min_level <= 1, TaskPack.min_reputation <= 0, TaskPack.min_stake <= 0, TaskPack.exam_required.is_(False),
            TaskPack.multi_label.is_(False),
        ).order_by(TaskPack.id)
    )
    for pack in packs:
        gold = db.session.scalar(select(Item.id).where(Item.pack_id == pack.id, Item.is_gold.is_(True), Item.is_exam.is_(False)).limit(1))
        if gold is not None and len(pack.label_options) >= 2:
            return pack
    return None


def seed_ring(now: datetime, *, pack_id: int | None = None, password_hash: str | None = None, items: int = 6, gold: int = 5) -> list[int]:
    """Create the ring and its work; returns the ring's member ids (empty when there is no suitable pack).
    Idempotent by name: a second call returns the existing ring."""
    existing = accounts.get_by_username(f"{RING_PREFIX}1")
    if existing is not None:
        return [accounts.get_by_username(f"{RING_PREFIX}{n}").id for n in range(1, RING_SIZE + 1)]
    pack = db.session.get(TaskPack, pack_id) if pack_id else ring_pack()
    if pack is None:
        return []
    started = now - timedelta(hours=3)
    ring = []
    for n in range(1, RING_SIZE + 1):
        user = accounts.sign_up(
            accounts.SignUp(username=f"{RING_PREFIX}{n}", email=f"{RING_PREFIX}{n}@ring.example", password="quick-click-ring-2026"),
            now=started + timedelta(minutes=2 * n), password_hash=password_hash,
        )
        record_signal(user.id, "sign_up", RING_NETWORK_ADDRESS.format(10 + n), RING_USER_AGENT, RING_DEVICE, started + timedelta(minutes=2 * n))
        ring.append(user.id)
    ordinary = list(db.session.scalars(
        select(Item).where(Item.pack_id == pack.id, Item.is_gold.is_(False), Item.status == "open", Item.slots_taken == 0)
        .order_by(Item.id).limit(items)
    ))
    golds = list(db.session.scalars(
        select(Item).where(Item.pack_id == pack.id, Item.is_gold.is_(True), Item.is_exam.is_(False)).order_by(Item.id).limit(gold)
    ))
    options = list(pack.label_options)
    when = started + timedelta(minutes=30)
    # The ring labels first (its agreement verifies its own answers), then fails the gold checks together.
    for index, item in enumerate(ordinary + golds):
        if item.is_gold:
            right = (item.gold_answer or {}).get("labels") or [options[0]]
            answer = next(option for option in options if option not in right)
        else:
            answer = options[-1]
        for user_id in ring[index % RING_SIZE:] + ring[: index % RING_SIZE]:
            when += timedelta(seconds=1)
            try:
                lease = lease_item(user_id, item.id, when)
            except LabelingError:  # the item has the labels it wants: the ring moves on
                continue
            submit_answer(user_id, lease.id, {"labels": [answer]}, now=when, time_spent_ms=350)
            decide_awaiting_items(now=when)  # the decision job's work, as a worker keeping up does it
    settle_verified_rewards(now=now)
    return ring
