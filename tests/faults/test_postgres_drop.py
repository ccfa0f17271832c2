"""PostgreSQL connections dropped mid-transaction: the server ends a process's backend (pg_terminate_backend,
as a failover or an admin would) while a job or a web request holds a transaction open at a pause failpoint.

The job fails cleanly, RQ retries it, and it ends with one effect. The request gets a 503 "try again" page,
writes nothing, and the next request works on a fresh connection. Every process names its connections
"sapien-web-<pid>" or "sapien-worker-<pid>", so the test ends exactly the backend of the process it paused.
"""

from __future__ import annotations

import re
import threading

import pytest
import requests
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import func, select, text

from tests.faults.conftest import assert_invariants, reached, wait_for
from tests.faults.scenarios import aggregation_requested, answered_pack, label_methods
from tests.gunicorn_server import running_gunicorn
from tests.quality.conftest import items_of, make_pack, make_user

pytestmark = [pytest.mark.faults, pytest.mark.postgres_only]

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
PAUSE = 2.0  # seconds a paused process sits in its open transaction


def terminate_backend(app, application_name: str) -> int:
    """End the backends that process holds open in a transaction on the test database; how many."""
    from sapien.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = :name AND state = 'idle in transaction'"
            ),
            {"name": application_name},
        ).scalar_one()
        connection.commit()
        return ended


def reached_count(redis_conn, name: str) -> int:
    return sum(1 for entry in redis_conn.lrange("sapien:failpoints:reached", 0, -1) if entry.decode().rsplit(" ", 1)[0] == name)


def test_a_job_whose_connection_is_dropped_fails_cleanly_and_its_retry_has_one_effect(app, workers, redis_conn, tmp_path):
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.quality.aggregation_queue import aggregation_job_id, request_aggregation
    from sapien.quality.models import VerifiedLabel

    pack_id = answered_pack(app, tmp_path)
    with app.app_context():
        job = request_aggregation(pack_id, now=utcnow())
    assert job.retries_left == 3
    worker = workers.start(f"aggregate.before-commit=pause:{PAUSE}")
    assert reached(redis_conn, "aggregate.before-commit") == worker.pid  # labels upserted, not committed
    assert terminate_backend(app, f"sapien-worker-{worker.pid}") == 1

    def fetch():
        return Job.fetch(aggregation_job_id(pack_id), connection=redis_conn, serializer=JSONSerializer)

    # The commit fails on the dead connection: the run rolls back and RQ schedules a retry; nothing half-done.
    wait_for(lambda: fetch().retries_left == 2, timeout=15, what="the failed run to be scheduled for a retry")
    assert fetch().get_status() == JobStatus.SCHEDULED
    assert label_methods(app, pack_id) == ["online_vote", "online_vote"] and aggregation_requested(app, pack_id)
    assert worker.alive()  # the worker itself lives on
    # The retry (10 s later) runs on a fresh connection and finishes the work, once.
    wait_for(lambda: fetch().get_status() == JobStatus.FINISHED, timeout=25, what="the retried run to finish")
    assert reached_count(redis_conn, "aggregate.before-commit") == 2
    result = fetch().return_value()
    assert fetch().retries_left == 2 and result["labels"] == 2 and result["method"] != "online_vote"
    assert label_methods(app, pack_id) == [result["method"]] * 2 and not aggregation_requested(app, pack_id)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(VerifiedLabel).where(VerifiedLabel.pack_id == pack_id)) == 2
    assert worker.alive() and "OperationalError" in worker.output()
    assert_invariants(app)


@pytest.fixture
def paused_web_server(app):
    """A one-worker gunicorn serving the test app, whose answer submissions pause before their commit."""
    env = {
        "SAPIEN_FAILPOINTS": f"labeling.submit.before-commit=pause:{PAUSE}",
        "REDIS_URL": app.config["REDIS_URL"],  # where the failpoint announces itself
    }
    with running_gunicorn(app.config["TEST_OVERRIDES"], workers=1, env=env) as base:
        yield base


def test_a_request_whose_connection_is_dropped_gets_a_503_writes_nothing_and_the_next_works(app, paused_web_server, redis_conn, tmp_path):
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import leases
    from sapien.labeling.models import Lease, Submission
    from sapien.leaderboards.rebuild import rebuild_all
    from sapien.ledger.models import LedgerEntry

    base = paused_web_server
    with app.test_request_context():
        user_id = make_user("dropped")
        pack = make_pack(tmp_path, items=1)
        slug, item_id = pack.slug, items_of(pack.id)[0].id
        lease_id = leases.lease_item(user_id, item_id, utcnow()).id
        rebuild_all(utcnow())  # a running site: its leaderboards are built (no worker runs in this test)
    browser = requests.Session()
    token = CSRF.search(browser.get(f"{base}/login", timeout=30).text).group(1)
    signed_in = browser.post(f"{base}/login", data={"login": "dropped", "password": "correct horse battery", "csrf_token": token},
                             allow_redirects=False, timeout=30)
    assert signed_in.status_code == 303
    token = CSRF.search(browser.get(f"{base}/dashboard", timeout=30).text).group(1)
    form = {"lease_id": str(lease_id), "label": "pos", "csrf_token": token}

    def submit() -> requests.Response:
        return browser.post(f"{base}/packs/{slug}/work", data=form, allow_redirects=False, timeout=30)

    def written() -> dict:
        with app.app_context():
            db.session.remove()
            return {
                "submissions": db.session.scalar(select(func.count()).select_from(Submission).where(Submission.lease_id == lease_id)),
                "ledger": db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == user_id)),
                "lease": db.session.scalar(select(Lease.status).where(Lease.id == lease_id)),
            }

    answers: list[requests.Response] = []
    sender = threading.Thread(target=lambda: answers.append(submit()))
    sender.start()
    pid = reached(redis_conn, "labeling.submit.before-commit")  # the answer, its pay and its lease claim, uncommitted
    assert terminate_backend(app, f"sapien-web-{pid}") == 1
    sender.join(timeout=30)
    [dropped] = answers
    assert dropped.status_code == 503, dropped.text[:500]
    assert "lost its connection to the database" in dropped.text and "Traceback" not in dropped.text
    assert written() == {"submissions": 0, "ledger": 0, "lease": "active"}  # nothing half-done
    assert_invariants(app)
    # The very next request runs on a fresh connection: the same answer goes through, once.
    again = submit()
    assert again.status_code in (302, 303), again.text[:500]
    assert "feedback=" in again.headers["Location"]
    after = written()
    # Its reward waits for the item's verification (one answer alone verifies nothing): no ledger entry yet.
    assert after["submissions"] == 1 and after["ledger"] == 0 and after["lease"] == "submitted"
    assert browser.get(f"{base}/dashboard", timeout=30).status_code == 200
    assert_invariants(app)
