"""Two answers to the same item settling at once (PostgreSQL row locks): the item is still decided."""

from __future__ import annotations

import threading

import pytest

from tests.quality.conftest import NOW, items_of, make_pack, make_user


@pytest.mark.postgres_only
def test_simultaneous_last_answers_still_decide_the_item(app, tmp_path, config):
    from sapien import events
    from sapien.extensions import db
    from sapien.labeling import leases as labeling_leases
    from sapien.labeling import submissions
    from sapien.labeling.models import Item
    from sapien.quality import online

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    with app.test_request_context():
        pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2)
        item_id = items_of(pack.id)[0].id
        members = [make_user(), make_user()]
        leases = [labeling_leases.lease_item(member, item_id, NOW).id for member in members]
        db.session.remove()
    barrier = threading.Barrier(2)
    errors = []

    def settle_together(_sender=None, *, submission_id, now):
        # Both answers are written (not yet committed) before either is settled: the worst interleaving.
        barrier.wait(timeout=10)
        online.on_submission_settled(submission_id=submission_id, now=now)

    events.submission_settled.disconnect(online.on_submission_settled)
    events.submission_settled.connect(settle_together)

    def submit(member: int, lease_id: int) -> None:
        with app.app_context():
            try:
                submissions.submit_answer(member, lease_id, {"labels": ["pos"]}, now=NOW)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    try:
        threads = [threading.Thread(target=submit, args=pair) for pair in zip(members, leases, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        events.submission_settled.disconnect(settle_together)
        events.submission_settled.connect(online.on_submission_settled, weak=False)
    assert not errors
    with app.app_context():
        assert db.session.get(Item, item_id).status == "retired"
