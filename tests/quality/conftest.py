"""Fixtures for quality tests: members, packs and answers made through the real labeling service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest

from tests.labeling.conftest import open_pack  # noqa: F401 - the quality tests publish their packs the same way

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
_names = count(1)


@pytest.fixture
def ctx(app):
    with app.test_request_context():
        yield app


@pytest.fixture
def config(app, monkeypatch):
    """Set app config keys for one test."""

    def setter(**values):
        for key, value in values.items():
            monkeypatch.setitem(app.config, key, value)

    return setter


def make_user(username: str | None = None, role: str = "member") -> int:
    from sapien.accounts import service as accounts

    username = username or f"quser{next(_names)}"
    user = accounts.sign_up(accounts.SignUp(username=username, email=f"{username}@example.org", password="correct horse battery"), now=NOW, role=role)
    return user.id


def make_pack(tmp_path: Path, *, items: int = 3, gold: int = 0, task_type: str = "text_classification", rows: list[dict] | None = None,
              kind: str = "enterprise", **settings):
    from sapien.labeling import imports, packs

    campaign = packs.create_campaign(name=f"Campaign {next(_names)}", kind=kind, actor_id=None, now=NOW)
    base = {
        "name": "Sentiment",
        "slug": f"qpack-{next(_names)}",
        "task_type": task_type,
        "label_options": ["pos", "neg"] if task_type.endswith("classification") else [],
        "labels_per_item": 1,
        "max_labels_per_item": 3,
        "gold_rate_percent": 0,
        "review_rate_percent": 0,
        "reward_points": 10,
        "reward_xp": 5,
    }
    pack = packs.create_pack(campaign.id, {**base, **settings}, actor_id=None, now=NOW)
    if rows is None:
        rows = [{"external_id": f"i{n}", "text": f"Item number {n} is nice."} for n in range(items)]
        rows += [{"external_id": f"g{n}", "text": f"Gold {n} is great.", "gold": {"labels": ["pos"]}, "explanation": "Great is positive."} for n in range(gold)]
    if rows:
        folder = tmp_path / pack.slug
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "items.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        report = imports.import_items(pack.id, path, media_dir=None, now=NOW)
        assert not report.problems, report.problems
    return open_pack(pack)


def items_of(pack_id: int, *, gold: bool | None = None):
    from sqlalchemy import select

    from sapien.extensions import db
    from sapien.labeling.models import Item

    query = select(Item).where(Item.pack_id == pack_id).order_by(Item.id)
    if gold is not None:
        query = query.where(Item.is_gold.is_(gold))
    return list(db.session.scalars(query))


def answer(user_id: int, item_id: int, value: dict, now=NOW, *, decide: bool = True):
    """Lease a specific item and submit an answer through labeling's real path; then, unless `decide` is
    False, run the decision job's work the way a worker keeping up would (`decide_items`)."""
    from sapien.labeling import leases, submissions

    lease = leases.lease_item(user_id, item_id, now)
    result = submissions.submit_answer(user_id, lease.id, value, now=now)
    if decide:
        decide_items(now)
    return result


def decide_items(now=NOW) -> int:
    """`tests.conftest.decide_items` at the quality tests' moment."""
    from tests.conftest import decide_items as run_decisions

    return run_decisions(now)


def label(name: str) -> dict:
    return {"labels": [name]}
