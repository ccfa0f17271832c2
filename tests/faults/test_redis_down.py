"""Redis down (a private redis-server, stopped) while a member answers: the database is the source of
truth, so the answer is accepted and stored (never a 500), and the reconciler finishes the rest once
Redis is back."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import Member
from tests.faults.conftest import Workers, assert_invariants, wait_until_drained
from tests.quality.conftest import make_pack, make_user

pytestmark = pytest.mark.faults
LEASE_ID = re.compile(r'name="lease_id" value="(\d+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def test_an_answer_while_redis_is_down_is_stored_and_the_reconciler_finishes_it(app, make_app, private_redis, tmp_path):
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.ledger.models import LedgerEntry

    site = make_app(REDIS_URL=private_redis.url, RATELIMIT_STORAGE_URI=private_redis.url)
    with site.test_request_context():
        pack = make_pack(tmp_path, items=3, labels_per_item=2, max_labels_per_item=2)
        slug, pack_id = pack.slug, pack.id
    member = Member(site, "outage1")
    assert member.post(f"/packs/{slug}/work/start").status_code == 303
    page = member.client.get(f"/packs/{slug}/work")
    body = page.get_data(as_text=True)
    assert LEASE_ID.search(body), (page.status_code, body[-3000:])
    lease_id, token = LEASE_ID.search(body).group(1), CSRF.search(body).group(1)

    # Another member already answered the same item alike: the member's answer is the second voice that verifies both.
    with site.test_request_context():
        from sapien.database import utcnow
        from sapien.labeling import leases, submissions
        from sapien.labeling.models import Lease

        item_id = db.session.get(Lease, int(lease_id)).item_id
        other = make_user("outage2")
        submissions.submit_answer(other, leases.lease_item(other, item_id, utcnow()).id, {"labels": ["pos"]}, now=utcnow())

    private_redis.stop()
    response = member.client.post(f"/packs/{slug}/work", data={"lease_id": lease_id, "label": "pos", "csrf_token": token})
    assert response.status_code in (200, 303), response.get_data(as_text=True)[:2000]
    with site.app_context():
        db.session.remove()
        stored = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.pack_id == pack_id, Submission.user_id == member.id))
        paid = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == member.id))
    # The answer is in the database, verified (it agrees with the other member's); the settlement it could not queue waits.
    assert stored == 1 and paid == 0

    # Pages that only read Redis as a cache still work.
    assert member.client.get("/dashboard").status_code == 200
    # What cannot work without Redis (signing in counts failures there) says so clearly: a 503, not a 500.
    visitor = site.test_client()
    form = visitor.get("/login").get_data(as_text=True)
    refused = visitor.post("/login", data={"login": "outage1", "password": "correct horse battery", "csrf_token": CSRF.search(form).group(1)})
    assert refused.status_code == 503 and "The site is busy recovering, try again in a moment." in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"]

    private_redis.start()  # empty: everything Redis held is gone
    with site.app_context():
        from sapien.queue import pending_rows

        db.session.remove()
        assert pending_rows()  # the follow-up work the answer could not queue is still pending in the database
    pool = Workers(site, tmp_path)
    try:
        assert pool.start(burst=True).wait() == 0  # its start-up reconcile re-enqueues it from the database
        wait_until_drained(site)
    finally:
        pool.stop_all()
    with site.app_context():
        db.session.remove()
        paid = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == member.id))
    assert paid == 2  # the reconciled settlement paid its points and XP
    assert_invariants(site)


def test_economy_settings_with_redis_down_are_read_from_the_table_and_a_change_still_commits(make_app, private_redis):
    """Each process keeps the settings under a version in Redis (sapien/economy/parameters.py): without Redis
    every session reads the table, and a change commits (its new version is only logged as not sent)."""
    from sapien.economy import parameters
    from sapien.economy.parameters import get_parameter, set_parameter
    from tests.economy.conftest import NOW

    site = make_app(REDIS_URL=private_redis.url, RATELIMIT_STORAGE_URI=private_redis.url)
    with site.test_request_context():
        admin = make_user(role="admin")
        set_parameter("conversion.auto_stake_bp", 2500, actor_id=admin, reason="More skin in the game", now=NOW)
        private_redis.stop()
        parameters.forget_cached_parameters()
        assert get_parameter("conversion.auto_stake_bp") == 2500
        set_parameter("conversion.auto_stake_bp", 3500, actor_id=admin, reason="While Redis is down", now=NOW)  # commits, logs
        parameters.forget_cached_parameters()
        assert get_parameter("conversion.auto_stake_bp") == 3500
        private_redis.start()
        parameters.forget_cached_parameters()
        assert get_parameter("conversion.auto_stake_bp") == 3500  # an empty Redis starts a new version
