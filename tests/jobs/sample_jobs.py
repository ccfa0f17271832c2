"""Jobs used by the queue tests: importable by the in-process worker like any job in jobs/."""

from __future__ import annotations

from jobs import app_context


def record_run(marker: str) -> str:
    from sapien.queue import redis_connection

    with app_context():
        redis_connection().rpush("test:runs", marker)
    return marker


def always_fail(marker: str) -> None:
    raise RuntimeError(f"failing on purpose: {marker}")
