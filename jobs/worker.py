"""`python -m jobs.worker [queue …]`: one RQ worker, with the scheduler, inside our app."""

from __future__ import annotations

import sys

from jobs import use_app


def main(argv: list[str]) -> None:
    from sapien import create_app
    from sapien.queue import QUEUE_NAMES, make_worker, reconcile

    app = create_app()
    use_app(app)
    with app.app_context():
        queue_names = argv or list(QUEUE_NAMES)
        counts = reconcile()  # pick up whatever was pending while no worker ran
        app.logger.info("reconciled pending work: %s", counts)
        make_worker(queue_names).work(with_scheduler=True)


if __name__ == "__main__":
    main(sys.argv[1:])
