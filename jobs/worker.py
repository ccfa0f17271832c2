"""`python -m jobs.worker [--burst] [queue …]`: one RQ worker, with the scheduler and a heartbeat, inside our app.

Its first job is a reconcile (whatever was pending while no worker ran, and the jobs of workers that
died), which also starts the chain of scheduled reconciles. SIGTERM is a warm shutdown: the current job
finishes first. `--burst` drains the queues and exits. A worker whose loop stops on an error (RQ quits on
any, e.g. Redis lost while it records a finished job) is replaced by a fresh one in the same process.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from redis.exceptions import RedisError

from jobs import use_app

log = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    from sapien import create_app
    from sapien.queue import QUEUE_NAMES, enqueue_once, make_worker

    burst = "--burst" in argv
    queue_names = [name for name in argv if not name.startswith("--")] or list(QUEUE_NAMES)
    app = create_app({"DATABASE_APPLICATION_NAME": os.environ.get("DATABASE_APPLICATION_NAME", "sapien-worker")})
    use_app(app)
    with app.app_context():
        while True:
            worker = make_worker(queue_names)
            try:
                if "default" in queue_names:  # housekeeping runs on the default queue
                    # Each start (a replacement worker too) reconciles first: what was pending while no worker
                    # ran, what Redis lost, and the jobs of workers that died.
                    enqueue_once("jobs.maintenance.reconcile_pending_work", job_id=f"maintenance-reconcile-start-{time.time_ns()}", at_front=True)
                worker.work(with_scheduler=True, burst=burst)
            except RedisError as error:  # lost while starting or stopping: try again once Redis answers
                log.warning("worker %s: Redis unavailable: %s", worker.name, error)
            if burst or worker._stop_requested or worker._shutdown_requested_date is not None:  # SIGTERM, idle or busy
                break
            # RQ quits its loop on any unhandled error, such as Redis going away while it records a finished
            # job. The process is this worker's supervisor: it starts a fresh worker (the job left "started"
            # is found abandoned and queued again by the reconciler).
            log.warning("worker %s stopped on an error; starting a new one", worker.name)
            time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1:])
