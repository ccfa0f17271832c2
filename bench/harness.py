"""Shared plumbing for benchmarks: a fresh database, gunicorn servers, wrk runs, result rows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sapien_bench")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


@dataclass
class Figure:
    benchmark: str
    figure: str
    value: float
    unit: str
    ceiling: str = ""  # the same quantity for the machine's ceiling, measured in this run
    goal: str = ""
    met: bool | None = None


def recreate_database(url: str = BENCH_DATABASE_URL) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def fresh_app(**overrides):
    """The app on a fresh benchmark database, migrated (what every in-process benchmark starts from)."""
    from flask_migrate import upgrade

    from sapien import create_app

    recreate_database()
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": BENCH_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        "REDIS_URL": BENCH_REDIS_URL,
        "RATELIMIT_STORAGE_URI": BENCH_REDIS_URL,
        "QUEST_ROTATION": False,
        **overrides,
    })
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    return app


def app_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        "RATELIMIT_DEFAULT": "100000000 per minute",
        "LOGIN_RATE_LIMIT": "100000000 per minute",
        "LOGIN_ADDRESS_RATE_LIMIT": "100000000 per minute",
        **extra,
    }


def flask(*args: str) -> None:
    subprocess.run([str(VENV_BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=app_env(), check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(app_path: str, workers: int = 2, env: dict | None = None) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app_path],
        cwd=ROOT,
        env=env or app_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        import urllib.request

        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except Exception as error:  # noqa: BLE001 - 404/503 still mean "up"
                if hasattr(error, "code"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {app_path} did not start") from error
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_for_idle_worker(redis_url: str = BENCH_REDIS_URL, seconds: float = 120.0) -> None:
    """Wait until the RQ worker has registered and finished its start-up work (the reconcile, a board
    rebuild after a flushed Redis), so a measurement does not include it; and, after a load, until the runs
    the load asked for are done (batch jobs are scheduled a moment ahead: those due within seconds count)."""
    from redis import Redis
    from rq import Queue, Worker
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from sapien.queue import QUEUE_NAMES

    connection = Redis.from_url(redis_url)
    deadline = time.monotonic() + seconds
    quiet_since = None

    def due_soon(name: str) -> int:
        return connection.zcount(ScheduledJobRegistry(name, connection=connection).key, 0, time.time() + 5)

    while time.monotonic() < deadline:
        busy = not Worker.all(connection=connection) or any(
            Queue(name, connection=connection).count or StartedJobRegistry(name, connection=connection).count or due_soon(name)
            for name in QUEUE_NAMES
        )
        quiet_since = None if busy else (quiet_since or time.monotonic())
        if quiet_since and time.monotonic() - quiet_since > 1.0:
            return
        time.sleep(0.2)
    raise RuntimeError("the RQ worker did not settle")


@dataclass
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int = 10, connections: int = 16, threads: int = 2, headers: dict | None = None) -> LoadResult:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `apt-get install wrk` (make bench installs it)")
    command = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return LoadResult(rps, p50, p99, int(non_2xx.group(1)) if non_2xx else 0)


def python_version() -> str:
    return sys.version.split()[0]
