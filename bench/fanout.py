"""A submission's event fan-out: what XP, quests, badges, streaks and boards add to an accepted submission.

Each sample pays a member for one verified answer the way a settlement batch of one does (XP and points
through the ledger, then `answers_paid`), once with every listener connected and once with none. The
difference is the fan-out (goal: under 5 ms at p50); the bare postings are its ceiling.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from bench.harness import BENCH_DATABASE_URL, BENCH_REDIS_URL, ROOT, Figure, recreate_database

SAMPLES = 400
GOAL_MS = 5.0
NAME = "Submission event fan-out, PostgreSQL + Redis"


def run() -> list[Figure]:
    from flask_migrate import upgrade
    from redis import Redis

    from sapien import create_app, events
    from sapien.accounts import service as accounts
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.progression import quests

    recreate_database()
    Redis.from_url(BENCH_REDIS_URL).flushdb()
    app = create_app({"SQLALCHEMY_DATABASE_URI": BENCH_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1), "REDIS_URL": BENCH_REDIS_URL})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    with app.test_request_context():
        now = utcnow()
        member = accounts.sign_up(accounts.SignUp("bench_member", "bench@example.org", "x" * 12), now=now).id
        moderator = accounts.sign_up(accounts.SignUp("bench_mod", "mod@example.org", "x" * 12), now=now, role="moderator").id
        for period, target in (("daily", 400), ("weekly", 2000)):
            quests.create_quest(
                quests.QuestDefinition(title=f"Label {target}", period=period, objective="label_items", target=target,
                                            starts_at=now - timedelta(days=1), reward_xp=50),
                actor_id=moderator, now=now,
            )

        def accept(number: int) -> None:
            moment = utcnow()
            ledger.credit(member, "xp", 12, kind="labeling:text_classification", key=f"bench:{number}:xp", now=moment)
            ledger.credit(member, "points", 30, kind="labeling:text_classification", key=f"bench:{number}:points", now=moment)
            events.answers_paid.send(None, payouts=[dict(user_id=member, answers=1, task_types={"text_classification": 1},
                                                         answered_at=[moment], points=30, xp=12)], now=moment)

        def sample(offset: int) -> list[float]:
            timings = []
            for number in range(offset, offset + SAMPLES):
                started = time.perf_counter()
                accept(number)
                timings.append((time.perf_counter() - started) * 1000)
                db.session.remove()
            return timings

        sample(0)  # warm up caches and the first rows
        with_listeners = sample(10_000)
        saved = {signal: list(signal.receivers.values()) for signal in (events.ledger_entry_posted, events.answers_paid)}
        for signal in saved:
            signal.receivers.clear()
        try:
            bare = sample(20_000)
        finally:
            for signal, receivers in saved.items():
                for receiver in receivers:
                    signal.connect(receiver, weak=False)
    fanout_p50 = statistics.median(with_listeners) - statistics.median(bare)
    return [
        Figure(NAME, "fan-out added per accepted submission, p50", round(fanout_p50, 2), "ms",
               ceiling=f"{statistics.median(bare):.2f} ms p50 for the two bare ledger postings",
               goal=f"< {GOAL_MS:g} ms", met=fanout_p50 < GOAL_MS),
        Figure(NAME, "accepted submission with fan-out, p50", round(statistics.median(with_listeners), 2), "ms",
               ceiling=f"{statistics.median(bare):.2f} ms without listeners"),
    ]
