"""Start what is missing, run the thing, stop what we started.

`run`: Redis (if none answers), espeak-ng (if absent; it speaks the transcription demo pack), anvil (if
CHAIN_RPC_URL is unset; our contracts are then deployed to it), migrations, demo data, an RQ worker and the web server. `test`: Redis,
PostgreSQL (if none answers on TEST_DATABASE_URL's port, a private throwaway cluster on that port, with
Debian's postgresql package installed for its initdb if needed; the machine's own server and its
pg_hba.conf are never touched), chromium and espeak-ng (installed if absent), then pytest. `bench`: the same services, then the benchmarks.
`soak`: the same services, then `bench.soak` (SOAK_SECONDS, 600 by default).
Ctrl-C stops every process this script started, and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
APT_LOCK_TIMEOUT_SECONDS = 600
started: list[subprocess.Popen] = []
# Things to undo at exit besides the processes above (a private PostgreSQL cluster), last first.
cleanups = contextlib.ExitStack()


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
    # Another apt-get (an unattended upgrade, a second `make`) may hold the dpkg lock: wait for it.
    wait = ["-o", f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_SECONDS}"]
    subprocess.run([*sudo, "apt-get", *wait, "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", *wait, "install", "-y", "-qq", *packages], check=True, env=env)


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


def ensure_postgres(url: str) -> str:
    """The URL to use: `url` itself when a server answers there, else one on a private, throwaway
    cluster started for this run (see `private_postgres`). The machine's own PostgreSQL (its clusters,
    its pg_hba.conf) is never touched."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    if port_open(host, port):
        return url
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"[sapien] PostgreSQL at {host}:{port} does not answer")
    return cleanups.enter_context(private_postgres(url))


def find_pg_bin(name: str) -> str | None:
    # Debian keeps the server's programs out of PATH, under /usr/lib/postgresql/<version>/bin.
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    return candidates[-1] if candidates else None


def free_local_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def private_postgres(url: str):
    """A PostgreSQL cluster of our own: `initdb` in a temporary folder, listening on 127.0.0.1 only, on
    the URL's port if it is free (else any free port), its superuser `postgres` with a random password.
    Yields `url` pointed at it; stopped and deleted afterwards. initdb refuses to run as root, so as
    root the cluster belongs to the `postgres` system user."""
    if not find_pg_bin("initdb"):
        apt_install("postgresql")
    initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise SystemExit("[sapien] initdb and pg_ctl were not found after installing postgresql")
    parts = urlsplit(url)
    port = free_local_port(parts.port or 5432)
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="sapien-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres", "postgres")
    data, password = folder / "data", secrets.token_hex(16)
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    if as_user:
        shutil.chown(password_file, "postgres", "postgres")
    password_file.chmod(0o600)
    quiet = {"stdout": subprocess.DEVNULL}
    try:
        say(f"starting a private PostgreSQL cluster in {folder} on 127.0.0.1:{port}")
        subprocess.run(
            [*as_user, initdb, "--pgdata", str(data), "--username", "postgres", f"--pwfile={password_file}",
             "--auth-host=scram-sha-256", "--auth-local=peer", "--encoding=UTF8", "--locale=C.UTF-8"],
            check=True, **quiet,
        )
        # Throwaway data: no need to survive a power cut, so skip the fsyncs.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run([*as_user, pg_ctl, "--pgdata", str(data), "--log", str(folder / "server.log"), "--wait", "--options", options, "start"], check=True, **quiet)
        try:
            wait_for_port("127.0.0.1", port, "PostgreSQL")
            netloc = f"postgres:{password}@127.0.0.1:{port}"
            yield parts._replace(netloc=netloc).geturl()
        finally:
            say("stopping the private PostgreSQL cluster")
            subprocess.run([*as_user, pg_ctl, "--pgdata", str(data), "--mode", "fast", "--wait", "stop"], check=False, **quiet)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    local_chain = "CHAIN_RPC_URL" not in env
    if local_chain:
        env["CHAIN_RPC_URL"] = start_anvil(int(env.get("ANVIL_PORT", "8545")))
    (ROOT / "instance").mkdir(exist_ok=True)
    say("upgrading the database schema")
    flask("db", "upgrade", env=env)
    say("seeding demo data")
    flask("demo", "seed", env=env)
    if local_chain:  # our own anvil: deploy the contracts (a no-op when they are there already)
        say("deploying the contracts to anvil")
        flask("chain", "deploy", env=env)
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
    env["TEST_DATABASE_URL"] = ensure_postgres(env["TEST_DATABASE_URL"])
    ensure_chromium()
    ensure_espeak()
    command = [str(VENV_BIN / "python"), "-m", "pytest", *_parallel(pytest_args), *pytest_args]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def _parallel(pytest_args: list[str]) -> list[str]:
    """Two pytest-xdist workers on a machine with two CPUs or more (each gets its own database, Redis
    index and anvil: tests/conftest.py); none when the caller chose (-n, -p no:xdist) or for one CPU.
    Two, not more: the workers take the Redis indexes above TEST_REDIS_URL's, and Redis has 16."""
    chosen = any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) or "xdist" in arg for arg in pytest_args)
    if chosen or (os.cpu_count() or 1) < 2:
        return []
    return ["-n", "2"]


def bench(modules: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sapien_bench")
    env.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    ensure_redis(env["BENCH_REDIS_URL"])
    env["BENCH_DATABASE_URL"] = ensure_postgres(env["BENCH_DATABASE_URL"])
    if not shutil.which("wrk"):
        apt_install("wrk")
    return subprocess.run([str(VENV_BIN / "python"), "-m", "bench", *modules], cwd=ROOT, env=env).returncode


def soak() -> int:
    env = dict(os.environ)
    env.setdefault("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sapien_bench")
    env.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    ensure_redis(env["BENCH_REDIS_URL"])
    env["BENCH_DATABASE_URL"] = ensure_postgres(env["BENCH_DATABASE_URL"])
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
        cleanups.close()


if __name__ == "__main__":
    sys.exit(main())
