"""Named failpoints for the fault-injection tests (tests/faults/): a no-op unless set in the environment.

`SAPIEN_FAILPOINTS="aggregate.before-commit=kill,reconcile.enqueued=pause:5"` makes `failpoint(name)` act at
that point of the code, in this process only:
- `kill`: SIGKILL this process (a `kill -9` at exactly that line);
- `pause:SECONDS`: announce the point, then sleep (the test signals the process meanwhile);
- `barrier:N`: announce, then wait until N processes reached the point (inside an RQ job: N runs of the same
  kind of job), so two workers run one job at once;
- `raise`: raise `FailpointError`.
Announcements go to the Redis list `sapien:failpoints:reached` of `REDIS_URL`, as "name pid".
"""

from __future__ import annotations

import os
import signal
import time


class FailpointError(RuntimeError):
    pass


def _parse(spec: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in spec.split(",") if "=" in part)


_ACTIVE = _parse(os.environ.get("SAPIEN_FAILPOINTS", ""))
REACHED_KEY = "sapien:failpoints:reached"


def failpoint(name: str) -> None:
    if _ACTIVE and name in _ACTIVE:
        _trigger(name, _ACTIVE[name])


def _redis():
    from redis import Redis

    return Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


def _trigger(name: str, action: str) -> None:
    kind, _, argument = action.partition(":")
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "raise":
        raise FailpointError(name)
    connection = _redis()
    connection.rpush(REACHED_KEY, f"{name} {os.getpid()}")
    if kind == "pause":
        time.sleep(float(argument or 5))
    elif kind == "barrier":  # one barrier per kind of job when inside an RQ job
        from rq import get_current_job

        job = get_current_job()
        key = f"sapien:failpoints:barrier:{name}:{job.func_name if job else ''}"
        arrived = connection.incr(key)
        deadline = time.monotonic() + 20
        while arrived < int(argument or 2) and time.monotonic() < deadline:
            time.sleep(0.05)
            arrived = int(connection.get(key) or 0)
