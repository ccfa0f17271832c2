"""Two runs of the decision job at once (PostgreSQL row locks): each takes its own answers, and the item
is still decided once."""

from __future__ import annotations

import threading

import pytest

from tests.quality.conftest import NOW, answer, items_of, make_pack, make_user


@pytest.mark.postgres_only
def test_simultaneous_decision_runs_still_decide_the_item(app, tmp_path, config):
    from sqlalchemy import select

    from sapien.extensions import db
    from sapien.labeling.models import Item, Submission
    from sapien.quality import decisions
    from sapien.quality.models import VerifiedLabel

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    with app.test_request_context():
        pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2)
        item_id = items_of(pack.id)[0].id
        answered = [answer(make_user(), item_id, {"labels": ["pos"]}, decide=False).submission_id for _ in range(2)]
        db.session.remove()
    barrier = threading.Barrier(2)
    taken, errors = [], []

    def decide() -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                taken.append(decisions.decide_batch(now=NOW, limit=1))  # one answer each: SKIP LOCKED parts them
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=decide) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and sorted(taken) == [1, 1]
    with app.app_context():
        assert db.session.get(Item, item_id).status == "retired"
        assert db.session.get(VerifiedLabel, item_id).answer == {"labels": ["pos"]}
        rows = db.session.execute(select(Submission.reward_state, Submission.awaiting_decision).where(Submission.id.in_(answered))).all()
        assert sorted(rows) == [("paid", False), ("paid", False)] or sorted(rows) == [("verified", False), ("verified", False)]
        assert decisions.decide_awaiting_items(now=NOW) == 0  # nothing is left for a later run
