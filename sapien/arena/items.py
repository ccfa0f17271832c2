"""Error hunt items: verified labels of one pack, some of them swapped for a wrong label people really give.

A planted error is the most common wrong answer members gave for that item's true class in the pack's
submissions (a real confusion), or, when nobody has confused that class yet, another label of the pack.

Rated play never shows a member an item twice, in any mode: `known_items` is what a member may already know
the answer to (an item shown to them in the arena, whatever the mode and ghosts included, given to them in
ordinary labeling, where a gold item even tells them its answer, or a stump they wrote or confirmed), and
every selection here leaves it out.
`matches._open` records the items shown (`arena_seen`) and refuses a match that would show one again.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, func, select, union

from sapien.arena.models import ArenaSeen, ArenaStump
from sapien.extensions import db
from sapien.labeling.models import Item, Lease, Submission, TaskPack
from sapien.quality.models import VerifiedLabel

CLASSIFICATION_TYPES = ("text_classification", "image_classification")
CONFUSION_SAMPLE = 2000


@dataclass(frozen=True)
class HuntSet:
    pack_id: int
    item_ids: list[int]
    truth: dict[str, str]  # item id (text, JSON keys) → the verified label
    shown: dict[str, str]
    planted: dict[str, str]


def _label(answer: dict | None) -> str | None:
    labels = (answer or {}).get("labels") or []
    return labels[0] if len(labels) == 1 else None


def confusions(pack_id: int) -> dict[str, list[str]]:
    """For each true label, the wrong labels members gave it, most common first (recent submissions)."""
    rows = db.session.execute(
        select(Submission.answer, VerifiedLabel.answer)
        .join(VerifiedLabel, VerifiedLabel.item_id == Submission.item_id)
        .where(Submission.pack_id == pack_id, Submission.is_gold.is_(False))
        .order_by(Submission.id.desc()).limit(CONFUSION_SAMPLE)
    ).all()
    counts: dict[str, Counter] = defaultdict(Counter)
    for given, true in rows:
        given_label, true_label = _label(given), _label(true)
        if given_label and true_label and given_label != true_label:
            counts[true_label][given_label] += 1
    return {true: [label for label, _n in counter.most_common()] for true, counter in counts.items()}


def _eligible_packs() -> list[TaskPack]:
    return list(db.session.scalars(
        select(TaskPack).where(TaskPack.status == "open", TaskPack.task_type.in_(CLASSIFICATION_TYPES), TaskPack.multi_label.is_(False))
        .order_by(TaskPack.id)
    ))


def _stump_items_known(user_ids: list[int]) -> list[int]:
    """Gold items born of stump-the-model that these members wrote or voted on: they read the text and its label.
    (Votes are a JSON object of member ids, read here rather than queried: confirmed stumps are few.)"""
    members = {str(user_id) for user_id in user_ids}
    rows = db.session.execute(select(ArenaStump.item_id, ArenaStump.author_id, ArenaStump.votes)
                              .where(ArenaStump.status == "confirmed", ArenaStump.item_id.is_not(None))).all()
    return [item_id for item_id, author_id, votes in rows if str(author_id) in members or members.intersection(votes or {})]


def _known_parts(user_ids: list[int], item_ids: list[int] | None = None) -> list[Select]:
    parts = [select(ArenaSeen.item_id).where(ArenaSeen.user_id.in_(user_ids)),
             select(Lease.item_id).where(Lease.user_id.in_(user_ids))]
    if item_ids is not None:
        parts = [parts[0].where(ArenaSeen.item_id.in_(item_ids)), parts[1].where(Lease.item_id.in_(item_ids))]
    stumped = _stump_items_known(user_ids)
    if stumped:
        parts.append(select(Item.id).where(Item.id.in_(stumped)))
    return parts


def known_items(user_ids: list[int]) -> Select:
    """The ids of items any of these members may know the answer to: shown to them in the arena (`arena_seen`,
    every mode), given to them in ordinary labeling (a lease, answered or not), or a stump they wrote or
    confirmed. Never in their rated match."""
    return union(*_known_parts(user_ids))


def known_among(user_ids: list[int], item_ids: list[int]) -> set[int]:
    """Which of `item_ids` any of these members may know (see `known_items`)."""
    if not item_ids:
        return set()
    return set(db.session.scalars(union(*_known_parts(user_ids, item_ids))))


def _unseen_verified(pack_id: int, seen: Select, size: int, rng: random.Random) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(VerifiedLabel.item_id, VerifiedLabel.answer).join(Item, Item.id == VerifiedLabel.item_id)
        .where(VerifiedLabel.pack_id == pack_id, Item.is_exam.is_(False), VerifiedLabel.item_id.not_in(seen))
        .order_by(func.random()).limit(size * 3)
    ).all()
    picked = [(item_id, label) for item_id, answer in rows if (label := _label(answer))]
    rng.shuffle(picked)
    return picked[:size]


def choose_hunt(user_ids: list[int], size: int, rng: random.Random | None = None, pack_id: int | None = None) -> HuntSet | None:
    """A set of `size` items none of these members has seen, about a third of them with a planted error;
    None when no pack has enough."""
    rng = rng or random.Random()  # noqa: S311 - a game's shuffle, not a secret
    packs = _eligible_packs() if pack_id is None else [pack for pack in _eligible_packs() if pack.id == pack_id]
    rng.shuffle(packs)
    seen = known_items(user_ids)
    for pack in packs:
        if len(pack.label_options) < 2:
            continue
        picked = _unseen_verified(pack.id, seen, size, rng)
        if len(picked) < size:
            continue
        confused = confusions(pack.id)
        plant_count = max(1, size // 3)
        to_plant = set(rng.sample(range(size), plant_count))
        truth, shown, planted = {}, {}, {}
        for index, (item_id, label) in enumerate(picked):
            truth[str(item_id)] = label
            shown[str(item_id)] = label
            if index in to_plant:
                wrong = [other for other in confused.get(label, []) if other in pack.label_options]
                wrong = wrong or [other for other in pack.label_options if other != label]
                shown[str(item_id)] = planted[str(item_id)] = wrong[0] if confused.get(label) else rng.choice(wrong)
        return HuntSet(pack.id, [item_id for item_id, _label_ in picked], truth, shown, planted)
    return None


def choose_duel(user_ids: list[int], size: int, rng: random.Random | None = None) -> HuntSet | None:
    """An accuracy duel: mostly gold items (their known answers are the truth), and one live item whose
    answers go to the crowd as ordinary labels. None when no pack has enough unseen gold."""
    rng = rng or random.Random()  # noqa: S311 - a game's shuffle, not a secret
    live_count = 1 if size >= 4 else 0
    seen = known_items(user_ids)
    packs = _eligible_packs()
    rng.shuffle(packs)
    for pack in packs:
        gold = db.session.execute(
            select(Item.id, Item.gold_answer).where(Item.pack_id == pack.id, Item.is_gold.is_(True), Item.is_exam.is_(False),
                                                    Item.status == "open", Item.id.not_in(seen))
            .order_by(func.random()).limit(size - live_count)
        ).all()
        gold = [(item_id, answer) for item_id, answer in gold if _label(answer)]
        if len(gold) < size - live_count:
            continue
        live = list(db.session.scalars(
            select(Item.id).where(Item.pack_id == pack.id, Item.is_gold.is_(False), Item.status == "open", Item.id.not_in(seen),
                                  Item.id.not_in(select(VerifiedLabel.item_id).where(VerifiedLabel.pack_id == pack.id)))
            .order_by(func.random()).limit(live_count)
        ))
        item_ids = [item_id for item_id, _answer in gold] + live
        rng.shuffle(item_ids)
        truth = {str(item_id): _label(answer) for item_id, answer in gold}
        return HuntSet(pack.id, item_ids, truth, {}, {})
    return None
