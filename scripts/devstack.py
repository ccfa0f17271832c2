"""Start what is missing, run the thing, stop what we started.

`run`: Redis (if none answers), espeak-ng (if absent; it speaks the transcription demo pack), anvil (if
CHAIN_RPC_URL is unset), migrations, demo data, an RQ worker and the web server. `test`: Redis, PostgreSQL (from Debian's packages if none answers on 5432),
chromium and espeak-ng (installed if absent), then pytest. `bench`: the same services, then the benchmarks.
`soak`: the same services, then `bench.soak` (SOAK_SECONDS, 600 by default).
Ctrl-C stops every process this script started, and nothing else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
started: list[subprocess.Popen] = []


def say(message: str) -> None:
    print(f"[sapien] {message}", flush=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.2)
    raise SystemExit(f"[sapien] {what} did not start on {host}:{port} within {seconds:.0f}s")


def apt_install(*packages: str) -> None:
    if not shutil.which("apt-get"):
        raise SystemExit(f"[sapien] please install {' '.join(packages)}: apt-get is not available here")
    say(f"installing {' '.join(packages)} from Debian's packages …")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def spawn(command: list[str], **kwargs) -> subprocess.Popen:
    # A process group of its own, so Ctrl-C in the terminal reaches us first and we stop it cleanly.
    process = subprocess.Popen(command, start_new_session=True, **kwargs)
    started.append(process)
    return process


def stop_started() -> None:
    for process in reversed(started):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in reversed(started):
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def ensure_redis(url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if port_open(host, port):
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"[sapien] Redis at {url} does not answer")
    if not shutil.which("redis-server"):
        apt_install("redis-server")
    say(f"starting Redis on {host}:{port}")
    spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for_port(host, port, "Redis")


def ensure_postgres(url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    if port_open(host, port):
        return
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"[sapien] PostgreSQL at {host}:{port} does not answer")
    if not shutil.which("pg_ctlcluster"):
        apt_install("postgresql")
    versions = sorted(os.listdir("/etc/postgresql"))
    version = versions[-1]
    # Local development and tests only: trust connections from this machine, as the dev image does.
    hba = Path(f"/etc/postgresql/{version}/main/pg_hba.conf")
    text = hba.read_text()
    if "sapien-dev-trust" not in text:
        hba.write_text("# sapien-dev-trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust\n" + text)
    say(f"starting PostgreSQL {version}")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    wait_for_port(host, port, "PostgreSQL")


def ensure_chromium() -> None:
    if Path("/usr/bin/chromium").exists():
        return
    apt_install("chromium")


def ensure_espeak() -> None:
    # The transcription demo pack is spoken by espeak-ng (demo data and tests).
    if shutil.which("espeak-ng"):
        return
    apt_install("espeak-ng")


def start_anvil(port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    if port_open("127.0.0.1", port):
        say(f"using the chain already answering at {url}")
        return url
    say(f"starting anvil on {url}")
    spawn([str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--silent"], stdout=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port, "anvil")
    return url


def flask(*args: str, env: dict) -> None:
    subprocess.run([str(VENV_BIN / "flask"), "--app", "app", *args], check=True, cwd=ROOT, env=env)


def run(port: int) -> int:
    env = dict(os.environ)
    ensure_redis(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ensure_espeak()
    if "CHAIN_RPC_URL" not in env:
        env["CHAIN_RPC_URL"] = start_anvil(int(env.get("ANVIL_PORT", "8545")))
    (ROOT / "instance").mkdir(exist_ok=True)
    say("upgrading the database schema")
    flask("db", "upgrade", env=env)
    say("seeding demo data")
    flask("demo", "seed", env=env)
    say("starting the RQ worker")
    spawn([str(VENV_BIN / "python"), "-m", "jobs.worker"], cwd=ROOT, env=env)
    say(f"Sapien is at http://127.0.0.1:{port} — press Ctrl-C to stop")
    web = spawn([str(VENV_BIN / "flask"), "--app", "app", "run", "--host", "127.0.0.1", "--port", str(port), "--with-threads"], cwd=ROOT, env=env)
    return web.wait()


def test(pytest_args: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sapien_test")
    env.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    ensure_redis(env["TEST_REDIS_URL"])
    ensure_postgres(env["TEST_DATABASE_URL"])
    ensure_chromium()
    ensure_espeak()
    command = [str(VENV_BIN / "python"), "-m", "pytest", *pytest_args]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def bench(modules: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sapien_bench")
    env.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    ensure_redis(env["BENCH_REDIS_URL"])
    ensure_postgres(env["BENCH_DATABASE_URL"])
    if not shutil.which("wrk"):
        apt_install("wrk")
    return subprocess.run([str(VENV_BIN / "python"), "-m", "bench", *modules], cwd=ROOT, env=env).returncode


def soak() -> int:
    env = dict(os.environ)
    env.setdefault("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sapien_bench")
    env.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    ensure_redis(env["BENCH_REDIS_URL"])
    ensure_postgres(env["BENCH_DATABASE_URL"])
    return subprocess.run([str(VENV_BIN / "python"), "-m", "bench.soak"], cwd=ROOT, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    test_parser = sub.add_parser("test")
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    bench_parser = sub.add_parser("bench")
    bench_parser.add_argument("modules", nargs="*", help="rerun only these (e.g. bench.quality); the other rows are kept")
    sub.add_parser("soak", help="labeling, reviews, aggregation and board reads together, then the invariants (SOAK_SECONDS)")
    args = parser.parse_args()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if args.command == "run":
            return run(args.port)
        if args.command == "test":
            return test([arg for arg in args.pytest_args if arg != "--"])
        if args.command == "soak":
            return soak()
        return bench(args.modules)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        stop_started()


if __name__ == "__main__":
    sys.exit(main())
