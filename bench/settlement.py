"""Settling verified answers (issue 10): the settlement job pays 100,000 verified answers on PostgreSQL.

The whole job is timed: claiming the rows, 200,000 ledger entries, the balances, the answers marked paid
and the fan-out to listeners (the worst case: 100 members paid for the first time, each reaching new
levels and their first badges). The ceiling, in the same run and database, is one bare
`INSERT … SELECT` of the same 200,000 rows into a copy of the ledger table with its indexes: what the
entries alone cost, with no idempotency, balances or reactions.
"""

from __future__ import annotations

import time

from bench.harness import Figure, fresh_app

NAME = "Settlement, PostgreSQL"
GOAL_SECONDS = 10.0
MEMBERS = 100
ITEMS = 1_000  # every member answered every item: 100,000 answers


def seed_verified_answers(pack_id: int, *, members: int, items: int, now) -> list[int]:
    """`members` members who each answered every one of `items` new items of the pack, every answer verified
    and unpaid (3 points and 2 XP each), written in bulk SQL (the answer path 100,000 times takes minutes).
    Returns the members' ids. Also used by tests/labeling/test_settlement_scale.py at a smaller size."""
    from sqlalchemy import text

    from sapien.accounts import service as accounts
    from sapien.extensions import db

    password_hash = accounts.hash_password("settlement bench password")
    member_ids = [
        accounts.sign_up(accounts.SignUp(username=f"settle{n}", email=f"settle{n}@example.org", password="settlement bench password"),
                         now=now, password_hash=password_hash).id
        for n in range(members)
    ]
    session = db.session
    session.execute(
        text("INSERT INTO items (pack_id, external_id, external_key, payload, is_gold, is_exam, gold_explanation, status, labels_target,"
             " slots_taken, created_at) SELECT :pack, 's' || n, md5('s' || n) || md5('t' || n), '{}', false, false, '', 'retired', :members,"
             " :members, :now FROM generate_series(1, :items) AS n"),
        {"pack": pack_id, "members": members, "items": items, "now": now},
    )
    session.execute(
        text("INSERT INTO leases (item_id, pack_id, user_id, status, created_at, expires_at)"
             " SELECT i.id, :pack, u, 'submitted', :now, :now FROM items i CROSS JOIN unnest(CAST(:members AS integer[])) AS u"
             " WHERE i.pack_id = :pack"),
        {"pack": pack_id, "members": member_ids, "now": now},
    )
    session.execute(
        text("INSERT INTO submissions (lease_id, item_id, pack_id, user_id, answer, status, is_gold, rejection_reason, paid_points,"
             " paid_xp, paid_partner, reward_state, verified_at, created_at, decided_at)"
             " SELECT l.id, l.item_id, l.pack_id, l.user_id, '{\"labels\": [\"pos\"]}', 'accepted', false, '', 3, 2, 0, 'verified', :now,"
             " :now, :now FROM leases l WHERE l.pack_id = :pack"),
        {"pack": pack_id, "now": now},
    )
    session.commit()
    return member_ids



def _bare_insert_seconds(rows: int) -> float:
    """The ceiling: `rows` ledger-shaped rows in one INSERT … SELECT into a copy of the table and its indexes."""
    from sqlalchemy import text

    from sapien.extensions import db

    session = db.session
    session.execute(text("CREATE TEMPORARY TABLE bare_entries (LIKE ledger_entries INCLUDING DEFAULTS INCLUDING INDEXES)"))
    user_id = session.scalar(text("SELECT min(id) FROM users"))
    started = time.perf_counter()
    session.execute(
        text("INSERT INTO bare_entries (user_id, currency, amount, kind, idempotency_key, memo, balance_after, created_at)"
             " SELECT :user, 'points', 3, 'labeling:text_classification', 'bare:' || n, 'bench', 3 * n, now() FROM generate_series(1, :rows) AS n"),
        {"user": user_id, "rows": rows},
    )
    session.commit()
    return time.perf_counter() - started


def run() -> list[Figure]:
    from jobs.labeling import settle_rewards
    from sapien.database import utcnow
    from sapien.labeling import packs

    app = fresh_app()
    with app.app_context():
        now = utcnow()
        campaign = packs.create_campaign(name="Settlement bench", kind="enterprise", actor_id=None, now=now)
        pack = packs.create_pack(
            campaign.id,
            {"name": "Settlement bench", "slug": "settlement-bench", "task_type": "text_classification", "label_options": ["pos", "neg"],
             "reward_points": 3, "reward_xp": 2},
            actor_id=None,
            now=now,
        )
        seed_verified_answers(pack.id, members=MEMBERS, items=ITEMS, now=now)
        started = time.perf_counter()
        paid = settle_rewards()
        seconds = time.perf_counter() - started
        if paid != MEMBERS * ITEMS or settle_rewards() != 0:
            raise RuntimeError(f"the settlement paid {paid} answers, expected {MEMBERS * ITEMS} once")
        ceiling = _bare_insert_seconds(2 * MEMBERS * ITEMS)
    return [
        Figure(
            NAME,
            f"settle {MEMBERS * ITEMS:,} verified answers (ledger, balances, answers paid, progression fan-out)",
            round(seconds, 2),
            "s",
            ceiling=f"bare INSERT of the {2 * MEMBERS * ITEMS:,} entries: {ceiling:.2f} s",
            goal=f"< {GOAL_SECONDS:.0f} s",
            met=seconds < GOAL_SECONDS,
        )
    ]
