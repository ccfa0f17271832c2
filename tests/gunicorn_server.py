"""A real gunicorn serving the test app in processes of its own (tests/web/gunicorn_app.py), for tests that
need what one process cannot show: limits shared across workers, a backend ended under a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import ROOT, free_port


@contextmanager
def running_gunicorn(overrides: dict, *, workers: int, env: dict | None = None, start_seconds: float = 120) -> Iterator[str]:
    """Start gunicorn with `workers` workers on a free port, wait until it answers, yield its base URL, stop it."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--graceful-timeout", "5", "tests.web.gunicorn_app:app"],
        cwd=ROOT, env={**os.environ, **(env or {}), "SAPIEN_TEST_OVERRIDES": json.dumps(overrides)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                if requests.get(f"{base}/login", timeout=60).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
