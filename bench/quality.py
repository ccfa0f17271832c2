"""Quality: crowd replays of the six shared datasets, and batch aggregation of 100,000 answers.

Replays (`flask quality replay` in process, on PostgreSQL): the accuracy of the final labels on the
non-gold items beside crowd-kit's MajorityVote and DawidSkene on every answer of the same dataset, scored
on the same items in the same run (issue 18: never under either), the labels used per item beside the
dataset's own redundancy, and the expected calibration error of the labels' confidence with its
reliability table (10 bins). BENCH_QUALITY_DATASETS picks datasets (comma separated; default all six;
empty: only the aggregation); BENCH_QUALITY_AGGREGATION=0 leaves the aggregation out.

Aggregation: 100,000 accepted answers (3 per item, 300 members, 3 classes, simulated members of known
skill) stored as real submissions; `aggregate_pack` end to end — reading the answers, Dawid-Skene, writing
33,334 verified labels — beside crowd-kit's bare MajorityVote on the same answers in memory (the floor of
any aggregation). Goal < 10 s.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.harness import BENCH_DATABASE_URL, BENCH_REDIS_URL, ROOT, Figure, recreate_database

NAME = "Quality, PostgreSQL"
# Published accuracy of the final labels (shared/datasets/crowd/README.md): (majority vote, Dawid-Skene).
PUBLISHED = {
    "music_genre": (0.720, 0.769),
    "zencrowd_us": (0.868, 0.839),
    "bird": (0.759, 0.89),
    "rte": (0.897, 0.929),
    "d_possent": (0.932, 0.960),
    "d_product": (0.897, 0.940),
}
# Issue 18's goals: (accuracy at least, labels per non-gold item at most — None: fewer than the dataset's).
# The four older sets must not fall below their replay of 2026-12-02 nor use more labels than it did.
GOALS = {
    "music_genre": (0.769, None),
    "zencrowd_us": (0.868, None),
    "bird": (0.9126, 20.04),
    "rte": (0.9237, 9.61),
    "d_possent": (0.9589, 9.82),
    "d_product": (0.9392, 3.00),
}
GOAL_ECE = 0.05
GOAL_AGGREGATION_S = 10.0
ANSWERS = 100_000


def datasets_folder() -> Path:
    for candidate in (os.environ.get("CROWD_DATASETS"), ROOT.parent / "shared" / "datasets" / "crowd", ROOT.parent.parent / "shared" / "datasets" / "crowd"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise RuntimeError("the shared crowd datasets were not found (set CROWD_DATASETS)")


def _app():
    from flask_migrate import upgrade

    from sapien import create_app

    recreate_database()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": BENCH_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
            "REDIS_URL": BENCH_REDIS_URL,
            "RATELIMIT_STORAGE_URI": BENCH_REDIS_URL,
        }
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    return app


def crowdkit_same_answers(folder: Path, gold: set[str]) -> tuple[float, float]:
    """crowd-kit's MajorityVote and DawidSkene over every answer of the dataset, scored on the replay's
    non-gold items: the two figures the replay must not fall under, from the same answers in this run."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene, MajorityVote

    from sapien.quality.replay import read_crowd_dataset

    data = read_crowd_dataset(folder)
    frame = pd.DataFrame(data.answers, columns=["task", "worker", "label"])
    scores = []
    for model in (MajorityVote(), DawidSkene(n_iter=100)):
        labels = model.fit_predict(frame)
        scored = [item for item in labels.index if item not in gold]
        scores.append(sum(labels[item] == data.truth[item] for item in scored) / len(scored) if scored else 0.0)
    return scores[0], scores[1]


def replay_figures(app) -> list[Figure]:
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling.models import Item
    from sapien.quality.replay import replay

    folder = datasets_folder()
    chosen = [name.strip() for name in os.environ.get("BENCH_QUALITY_DATASETS", ",".join(PUBLISHED)).split(",") if name.strip()]
    figures = []
    for name in chosen:
        with app.app_context():
            report = replay(folder / name, now=utcnow())
            gold = set(db.session.scalars(db.select(Item.external_id).where(Item.pack_id == report.pack_id, Item.is_gold.is_(True))))
        majority, dawid_skene = crowdkit_same_answers(folder / name, gold)
        published_majority, published_dawid_skene = PUBLISHED[name]
        goal_accuracy, goal_labels = GOALS[name]
        floor = max(goal_accuracy, majority, dawid_skene)
        redundancy = report.answers_in_dataset / report.items
        benchmark = f"Crowd replay {name} ({report.items:,} items, {report.gold} gold)"
        table = "; ".join(f"{row.low:.1f}–{row.high:.1f}: {row.count} said {row.confidence:.3f}, right {row.accuracy:.3f}" for row in report.reliability)
        figures += [
            Figure(
                benchmark,
                f"accuracy of final labels ({report.scored:,} non-gold items)",
                round(report.accuracy, 4),
                "",
                ceiling=f"crowd-kit on every answer, same items: majority vote {majority:.4f}, Dawid-Skene {dawid_skene:.4f}; "
                f"published: majority vote {published_majority:.3f}, Dawid-Skene {published_dawid_skene:.3f}",
                goal=f"≥ {floor:.4f} (issue 18 goal {goal_accuracy:.3f}, crowd-kit MV and DS)",
                met=report.accuracy >= floor,
            ),
            Figure(
                benchmark,
                "labels used per non-gold item",
                round(report.labels_per_item, 2),
                "",
                ceiling=f"dataset: {redundancy:.2f} per item",
                goal=f"≤ {goal_labels:.2f}" if goal_labels is not None else f"< {redundancy:.2f}",
                met=report.labels_per_item <= goal_labels if goal_labels is not None else report.labels_per_item < redundancy,
            ),
            Figure(
                benchmark,
                f"expected calibration error of the final labels' confidence (reliability: {table})",
                round(report.ece, 4),
                "",
                goal=f"≤ {GOAL_ECE}",
                met=report.ece <= GOAL_ECE,
            ),
            Figure(
                benchmark,
                f"expected calibration error of the confidence items retired with online ({report.online_labels:,} items)",
                round(report.online_ece, 4),
                "",
            ),
            Figure(
                benchmark,
                f"whole replay, {report.answers_fed:,} answers through lease + submit ({report.answers_skipped:,} skipped: item retired)",
                round(report.seconds, 1),
                "s",
            ),
        ]
    return figures


def load_answers(app, answers: int = ANSWERS) -> tuple[int, list[tuple[int, int, str]]]:
    """A pack with `answers` accepted submissions (3 per item) written in bulk; returns the pack id and the
    (item, member, label) triples for the in-memory floor."""
    import random

    from sqlalchemy import insert

    from sapien.accounts.models import User
    from sapien.accounts.names import username_skeleton
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import packs
    from sapien.labeling.models import Item, Lease, Submission

    rng = random.Random(7)
    now = utcnow()
    members = 300
    items = (answers + 2) // 3
    classes = ["a", "b", "c"]
    with app.app_context():
        campaign = packs.create_campaign(name="Aggregation bench", kind="enterprise", actor_id=None, now=now)
        pack = packs.create_pack(
            campaign.id,
            {"name": "Aggregation bench", "slug": "aggregation-bench", "task_type": "text_classification", "label_options": classes,
             "labels_per_item": 3, "max_labels_per_item": 3, "review_rate_percent": 0, "gold_rate_percent": 0},
            actor_id=None,
            now=now,
        )
        pack_id = pack.id
        db.session.execute(
            insert(User),
            [{"username": f"agg{n}", "username_key": f"agg{n}", "username_skeleton": username_skeleton(f"agg{n}"), "email": f"agg{n}@bench.example", "password_hash": "x",
              "display_name": f"Member {n}", "role": "member", "timezone": "UTC", "created_at": now} for n in range(members)],
        )
        user_ids = [row[0] for row in db.session.execute(db.select(User.id).where(User.username.like("agg%")).order_by(User.id))]
        skill = {user_id: rng.uniform(0.55, 0.95) for user_id in user_ids}
        truth = [rng.choice(classes) for _ in range(items)]
        db.session.execute(
            insert(Item),
            [{"pack_id": pack_id, "external_id": f"e{n}", "payload": {"text": f"item {n}"}, "status": "retired", "labels_target": 3,
              "slots_taken": 3, "created_at": now} for n in range(items)],
        )
        item_ids = [row[0] for row in db.session.execute(db.select(Item.id).where(Item.pack_id == pack_id).order_by(Item.id))]
        triples = []
        for n in range(answers):
            item_index = n // 3
            user_id = user_ids[(item_index * 7 + (n % 3) * 101) % members]
            right = rng.random() < skill[user_id]
            value = truth[item_index] if right else rng.choice([c for c in classes if c != truth[item_index]])
            triples.append((item_ids[item_index], user_id, value))
        for start in range(0, answers, 10_000):
            chunk = triples[start : start + 10_000]
            lease_ids = db.session.execute(
                insert(Lease).returning(Lease.id, sort_by_parameter_order=True),
                [{"item_id": i, "pack_id": pack_id, "user_id": u, "status": "submitted", "created_at": now, "expires_at": now} for i, u, _ in chunk],
            ).scalars().all()
            db.session.execute(
                insert(Submission),
                [{"lease_id": lease_id, "item_id": i, "pack_id": pack_id, "user_id": u, "answer": {"labels": [v]}, "status": "accepted",
                  "is_gold": False, "created_at": now} for lease_id, (i, u, v) in zip(lease_ids, chunk, strict=True)],
            )
        db.session.commit()
    return pack_id, triples


def aggregation_figures(app) -> list[Figure]:
    import pandas as pd
    from crowdkit.aggregation import MajorityVote

    from sapien.database import utcnow
    from sapien.quality.batch import aggregate_pack

    pack_id, triples = load_answers(app)
    with app.app_context():
        started = time.perf_counter()
        report = aggregate_pack(pack_id, now=utcnow(), finalize=True)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        report_again = aggregate_pack(pack_id, now=utcnow(), finalize=True)  # the second run updates every label
        seconds_again = time.perf_counter() - started
    frame = pd.DataFrame(triples, columns=["task", "worker", "label"])
    started = time.perf_counter()
    MajorityVote().fit_predict(frame)
    floor = time.perf_counter() - started
    return [
        Figure(
            NAME,
            f"aggregate_pack, {report.answers:,} answers → {report.labels_written:,} new verified labels ({report.method})",
            round(seconds, 2),
            "s",
            ceiling=f"crowd-kit MajorityVote in memory: {floor:.2f} s",
            goal=f"< {GOAL_AGGREGATION_S:.0f} s",
            met=seconds < GOAL_AGGREGATION_S,
        ),
        Figure(
            NAME,
            f"aggregate_pack again, updating {report_again.labels_written:,} labels",
            round(seconds_again, 2),
            "s",
            ceiling=f"crowd-kit MajorityVote in memory: {floor:.2f} s",
            goal=f"< {GOAL_AGGREGATION_S:.0f} s",
            met=seconds_again < GOAL_AGGREGATION_S,
        ),
    ]


def run() -> list[Figure]:
    app = _app()
    figures = aggregation_figures(app) if os.environ.get("BENCH_QUALITY_AGGREGATION", "1") != "0" else []
    return figures + replay_figures(app)
