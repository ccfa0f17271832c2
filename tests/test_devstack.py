"""`scripts/devstack.py`: when nothing answers on the test database's port it starts a private,
throwaway PostgreSQL cluster and leaves the machine's own server and its files alone; apt waits for
the dpkg lock instead of failing."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import ROOT, free_port

spec = importlib.util.spec_from_file_location("devstack", ROOT / "scripts" / "devstack.py")
devstack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(devstack)

SYSTEM_HBA = sorted(glob.glob("/etc/postgresql/*/*/pg_hba.conf"))


def _admin(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


@pytest.mark.slow
def test_nothing_on_the_port_starts_a_private_cluster_and_leaves_the_system_alone():
    if not devstack.find_pg_bin("initdb"):
        pytest.skip("PostgreSQL's initdb is not installed here (devstack would install it with apt)")
    system_files = {path: Path(path).read_bytes() for path in SYSTEM_HBA}
    port = free_port()
    wanted = f"postgresql://postgres@127.0.0.1:{port}/sapien_probe"
    assert not devstack.port_open("127.0.0.1", port)
    try:
        url = devstack.ensure_postgres(wanted)
        parts = urlsplit(url)
        assert (parts.hostname, parts.port, parts.path) == ("127.0.0.1", port, "/sapien_probe")
        with psycopg.connect(_admin(url), autocommit=True) as connection:
            connection.execute("CREATE DATABASE sapien_probe")
            assert connection.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
            data_directory = connection.execute("SHOW data_directory").fetchone()[0]
        assert "/sapien-pg-" in data_directory and not data_directory.startswith("/var/lib/postgresql")
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT current_database()").fetchone()[0] == "sapien_probe"
        with pytest.raises(psycopg.OperationalError):  # not open to anyone on the machine: a password is needed
            psycopg.connect(_admin(wanted), connect_timeout=5).close()
    finally:
        devstack.cleanups.close()
    assert not devstack.port_open("127.0.0.1", port)
    assert not Path(data_directory).exists()
    assert {path: Path(path).read_bytes() for path in SYSTEM_HBA} == system_files


def test_a_server_that_answers_is_used_as_it_is():
    url = "postgresql://postgres@127.0.0.1:5432/sapien_test"
    if not devstack.port_open("127.0.0.1", 5432):
        pytest.skip("no PostgreSQL on 5432 here")
    assert devstack.ensure_postgres(url) == url


def test_apt_waits_for_the_dpkg_lock(monkeypatch):
    commands = []
    monkeypatch.setattr(devstack.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(devstack.subprocess, "run", lambda command, **kwargs: commands.append(command))
    devstack.apt_install("wrk")
    assert [c[c.index("apt-get") + 1] for c in commands] == ["-o", "-o"]
    assert all("DPkg::Lock::Timeout=600" in c for c in commands)
    assert [c[-1] for c in commands] == ["-qq", "wrk"]


def test_make_test_runs_two_workers_unless_the_caller_chose(monkeypatch):
    monkeypatch.setattr(devstack.os, "cpu_count", lambda: 2)
    assert devstack._parallel(["-k", "ledger"]) == ["-n", "2"]
    assert devstack._parallel(["-n", "0"]) == []
    assert devstack._parallel(["-n4"]) == []
    assert devstack._parallel(["-p", "no:xdist"]) == []
    monkeypatch.setattr(devstack.os, "cpu_count", lambda: 1)
    assert devstack._parallel([]) == []
