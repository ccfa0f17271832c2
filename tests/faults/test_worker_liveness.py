"""/healthz's worker check follows a heartbeat: down within seconds of a kill -9, back by itself after a flush."""

from __future__ import annotations

import time

import pytest
from rq import Worker

from sapien.queue import HEARTBEAT_TTL
from tests.faults.conftest import wait_for, wait_until_drained

pytestmark = pytest.mark.faults


def workers_ok(client) -> bool:
    return client.get("/healthz").get_json()["workers"]["ok"]


def test_healthz_says_503_within_seconds_of_a_kill_9(app, client, workers):
    assert client.get("/healthz").status_code == 503 and not workers_ok(client)
    worker = workers.start()
    wait_for(lambda: workers_ok(client), what="the worker's first heartbeat")
    assert client.get("/healthz").status_code == 200
    worker.kill9()
    killed_at = time.monotonic()
    wait_for(lambda: not workers_ok(client), timeout=HEARTBEAT_TTL + 3, what="/healthz to notice the dead worker")
    assert time.monotonic() - killed_at <= HEARTBEAT_TTL + 2
    response = client.get("/healthz")
    assert response.status_code == 503 and "workers" in response.get_json()["failing"]


def test_healthz_recovers_after_flushdb_while_the_worker_lives(app, client, workers, redis_conn):
    worker = workers.start()
    wait_for(lambda: workers_ok(client), what="the worker's first heartbeat")
    redis_conn.flushdb()
    assert not workers_ok(client)
    flushed_at = time.monotonic()
    wait_for(lambda: workers_ok(client), timeout=5, what="the heartbeat to come back after FLUSHDB")
    assert time.monotonic() - flushed_at < 3
    assert client.get("/healthz").status_code == 200
    # RQ's own registry lists the worker again, and the worker still takes jobs.
    wait_for(lambda: len(Worker.all(connection=redis_conn)) == 1, timeout=5, what="RQ to list the worker again")
    with app.app_context():
        from sapien.queue import enqueue_once

        enqueue_once("tests.jobs.sample_jobs.record_run", "after-flush", job_id="after-flush")
    wait_for(lambda: redis_conn.lrange("test:runs", 0, -1) == [b"after-flush"], what="a job run after the flush")
    assert worker.alive()



def test_sigterm_stops_an_idle_worker_for_good(app, client, workers):
    """The worker process replaces a worker whose loop stopped on an error, but a SIGTERM is a shutdown,
    idle or busy: the process exits instead of starting another worker."""
    worker = workers.start()
    wait_for(lambda: workers_ok(client), what="the worker's first heartbeat")
    wait_until_drained(app)  # its start-up reconcile is done: the worker waits for work
    time.sleep(1)
    worker.term()
    assert worker.wait(timeout=15) == 0
    wait_for(lambda: not workers_ok(client), timeout=HEARTBEAT_TTL + 3, what="the heartbeat to stop")
