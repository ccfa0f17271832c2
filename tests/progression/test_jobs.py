from __future__ import annotations

from sqlalchemy import func, select

from sapien import events
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.progression import reactions, summary
from sapien.progression.models import LevelUp
from sapien.queue import make_worker
from tests.progression.helpers import NOW, make_user


def test_sync_job_catches_up_levels_missed_while_listeners_were_off(ctx):
    user_id = make_user("offline")
    events.ledger_entry_posted.disconnect(reactions.on_ledger_entry_posted)
    try:
        ledger.credit(user_id, "xp", 650, kind="quest_reward", key="missed", now=NOW)  # level 4, unseen
    finally:
        events.ledger_entry_posted.connect(reactions.on_ledger_entry_posted, weak=False)
    assert db.session.scalar(select(func.count(LevelUp.id))) == 0
    for _ in range(2):  # jobs are run twice: the second run changes nothing
        assert summary.enqueue_member_syncs() == 1
        make_worker().work(burst=True)
        db.session.remove()
    assert db.session.scalars(select(LevelUp.level).order_by(LevelUp.level)).all() == [2, 3, 4]
