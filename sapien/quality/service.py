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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Text, case, cast, func, select, update
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.accounts.models import ROLE_RANK, User
from sapien.database import after_commit, as_utc, is_postgres, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.labeling.models import Item, Media, Submission, TaskPack
from sapien.quality.models import Appeal, Reputation, ReputationEvent, Review, VerifiedLabel
from sapien.queue import pending_work_source

if TYPE_CHECKING:
    import numpy as np

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


def reputation_reason_labels() -> dict[str, str]:
    return {
        "gold": _l("Known-answer item"),
        "review": _l("Review of your work"),
        "agreement": _l("Agreement with the verified label"),
        "planted_review": _l("Check of your reviewing"),
        "appeal": _l("Appeal overturned"),
        "decay": _l("Inactivity drift toward 500"),
    }


@dataclass
class ReputationChart:
    width: int
    height: int
    points: str  # SVG polyline points
    first: int
    last: int
    low: int
    high: int


def reputation_chart(events_oldest_first: list[ReputationEvent], width: int = 600, height: int = 160) -> ReputationChart | None:
    """Polyline points for the score over the member's recent events (the y axis spans 0–1000)."""
    if not events_oldest_first:
        return None
    scores = [events_oldest_first[0].score_after - events_oldest_first[0].delta] + [e.score_after for e in events_oldest_first]
    step = width / max(1, len(scores) - 1)
    points = " ".join(f"{round(i * step, 1)},{round(height - score * height / MAX_REPUTATION, 1)}" for i, score in enumerate(scores))
    return ReputationChart(width, height, points, scores[0], scores[-1], min(scores), max(scores))


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


def reviewer_min_reputation() -> int:
    return int(_config("REVIEWER_MIN_REPUTATION", 650))


def can_review(user_id: int) -> bool:
    """Reviewers by role, or members whose reputation reached REVIEWER_MIN_REPUTATION (650 by default)."""
    user = db.session.get(User, user_id)
    if user is None or user.is_banned:
        return False
    if ROLE_RANK.get(user.role, 0) >= ROLE_RANK["reviewer"]:
        return True
    return reputation_of(user_id) >= reviewer_min_reputation()


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

# A member's chance of being right before any gold evidence: 0.5 at reputation 0, 0.725 at 500, 0.95 at
# 1000. Their gold answers in the pack then update it as a Beta (one-coin) or Dirichlet (per-class
# confusion, classification) posterior with this prior strength.
SKILL_PRIOR_STRENGTH = 4.0


def prior_accuracy(reputation: int) -> float:
    return 0.5 + 0.45 * max(0, min(MAX_REPUTATION, reputation)) / MAX_REPUTATION


def member_skill(reputation: int, gold_correct: int, gold_total: int) -> float:
    return (gold_correct + SKILL_PRIOR_STRENGTH * prior_accuracy(reputation)) / (gold_total + SKILL_PRIOR_STRENGTH)


@dataclass
class OnlineDecision:
    answer: dict
    confidence: float
    supporting_submission_ids: list[int]
    retirable: bool | None = None  # None: compare `confidence` with the threshold


def _hypothesis_count(pack: TaskPack) -> int:
    """How many answers are possible (the one-coin model spreads a wrong answer evenly over the others)."""
    if pack.task_type in CLASSIFICATION_TYPES:
        options = max(2, len(pack.label_options or []))
        return options if not pack.multi_label else min(2**options - 1, 1024)
    return 2


def online_decision(pack: TaskPack, answers: list[tuple[int, dict, float]]) -> OnlineDecision | None:
    """The one-coin posterior over the answers given: (submission id, answer, skill) → the best answer.

    Each member is right with probability `skill` and otherwise gives one of the K − 1 other answers;
    the hypotheses are the distinct answers seen (grouped by `answers_match`) plus "none of them".
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
    right_logs, wrong_logs = [], []
    for _, _, skill in answers:
        q = min(0.99, max(1.0 / k, skill))
        right_logs.append(math.log(q))
        wrong_logs.append(math.log((1 - q) / (k - 1)))
    all_wrong = sum(wrong_logs)
    logs = []
    for _, members in candidates:
        member_set = set(members)
        logs.append(sum(right_logs[i] if i in member_set else wrong_logs[i] for i in range(len(answers))))
    unseen = max(0, k - len(candidates))
    peak = max([*logs, all_wrong])
    total = sum(math.exp(value - peak) for value in logs) + unseen * math.exp(all_wrong - peak)
    best = max(range(len(candidates)), key=lambda i: (logs[i], len(candidates[i][1])))
    return OnlineDecision(
        answer=candidates[best][0],
        confidence=math.exp(logs[best] - peak) / total,
        supporting_submission_ids=[answers[i][0] for i in candidates[best][1]],
    )


# Agreement with an item's verified label counts as this fraction of a gold answer in a member's confusion
# estimate: it is evidence, but the label it is compared with may itself be wrong.
AGREEMENT_EVIDENCE_WEIGHT = 0.5


@dataclass
class MemberEvidence:
    reputation: int
    gold: list[tuple[dict, dict]] = field(default_factory=list)  # (their answer, the gold answer)
    # (their answer, the verified label, how many times) for items of the pack already verified
    agreement: list[tuple[dict, dict, int]] = field(default_factory=list)

    def count(self, pack: TaskPack) -> tuple[int, int]:
        right = sum(1 for given, truth in self.gold if answers_match(pack, truth, given))
        return right, len(self.gold)


def member_evidence(pack: TaskPack, user_ids: Sequence[int], *, with_agreement: bool = False) -> dict[int, MemberEvidence]:
    """Reputation, gold answers and (optionally) agreement with verified labels in this pack, per member."""
    import json

    user_ids = sorted(set(user_ids))
    if not user_ids:
        return {}
    scores = dict(db.session.execute(select(Reputation.user_id, Reputation.score).where(Reputation.user_id.in_(user_ids))).tuples().all())
    evidence = {user_id: MemberEvidence(scores.get(user_id, DEFAULT_REPUTATION)) for user_id in user_ids}
    rows = db.session.execute(
        select(Submission.user_id, Submission.answer, Item.gold_answer)
        .join(Item, Item.id == Submission.item_id)
        .where(Submission.pack_id == pack.id, Submission.user_id.in_(user_ids), Submission.is_gold.is_(True), Submission.gold_correct.is_not(None))
    )
    for user_id, answer, gold_answer in rows:
        if gold_answer is not None:
            evidence[user_id].gold.append((answer, gold_answer))
    if with_agreement:
        # Grouped in the database: canonical answers serialise identically, so their text compares.
        given = func.coalesce(cast(Submission.fixed_answer, Text), cast(Submission.answer, Text))
        verified = cast(VerifiedLabel.answer, Text)
        grouped = db.session.execute(
            select(Submission.user_id, given, verified, func.count())
            .join(VerifiedLabel, VerifiedLabel.item_id == Submission.item_id)
            .where(Submission.pack_id == pack.id, Submission.user_id.in_(user_ids), Submission.status == "accepted", Submission.is_gold.is_(False))
            .group_by(Submission.user_id, given, verified)
        )
        for user_id, given_text, verified_text, times in grouped:
            evidence[user_id].agreement.append((json.loads(given_text), json.loads(verified_text), int(times)))
    return evidence


def pack_gold_counts(pack: TaskPack, index: dict[str, int]) -> np.ndarray:
    """The crowd's answers on the pack's gold items as counts [true class, given class] (one grouped query)."""
    import json

    import numpy as np

    counts = np.zeros((len(index), len(index)))
    rows = db.session.execute(
        select(cast(Submission.answer, Text), cast(Item.gold_answer, Text), func.count())
        .join(Item, Item.id == Submission.item_id)
        .where(Submission.pack_id == pack.id, Submission.is_gold.is_(True), Submission.gold_correct.is_not(None))
        .group_by(cast(Submission.answer, Text), cast(Item.gold_answer, Text))
    )
    for given_text, truth_text, times in rows:
        given, truth = (json.loads(given_text).get("labels") or [None])[0], (json.loads(truth_text or "{}").get("labels") or [None])[0]
        if given in index and truth in index:
            counts[index[truth], index[given]] += times
    return counts


def classification_decision(pack: TaskPack, votes: list[tuple[int, int, dict]], evidence: dict[int, MemberEvidence]) -> OnlineDecision | None:
    """Single-label classification: the online posterior of one item (`aggregation.online_posterior`):
    each member's confusion is their own evidence in the pack (gold answers, agreement with verified
    labels) shrunk toward the crowd's pooled confusion on the pack's gold items. `retirable` says
    whether the calibrated confidence may retire the item (also needs enough agreeing answers)."""
    import numpy as np

    from sapien.quality.aggregation import online_posterior, pooled_confusion

    options = list(pack.label_options or [])
    index = {label: i for i, label in enumerate(options)}
    k = len(options)
    if k < 2 or not votes:
        return None
    own = {}
    for user_id, member in evidence.items():
        counts = np.zeros((k, k))
        observations = [(given, truth, 1.0) for given, truth in member.gold]
        observations += [(given, truth, AGREEMENT_EVIDENCE_WEIGHT * times) for given, truth, times in member.agreement]
        for given, truth, weight in observations:
            g, t = (given.get("labels") or [None])[0], (truth.get("labels") or [None])[0]
            if g in index and t in index:
                counts[index[t], index[g]] += weight
        own[user_id] = counts
    usable = []
    for submission_id, user_id, answer in votes:
        label = (answer.get("labels") or [None])[0]
        if label in index:
            usable.append((submission_id, index[label], own.get(user_id)))
    if not usable:
        return None
    result = online_posterior(k, [(given, counts) for _, given, counts in usable], pooled_confusion(k, pack_gold_counts(pack, index)))
    return OnlineDecision(
        answer={"labels": [options[result.best]]},
        confidence=result.confidence,
        supporting_submission_ids=[submission_id for submission_id, given, _ in usable if given == result.best],
        retirable=result.retires(confidence_threshold()),
    )


def item_decision(pack: TaskPack, submissions: list[Submission]) -> OnlineDecision | None:
    """The best answer for an item from its accepted answers, weighted by what we know of each member."""
    single_label = pack.task_type in CLASSIFICATION_TYPES and not pack.multi_label
    evidence = member_evidence(pack, [s.user_id for s in submissions], with_agreement=single_label)
    if single_label:
        decision = classification_decision(pack, [(s.id, s.user_id, effective_answer(s)) for s in submissions], evidence)
        if decision is not None:
            return decision
    votes = []
    for submission in submissions:
        member = evidence[submission.user_id]
        right, total = member.count(pack)
        votes.append((submission.id, effective_answer(submission), member_skill(member.reputation, right, total)))
    return online_decision(pack, votes)


def _accepted_answers(item_id: int) -> list[Submission]:
    return list(db.session.scalars(select(Submission).where(Submission.item_id == item_id, Submission.status == "accepted").order_by(Submission.id)))


def _review_ids_for(submission_ids: list[int]) -> list[int]:
    if not submission_ids:
        return []
    return list(
        db.session.scalars(
            select(Review.id).where(Review.submission_id.in_(submission_ids), Review.is_planted.is_(False), Review.status == "done").order_by(Review.id)
        )
    )


def store_verified_label(item: Item, pack: TaskPack, answer: dict, confidence: float, method: str, submissions: list[Submission], now: datetime) -> VerifiedLabel:
    """Create or update the item's verified label (in the caller's unit of work) and announce it."""
    session = db.session
    submission_ids = [s.id for s in submissions]
    contributor_ids = sorted({s.user_id for s in submissions})
    review_ids = _review_ids_for(submission_ids)
    label = session.get(VerifiedLabel, item.id)
    if label is None:
        label = VerifiedLabel(item_id=item.id, pack_id=pack.id)
        session.add(label)
    label.answer = answer
    label.confidence = float(round(confidence, 6))
    label.method = method
    label.submission_ids = submission_ids
    label.contributor_ids = contributor_ids
    label.review_ids = review_ids
    label.labels_used = len(submissions)
    label.verified_at = now
    item_id, pack_id, task_type, score = item.id, pack.id, pack.task_type, float(confidence)
    after_commit(
        lambda: events.item_verified.send(None, item_id=item_id, pack_id=pack_id, task_type=task_type, contributor_ids=contributor_ids, confidence=score, now=now)
    )
    return label


def confidence_threshold() -> float:
    """How sure the online vote must be to retire an item (config QUALITY_CONFIDENCE_THRESHOLD, 0.95)."""
    return float(_config("QUALITY_CONFIDENCE_THRESHOLD", 0.95))


def on_submission_settled(submission_id: int, *, now: datetime) -> None:
    """Update the item's online aggregate after a non-gold submission was accepted (core calls this in its
    unit of work). Adaptive redundancy: once the item has its target of accepted answers, retire it with a
    verified label when the answers are confident enough, otherwise ask one more member (up to the pack's
    maximum, where it retires with the best answer it has). An item already verified (a late review, an
    overturned appeal) gets its label recomputed."""
    from sapien.labeling import service as labeling

    with unit_of_work() as session:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.status != "accepted" or submission.is_gold:
            return
        # Lock the item (FOR NO KEY UPDATE: the submission rows hold KEY SHARE locks on it through their foreign
        # key): two answers settling at once are decided one after the other, so the second sees
        # the first (otherwise each could see only itself, stay below the target, and the item would stall).
        item = session.execute(
            select(Item).where(Item.id == submission.item_id).with_for_update(key_share=True).execution_options(populate_existing=True)
        ).scalar_one()
        if item.is_gold:
            return
        pack = session.get(TaskPack, item.pack_id)
        if item.status != "open":
            _refresh_verified_label(item, pack, now)
            return
        submissions = _accepted_answers(item.id)
        if len(submissions) < item.labels_target:
            return
        decision = item_decision(pack, submissions)
        if decision is None:
            return
        retirable = decision.retirable if decision.retirable is not None else decision.confidence >= confidence_threshold()
        if not retirable and item.labels_target < pack.max_labels_per_item:
            labeling.raise_item_target(item.id, item.labels_target + 1, now=now)
            return
        store_verified_label(item, pack, decision.answer, decision.confidence, "online_vote", submissions, now)
        _record_agreement(pack, decision.answer, submissions, now)
        labeling.retire_item(item.id, now=now)


def _refresh_verified_label(item: Item, pack: TaskPack, now: datetime) -> None:
    """Recompute an already verified item's label from its accepted answers (after a review or appeal)."""
    if db.session.get(VerifiedLabel, item.id) is None:
        return
    submissions = _accepted_answers(item.id)
    if not submissions:
        db.session.delete(db.session.get(VerifiedLabel, item.id))
        return
    decision = item_decision(pack, submissions)
    if decision is not None:
        store_verified_label(item, pack, decision.answer, decision.confidence, "online_vote", submissions, now)


def _record_agreement(pack: TaskPack, answer: dict, submissions: list[Submission], now: datetime) -> None:
    """Agreement with the verified label moves each contributor's reputation (a few bulk statements)."""
    signals = {f"agreement:{s.id}": (s.user_id, answers_match(pack, answer, effective_answer(s))) for s in submissions}
    if not signals:
        return
    session = db.session
    done = set(session.scalars(select(ReputationEvent.key).where(ReputationEvent.key.in_(list(signals)))))
    pending = {key: value for key, value in signals.items() if key not in done}
    user_ids = sorted({user_id for user_id, _ in pending.values()})
    if not user_ids:
        return
    rows = {row.user_id: row for row in session.scalars(select(Reputation).where(Reputation.user_id.in_(user_ids)).with_for_update())}
    missing = [user_id for user_id in user_ids if user_id not in rows]
    for user_id in missing:
        try:
            with session.begin_nested():
                session.add(row := Reputation(user_id=user_id, score=DEFAULT_REPUTATION, updated_at=now))
            rows[user_id] = row
        except IntegrityError:
            rows[user_id] = session.get(Reputation, user_id, with_for_update=True, populate_existing=True)
    for key, (user_id, agrees) in pending.items():
        row = rows[user_id]
        before = row.score
        row.score = max(0, min(MAX_REPUTATION, before + reputation_step(before, REPUTATION_RATES["agreement"], agrees)))
        row.updated_at = now
        session.add(ReputationEvent(user_id=user_id, key=key, reason="agreement", delta=row.score - before, score_after=row.score, created_at=now))
    session.flush()


# --- the review queue ----------------------------------------------------------------------------

class ReviewError(QualityError):
    pass


class NotAReviewer(ReviewError):
    pass


class NoReviewsLeft(ReviewError):
    pass


class OwnWork(ReviewError):
    pass


class ReviewNotFound(ReviewError):
    pass


class ReviewClaimExpired(ReviewError):
    pass


class InvalidReview(ReviewError):
    pass


REVIEW_REASON_MAX = 1000


def review_claim_minutes() -> int:
    return int(_config("REVIEW_CLAIM_MINUTES", 15))


def planted_review_rate_percent() -> float:
    return float(_config("PLANTED_REVIEW_RATE_PERCENT", 10))


def _require_reviewer(user_id: int) -> None:
    if not can_review(user_id):
        raise NotAReviewer(
            _l("Reviewing opens at a reputation of %(needed)s (or with the reviewer role).", needed=reviewer_min_reputation())
        )


def _claimable(reviewer_id: int, now: datetime):
    """Real reviews this reviewer may take: queued or abandoned, not their own work, and not an item they
    answered themselves."""
    own_items = select(Submission.item_id).where(Submission.user_id == reviewer_id)
    return (
        select(Review)
        .join(Submission, Submission.id == Review.submission_id)
        .where(
            Review.is_planted.is_(False),
            Review.author_id != reviewer_id,
            (Review.status == "queued") | ((Review.status == "claimed") & (Review.claim_expires_at <= now)),
            Submission.item_id.not_in(own_items),
        )
    )


def active_claim(reviewer_id: int, now: datetime) -> Review | None:
    return db.session.scalar(
        select(Review)
        .where(Review.reviewer_id == reviewer_id, Review.status == "claimed", Review.claim_expires_at > now)
        .order_by(Review.claimed_at)
        .limit(1)
    )


def reviews_waiting(reviewer_id: int, now: datetime) -> int:
    return db.session.scalar(select(func.count()).select_from(_claimable(reviewer_id, now).subquery())) or 0


def _claim(review: Review, reviewer_id: int, now: datetime) -> bool:
    """Take the review with one conditional UPDATE, so two reviewers racing for it cannot both get it."""
    expires = now + timedelta(minutes=review_claim_minutes())
    taken = db.session.execute(
        update(Review)
        .where(
            Review.id == review.id,
            (Review.status == "queued") | ((Review.status == "claimed") & (Review.claim_expires_at <= now)),
        )
        .values(status="claimed", reviewer_id=reviewer_id, claimed_at=now, claim_expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        db.session.refresh(review)
    return bool(taken)


def _plant_review(reviewer_id: int, now: datetime) -> Review | None:
    """A known-answer review: someone's answer to a gold item, whose right verdict we already know."""
    own_items = select(Submission.item_id).where(Submission.user_id == reviewer_id)
    already = select(Review.submission_id).where(Review.reviewer_id == reviewer_id, Review.is_planted.is_(True))
    candidates = list(
        db.session.scalars(
            select(Submission)
            .where(
                Submission.is_gold.is_(True),
                Submission.gold_correct.is_not(None),
                Submission.user_id != reviewer_id,
                Submission.item_id.not_in(own_items),
                Submission.id.not_in(already),
            )
            .order_by(Submission.id.desc())
            .limit(50)
        )
    )
    if not candidates:
        return None
    chosen = candidates[int(_draw_percent(f"plant:{reviewer_id}:{now.isoformat()}") * len(candidates) / 100) % len(candidates)]
    review = Review(
        submission_id=chosen.id,
        pack_id=chosen.pack_id,
        author_id=chosen.user_id,
        reviewer_id=reviewer_id,
        status="claimed",
        is_planted=True,
        expected_outcome="accepted" if chosen.gold_correct else "rejected",
        created_at=now,
        claimed_at=now,
        claim_expires_at=now + timedelta(minutes=review_claim_minutes()),
    )
    try:
        with db.session.begin_nested():
            db.session.add(review)
    except IntegrityError:
        return None
    return review


def claim_next_review(reviewer_id: int, now: datetime) -> Review:
    """The reviewer's current claim, or the oldest review they may take (sometimes a planted one)."""
    with unit_of_work() as session:
        _require_reviewer(reviewer_id)
        current = active_claim(reviewer_id, now)
        if current is not None:
            return current
        query = _claimable(reviewer_id, now).order_by(Review.id).limit(5)
        if is_postgres():
            query = query.with_for_update(of=Review, skip_locked=True)
        candidates = list(session.scalars(query))
        if not candidates:
            raise NoReviewsLeft(_l("Nothing is waiting for review right now. Thank you — check back later."))
        done = session.scalar(select(func.count()).select_from(Review).where(Review.reviewer_id == reviewer_id)) or 0
        if _draw_percent(f"planted:{reviewer_id}:{done}") < planted_review_rate_percent():
            planted = _plant_review(reviewer_id, now)
            if planted is not None:
                return planted
        for review in candidates:
            if _claim(review, reviewer_id, now):
                return review
        raise NoReviewsLeft(_l("Someone else just took the last review. Try again in a moment."))


def claim_review(review_id: int, reviewer_id: int, now: datetime) -> Review:
    """Take one particular review (a link to it). Refused for the reviewer's own work."""
    with unit_of_work() as session:
        _require_reviewer(reviewer_id)
        review = session.get(Review, review_id)
        if review is None or (review.is_planted and review.reviewer_id != reviewer_id):
            raise ReviewNotFound(_l("There is no such review."))
        if review.author_id == reviewer_id:
            raise OwnWork(_l("You cannot review your own work."))
        if review.status == "claimed" and review.reviewer_id == reviewer_id and as_utc(review.claim_expires_at) > now:
            return review
        if review.status == "done":
            raise ReviewError(_l("This review has already been decided."))
        if not _claim(review, reviewer_id, now):
            raise ReviewError(_l("Another reviewer is working on this one."))
        return review


def release_review(review_id: int, reviewer_id: int, now: datetime) -> None:
    """Give a claimed review back to the queue (planted ones are simply dropped)."""
    with unit_of_work() as session:
        review = session.get(Review, review_id)
        if review is None or review.reviewer_id != reviewer_id or review.status != "claimed":
            raise ReviewNotFound(_l("There is no such review."))
        if review.is_planted:
            session.delete(review)
            return
        review.status, review.reviewer_id, review.claimed_at, review.claim_expires_at = "queued", None, None, None


def _planted_verdict_right(pack: TaskPack, item: Item, review: Review, outcome: str, fixed_answer: dict | None) -> bool:
    if outcome == "fixed":
        # A fix is right when it lands on the known answer.
        return fixed_answer is not None and item.gold_answer is not None and answers_match(pack, item.gold_answer, fixed_answer)
    return outcome == review.expected_outcome


def decide_review(
    review_id: int, reviewer_id: int, *, outcome: str, reason: str = "", fixed_answer: dict | None = None, now: datetime
) -> Review:
    """Accept, fix-and-accept or reject (with a reason) a claimed review.

    A real review decides the submission through labeling (accept pays; reject reverses pay) and moves the
    author's reputation; a planted one moves only the reviewer's, by whether the verdict was right.
    """
    from sapien.labeling import service as labeling

    with unit_of_work() as session:
        review = session.get(Review, review_id, with_for_update=True)
        if review is None or review.reviewer_id != reviewer_id:
            raise ReviewNotFound(_l("There is no such review."))
        if review.author_id == reviewer_id:
            raise OwnWork(_l("You cannot review your own work."))
        if review.status == "done":
            raise ReviewError(_l("This review has already been decided."))
        if review.status != "claimed" or review.claim_expires_at is None or as_utc(review.claim_expires_at) <= now:
            raise ReviewClaimExpired(_l("Your time for this review ran out and it went back to the queue. Claim the next one."))
        if outcome not in ("accepted", "fixed", "rejected"):
            raise InvalidReview(_l("Choose accept, fix and accept, or reject."), field="outcome")
        reason = (reason or "").strip()
        if outcome == "rejected" and not reason:
            raise InvalidReview(_l("Say why you reject it: the member sees your reason."), field="reason")
        if len(reason) > REVIEW_REASON_MAX:
            raise InvalidReview(_l("Keep the reason under %(max)s characters.", max=REVIEW_REASON_MAX), field="reason")
        submission = session.get(Submission, review.submission_id)
        item = session.get(Item, submission.item_id)
        pack = session.get(TaskPack, submission.pack_id)
        if outcome == "fixed":
            if fixed_answer is None:
                raise InvalidReview(_l("Make your fix in the answer form before choosing fix and accept."), field="answer")
            media = session.get(Media, item.media_id) if item.media_id else None
            fixed_answer = labeling.validate_answer(pack, item, fixed_answer, media=media)
        review.status, review.outcome, review.reason, review.decided_at = "done", outcome, reason, now
        review.fixed_answer = fixed_answer if outcome == "fixed" else None
        if review.is_planted:
            right = _planted_verdict_right(pack, item, review, outcome, fixed_answer)
            _apply_reputation(reviewer_id, f"planted:{review.id}", "planted_review", now, good=right)
            author_for_event = None
        else:
            if outcome == "rejected":
                labeling.reject_submission(submission.id, reason=reason, now=now)
                _apply_reputation(submission.user_id, f"review:{review.id}", "review", now, good=False)
                _refresh_verified_label(item, pack, now)
            else:
                labeling.accept_submission(submission.id, now=now, fixed_answer=fixed_answer if outcome == "fixed" else None)
                if outcome == "fixed":
                    _apply_reputation(submission.user_id, f"review:{review.id}", "review", now, good=False, rate=REPUTATION_RATES["review"] / 2)
                    item = session.get(Item, item.id)
                    if item.status != "open":
                        _refresh_verified_label(item, pack, now)
                else:
                    _apply_reputation(submission.user_id, f"review:{review.id}", "review", now, good=True)
            author_for_event = submission.user_id
        sent = dict(reviewer_id=reviewer_id, submission_id=submission.id, author_id=author_for_event, outcome=outcome, now=now)
        after_commit(lambda: events.review_completed.send(None, **sent))
        return review


@dataclass
class ReviewView:
    review: Review
    submission: Submission
    item: Item
    pack: TaskPack
    media: Media | None


def review_view(review_id: int, reviewer_id: int) -> ReviewView:
    review = db.session.get(Review, review_id)
    if review is None or review.reviewer_id != reviewer_id:
        raise ReviewNotFound(_l("There is no such review."))
    submission = db.session.get(Submission, review.submission_id)
    item = db.session.get(Item, submission.item_id)
    pack = db.session.get(TaskPack, submission.pack_id)
    media = db.session.get(Media, item.media_id) if item.media_id else None
    return ReviewView(review, submission, item, pack, media)


def recent_reviews(reviewer_id: int, limit: int = 10) -> list[Review]:
    return list(
        db.session.scalars(
            select(Review).where(Review.reviewer_id == reviewer_id, Review.status == "done").order_by(Review.decided_at.desc(), Review.id.desc()).limit(limit)
        )
    )


# --- submissions and appeals ---------------------------------------------------------------------

class SubmissionNotFound(QualityError):
    pass


class AppealError(QualityError):
    pass


class AlreadyAppealed(AppealError):
    pass


APPEAL_MESSAGE_MAX = 2000


@dataclass
class SubmissionView:
    submission: Submission
    item: Item
    pack: TaskPack
    media: Media | None
    appeal: Appeal | None
    review: Review | None

    @property
    def can_appeal(self) -> bool:
        return self.submission.status == "rejected" and self.appeal is None


def submission_view(submission_id: int, user_id: int) -> SubmissionView:
    """A member's own submission with why it was decided so (404 for anyone else's)."""
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.user_id != user_id:
        raise SubmissionNotFound(_l("There is no such submission."))
    item = db.session.get(Item, submission.item_id)
    pack = db.session.get(TaskPack, submission.pack_id)
    media = db.session.get(Media, item.media_id) if item.media_id else None
    appeal = db.session.scalar(select(Appeal).where(Appeal.submission_id == submission.id))
    review = db.session.scalar(select(Review).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))
    return SubmissionView(submission, item, pack, media, appeal, review)


def appeal_submission(submission_id: int, user_id: int, message: str, *, now: datetime) -> Appeal:
    """Contest a rejection, once."""
    with unit_of_work() as session:
        submission = session.get(Submission, submission_id, with_for_update=True)
        if submission is None or submission.user_id != user_id:
            raise SubmissionNotFound(_l("There is no such submission."))
        if submission.status != "rejected":
            raise AppealError(_l("Only a rejected submission can be appealed."))
        if session.scalar(select(Appeal.id).where(Appeal.submission_id == submission.id)) is not None:
            raise AlreadyAppealed(_l("You already appealed this rejection; each rejection can be appealed once."))
        message = (message or "").strip()
        if not message:
            raise AppealError(_l("Tell the moderators why you think your answer was right."), field="message")
        if len(message) > APPEAL_MESSAGE_MAX:
            raise AppealError(_l("Keep your appeal under %(max)s characters.", max=APPEAL_MESSAGE_MAX), field="message")
        appeal = Appeal(submission_id=submission.id, user_id=user_id, message=message, status="open", created_at=now)
        try:
            with session.begin_nested():
                session.add(appeal)
        except IntegrityError:
            raise AlreadyAppealed(_l("You already appealed this rejection; each rejection can be appealed once.")) from None
        return appeal


@dataclass
class AppealRow:
    appeal: Appeal
    submission: Submission
    item: Item
    pack: TaskPack
    media: Media | None
    author: User
    review: Review | None


def appeals_for_moderators(status: str = "open", limit: int = 50) -> list[AppealRow]:
    rows = db.session.execute(
        select(Appeal, Submission, Item, TaskPack, User)
        .join(Submission, Submission.id == Appeal.submission_id)
        .join(Item, Item.id == Submission.item_id)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .join(User, User.id == Appeal.user_id)
        .where(Appeal.status == status)
        .order_by(Appeal.created_at, Appeal.id)
        .limit(limit)
    ).all()
    result = []
    for appeal, submission, item, pack, author in rows:
        media = db.session.get(Media, item.media_id) if item.media_id else None
        review = db.session.scalar(select(Review).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))
        result.append(AppealRow(appeal, submission, item, pack, media, author, review))
    return result


def decide_appeal(appeal_id: int, moderator_id: int, *, overturn: bool, note: str, now: datetime) -> Appeal:
    """Overturn (accept and pay the submission, give back the reputation the rejection took) or uphold
    (it stays rejected). Audited."""
    from sapien.labeling import service as labeling
    from sapien.moderation import service as moderation

    with unit_of_work() as session:
        appeal = session.get(Appeal, appeal_id, with_for_update=True)
        if appeal is None:
            raise AppealError(_l("There is no such appeal."))
        if appeal.status != "open":
            raise AppealError(_l("This appeal has already been decided."))
        if appeal.user_id == moderator_id:
            raise AppealError(_l("You cannot decide an appeal of your own work."))
        note = (note or "").strip()
        if not overturn and not note:
            raise AppealError(_l("Tell the member why the rejection stands."), field="note")
        if len(note) > APPEAL_MESSAGE_MAX:
            raise AppealError(_l("Keep the note under %(max)s characters.", max=APPEAL_MESSAGE_MAX), field="note")
        submission = session.get(Submission, appeal.submission_id)
        appeal.status = "overturned" if overturn else "upheld"
        appeal.decided_by, appeal.decision_note, appeal.decided_at = moderator_id, note, now
        if overturn:
            if submission.is_gold:
                submission.gold_correct = True
            labeling.accept_submission(submission.id, now=now)
            review_keys = [f"review:{rid}" for rid in session.scalars(select(Review.id).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))]
            taken = session.scalar(
                select(func.coalesce(func.sum(ReputationEvent.delta), 0)).where(
                    ReputationEvent.user_id == submission.user_id, ReputationEvent.key.in_([f"gold:{submission.id}", *review_keys])
                )
            ) or 0
            if taken < 0:
                _apply_reputation(submission.user_id, f"appeal:{appeal.id}", "appeal", now, delta=-int(taken))
        moderation.record(moderator_id, "appeal.overturn" if overturn else "appeal.uphold", f"submission:{submission.id}", note, now)
        return appeal


def queue_for_review(submission_id: int, *, now: datetime) -> Review:
    """Send an already decided submission to the review queue (a moderator's spot check). An accepted
    submission stays paid until a reviewer rejects it; the rejection then reverses the pay."""
    with unit_of_work() as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            raise SubmissionNotFound(_l("There is no such submission."))
        if submission.is_gold:
            raise ReviewError(_l("Gold answers are checked automatically and are not reviewed."))
        existing = session.scalar(select(Review).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))
        if existing is not None:
            if existing.status != "done":
                return existing
            raise ReviewError(_l("This submission has already been reviewed."))
        review = Review(submission_id=submission.id, pack_id=submission.pack_id, author_id=submission.user_id, status="queued", created_at=now)
        session.add(review)
        session.flush()
        return review


# --- batch aggregation ----------------------------------------------------------------------------

@dataclass
class AggregationReport:
    pack_id: int
    method: str
    answers: int
    items: int
    labels_written: int
    seconds: float


def default_method(pack: TaskPack) -> str:
    if pack.task_type in CLASSIFICATION_TYPES:
        return "calibrated"
    if pack.task_type == "bounding_boxes":
        return "box_consensus"
    return "rover"


def _answer_value(pack: TaskPack, answer: dict):
    from sapien.quality.aggregation import label_key

    if pack.task_type in CLASSIFICATION_TYPES:
        return label_key(answer.get("labels") or [])
    if pack.task_type == "bounding_boxes":
        return tuple(tuple(sorted(box.items())) for box in answer.get("boxes") or [])
    return " ".join(str(answer.get("text", "")).split())


def _canonical(pack: TaskPack, value) -> dict:
    from sapien.quality.aggregation import labels_of

    if pack.task_type in CLASSIFICATION_TYPES:
        return {"labels": labels_of(value)}
    if pack.task_type == "bounding_boxes":
        return {"boxes": [dict(box) for box in value]}
    return {"text": value}


def aggregate_pack(pack_id: int, *, now: datetime, method: str | None = None, finalize: bool = False) -> AggregationReport:
    """Re-aggregate every answered item of a pack with crowd-kit and store verified labels.

    Retired items get their label (re)computed; with `finalize` (a finished campaign, the crowd replay)
    open items that have answers are labelled too. Gold answers initialise Dawid-Skene; reputation and
    gold accuracy weigh the other methods. Bulk reads and writes: 100,000 answers take a few seconds.
    """
    import json
    import time

    from sapien.quality import aggregation

    started = time.perf_counter()
    with unit_of_work() as session:
        pack = session.get(TaskPack, pack_id)
        if pack is None:
            raise QualityError(_l("There is no such pack."))
        method = method or default_method(pack)
        allowed = {"bounding_boxes": ("box_consensus",), "text_cleaning": ("rover",), "audio_transcription": ("rover",)}.get(
            pack.task_type, aggregation.CLASSIFICATION_METHODS
        )
        if method not in allowed:
            raise QualityError(_l("That aggregation method does not fit this pack's task type."))
        # Answers come back as their JSON text (canonical answers serialise identically) and each distinct
        # text is parsed once: 100,000 classification answers hold a handful of distinct texts.
        answer_text = func.coalesce(cast(Submission.fixed_answer, Text), cast(Submission.answer, Text))
        rows = session.execute(
            select(Submission.id, Submission.item_id, Submission.user_id, answer_text, Submission.status, Item.is_gold, Item.status)
            .join(Item, Item.id == Submission.item_id)
            .where(Submission.pack_id == pack.id, Submission.status != "pending_review")
        ).tuples().all()
        parsed: dict[str, object] = {}

        def value_of(text: str):
            value = parsed.get(text)
            if value is None:
                value = parsed[text] = _answer_value(pack, json.loads(text))
            return value

        gold_answers = dict(session.execute(select(Item.id, Item.gold_answer).where(Item.pack_id == pack.id, Item.is_gold.is_(True))).tuples().all())
        votes, gold_votes, gold_tasks, item_status = [], [], [], {}
        gold_stats: dict[int, list[int]] = {}
        classification = pack.task_type in CLASSIFICATION_TYPES
        for sub_id, item_id, user_id, text, status, is_gold, state in rows:
            if is_gold:
                gold_answer = gold_answers.get(item_id)
                if gold_answer is not None:
                    given = value_of(text)
                    gold_votes.append((user_id, given, _answer_value(pack, gold_answer)))
                    if classification:
                        # Gold items are tasks too: they tell Dawid-Skene about each member (no label is written for them).
                        gold_tasks.append(aggregation.Vote(item_id, user_id, sub_id, given))
                    stats = gold_stats.setdefault(user_id, [0, 0])
                    stats[0] += answers_match(pack, gold_answer, json.loads(text))
                    stats[1] += 1
                continue
            if status != "accepted":
                continue
            votes.append(aggregation.Vote(item_id, user_id, sub_id, value_of(text)))
            item_status[item_id] = state
        user_ids = sorted({v.user_id for v in votes})
        scores = dict(session.execute(select(Reputation.user_id, Reputation.score).where(Reputation.user_id.in_(user_ids))).tuples().all()) if user_ids else {}
        skills = {u: member_skill(scores.get(u, DEFAULT_REPUTATION), *gold_stats.get(u, (0, 0))) for u in user_ids}
        if pack.task_type in CLASSIFICATION_TYPES:
            gold_truth = {item_id: _answer_value(pack, gold_answers[item_id]) for item_id in {v.item_id for v in gold_tasks}}
            results = aggregation.aggregate_classification(votes + gold_tasks, method=method, gold_votes=gold_votes, skills=skills, gold_truth=gold_truth)
        elif pack.task_type == "bounding_boxes":
            results = aggregation.aggregate_boxes(
                [aggregation.Vote(v.item_id, v.user_id, v.submission_id, [dict(b) for b in v.value]) for v in votes],
                matches=lambda a, b: answers_match(pack, {"boxes": a}, {"boxes": b}),
                skills=skills,
            )
            results = {k: aggregation.Aggregate(tuple(tuple(sorted(b.items())) for b in r.value), r.confidence, r.submission_ids) for k, r in results.items()}
        else:
            results = aggregation.aggregate_texts(votes, matches=lambda a, b: answers_match(pack, {"text": a}, {"text": b}), skills=skills)
        chosen = {item_id: result for item_id, result in results.items() if item_id in item_status and (finalize or item_status[item_id] == "retired")}
        by_item: dict[int, list[aggregation.Vote]] = {}
        for vote in votes:
            by_item.setdefault(vote.item_id, []).append(vote)
        review_of = dict(
            session.execute(
                select(Review.submission_id, Review.id).where(Review.pack_id == pack.id, Review.is_planted.is_(False), Review.status == "done")
            ).tuples().all()
        )
        existing = set(session.scalars(select(VerifiedLabel.item_id).where(VerifiedLabel.pack_id == pack.id)))
        rows_out, inserts = [], []
        for item_id, result in chosen.items():
            item_votes = by_item.get(item_id, [])
            submission_ids = [v.submission_id for v in item_votes]
            values = {
                "item_id": item_id,
                "pack_id": pack.id,
                "answer": _canonical(pack, result.value),
                "confidence": round(aggregation.clamp_confidence(result.confidence), 6),
                "method": method,
                "submission_ids": submission_ids,
                "contributor_ids": sorted({v.user_id for v in item_votes}),
                "review_ids": sorted(review_of[s] for s in submission_ids if s in review_of),
                "labels_used": len(item_votes),
                "verified_at": now,
            }
            rows_out.append(values)
            if item_id not in existing:
                inserts.append(values)
        _upsert_verified_labels(rows_out)
        task_type = pack.task_type
        fresh = [(v["item_id"], v["contributor_ids"], v["confidence"]) for v in inserts]

        def announce() -> None:
            for item_id, contributor_ids, confidence in fresh:
                events.item_verified.send(None, item_id=item_id, pack_id=pack_id, task_type=task_type, contributor_ids=contributor_ids, confidence=confidence, now=now)

        after_commit(announce)
    return AggregationReport(pack_id, method, len(votes), len(item_status), len(chosen), time.perf_counter() - started)


def _upsert_verified_labels(rows: list[dict]) -> None:
    """INSERT … ON CONFLICT (item_id) DO UPDATE, many rows per statement (one UPDATE per row is 10× slower)."""
    if not rows:
        return
    from sqlalchemy.dialects.sqlite import insert as dialect_insert

    columns = ("answer", "confidence", "method", "submission_ids", "contributor_ids", "review_ids", "labels_used", "verified_at")
    table = VerifiedLabel.__table__
    if is_postgres():
        # One statement per 5,000 rows: the columns travel as arrays and unnest() turns them into rows.
        import json

        from sqlalchemy import text

        upsert = text(
            "INSERT INTO verified_labels (item_id, pack_id, answer, confidence, method, submission_ids, contributor_ids, review_ids,"
            " labels_used, verified_at)"
            " SELECT item_id, pack_id, answer::json, confidence, method, submission_ids::json, contributor_ids::json, review_ids::json,"
            " labels_used, verified_at FROM unnest(CAST(:item_id AS integer[]), CAST(:pack_id AS integer[]), CAST(:answer AS text[]),"
            " CAST(:confidence AS double precision[]), CAST(:method AS text[]), CAST(:submission_ids AS text[]),"
            " CAST(:contributor_ids AS text[]), CAST(:review_ids AS text[]), CAST(:labels_used AS integer[]),"
            " CAST(:verified_at AS timestamptz[]))"
            " AS batch(item_id, pack_id, answer, confidence, method, submission_ids, contributor_ids, review_ids, labels_used, verified_at)"
            " ON CONFLICT (item_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns)
        )
        for start in range(0, len(rows), 5000):
            batch = rows[start : start + 5000]
            params = {key: [row[key] for row in batch] for key in ("item_id", "pack_id", "confidence", "method", "labels_used", "verified_at")}
            for key in ("answer", "submission_ids", "contributor_ids", "review_ids"):
                params[key] = [json.dumps(row[key]) for row in batch]
            db.session.execute(upsert, params)
    else:
        statement = dialect_insert(table)
        statement = statement.on_conflict_do_update(index_elements=[table.c.item_id], set_={c: statement.excluded[c] for c in columns})
        db.session.connection().execute(statement, rows)
    db.session.expire_all()


def enqueue_aggregation(pack_id: int):
    from sapien.queue import enqueue_once

    return enqueue_once("jobs.quality.aggregate_pack", pack_id, job_id=f"quality-aggregate-{pack_id}")


# --- results and exports -------------------------------------------------------------------------

@dataclass
class MemberAccuracy:
    user_id: int
    username: str
    answers: int
    gold_correct: int
    gold_total: int
    agreed: int
    compared: int
    reputation: int

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_total if self.gold_total else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


@dataclass
class PackResults:
    pack: TaskPack
    items_total: int
    gold_items: int
    items_verified: int
    items_retired: int
    items_open: int
    answers: int
    labels_per_verified_item: float | None
    mean_confidence: float | None
    alpha: float | None
    alpha_kind: str  # "krippendorff" (nominal) or "pairwise" (share of matching answer pairs)
    methods: dict[str, int]
    members: list[MemberAccuracy]


def pack_results(pack_id: int, member_limit: int = 200) -> PackResults:
    """Progress, agreement and each member's accuracy for a pack (moderators' results page)."""
    from sapien.quality.aggregation import krippendorff_alpha_nominal

    session = db.session
    pack = session.get(TaskPack, pack_id)
    if pack is None:
        raise QualityError(_l("There is no such pack."))
    counts = session.execute(
        select(
            func.count(Item.id),
            func.sum(case((Item.is_gold.is_(True), 1), else_=0)),
            func.sum(case(((Item.is_gold.is_(False)) & (Item.status == "retired"), 1), else_=0)),
            func.sum(case(((Item.is_gold.is_(False)) & (Item.status == "open"), 1), else_=0)),
        ).where(Item.pack_id == pack.id)
    ).one()
    label_rows = session.execute(select(VerifiedLabel.item_id, VerifiedLabel.answer, VerifiedLabel.labels_used, VerifiedLabel.confidence, VerifiedLabel.method).where(VerifiedLabel.pack_id == pack.id)).all()
    verified = {item_id: answer for item_id, answer, _, _, _ in label_rows}
    methods: dict[str, int] = {}
    for *_, method in label_rows:
        methods[method] = methods.get(method, 0) + 1
    per_member: dict[int, list[int]] = {}  # user → [answers, gold_correct, gold_total, agreed, compared]
    units: dict[int, list] = {}
    answers = 0
    stream = session.execute(
        select(Submission.item_id, Submission.user_id, Submission.answer, Submission.fixed_answer, Submission.is_gold, Submission.gold_correct, Submission.status)
        .where(Submission.pack_id == pack.id, Submission.status != "pending_review")
        .execution_options(yield_per=2000)
    )
    for item_id, user_id, answer, fixed, is_gold, gold_correct, status in stream:
        stats = per_member.setdefault(user_id, [0, 0, 0, 0, 0])
        if is_gold:
            if gold_correct is not None:
                stats[1] += bool(gold_correct)
                stats[2] += 1
            continue
        if status != "accepted":
            continue
        answers += 1
        stats[0] += 1
        given = fixed if fixed is not None else answer
        units.setdefault(item_id, []).append(given)
        if item_id in verified:
            stats[4] += 1
            stats[3] += answers_match(pack, verified[item_id], given)
    if pack.task_type in CLASSIFICATION_TYPES:
        alpha = krippendorff_alpha_nominal([_answer_value(pack, a) for a in values] for values in units.values())
        alpha_kind = "krippendorff"
    else:
        agree = pairs = 0
        for values in units.values():
            for i in range(len(values)):
                for j in range(i + 1, len(values)):
                    pairs += 1
                    agree += answers_match(pack, values[i], values[j])
        alpha = agree / pairs if pairs else None
        alpha_kind = "pairwise"
    top = sorted(per_member, key=lambda u: -(per_member[u][0] + per_member[u][2]))[:member_limit]
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(top))).tuples().all()) if top else {}
    scores = dict(session.execute(select(Reputation.user_id, Reputation.score).where(Reputation.user_id.in_(top))).tuples().all()) if top else {}
    members = [
        MemberAccuracy(u, names.get(u, "?"), per_member[u][0], per_member[u][1], per_member[u][2], per_member[u][3], per_member[u][4], scores.get(u, DEFAULT_REPUTATION))
        for u in top
    ]
    used = [labels for _, _, labels, _, _ in label_rows]
    confidences = [confidence for _, _, _, confidence, _ in label_rows]
    return PackResults(
        pack=pack,
        items_total=int(counts[0] or 0),
        gold_items=int(counts[1] or 0),
        items_verified=len(label_rows),
        items_retired=int(counts[2] or 0),
        items_open=int(counts[3] or 0),
        answers=answers,
        labels_per_verified_item=sum(used) / len(used) if used else None,
        mean_confidence=sum(confidences) / len(confidences) if confidences else None,
        alpha=alpha,
        alpha_kind=alpha_kind,
        methods=methods,
        members=members,
    )


def _export_stream(pack_id: int):
    return db.session.execute(
        select(VerifiedLabel, Item.external_id, Item.media_id)
        .join(Item, Item.id == VerifiedLabel.item_id)
        .where(VerifiedLabel.pack_id == pack_id)
        .order_by(VerifiedLabel.item_id)
        .execution_options(yield_per=1000)
    )


def export_records(pack_id: int):
    """One dict per verified label, streamed from the database (never all in memory)."""
    for label, external_id, _media_id in _export_stream(pack_id):
        yield {
            "item_id": label.item_id,
            "external_id": external_id,
            "answer": label.answer,
            "confidence": label.confidence,
            "method": label.method,
            "labels_used": label.labels_used,
            "contributor_ids": list(label.contributor_ids or []),
            "submission_ids": list(label.submission_ids or []),
            "review_ids": list(label.review_ids or []),
            "verified_at": as_utc(label.verified_at).isoformat(),
        }


def export_jsonl(pack_id: int):
    import json

    for record in export_records(pack_id):
        yield json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


CSV_COLUMNS = ("item_id", "external_id", "answer", "answer_json", "confidence", "method", "labels_used", "contributor_ids", "submission_ids", "review_ids", "verified_at")


def _flat_answer(answer: dict) -> str:
    if "labels" in answer:
        return "|".join(answer["labels"])
    if "text" in answer:
        return answer["text"]
    return f"{len(answer.get('boxes') or [])} boxes"


def export_csv(pack_id: int):
    import csv
    import io
    import json

    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for record in export_records(pack_id):
        writer.writerow(
            [
                record["item_id"],
                record["external_id"],
                _flat_answer(record["answer"]),
                json.dumps(record["answer"], ensure_ascii=False, sort_keys=True),
                record["confidence"],
                record["method"],
                record["labels_used"],
                " ".join(map(str, record["contributor_ids"])),
                " ".join(map(str, record["submission_ids"])),
                " ".join(map(str, record["review_ids"])),
                record["verified_at"],
            ]
        )
        yield flush()


def export_coco(pack_id: int):
    """COCO object-detection JSON for a boxes pack: images (with each label's confidence and
    provenance under "sapien"), annotations, categories. Written in pieces as it streams."""
    import json

    pack = db.session.get(TaskPack, pack_id)
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(pack.label_options or [])]
    category_of = {c["name"]: c["id"] for c in categories}
    yield '{"info": ' + json.dumps({"description": pack.name, "version": "1.0"}) + ', "categories": ' + json.dumps(categories) + ', "images": ['
    first = True
    media_sizes: dict[int, tuple[int | None, int | None, str]] = {}
    for label, external_id, media_id in _export_stream(pack_id):
        if media_id is not None and media_id not in media_sizes:
            media = db.session.get(Media, media_id)
            media_sizes[media_id] = (media.width, media.height, media.path) if media else (None, None, "")
        width, height, path = media_sizes.get(media_id, (None, None, ""))
        image = {
            "id": label.item_id,
            "file_name": path or external_id,
            "width": width,
            "height": height,
            "sapien": {
                "external_id": external_id,
                "confidence": label.confidence,
                "method": label.method,
                "labels_used": label.labels_used,
                "contributor_ids": list(label.contributor_ids or []),
                "submission_ids": list(label.submission_ids or []),
                "review_ids": list(label.review_ids or []),
            },
        }
        yield ("" if first else ", ") + json.dumps(image)
        first = False
    yield '], "annotations": ['
    first = True
    annotation_id = 0
    for label, _external_id, _media_id in _export_stream(pack_id):
        for box in (label.answer or {}).get("boxes") or []:
            annotation_id += 1
            annotation = {
                "id": annotation_id,
                "image_id": label.item_id,
                "category_id": category_of.get(box.get("label"), 1 if categories else 0),
                "bbox": [box["x"], box["y"], box["w"], box["h"]],
                "area": box["w"] * box["h"],
                "iscrowd": 0,
                "score": label.confidence,
            }
            yield ("" if first else ", ") + json.dumps(annotation)
            first = False
    yield "]}\n"


# --- reputation decay ----------------------------------------------------------------------------

REPUTATION_DECAY_RATE = 0.1


def decay_reputation(now: datetime) -> int:
    """Members with no quality signal for REPUTATION_DECAY_AFTER_DAYS (30) drift a tenth of the way back
    toward 500, at most once per ISO week (the event key carries the week, so a second run that week does
    nothing). Decay is not activity: it leaves `updated_at` alone. Returns how many members moved."""
    days = int(_config("REPUTATION_DECAY_AFTER_DAYS", 30))
    cutoff = now - timedelta(days=days)
    year, week, _ = now.isocalendar()
    moved = 0
    with unit_of_work() as session:
        user_ids = list(session.scalars(select(Reputation.user_id).where(Reputation.updated_at < cutoff, Reputation.score != DEFAULT_REPUTATION).order_by(Reputation.user_id)))
        for user_id in user_ids:
            row = session.get(Reputation, user_id, with_for_update=True)
            gap = DEFAULT_REPUTATION - row.score
            delta = round(gap * REPUTATION_DECAY_RATE) or (1 if gap > 0 else -1)
            updated_at = row.updated_at
            applied = _apply_reputation(user_id, f"decay:{user_id}:{year}-W{week:02d}", "decay", now, delta=delta)
            row.updated_at = updated_at
            moved += bool(applied)
    return moved


@pending_work_source("quality")
def _pending_quality_work():
    from sapien.database import utcnow
    from sapien.queue import PendingWork

    year, week, _ = utcnow().isocalendar()
    yield PendingWork("jobs.quality.decay_reputation", (), f"quality-decay-{year}-W{week:02d}")
