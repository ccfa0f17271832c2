"""Fixtures for arena tests: a classification pack whose items carry verified labels, and a few members."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import pytest

from tests.labeling.conftest import make_pack

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
_names = count(1)


@pytest.fixture
def ctx(app):
    with app.test_request_context():
        yield app


@pytest.fixture
def config(app, monkeypatch):
    def setter(**values):
        for key, value in values.items():
            monkeypatch.setitem(app.config, key, value)

    return setter


_HASH: list[str] = []


def make_user(username: str) -> int:
    """A member signed up with one shared password hash (hashed once, not once per member)."""
    from sapien.accounts import service as accounts

    if not _HASH:
        _HASH.append(accounts.hash_password("correct horse battery"))
    return accounts.sign_up(accounts.SignUp(username=username, email=f"{username}@example.org", password="correct horse battery"),
                            now=NOW, password_hash=_HASH[0]).id


def verified_pack(tmp_path, items: int = 12, confusions: bool = True):
    """An open text-classification pack (pos/neg/meh) with `items` verified items; with `confusions`, members
    have answered "meh" on many "pos" items (the confusion the arena plants)."""
    from sqlalchemy import select

    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.labeling.models import Item, Lease, Submission
    from sapien.quality.models import VerifiedLabel

    pack = make_pack(tmp_path, items=items, label_options=["pos", "neg", "meh"], instructions="Positive words make it pos.")
    item_ids = list(db.session.scalars(select(Item.id).where(Item.pack_id == pack.id).order_by(Item.id)))
    confuser = make_user(f"confuser{next(_names)}") if confusions else None
    with unit_of_work() as session:
        for index, item_id in enumerate(item_ids):
            label = "pos" if index % 2 == 0 else "neg"
            session.add(VerifiedLabel(item_id=item_id, pack_id=pack.id, answer={"labels": [label]}, confidence=1.0, method="test",
                                      verified_at=NOW))
            if confuser and label == "pos":
                lease = Lease(item_id=item_id, pack_id=pack.id, user_id=confuser, status="submitted", created_at=NOW, expires_at=NOW)
                session.add(lease)
                session.flush()
                session.add(Submission(lease_id=lease.id, item_id=item_id, pack_id=pack.id, user_id=confuser, answer={"labels": ["meh"]},
                                       created_at=NOW))
    return pack


def members(n: int) -> list[int]:
    return [make_user(f"arena{next(_names)}") for _ in range(n)]


def play(match, user_id: int, *, perfect: bool, now, false_alarm: bool = False, step_seconds: float = 5):
    """Answer every item of `match` as `user_id`: perfect finds every planted error; otherwise keeps every
    label (misses them all), with one false alarm if asked. Returns the time after the last answer."""
    from datetime import timedelta

    from sapien.arena import matches

    clock = now
    alarm_item = next(item_id for item_id in match.item_ids if str(item_id) not in match.planted) if false_alarm else None
    for item_id in match.item_ids:
        clock = clock + timedelta(seconds=step_seconds)
        key = str(item_id)
        if perfect and key in match.planted:
            matches.answer(match.id, user_id, item_id, flagged=True, label=match.truth[key], now=clock)
        elif item_id == alarm_item:
            wrong = next(label for label in ("pos", "neg", "meh") if label != match.truth[key])
            matches.answer(match.id, user_id, item_id, flagged=True, label=wrong, now=clock)
        else:
            matches.answer(match.id, user_id, item_id, flagged=False, label="", now=clock)
    return clock
