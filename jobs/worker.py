"""`python -m jobs.worker [--burst] [queue …]`: one RQ worker, with the scheduler and a heartbeat, inside our app.

Its first job is a reconcile (whatever was pending while no worker ran, and the jobs of workers that
died), which also starts the chain of scheduled reconciles. SIGTERM is a warm shutdown: the current job
finishes first. `--burst` drains the queues and exits.
"""

from __future__ import annotations

import os
import sys
import time

from jobs import use_app


def main(argv: list[str]) -> None:
    from sapien import create_app
    from sapien.queue import QUEUE_NAMES, enqueue_once, make_worker

    burst = "--burst" in argv
    queue_names = [name for name in argv if not name.startswith("--")] or list(QUEUE_NAMES)
    app = create_app({"DATABASE_APPLICATION_NAME": os.environ.get("DATABASE_APPLICATION_NAME", "sapien-worker")})
    use_app(app)
    with app.app_context():
        if "default" in queue_names:  # housekeeping runs on the default queue
            enqueue_once("jobs.maintenance.reconcile_pending_work", job_id=f"maintenance-reconcile-start-{time.time_ns()}", at_front=True)
        make_worker(queue_names).work(with_scheduler=True, burst=burst)


if __name__ == "__main__":
    main(sys.argv[1:])
