"""Quality rules: gold checks, the QA review queue, appeals, aggregation, reputation.

Reputation
----------
Every member has a score from 0 to 1000 (500 for a new member). Each signal about the quality of
their work moves it a step toward 1000 (good) or 0 (bad): ``delta = round(rate × (target − score))``
(at least ±1), so the score behaves like a moving average of the member's recent quality signals and
never leaves its range. The rates per signal (``REPUTATION_RATES``): a gold answer 0.04, a review
outcome 0.05 (fix-and-accept counts half way), a planted review the reviewer judged 0.05, agreement
with an item's verified label 0.01. An overturned appeal gives back what the rejection took. Members
with no signal for ``REPUTATION_DECAY_AFTER_DAYS`` drift back toward 500 (see `decay_reputation`).
Each change is a `ReputationEvent` with a unique key, so the same cause moves a score once.

Review sampling
---------------
A non-gold submission goes to the review queue with probability
``rate = base + (100 − base) × max(0, 500 − reputation) / 500`` percent, where ``base`` is the pack's
``review_rate_percent``: members at or above the default reputation are sampled at the pack's rate,
a member at 250 halfway between that rate and 100 %, a member at 0 always. A pack with a rate of 0
(the crowd replay, which has no reviewers) is never sampled. The draw is a hash of the submission id,
so the same submission is always sampled the same way.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.accounts.models import ROLE_RANK, User
from sapien.database import after_commit, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.labeling.models import Item, Submission, TaskPack
from sapien.quality.models import Reputation, ReputationEvent, Review, VerifiedLabel

DEFAULT_REPUTATION = 500
MAX_REPUTATION = 1000
CLASSIFICATION_TYPES = ("text_classification", "image_classification")
REPUTATION_RATES = {
    "gold": 0.04,
    "review": 0.05,
    "planted_review": 0.05,
    "agreement": 0.01,
}
# Text answers match when their normalised word sequences are this similar (1 − word edit distance / length).
TEXT_MATCH_SIMILARITY = {"text_cleaning": 0.95, "audio_transcription": 0.85}
BOX_MATCH_IOU = 0.5


class QualityError(DomainError):
    pass


@dataclass(frozen=True)
class GoldFeedback:
    correct: bool
    expected: dict
    explanation: str


@dataclass(frozen=True)
class Judgement:
    status: str  # "accepted" | "pending_review" | "rejected"
    feedback: GoldFeedback | None = None
    reason: str = ""


def _config(key: str, default):
    return current_app.config.get(key, default)


# --- answers ---------------------------------------------------------------------------------------

_PUNCTUATION = re.compile(r"[^\w\s']+", re.UNICODE)


def _words(text: str, *, loose: bool) -> list[str]:
    text = (text or "").strip()
    if loose:
        text = _PUNCTUATION.sub(" ", text.casefold())
    return text.split()


def _edit_distance(a: Sequence, b: Sequence) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, left in enumerate(a, 1):
        current = [i]
        for j, right in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (left != right)))
        previous = current
    return previous[-1]


def text_similarity(expected: str, answer: str, *, loose: bool = False) -> float:
    """1 − word-level edit distance / the longer length; `loose` ignores case and punctuation."""
    left, right = _words(expected, loose=loose), _words(answer, loose=loose)
    longest = max(len(left), len(right))
    if longest == 0:
        return 1.0
    return 1.0 - _edit_distance(left, right) / longest


def box_iou(a: dict, b: dict) -> float:
    ax2, ay2, bx2, by2 = a["x"] + a["w"], a["y"] + a["h"], b["x"] + b["w"], b["y"] + b["h"]
    inter_w = min(ax2, bx2) - max(a["x"], b["x"])
    inter_h = min(ay2, by2) - max(a["y"], b["y"])
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    return inter / (a["w"] * a["h"] + b["w"] * b["h"] - inter)


def match_boxes(expected: list[dict], answer: list[dict], threshold: float = BOX_MATCH_IOU) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of same-label boxes by IoU (best pairs first), pairs at or above `threshold`."""
    pairs = []
    for i, left in enumerate(expected):
        for j, right in enumerate(answer):
            if left.get("label") != right.get("label"):
                continue
            iou = box_iou(left, right)
            if iou >= threshold:
                pairs.append((iou, i, j))
    pairs.sort(reverse=True)
    used_left, used_right, matched = set(), set(), []
    for _, i, j in pairs:
        if i not in used_left and j not in used_right:
            used_left.add(i)
            used_right.add(j)
            matched.append((i, j))
    return matched


def answers_match(pack, expected: dict, answer: dict) -> bool:
    """Is `answer` the same answer as `expected` for this pack's task type?

    Classification: the same label set. Text cleaning: word sequences ≥ 95 % alike (case and punctuation
    count: they are what cleaning fixes). Transcription: ≥ 85 % alike ignoring case and punctuation (a
    word error rate of at most 15 %). Boxes: the same number of boxes, each matched one-to-one to a box
    of the same label with IoU ≥ 0.5.
    """
    if expected is None or answer is None:
        return False
    task_type = pack.task_type
    if task_type in CLASSIFICATION_TYPES:
        return sorted(set(expected.get("labels") or [])) == sorted(set(answer.get("labels") or []))
    if task_type == "text_cleaning":
        return text_similarity(expected.get("text", ""), answer.get("text", "")) >= TEXT_MATCH_SIMILARITY[task_type]
    if task_type == "audio_transcription":
        return text_similarity(expected.get("text", ""), answer.get("text", ""), loose=True) >= TEXT_MATCH_SIMILARITY[task_type]
    if task_type == "bounding_boxes":
        left, right = expected.get("boxes") or [], answer.get("boxes") or []
        if len(left) != len(right):
            return False
        return len(match_boxes(left, right)) == len(left)
    return expected == answer


def effective_answer(submission: Submission) -> dict:
    """The answer aggregation reads: a reviewer's fix when there is one."""
    return submission.fixed_answer if submission.fixed_answer is not None else submission.answer


# --- reputation ------------------------------------------------------------------------------------

def reputation_of(user_id: int) -> int:
    """A member's reputation, 0–1000 (500 until anything has moved it). One primary-key lookup."""
    row = db.session.get(Reputation, user_id)
    return row.score if row is not None else DEFAULT_REPUTATION


def reputation_step(score: int, rate: float, good: bool) -> int:
    """How far one signal moves a score: `rate` of the way toward 1000 (good) or 0 (bad), at least one point."""
    target = MAX_REPUTATION if good else 0
    delta = round(rate * (target - score))
    if delta == 0 and score != target:
        delta = 1 if good else -1
    return delta


def _apply_reputation(user_id: int, key: str, reason: str, now: datetime, *, delta: int | None = None, good: bool | None = None, rate: float | None = None) -> int | None:
    """Move a member's score once per `key` (inside the caller's unit of work). Returns the delta applied,
    or None when that key already moved it."""
    session = db.session
    if session.scalar(select(ReputationEvent.id).where(ReputationEvent.key == key)) is not None:
        return None
    row = session.get(Reputation, user_id, with_for_update=True)
    if row is None:
        try:
            with session.begin_nested():
                row = Reputation(user_id=user_id, score=DEFAULT_REPUTATION, updated_at=now)
                session.add(row)
        except IntegrityError:
            row = session.get(Reputation, user_id, with_for_update=True, populate_existing=True)
    score = row.score
    if delta is None:
        delta = reputation_step(score, rate if rate is not None else REPUTATION_RATES[reason], bool(good))
    new_score = max(0, min(MAX_REPUTATION, score + delta))
    try:
        with session.begin_nested():
            session.add(ReputationEvent(user_id=user_id, key=key[:128], reason=reason, delta=new_score - score, score_after=new_score, created_at=now))
    except IntegrityError:
        return None
    row.score = new_score
    row.updated_at = now
    return new_score - score


def record_reputation(user_id: int, *, key: str, reason: str, good: bool, now: datetime, rate: float | None = None) -> int | None:
    """Apply one quality signal to a member's reputation (once per key)."""
    with unit_of_work():
        return _apply_reputation(user_id, key, reason, now, good=good, rate=rate)


def reputation_history(user_id: int, limit: int = 100) -> list[ReputationEvent]:
    return list(
        db.session.scalars(
            select(ReputationEvent).where(ReputationEvent.user_id == user_id).order_by(ReputationEvent.created_at.desc(), ReputationEvent.id.desc()).limit(limit)
        )
    )


def gold_accuracy_by_member(min_total: int) -> dict[int, tuple[int, int]]:
    """user_id → (correct, total) gold answers, for members with at least `min_total` judged gold answers."""
    correct = func.sum(case((Submission.gold_correct.is_(True), 1), else_=0))
    total = func.count(Submission.id)
    rows = db.session.execute(
        select(Submission.user_id, correct, total)
        .where(Submission.is_gold.is_(True), Submission.gold_correct.is_not(None))
        .group_by(Submission.user_id)
        .having(total >= max(1, min_total))
    )
    return {user_id: (int(right or 0), int(count)) for user_id, right, count in rows}


def gold_accuracy_in_pack(pack_id: int, user_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    if not user_ids:
        return {}
    correct = func.sum(case((Submission.gold_correct.is_(True), 1), else_=0))
    rows = db.session.execute(
        select(Submission.user_id, correct, func.count(Submission.id))
        .where(Submission.pack_id == pack_id, Submission.user_id.in_(list(user_ids)), Submission.is_gold.is_(True), Submission.gold_correct.is_not(None))
        .group_by(Submission.user_id)
    )
    return {user_id: (int(right or 0), int(count)) for user_id, right, count in rows}


def can_review(user_id: int) -> bool:
    """Reviewers by role, or members whose reputation reached REVIEWER_MIN_REPUTATION (650 by default)."""
    user = db.session.get(User, user_id)
    if user is None or user.is_banned:
        return False
    if ROLE_RANK.get(user.role, 0) >= ROLE_RANK["reviewer"]:
        return True
    return reputation_of(user_id) >= int(_config("REVIEWER_MIN_REPUTATION", 650))


# --- judging a fresh submission -------------------------------------------------------------------

def review_rate_percent(pack: TaskPack, reputation: int) -> float:
    """The chance (in percent) a member's submission is sampled for review; see the module docstring."""
    base = pack.review_rate_percent
    if base <= 0:
        return 0.0
    shortfall = max(0, DEFAULT_REPUTATION - reputation) / DEFAULT_REPUTATION
    return min(100.0, base + (100 - base) * shortfall)


def _draw_percent(seed: str) -> float:
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _send_gold_answered(user_id: int, item_id: int, pack_id: int, task_type: str, correct: bool, now: datetime) -> None:
    after_commit(lambda: events.gold_answered.send(None, user_id=user_id, item_id=item_id, pack_id=pack_id, task_type=task_type, correct=correct, now=now))


def judge_submission(submission_id: int, *, now: datetime) -> Judgement:
    """Decide a fresh submission's first status (core calls this inside its unit of work).

    Gold items are checked at once against the known answer (feedback + reputation + `gold_answered`);
    other submissions are sampled into the review queue or accepted.
    """
    with unit_of_work() as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            raise QualityError(_l("That submission does not exist."))
        item = session.get(Item, submission.item_id)
        pack = session.get(TaskPack, submission.pack_id)
        if item.is_gold and item.gold_answer is not None:
            correct = answers_match(pack, item.gold_answer, submission.answer)
            submission.is_gold = True
            submission.gold_correct = correct
            explanation = item.gold_explanation or ""
            reason = ""
            if not correct:
                reason = explanation or str(_l("This was a known-answer item and the answer did not match the expected one."))
                submission.rejection_reason = reason
            _apply_reputation(submission.user_id, f"gold:{submission.id}", "gold", now, good=correct)
            _send_gold_answered(submission.user_id, item.id, pack.id, pack.task_type, correct, now)
            return Judgement(
                status="accepted" if correct else "rejected",
                feedback=GoldFeedback(correct=correct, expected=dict(item.gold_answer), explanation=explanation),
                reason=reason,
            )
        rate = review_rate_percent(pack, reputation_of(submission.user_id))
        if rate > 0 and _draw_percent(f"review:{submission.id}") < rate:
            try:
                with session.begin_nested():
                    session.add(Review(submission_id=submission.id, pack_id=pack.id, author_id=submission.user_id, status="queued", created_at=now))
            except IntegrityError:
                pass  # already queued
            return Judgement(status="pending_review")
        return Judgement(status="accepted")


# --- online aggregation and adaptive redundancy --------------------------------------------------

# A member's chance of being right, before gold evidence: 0.5 at reputation 0, 0.725 at 500, 0.95 at 1000,
# then updated by their gold answers in the pack as a Beta posterior of this prior strength.
SKILL_PRIOR_STRENGTH = 4.0


def member_skill(reputation: int, gold_correct: int, gold_total: int) -> float:
    prior_mean = 0.5 + 0.45 * reputation / MAX_REPUTATION
    return (gold_correct + SKILL_PRIOR_STRENGTH * prior_mean) / (gold_total + SKILL_PRIOR_STRENGTH)


@dataclass
class OnlineDecision:
    answer: dict
    confidence: float
    supporting_submission_ids: list[int]


def _hypothesis_count(pack: TaskPack) -> int:
    """How many answers are possible (the one-coin model spreads a wrong answer evenly over the others)."""
    if pack.task_type in CLASSIFICATION_TYPES:
        options = max(2, len(pack.label_options or []))
        return options if not pack.multi_label else min(2**options - 1, 1024)
    return 2


def online_decision(pack: TaskPack, answers: list[tuple[int, dict, float]]) -> OnlineDecision | None:
    """The one-coin posterior over the answers given: (submission id, answer, skill) → the best answer.

    Each member is right with probability `skill` and otherwise picks one of the K − 1 other answers;
    hypotheses are the distinct answers seen (grouped by `answers_match`) plus "none of them".
    """
    if not answers:
        return None
    k = _hypothesis_count(pack)
    candidates: list[tuple[dict, list[int]]] = []
    for index, (_, answer, _) in enumerate(answers):
        for candidate, members in candidates:
            if answers_match(pack, candidate, answer):
                members.append(index)
                break
        else:
            candidates.append((answer, [index]))
    wrong_logs = []
    right_logs = []
    for _, _, skill in answers:
        q = min(0.99, max(1.0 / k, skill))
        right_logs.append(math.log(q))
        wrong_logs.append(math.log((1 - q) / (k - 1)) if k > 1 else math.log(1 - q))
    all_wrong = sum(wrong_logs)
    logs = []
    for _, members in candidates:
        member_set = set(members)
        logs.append(sum(right_logs[i] if i in member_set else wrong_logs[i] for i in range(len(answers))))
    unseen = max(0, k - len(candidates))
    peak = max([*logs, all_wrong])
    total = sum(math.exp(value - peak) for value in logs) + unseen * math.exp(all_wrong - peak)
    best = max(range(len(candidates)), key=lambda i: (logs[i], len(candidates[i][1])))
    confidence = math.exp(logs[best] - peak) / total
    return OnlineDecision(
        answer=candidates[best][0],
        confidence=confidence,
        supporting_submission_ids=[answers[i][0] for i in candidates[best][1]],
    )


def _item_votes(pack: TaskPack, item: Item) -> tuple[list[Submission], list[tuple[int, dict, float]]]:
    submissions = list(
        db.session.scalars(select(Submission).where(Submission.item_id == item.id, Submission.status == "accepted").order_by(Submission.id))
    )
    user_ids = [s.user_id for s in submissions]
    gold = gold_accuracy_in_pack(pack.id, user_ids)
    scores = dict(db.session.execute(select(Reputation.user_id, Reputation.score).where(Reputation.user_id.in_(user_ids)))) if user_ids else {}
    votes = []
    for submission in submissions:
        right, total = gold.get(submission.user_id, (0, 0))
        skill = member_skill(scores.get(submission.user_id, DEFAULT_REPUTATION), right, total)
        votes.append((submission.id, effective_answer(submission), skill))
    return submissions, votes


def _review_ids_for(submission_ids: list[int]) -> list[int]:
    if not submission_ids:
        return []
    return list(db.session.scalars(select(Review.id).where(Review.submission_id.in_(submission_ids), Review.is_planted.is_(False), Review.status == "done").order_by(Review.id)))


def store_verified_label(item: Item, pack: TaskPack, answer: dict, confidence: float, method: str, submissions: list[Submission], now: datetime) -> VerifiedLabel:
    """Create or update the item's verified label (in the caller's unit of work) and announce it."""
    session = db.session
    submission_ids = [s.id for s in submissions]
    contributor_ids = sorted({s.user_id for s in submissions})
    label = session.get(VerifiedLabel, item.id)
    if label is None:
        label = VerifiedLabel(item_id=item.id, pack_id=pack.id)
        session.add(label)
    label.answer = answer
    label.confidence = float(round(confidence, 6))
    label.method = method
    label.submission_ids = submission_ids
    label.contributor_ids = contributor_ids
    label.review_ids = _review_ids_for(submission_ids)
    label.labels_used = len(submissions)
    label.verified_at = now
    item_id, pack_id, task_type = item.id, pack.id, pack.task_type
    after_commit(
        lambda: events.item_verified.send(
            None, item_id=item_id, pack_id=pack_id, task_type=task_type, contributor_ids=contributor_ids, confidence=float(confidence), now=now
        )
    )
    return label


def confidence_threshold() -> float:
    return float(_config("QUALITY_CONFIDENCE_THRESHOLD", 0.95))


def on_submission_settled(submission_id: int, *, now: datetime) -> None:
    """Update the item's online aggregate after a non-gold submission was accepted (core calls this in its
    unit of work). Adaptive redundancy: once the item has its target of accepted answers, retire it with a
    verified label when the answers are confident enough, otherwise ask one more member (up to the pack's
    maximum, where it retires with the best answer it has)."""
    from sapien.labeling import service as labeling

    with unit_of_work() as session:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.status != "accepted" or submission.is_gold:
            return
        item = session.get(Item, submission.item_id)
        if item.is_gold or item.status != "open":
            return
        pack = session.get(TaskPack, item.pack_id)
        submissions, votes = _item_votes(pack, item)
        if len(submissions) < item.labels_target:
            return
        decision = online_decision(pack, votes)
        confident = decision.confidence >= confidence_threshold()
        if not confident and item.labels_target < pack.max_labels_per_item:
            labeling.raise_item_target(item.id, item.labels_target + 1, now=now)
            return
        store_verified_label(item, pack, decision.answer, decision.confidence, "online_vote", submissions, now)
        _record_agreement(pack, decision.answer, submissions, now)
        labeling.retire_item(item.id, now=now)


def _record_agreement(pack: TaskPack, answer: dict, submissions: list[Submission], now: datetime) -> None:
    for submission in submissions:
        agrees = answers_match(pack, answer, effective_answer(submission))
        _apply_reputation(submission.user_id, f"agreement:{submission.id}", "agreement", now, good=agrees)
