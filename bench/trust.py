"""Trust & safety (issue 13): every detector and the fraud model over a community on PostgreSQL.

The community is generated in SQL (generate_series): `MEMBERS` members answering `ANSWERS_PER_MEMBER` items
each of one pack (10% gold items, the packs' default gold rate), 1% of answers reviewed, a sign-up signal per member. A seeded fraud set,
`FRAUD_SHARE` of the members in rings of five, answers fast, fails the same gold items with the same wrong
answer, shares a network and (mostly) a device and signed up in bursts; a quarter of the rings answer at a
human pace and a quarter use their own devices, so no single signal finds them all. The fraud model never
saw these members (it trains on its own seeded profiles), so they are a held-back set for precision and
recall of its flags.

The timed figure is one whole scan (`moderation.safety.scan.run_scan`: every query, detector, the model's
training and scoring, the flags written); its ceiling, in the same run and database, is one plain SQL scan
of the same answers (`SELECT count(*), sum(time_spent_ms) FROM submissions`).

`TRUST_BENCH_MEMBERS` and `TRUST_BENCH_ANSWERS` (answers per member) shrink the run on a small machine.
"""

from __future__ import annotations

import os
import time

from bench.harness import Figure, fresh_app

NAME = "Trust & safety scan, PostgreSQL"
MEMBERS = int(os.environ.get("TRUST_BENCH_MEMBERS", 100_000))
ANSWERS_PER_MEMBER = int(os.environ.get("TRUST_BENCH_ANSWERS", 100))
FRAUD_SHARE = 0.02
RING = 5
GOAL_SECONDS = 120.0
PRECISION_GOAL, RECALL_GOAL = 0.9, 0.8


def _fraud_members(members: int) -> int:
    return max(RING, int(members * FRAUD_SHARE) // RING * RING)


def seed_community(members: int, answers: int, now) -> int:
    """Write the community in bulk SQL; returns the number of fraud members (ids 1..that number)."""
    from sqlalchemy import text

    from sapien.accounts import service as accounts
    from sapien.extensions import db
    from sapien.labeling import packs

    campaign = packs.create_campaign(name="Trust bench", kind="enterprise", actor_id=None, now=now)
    pack = packs.create_pack(
        campaign.id, {"name": "Trust bench", "slug": "trust-bench", "task_type": "text_classification",
                      "label_options": ["pos", "neg", "neutral"], "reward_points": 3, "reward_xp": 2}, actor_id=None, now=now,
    )
    items = max(answers * 100, 1000)
    fraud = _fraud_members(members)
    params = {"members": members, "answers": answers, "items": items, "fraud": fraud, "pack": pack.id, "now": now,
              "hash": accounts.hash_password("trust bench password"), "stride": items // answers - 1}
    session = db.session
    steps = [
        # Members with explicit ids: 1..fraud are the seeded fraud set, in rings of five.
        "INSERT INTO users (id, username, username_key, username_skeleton, email, password_hash, display_name, bio, role, timezone,"
        " hide_from_boards, session_version, is_banned, created_at) SELECT n, 'tb' || n, 'tb' || n, 'tb' || n, 'tb' || n || '@example.org',"
        " :hash, 'TB ' || n, '', 'member', 'UTC', false, 1, false, :now - make_interval(days => n % 300) FROM generate_series(1, :members) n",
        "SELECT setval(pg_get_serial_sequence('users', 'id'), :members)",
        "INSERT INTO items (id, pack_id, external_id, external_key, payload, is_gold, is_exam, gold_answer, gold_explanation, status,"
        " labels_target, slots_taken, created_at) SELECT n, :pack, 'tb' || n, md5('tb' || n) || md5('x' || n), '{}', n % 10 = 0, false,"
        " CASE WHEN n % 10 = 0 THEN CAST('{\"labels\": [\"pos\"]}' AS json) END, '', 'retired', 3, 3, :now FROM generate_series(1, :items) n",
        "SELECT setval(pg_get_serial_sequence('items', 'id'), :items)",
        # Sign-up signals: honest members each on their own /24 (a bijection of the id), one household in 200
        # sharing one with the next member; a ring on one network, signed up minutes apart, mostly on one device.
        "INSERT INTO trust_signals (user_id, kind, ip_hash, network, device_id, user_agent, created_at)"
        " SELECT n, 'sign_up', md5('ip' || n), CASE WHEN n <= :fraud THEN format('100.%s.%s.0/24', ((n - 1) / 5) / 256 % 256, ((n - 1) / 5) % 256)"
        "   ELSE format('%s.%s.%s.0/24', (k / 65536) % 256, (k / 256) % 256, k % 256) END,"
        " CASE WHEN n <= :fraud AND ((n - 1) / 5) % 4 <> 3 THEN md5('ring' || ((n - 1) / 5)) ELSE md5('dev' || n) END, 'bench',"
        " CASE WHEN n <= :fraud THEN :now - interval '10 days' + make_interval(mins => ((n - 1) % 5) * 3) + make_interval(hours => ((n - 1) / 5) * 2)"
        "   ELSE :now - make_interval(days => n % 300, mins => n % 1440) END"
        " FROM (SELECT n, CASE WHEN n % 200 = 1 THEN n - 1 ELSE n END::bigint * 2654435761 % 16777216 AS k FROM generate_series(1, :members) n) s",
        # Answers: a ring answers the same items (its first member's), honest members their own spread.
        "INSERT INTO leases (id, item_id, pack_id, user_id, status, created_at, expires_at)"
        " SELECT (u - 1) * :answers + j + 1, (CASE WHEN u <= :fraud THEN ((u - 1) / 5) * 5 + 1 ELSE u END + j * :stride) % :items + 1,"
        " :pack, u, 'submitted', :now, :now FROM generate_series(1, :members) u, generate_series(0, :answers - 1) j",
        "SELECT setval(pg_get_serial_sequence('leases', 'id'), CAST(:members AS bigint) * :answers)",
        "INSERT INTO submissions (id, lease_id, item_id, pack_id, user_id, answer, status, is_gold, gold_correct, rejection_reason,"
        " time_spent_ms, paid_points, paid_xp, paid_partner, reward_state, verified_at, paid_at, created_at, decided_at)"
        " SELECT id, id, item_id, :pack, user_id, CAST(format('{\"labels\": [\"%s\"]}', answer) AS json), 'accepted', gold,"
        " CASE WHEN gold THEN answer = 'pos' END, '', spent, 3, 2, 0, 'paid', :now, :now, :now, :now FROM ("
        "  SELECT l.id, l.item_id, l.user_id, l.item_id % 10 = 0 AS gold,"
        "   CASE WHEN l.item_id % 10 <> 0 THEN (ARRAY['pos', 'neg'])[(l.user_id + l.id) % 2 + 1]"
        "        WHEN l.user_id <= :fraud THEN CASE WHEN (l.item_id / 10) % 10 < 8 THEN 'neg' ELSE 'pos' END"
        "        WHEN abs(hashtext(l.user_id || ':' || l.item_id)) % 10 = 0 THEN (ARRAY['neg', 'neutral'])[abs(hashtext(l.item_id || ':' || l.user_id)) % 2 + 1]"
        "        ELSE 'pos' END AS answer,"
        "   CASE WHEN l.user_id <= :fraud AND ((l.user_id - 1) / 5) % 4 <> 2 THEN 200 + (l.user_id * l.id) % 400"
        "        ELSE 2000 + (l.user_id * 37 + l.id * 101) % 18000 END AS spent"
        "  FROM leases l) a",
        "SELECT setval(pg_get_serial_sequence('submissions', 'id'), CAST(:members AS bigint) * :answers)",
        "INSERT INTO reviews (submission_id, pack_id, author_id, reviewer_id, status, outcome, reason, is_planted, created_at, claimed_at, decided_at)"
        " SELECT s.id, :pack, s.user_id, (s.user_id + 96) % :members + 1, 'done', CASE WHEN s.id % 10 = 0 THEN 'rejected' ELSE 'accepted' END, '',"
        " false, :now, :now - interval '60 seconds', :now - interval '30 seconds' FROM submissions s WHERE s.id % 100 = 0",
        "ANALYZE",
    ]
    for step in steps:
        session.execute(text(step), params)
    session.commit()
    return fraud



def run() -> list[Figure]:
    from sqlalchemy import select, text

    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.moderation.models import Flag
    from sapien.moderation.safety.model import precision_recall
    from sapien.moderation.safety.scan import run_scan

    app = fresh_app()
    with app.app_context():
        now = utcnow()
        started = time.perf_counter()
        fraud = seed_community(MEMBERS, ANSWERS_PER_MEMBER, now)
        seeding = time.perf_counter() - started
        started = time.perf_counter()
        db.session.execute(text("SELECT count(*), sum(time_spent_ms) FROM submissions")).one()
        plain = time.perf_counter() - started
        db.session.rollback()
        started = time.perf_counter()
        report = run_scan(now)
        seconds = time.perf_counter() - started
        import numpy as np

        flagged = set(db.session.scalars(select(Flag.user_id).where(Flag.kind == "model")))
        truth = np.arange(1, MEMBERS + 1) <= fraud
        predicted = np.isin(np.arange(1, MEMBERS + 1), list(flagged))
        precision, recall = precision_recall(predicted, truth)
    answers = MEMBERS * ANSWERS_PER_MEMBER
    print(f"[bench.trust] seeded {MEMBERS:,} members and {answers:,} answers in {seeding:.1f} s; {report}")
    size = f"{MEMBERS:,} members, {answers:,} answers"
    return [
        Figure(NAME, f"all detectors + fraud model + flags over {size}", round(seconds, 2), "s",
               ceiling=f"plain SQL scan of the answers: {plain:.2f} s", goal=f"< {GOAL_SECONDS:.0f} s", met=seconds < GOAL_SECONDS),
        Figure(NAME, f"fraud model precision on the held-back seeded fraud set ({fraud:,} of {MEMBERS:,})", round(precision, 3), "",
               goal=f">= {PRECISION_GOAL}", met=precision >= PRECISION_GOAL),
        Figure(NAME, "fraud model recall on the same set", round(recall, 3), "", goal=f">= {RECALL_GOAL}", met=recall >= RECALL_GOAL),
    ]
