"""Redis (a private redis-server) restarted while members submit answers and a real worker runs."""

from __future__ import annotations

import re
import threading
import time

import pytest
from redis.exceptions import RedisError
from sqlalchemy import func, select

from tests.conftest import Member
from tests.faults.conftest import Workers, assert_invariants, wait_for, wait_until_drained
from tests.quality.conftest import make_pack

pytestmark = pytest.mark.faults
LEASE_ID = re.compile(r'name="lease_id" value="(\d+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def answer_loop(member: Member, slug: str, stop: threading.Event, results: list) -> None:
    """Answer item after item through the work page's form until told to stop (or out of work)."""
    while not stop.is_set():
        try:
            if not answer_once(member, slug, results):
                return  # no more work
        except RedisError:  # the test client re-raises what the app did not handle: Redis is down
            results.append(("answer", 500))
            time.sleep(0.05)


def answer_once(member: Member, slug: str, results: list) -> bool:
    page = member.client.get(f"/packs/{slug}/work")
    body = page.get_data(as_text=True)
    lease = LEASE_ID.search(body)
    if lease is None and page.status_code == 200 and "work/start" in body:  # the Start form takes an item
        page = member.client.post(f"/packs/{slug}/work/start", data={"csrf_token": CSRF.search(body).group(1)}, follow_redirects=True)
        body = page.get_data(as_text=True)
        lease = LEASE_ID.search(body)
    if lease is None:
        results.append(("lease", page.status_code))
        return page.status_code != 200
    token = CSRF.search(body).group(1)
    response = member.client.post(f"/packs/{slug}/work", data={"lease_id": lease.group(1), "label": "pos", "csrf_token": token})
    results.append(("answer", response.status_code))
    return True


def test_redis_restarted_while_answers_are_submitted(app, make_app, private_redis, tmp_path):
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.leaderboards.boards import built_marker
    from sapien.ledger.models import LedgerEntry
    from sapien.queue import worker_count

    site = make_app(REDIS_URL=private_redis.url, RATELIMIT_STORAGE_URI=private_redis.url)
    with site.test_request_context():
        # Two voices per item: the members' agreeing answers verify each other and the settlement pays them.
        pack = make_pack(tmp_path, items=40, labels_per_item=2, max_labels_per_item=2, daily_cap=1000)
        slug = pack.slug
    members = [Member(site, f"restart{n}") for n in range(3)]
    pool = Workers(site, tmp_path)
    try:
        worker = pool.start(RECONCILE_EVERY_SECONDS=2)
        with site.app_context():
            wait_for(lambda: worker_count() == 1, what="the worker")
        stop, results = threading.Event(), []
        threads = [threading.Thread(target=answer_loop, args=(member, slug, stop, results)) for member in members]
        for thread in threads:
            thread.start()
        wait_for(lambda: sum(kind == "answer" and code in (200, 303) for kind, code in results) >= 10, what="answers before the restart")
        before = len(results)
        private_redis.restart()
        wait_for(lambda: sum(kind == "answer" and code in (200, 303) for kind, code in results[before:]) >= 10, what="answers after the restart")
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert worker.alive()
        with site.app_context():
            wait_for(lambda: worker_count() == 1, timeout=20, what="the heartbeat after the restart")  # a loaded 2-CPU machine
            # The reconcile queued on the reset rebuilt the lost boards, and nothing is left pending.
            from redis import Redis

            wait_for(lambda: Redis.from_url(private_redis.url).exists(built_marker()), what="the boards to be rebuilt")
        # The worker catches up on everything the outage left (decisions, settlement, the rebuilt boards) beside
        # the rest of a parallel suite on 2 CPUs: it once took over 30 s there.
        wait_until_drained(site, timeout=90)
        with site.app_context():
            db.session.remove()
            submissions = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.pack_id == pack.id))
            paid = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.idempotency_key.like("submission:%:xp")))
            marked_paid = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.reward_state == "paid"))
            unpaid = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.reward_state == "verified"))
        answered_ok = sum(kind == "answer" and code in (200, 303) for kind, code in results)
        # Every verified answer was paid once (an answer whose item still waits for its second voice waits too).
        assert submissions >= answered_ok > 20 and paid == marked_paid > 0 and unpaid == 0
        assert_invariants(site)
        print(f"{answered_ok} answers, {sum(code >= 500 for _, code in results)} refused while Redis was down", utcnow())
    finally:
        pool.stop_all()
