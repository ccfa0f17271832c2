"""Two answers to the same item settling at once (PostgreSQL row locks): the item is still decided."""

from __future__ import annotations

import threading

import pytest

from tests.quality.conftest import NOW, items_of, make_pack, make_user


@pytest.mark.postgres_only
def test_simultaneous_last_answers_still_decide_the_item(app, tmp_path, config, monkeypatch):
    from sapien.extensions import db
    from sapien.labeling import service as labeling
    from sapien.labeling.models import Item
    from sapien.quality import service as quality

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    with app.test_request_context():
        pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2)
        item_id = items_of(pack.id)[0].id
        members = [make_user(), make_user()]
        leases = [labeling.lease_item(member, item_id, NOW).id for member in members]
        db.session.remove()
    barrier = threading.Barrier(2)
    errors = []
    settle = quality.on_submission_settled

    def settle_together(submission_id, *, now):
        # Both answers are written (not yet committed) before either is settled: the worst interleaving.
        barrier.wait(timeout=10)
        settle(submission_id, now=now)

    monkeypatch.setattr(quality, "on_submission_settled", settle_together)

    def submit(member: int, lease_id: int) -> None:
        with app.app_context():
            try:
                labeling.submit_answer(member, lease_id, {"labels": ["pos"]}, now=NOW)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit, args=pair) for pair in zip(members, leases, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    with app.app_context():
        assert db.session.get(Item, item_id).status == "retired"
