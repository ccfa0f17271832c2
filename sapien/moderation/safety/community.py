"""What the detectors and the fraud model read: a few aggregate queries over answers, reviews and signals
(portable SQL: SQLite for the demo, PostgreSQL in production), turned into the detectors' plain rows and
per-member features."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from sqlalchemy import Integer, and_, case, cast, func, select

from sapien.extensions import db
from sapien.labeling.models import Submission, TaskPack
from sapien.moderation.models import TrustSignal
from sapien.moderation.safety import detectors
from sapien.moderation.verdicts import Cluster, shared_signal_clusters
from sapien.quality.models import Review

FEATURES = (
    "answers_log", "fast_share", "gold_wrong_share", "wrong_gold_agreements", "cluster_size", "rejected_share",
    "review_accept_rate", "planted_fail_share", "signup_burst",
)


def speed_rows() -> list[detectors.SpeedRow]:
    floor = case(
        *[(TaskPack.task_type == task_type, ms) for task_type, ms in detectors.SPEED_FLOORS_MS.items()],
        else_=detectors.DEFAULT_FLOOR_MS,
    )
    fast = func.sum(case((and_(Submission.time_spent_ms.is_not(None), Submission.time_spent_ms < floor), 1), else_=0))
    rejected = func.sum(case((Submission.status == "rejected", 1), else_=0))
    rows = db.session.execute(
        select(Submission.user_id, TaskPack.task_type, func.count(), cast(fast, Integer), cast(rejected, Integer))
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .group_by(Submission.user_id, TaskPack.task_type)
    )
    return [detectors.SpeedRow(user_id, task_type, answers, fast or 0, rejected or 0) for user_id, task_type, answers, fast, rejected in rows]


def _answer_key(answer) -> str:
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError:
            return answer
    return json.dumps(answer, sort_keys=True)


def wrong_gold_rows() -> list[detectors.WrongGold]:
    rows = db.session.execute(
        select(Submission.item_id, Submission.user_id, Submission.answer).where(Submission.is_gold.is_(True), Submission.gold_correct.is_(False))
    )
    return [detectors.WrongGold(item_id, user_id, _answer_key(answer)) for item_id, user_id, answer in rows]


def gold_counts() -> dict[int, int]:
    return dict(db.session.execute(
        select(Submission.user_id, func.count()).where(Submission.is_gold.is_(True)).group_by(Submission.user_id)
    ).all())


def reviewer_rows() -> list[detectors.ReviewerRow]:
    real = dict(
        (reviewer, (total, accepted)) for reviewer, total, accepted in db.session.execute(
            select(Review.reviewer_id, func.count(), cast(func.sum(case((Review.outcome.in_(("accepted", "fixed")), 1), else_=0)), Integer))
            .where(Review.is_planted.is_(False), Review.status == "done", Review.reviewer_id.is_not(None))
            .group_by(Review.reviewer_id)
        )
    )
    planted = dict(
        (reviewer, (total, failed)) for reviewer, total, failed in db.session.execute(
            select(Review.reviewer_id, func.count(), cast(func.sum(case((Review.outcome != Review.expected_outcome, 1), else_=0)), Integer))
            .where(Review.is_planted.is_(True), Review.status == "done", Review.reviewer_id.is_not(None))
            .group_by(Review.reviewer_id)
        )
    )
    seconds: dict[int, list[float]] = {}
    candidates = [rid for rid, (total, _acc) in real.items() if total >= detectors.RUBBER_MIN_REVIEWS]
    for start in range(0, len(candidates), 5000):
        chunk = candidates[start:start + 5000]
        for reviewer, claimed, decided in db.session.execute(
            select(Review.reviewer_id, Review.claimed_at, Review.decided_at).where(
                Review.reviewer_id.in_(chunk), Review.is_planted.is_(False), Review.status == "done",
                Review.claimed_at.is_not(None), Review.decided_at.is_not(None),
            )
        ):
            seconds.setdefault(reviewer, []).append((decided - claimed).total_seconds())
    rows = []
    for reviewer, (total, accepted) in real.items():
        times = sorted(seconds.get(reviewer, []))
        median = times[len(times) // 2] if times else None
        planted_total, planted_failed = planted.get(reviewer, (0, 0))
        rows.append(detectors.ReviewerRow(reviewer, total, accepted or 0, median, planted_total, planted_failed or 0))
    return rows


def review_edges() -> list[tuple[int, int, int]]:
    return list(db.session.execute(
        select(Review.reviewer_id, Review.author_id, func.count())
        .where(Review.is_planted.is_(False), Review.status == "done", Review.outcome.in_(("accepted", "fixed")), Review.reviewer_id.is_not(None))
        .group_by(Review.reviewer_id, Review.author_id)
    ))


def signups() -> list[tuple]:
    return list(db.session.execute(
        select(TrustSignal.network, TrustSignal.created_at, TrustSignal.user_id).where(TrustSignal.kind == "sign_up")
    ))


@dataclass
class Community:
    """Everything one scan found: each detector's findings and each member's features."""

    findings: dict[str, detectors.Findings] = field(default_factory=dict)
    features: dict[int, list[float]] = field(default_factory=dict)
    clusters: list[Cluster] = field(default_factory=list)


def read_community() -> Community:
    speed = speed_rows()
    clusters = shared_signal_clusters()
    wrong = wrong_gold_rows()
    gold_answered = gold_counts()
    reviewers = reviewer_rows()
    found = {
        "fast_answers": detectors.fast_answers(speed),
        "shared_signals": detectors.shared_signals(clusters),
        "collusion": detectors.collusion(wrong, gold_answered),
        "rubber_stamp": detectors.rubber_stamp(reviewers),
        "review_ring": detectors.review_rings(review_edges()),
        "signup_burst": detectors.signup_bursts(signups()),
    }
    return Community(findings=found, features=member_features(speed, wrong, gold_answered, reviewers, clusters, found), clusters=clusters)


def member_features(speed, wrong, gold_answered, reviewers, clusters, found) -> dict[int, list[float]]:
    answers: dict[int, tuple[int, int]] = {}
    fast: dict[int, int] = {}
    for row in speed:
        fast[row.user_id] = fast.get(row.user_id, 0) + row.fast
        total, rejected = answers.get(row.user_id, (0, 0))
        answers[row.user_id] = (total + row.answers, rejected + row.rejected)
    wrong_by: dict[int, int] = {}
    for row in wrong:
        wrong_by[row.user_id] = wrong_by.get(row.user_id, 0) + 1
    cluster_size = {m: len(c.member_ids) for c in clusters for m in c.member_ids}
    review_by = {r.reviewer_id: r for r in reviewers}
    members = set(answers) | set(cluster_size) | set(review_by)
    features = {}
    for user_id in members:
        total, rejected = answers.get(user_id, (0, 0))
        gold = gold_answered.get(user_id, 0)
        review = review_by.get(user_id)
        agreements = sum(count for _other, count, _ratio in found["collusion"][user_id].details["pairs"]) if user_id in found["collusion"] else 0
        features[user_id] = [
            math.log1p(total),
            fast.get(user_id, 0) / total if total else 0.0,
            wrong_by.get(user_id, 0) / gold if gold else 0.0,
            float(agreements),
            float(cluster_size.get(user_id, 1)),
            rejected / total if total else 0.0,
            review.accepted / review.reviews if review and review.reviews else 0.0,
            review.planted_failed / review.planted if review and review.planted else 0.0,
            1.0 if user_id in found["signup_burst"] else 0.0,
        ]
    return features
