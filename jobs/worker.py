"""`python -m jobs.worker [--burst] [queue …]`: one RQ worker, with the scheduler and a heartbeat, inside our app.

It reconciles at start (picking up whatever was pending while no worker ran, and the jobs of workers that
died), which also starts the chain of scheduled reconciles. SIGTERM is a warm shutdown: the current job
finishes first. `--burst` drains the queues and exits (the fault tests use it).
"""

from __future__ import annotations

import sys

from jobs import use_app


def main(argv: list[str]) -> None:
    from sapien import create_app
    from sapien.queue import QUEUE_NAMES, make_worker, reconcile

    burst = "--burst" in argv
    queue_names = [name for name in argv if not name.startswith("--")] or list(QUEUE_NAMES)
    app = create_app()
    use_app(app)
    with app.app_context():
        counts = reconcile()
        app.logger.info("reconciled pending work: %s", counts)
        make_worker(queue_names).work(with_scheduler=True, burst=burst)


if __name__ == "__main__":
    main(sys.argv[1:])
