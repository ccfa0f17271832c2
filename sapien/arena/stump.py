"""Stump the model (after Dynabench): members write text items that the pack's baseline classifier gets wrong.

The baseline is scikit-learn's TF-IDF and logistic regression trained on the pack's verified labels (kept
per pack until its count of verified labels changes). An item the baseline already labels as its author
says is refused at once. A fooling item waits for `CONFIRMATIONS` other members to agree with its author's
label: then it becomes a gold item of the pack (the campaign's data, and its gold answer is the confirmed
label) and its author earns `STUMP_POINTS` points once. Two members who disagree with the author reject it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sqlalchemy import select

from sapien.arena.errors import ArenaError
from sapien.arena.models import ArenaStump
from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.labeling.models import Item, TaskPack
from sapien.ledger import service as ledger
from sapien.quality.models import VerifiedLabel

CONFIRMATIONS = 2
STUMP_POINTS = 25
MIN_TEXT, MAX_TEXT = 10, 1000
_MODELS: dict[int, tuple[str, Pipeline]] = {}  # pack id → (digest of its training set, model)


def stump_packs() -> list[TaskPack]:
    return list(db.session.scalars(select(TaskPack).where(TaskPack.status == "open", TaskPack.task_type == "text_classification",
                                                          TaskPack.multi_label.is_(False)).order_by(TaskPack.name)))


def baseline(pack_id: int) -> Pipeline | None:
    """The pack's baseline classifier, or None while its verified labels cover fewer than two classes.

    Fitted once per training set: the cache key is a digest of the texts and labels themselves, so a label
    overridden in place (the count unchanged) or a pack id reused after a reset never serves a stale model."""
    rows = db.session.execute(select(Item.payload, VerifiedLabel.answer).join(Item, Item.id == VerifiedLabel.item_id)
                              .where(VerifiedLabel.pack_id == pack_id).order_by(Item.id)).all()
    texts, labels = [], []
    for payload, answer in rows:
        found = (answer or {}).get("labels") or []
        if (payload or {}).get("text") and len(found) == 1:
            texts.append(payload["text"])
            labels.append(found[0])
    if len(set(labels)) < 2:
        return None
    digest = hashlib.sha256(json.dumps([texts, labels]).encode()).hexdigest()
    cached = _MODELS.get(pack_id)
    if cached and cached[0] == digest:
        return cached[1]
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=1), LogisticRegression(max_iter=500))
    model.fit(texts, labels)
    _MODELS[pack_id] = (digest, model)
    return model


def _pack(pack_id: int) -> TaskPack:
    pack = db.session.get(TaskPack, pack_id) if 0 < pack_id < 2**31 else None  # a junk id is not a database error
    if pack is None or pack not in stump_packs():
        raise ArenaError(_l("Choose an open text classification pack."), "pack")
    return pack


def submit(author_id: int, pack_id: int, text: str, label: str, now: datetime) -> ArenaStump:
    pack = _pack(pack_id)
    text = (text or "").strip()
    if not MIN_TEXT <= len(text) <= MAX_TEXT:
        raise ArenaError(_l("Write between %(low)s and %(high)s characters.", low=MIN_TEXT, high=MAX_TEXT), "text")
    if label not in pack.label_options:
        raise ArenaError(_l("Pick one of the pack's labels."), "label")
    model = baseline(pack.id)
    if model is None:
        raise ArenaError(_l("This pack has too few verified labels to train its model yet."), "pack")
    predicted = str(model.predict([text])[0])
    if predicted == label:
        raise ArenaError(_l("The model got that one right (%(label)s). Try something trickier!", label=predicted), "text")
    with unit_of_work() as session:
        row = ArenaStump(pack_id=pack.id, author_id=author_id, text=text, label=label, model_label=predicted, status="pending", votes={},
                         created_at=now)
        session.add(row)
        session.flush()
    return row


def to_confirm(user_id: int, limit: int = 10) -> list[ArenaStump]:
    rows = db.session.scalars(select(ArenaStump).where(ArenaStump.status == "pending", ArenaStump.author_id != user_id)
                              .order_by(ArenaStump.id).limit(limit * 3))
    return [row for row in rows if str(user_id) not in (row.votes or {})][:limit]


def mine(user_id: int, limit: int = 20) -> list[ArenaStump]:
    return list(db.session.scalars(select(ArenaStump).where(ArenaStump.author_id == user_id).order_by(ArenaStump.id.desc()).limit(limit)))


def confirm(stump_id: int, user_id: int, label: str, now: datetime) -> ArenaStump:
    """Another member says what the true label is (the row is locked: votes never get lost to a race)."""
    with unit_of_work() as session:
        row = session.scalars(select(ArenaStump).where(ArenaStump.id == stump_id).with_for_update()
                              .execution_options(populate_existing=True)).one_or_none()
        if row is None:
            raise ArenaError(_l("There is no such item to confirm."))
        if row.author_id == user_id:
            raise ArenaError(_l("Others confirm your items, not you."))
        if row.status != "pending":
            raise ArenaError(_l("That item was already decided."))
        pack = session.get(TaskPack, row.pack_id)
        if label not in pack.label_options:
            raise ArenaError(_l("Pick one of the pack's labels."), "label")
        if str(user_id) in row.votes:
            raise ArenaError(_l("You already confirmed that item."))
        row.votes = {**row.votes, str(user_id): label}
        agree = sum(1 for vote in row.votes.values() if vote == row.label)
        disagree = len(row.votes) - agree
        if agree >= CONFIRMATIONS:
            item = Item(pack_id=row.pack_id, external_id=f"arena-stump-{row.id}", payload={"text": row.text}, is_gold=True,
                        gold_answer={"labels": [row.label]}, created_at=now,
                        gold_explanation=f"Written in the arena to stump the model, which said {row.model_label}; members confirmed {row.label}.")
            session.add(item)
            session.flush()
            row.status, row.item_id, row.decided_at = "confirmed", item.id, now
            ledger.credit(row.author_id, "points", STUMP_POINTS, kind="arena:stump", key=f"arena:stump:{row.id}", now=now,
                          memo=f"stumped the model in {pack.slug}")
        elif disagree >= CONFIRMATIONS:
            row.status, row.decided_at = "rejected", now
    return row
