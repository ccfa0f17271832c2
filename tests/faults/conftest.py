"""The fault-injection harness: real `python -m jobs.worker` processes, failpoints, a private redis-server.

A test starts workers with `workers.start(failpoints=...)`, waits for a failpoint with `reached(...)`,
signals the worker (SIGKILL takes its whole process group, like a container kill; SIGTERM goes to the
worker itself, like a deploy), and ends with `assert_invariants()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import ROOT, free_port

DEADLINE = 30.0


def wait_for(predicate: Callable[[], object], timeout: float = DEADLINE, what: str = "condition", every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WorkerProcess:
    def __init__(self, popen: subprocess.Popen, log: Path):
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """kill -9 the worker and its scheduler child (the whole process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def term(self) -> None:
        self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = DEADLINE) -> int:
        return self.popen.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Workers:
    """Starts and always stops real worker processes for one test."""

    def __init__(self, app, tmp_path: Path):
        self.app = app
        self.tmp_path = tmp_path
        self.started: list[WorkerProcess] = []

    def env(self, failpoints: str = "", **extra) -> dict:
        config = self.app.config
        env = {
            **os.environ,
            "SAPIEN_ENV": "test",
            "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": config["REDIS_URL"],
            "CHAIN_RPC_URL": config["CHAIN_RPC_URL"],
            "SAPIEN_INSTANCE_DIR": config["INSTANCE_DIR"],
            "SAPIEN_FAILPOINTS": failpoints,
            "PYTHONUNBUFFERED": "1",
        }
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def start(self, failpoints: str = "", *, burst: bool = False, queues: tuple[str, ...] | list[str] = (), **extra) -> WorkerProcess:
        log = self.tmp_path / f"worker-{len(self.started)}.log"
        args = [sys.executable, "-m", "jobs.worker", *(["--burst"] if burst else []), *queues]
        with log.open("wb") as out:
            popen = subprocess.Popen(args, cwd=ROOT, env=self.env(failpoints, **extra), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        worker = WorkerProcess(popen, log)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.alive():
                worker.kill9()
            else:
                with contextlib.suppress(ProcessLookupError, PermissionError):  # its scheduler child may be left
                    os.killpg(worker.pid, signal.SIGKILL)


@pytest.fixture
def workers(app, tmp_path):
    pool = Workers(app, tmp_path)
    yield pool
    pool.stop_all()


def reached(redis_conn: Redis, name: str, timeout: float = DEADLINE) -> int:
    """Wait until some process announced failpoint `name`; returns its pid."""

    def find():
        for entry in redis_conn.lrange("sapien:failpoints:reached", 0, -1):
            point, pid = entry.decode().rsplit(" ", 1)
            if point == name:
                return int(pid)
        return None

    return wait_for(find, timeout, f"failpoint {name}")


def broken_invariants_of(app) -> list[str]:
    from sapien.extensions import db
    from sapien.invariants import broken_invariants

    with app.app_context():
        db.session.remove()
        return broken_invariants()


def assert_invariants(app) -> None:
    from sapien.extensions import db
    from sapien.invariants import broken_invariants

    with app.app_context():
        db.session.remove()
        broken = broken_invariants()
    assert broken == [], broken


def wait_until_drained(app, timeout: float = DEADLINE) -> None:
    """Until no job is queued or running and every pending row is done (the workers drained it all)."""
    from rq.registry import StartedJobRegistry

    from sapien.extensions import db
    from sapien.queue import QUEUE_NAMES, get_queue, pending_rows

    def drained():
        with app.app_context():
            db.session.remove()
            busy = any(get_queue(n).count or StartedJobRegistry(queue=get_queue(n)).get_job_ids(cleanup=False) for n in QUEUE_NAMES)
            return not busy and not pending_rows()

    wait_for(drained, timeout, "the queues to drain")


class RedisServer:
    """A redis-server of our own on a free port, with no persistence: a restart loses everything."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.dir = tmp_path / "redis"
        self.dir.mkdir(exist_ok=True)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        wait_for(lambda: _pings(client), 10, "redis-server to answer")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, down_for: float = 0.5) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture
def private_redis(tmp_path):
    if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
        pytest.fail("redis-server is missing: the fault tests start their own")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
