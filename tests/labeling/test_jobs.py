"""The lease sweep job: safe to run twice, keeps itself scheduled, started by the reconciler."""

from __future__ import annotations

from datetime import timedelta

from rq.registry import ScheduledJobRegistry

from sapien.database import utcnow
from sapien.extensions import db
from sapien.labeling import leases, packs
from sapien.labeling.models import Item
from sapien.queue import get_queue, make_worker, reconcile

from .conftest import make_pack, make_user


def test_sweep_job_expires_leases_once_and_schedules_the_next(ctx, tmp_path):
    from jobs.labeling import expire_leases

    pack = make_pack(tmp_path, items=1, labels_per_item=1, lease_minutes=15)
    user = make_user()
    lease = leases.lease_next_item(user, pack.id, utcnow() - timedelta(hours=1))
    assert expire_leases() == 1
    assert expire_leases() == 0  # run twice: nothing more to do
    db.session.expire_all()
    assert db.session.get(Item, lease.item_id).slots_taken == 0
    scheduled = ScheduledJobRegistry(queue=get_queue()).get_job_ids()
    assert len(scheduled) == 1 and scheduled[0].startswith("labeling-expire-leases-")


def test_the_reconciler_starts_the_sweep(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, labels_per_item=1, lease_minutes=15)
    leases.lease_next_item(make_user(), pack.id, utcnow() - timedelta(hours=1))
    assert reconcile()["labeling-lease-sweep"] == 1
    assert reconcile()["labeling-lease-sweep"] == 1  # already queued: still one job
    assert len([job for job in get_queue().get_job_ids() if job.startswith("labeling-expire-leases-")]) == 1
    make_worker().work(burst=True)
    db.session.expire_all()
    assert db.session.get(Item, packs.pack_items(pack.id)[0].id).slots_taken == 0
