"""The economy on PostgreSQL (issue 12): a conversion epoch for 1,000,000 members and a revenue distribution
across 100,000 contributors, each within 60 seconds.

Both are timed end to end through the services: the epoch's close (`conversion.close_epoch`: every member's
unconverted points, the conversion rows, the token and stake ledger credits with their balances, the
auto-stake positions, the report) and `revenue.record_campaign_payment` (the contributors' accepted labels
weighted by reputation, the split, one ledger credit and one statement line per contributor). The ceiling
beside each, in the same run and database, is a plain SQL aggregate over the same rows: what reading
them alone costs.

The sizes can be lowered for a quick run: BENCH_ECONOMY_MEMBERS and BENCH_ECONOMY_CONTRIBUTORS.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from bench.harness import Figure, fresh_app
from sapien.i18n import TOKEN_UNIT

NAME = "Economy, PostgreSQL"
GOAL_SECONDS = 60.0
MEMBERS = int(os.environ.get("BENCH_ECONOMY_MEMBERS", 1_000_000))
CONTRIBUTORS = int(os.environ.get("BENCH_ECONOMY_CONTRIBUTORS", 100_000))



def seed_members(count: int, *, prefix: str, now) -> None:
    """`count` members in one INSERT … SELECT (signing up a million through the service takes an hour)."""
    from sqlalchemy import text

    from sapien.accounts import service as accounts
    from sapien.extensions import db

    db.session.execute(
        text("INSERT INTO users (username, username_key, username_skeleton, email, password_hash, display_name, bio, role, timezone,"
             " hide_from_boards, session_version, is_banned, created_at)"
             " SELECT :p || n, :p || n, :p || n, :p || n || '@example.org', :hash, :p || n, '', 'member', 'UTC', false, 1, false, :now"
             " FROM generate_series(1, :count) AS n"),
        {"p": prefix, "hash": accounts.hash_password("economy bench password"), "count": count, "now": now},
    )
    db.session.commit()


def seed_points(prefix: str, points: int, *, now) -> None:
    """Every `prefix` member earned `points` points: one ledger entry each and its balance."""
    from sqlalchemy import text

    from sapien.extensions import db

    members = "SELECT id FROM users WHERE username_key LIKE :like"
    db.session.execute(text(f"INSERT INTO ledger_entries (user_id, currency, amount, kind, idempotency_key, memo, balance_after, created_at)"
                            f" SELECT id, 'points', :points, 'bench', 'bench:points:' || id, '', :points, :now FROM ({members}) AS m"),
                       {"like": prefix + "%", "points": points, "now": now})
    db.session.execute(text(f"INSERT INTO balances (user_id, currency, amount, updated_at) SELECT id, 'points', :points, :now FROM ({members}) AS m"),
                       {"like": prefix + "%", "points": points, "now": now})
    db.session.commit()


def seed_accepted_labels(pack_id: int, prefix: str, *, items: int, now) -> None:
    """One accepted, paid label by every `prefix` member on one of `items` items of the pack."""
    from sqlalchemy import text

    from sapien.extensions import db

    session = db.session
    session.execute(
        text("INSERT INTO items (pack_id, external_id, external_key, payload, is_gold, is_exam, gold_explanation, status, labels_target,"
             " slots_taken, created_at) SELECT :pack, 'r' || n, md5('r' || n) || md5('q' || n), '{}', false, false, '', 'retired', 1000,"
             " 1000, :now FROM generate_series(1, :items) AS n"),
        {"pack": pack_id, "items": items, "now": now},
    )
    session.execute(
        text("WITH members AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM users WHERE username_key LIKE :like),"
             " pack_items AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM items WHERE pack_id = :pack)"
             " INSERT INTO leases (item_id, pack_id, user_id, status, created_at, expires_at)"
             " SELECT pack_items.id, :pack, members.id, 'submitted', :now, :now FROM members JOIN pack_items ON pack_items.k = members.k % :items"),
        {"like": prefix + "%", "pack": pack_id, "items": items, "now": now},
    )
    session.execute(
        text("INSERT INTO submissions (lease_id, item_id, pack_id, user_id, answer, status, is_gold, rejection_reason, paid_points,"
             " paid_xp, paid_partner, reward_state, verified_at, paid_at, created_at, decided_at)"
             " SELECT l.id, l.item_id, l.pack_id, l.user_id, '{\"labels\": [\"pos\"]}', 'accepted', false, '', 3, 2, 0, 'paid', :now, :now,"
             " :now, :now FROM leases l WHERE l.pack_id = :pack"),
        {"pack": pack_id, "now": now},
    )
    session.commit()


def _aggregate_seconds(sql: str, params: dict) -> float:
    from sqlalchemy import text

    from sapien.extensions import db

    started = time.perf_counter()
    db.session.execute(text(sql), params).all()
    seconds = time.perf_counter() - started
    db.session.commit()
    return seconds


def _conversion(now) -> Figure:
    from sapien.economy import conversion
    from sapien.extensions import db

    seed_members(MEMBERS, prefix="conv", now=now - timedelta(days=8))
    seed_points("conv", 1000, now=now - timedelta(days=8))
    epoch = conversion.current_epoch(now - timedelta(days=8))
    epoch_id = epoch.id
    db.session.commit()
    started = time.perf_counter()
    report = conversion.close_epoch(epoch_id, now=now)
    seconds = time.perf_counter() - started
    if report.members != MEMBERS or conversion.close_epoch(epoch_id, now=now).members != MEMBERS:
        raise RuntimeError(f"the epoch converted {report.members} members, expected {MEMBERS} once")
    ceiling = _aggregate_seconds("SELECT user_id, amount FROM balances WHERE currency = 'points' ORDER BY user_id", {})
    return Figure(NAME, f"conversion epoch for {MEMBERS:,} members (rows, token and stake credits, auto-stakes, report)",
                  round(seconds, 2), "s", ceiling=f"plain SELECT of the {MEMBERS:,} point balances: {ceiling:.2f} s",
                  goal=f"< {GOAL_SECONDS:.0f} s", met=seconds < GOAL_SECONDS)


def _revenue(now) -> Figure:
    from sapien.economy import revenue
    from sapien.labeling import packs

    campaign = packs.create_campaign(name="Revenue bench", kind="enterprise", actor_id=None, now=now)
    pack = packs.create_pack(campaign.id, {"name": "Revenue bench", "slug": "revenue-bench", "task_type": "text_classification",
                                           "label_options": ["pos", "neg"], "reward_points": 3, "reward_xp": 2}, actor_id=None, now=now)
    seed_members(CONTRIBUTORS, prefix="rev", now=now)
    seed_accepted_labels(pack.id, "rev", items=1000, now=now)
    started = time.perf_counter()
    recorded = revenue.record_campaign_payment(campaign.id, TOKEN_UNIT, external_ref="BENCH-1", actor_id=None, now=now)
    seconds = time.perf_counter() - started
    again = revenue.record_campaign_payment(campaign.id, TOKEN_UNIT, external_ref="BENCH-1", actor_id=None, now=now)
    if again.created or recorded.payment.recipients < CONTRIBUTORS:
        raise RuntimeError(f"the payment reached {recorded.payment.recipients} members, expected {CONTRIBUTORS}+ once")
    ceiling = _aggregate_seconds(
        "SELECT s.user_id, count(*) FROM submissions s JOIN task_packs p ON p.id = s.pack_id WHERE p.campaign_id = :campaign"
        " AND s.status = 'accepted' GROUP BY s.user_id", {"campaign": campaign.id})
    return Figure(NAME, f"revenue distribution across {CONTRIBUTORS:,} contributors (weights, split, credits, statements)",
                  round(seconds, 2), "s", ceiling=f"plain GROUP BY of their {CONTRIBUTORS:,} accepted labels: {ceiling:.2f} s",
                  goal=f"< {GOAL_SECONDS:.0f} s", met=seconds < GOAL_SECONDS)


def run() -> list[Figure]:
    from sapien.database import utcnow

    app = fresh_app()
    with app.test_request_context():
        now = utcnow()
        return [_revenue(now), _conversion(now)]


if __name__ == "__main__":
    for figure in run():
        print(figure)
