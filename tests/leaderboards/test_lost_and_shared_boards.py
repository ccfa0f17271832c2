"""Redis is a cache (DESIGN rule 2): boards lost with it rebuild themselves on the next read, and two
deployments sharing one Redis keep their keys apart under a prefix derived from their database."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

from flask_migrate import upgrade
from redis import Redis

from sapien.extensions import db
from sapien.leaderboards import boards, reading, rebuild
from sapien.ledger import service as ledger
from sapien.redis_keys import default_key_prefix
from tests.conftest import Member

ROOT = Path(__file__).resolve().parent.parent.parent
NOW = datetime.now(UTC)
PROFILE_LINK = re.compile(r'href="/u/([^"]+)"')


def earn(app, user_id: int, amount: int, key: str) -> None:
    with app.test_request_context():
        ledger.credit(user_id, "xp", amount, kind="labeling:text_classification", key=key, now=datetime.now(UTC))


def board_names(member: Member) -> list[str]:
    """The members on the all-time XP board, in rank order, as the page shows them."""
    page = member.client.get("/leaderboards/?metric=xp&period=all").get_data(as_text=True)
    return PROFILE_LINK.findall(page.split('id="board"', 1)[-1]) if 'id="board"' in page else PROFILE_LINK.findall(page)


def test_boards_lost_with_redis_are_rebuilt_by_the_next_reader(app, make_member, redis_conn):
    ana, ben, cyd = make_member("ana"), make_member("ben"), make_member("cyd")
    earn(app, ana.id, 30, "a"), earn(app, ben.id, 70, "b"), earn(app, cyd.id, 50, "c")
    with app.app_context():
        rebuild.rebuild_all(datetime.now(UTC))
    assert board_names(ana)[:3] == ["ben", "cyd", "ana"]

    redis_conn.flushdb()  # Redis restarted without persistence, or someone flushed it
    assert board_names(ana)[:3] == ["ben", "cyd", "ana"]  # rebuilt from the ledger by this read
    ranks = {(rank.board.metric, rank.board.period): rank.rank for rank in _ranks(app, ana.id)}
    assert ranks[("xp", "all")] == 3

    # The rebuild is one process's: while another holds the lock, a reader does not wait on it.
    redis_conn.flushdb()
    with app.app_context():
        lock = redis_conn.lock(f"{boards.prefix()}:rebuild-lock", timeout=60)
    assert lock.acquire(blocking=False)
    started = time.monotonic()
    assert board_names(ana) == []
    assert time.monotonic() - started < 5
    lock.release()
    assert board_names(ana)[:3] == ["ben", "cyd", "ana"]


def _ranks(app, user_id: int):
    with app.test_request_context():
        return reading.member_ranks(user_id, datetime.now(UTC))


def test_two_deployments_on_one_redis_keep_their_boards_apart(app, make_app, make_member, redis_conn, tmp_path):
    other = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/other.db")
    with other.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    make_member("early")  # so the two apps' members have different ids (boards store ids)
    ana = make_member("ana")
    zoe = Member(other, "zoe")
    earn(app, ana.id, 40, "here")
    earn(other, zoe.id, 90, "there")
    with app.app_context():
        rebuild.rebuild_all(datetime.now(UTC))
    with other.app_context():
        rebuild.rebuild_all(datetime.now(UTC))
    assert board_names(ana) == ["ana"]
    assert board_names(zoe) == ["zoe"]
    zoe.client.get("/dashboard")  # the member cache and the rate limiter write too
    prefixes = {app.config["REDIS_KEY_PREFIX"], other.config["REDIS_KEY_PREFIX"]}
    assert len(prefixes) == 2 and app.config["REDIS_KEY_PREFIX"] == default_key_prefix(app.config["SQLALCHEMY_DATABASE_URI"])

    # Whatever either app wrote is under its own prefix (the `limits` library wraps its keys as
    # `LIMITS:{LIMITER/<prefix>:limits/…}`; RQ's own keys aside: see README).
    starts = tuple(f"{prefix}:" for prefix in prefixes) + tuple(f"LIMITS:{{LIMITER/{prefix}:limits/" for prefix in prefixes) + ("rq:",)
    keys = [key.decode() for key in Redis.from_url(app.config["REDIS_URL"]).scan_iter()]
    assert [key for key in keys if not key.startswith(starts)] == []
    assert any(key.startswith("LIMITS:") for key in keys) and any(key.startswith(f"{other.config['REDIS_KEY_PREFIX']}:") for key in keys)
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_prefix_can_be_set_and_never_holds_the_password(make_app):
    assert make_app(REDIS_KEY_PREFIX="staging").config["REDIS_KEY_PREFIX"] == "staging"
    one = default_key_prefix("postgresql+psycopg://sapien:secret@db.internal:5432/sapien")
    assert one == default_key_prefix("postgresql+psycopg://sapien:rotated@db.internal:5432/sapien")
    assert one != default_key_prefix("postgresql+psycopg://sapien:secret@db.internal:5432/sapien_staging")
    assert re.fullmatch(r"sapien-[0-9a-f]{10}", one)
