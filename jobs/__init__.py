"""RQ jobs: thin functions that take ids, push an app context, call one service function.

They let exceptions raise, so RQ's Retry and failed-job registry do their work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

from sapien.failpoints import failpoint

_worker_app: Flask | None = None


def use_app(app: Flask) -> None:
    """The worker process builds its app once and registers it here."""
    global _worker_app
    _worker_app = app


@contextmanager
def app_context() -> Iterator[Flask]:
    """A fresh app context (and so a fresh database session) for one job run."""
    global _worker_app
    if has_app_context():
        app = current_app._get_current_object()
    else:
        if _worker_app is None:
            from sapien import create_app

            _worker_app = create_app()
        app = _worker_app
    with app.app_context():
        failpoint("job.start")
        yield app
