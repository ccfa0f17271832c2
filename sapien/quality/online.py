"""Online aggregation and adaptive redundancy: an item's accepted answers may settle it (the decision job,
`quality.decisions`, weighs them a batch at a time)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import Select, Text, bindparam, cast, func, insert, select
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.database import after_commit, built_once
from sapien.extensions import db
from sapien.labeling import settlement as labeling_settlement
from sapien.labeling import submissions as labeling_submissions
from sapien.labeling.answers import answers_match
from sapien.labeling.models import Item, Submission, TaskPack
from sapien.labeling.packs import CLASSIFICATION_TYPES
from sapien.quality import consensus, convergence
from sapien.quality.aggregation import online_posterior, pooled_confusion
from sapien.quality.models import Reputation, ReputationEvent, Review, VerifiedLabel
from sapien.quality.reputation import DEFAULT_REPUTATION, MAX_REPUTATION, REPUTATION_RATES, reputation_step, setting


def effective_answer(submission: Submission) -> dict:
    """The answer aggregation reads: a reviewer's fix when there is one."""
    return submission.fixed_answer if submission.fixed_answer is not None else submission.answer


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
    # Different people behind the answer: authors of agreeing answers and reviewers who accepted one.
    voices: int = 0

    @property
    def verifiable(self) -> bool:
        """Never a label on one person's word (`consensus.MIN_AGREEING_VOICES`), not even at the pack's maximum."""
        return self.voices >= consensus.MIN_AGREEING_VOICES


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
    groups = consensus.group_matching(pack, [answer for _, answer, _ in answers])
    posteriors = consensus.one_coin_posteriors([skill for _, _, skill in answers], groups, _hypothesis_count(pack))
    best = max(range(len(groups)), key=lambda i: (posteriors[i], len(groups[i])))
    return OnlineDecision(
        answer=answers[groups[best][0]][1],
        confidence=posteriors[best],
        supporting_submission_ids=[answers[i][0] for i in groups[best]],
    )


def consensus_decision(pack: TaskPack, answers: list[tuple[int, dict, float]]) -> OnlineDecision | None:
    """Free text and boxes: the skill-weighted medoid (`quality.consensus`) over (submission id, answer,
    skill), supported by the answers that match it."""
    if not answers:
        return None
    found = consensus.consensus(pack, [answer for _, answer, _ in answers], [skill for _, _, skill in answers])
    return OnlineDecision(
        answer=found.answer,
        confidence=found.confidence,
        supporting_submission_ids=[answers[i][0] for i in found.supporting],
    )


# Agreement with an item's verified label counts as this fraction of a gold answer in a member's confusion
# estimate: it is evidence, but the label it is compared with may itself be wrong.
AGREEMENT_EVIDENCE_WEIGHT = 0.5


@dataclass
class MemberEvidence:
    reputation: int
    gold: list[tuple[dict, dict, int]] = field(default_factory=list)  # (their answer, the gold answer, how many times)
    # (their answer, the verified label, how many times) for items of the pack already verified
    agreement: list[tuple[dict, dict, int]] = field(default_factory=list)

    def count(self, pack: TaskPack) -> tuple[int, int]:
        right = sum(times for given, truth, times in self.gold if answers_match(pack, truth, given))
        return right, sum(times for _, _, times in self.gold)


@dataclass
class ItemEvidence:
    """What an item's online decision weighs: each of its members' evidence and, for single-label
    classification, the whole crowd's answers on the pack's gold items (for the pooled confusion)."""

    members: dict[int, MemberEvidence]
    crowd_gold: list[tuple[dict, dict, int]] = field(default_factory=list)  # (given, gold answer, how many times)


def member_evidence(pack: TaskPack, user_ids: Sequence[int], *, with_agreement: bool = False) -> ItemEvidence:
    """Reputation, gold answers and (optionally, with the crowd's gold answers) agreement with verified
    labels in this pack, per member.

    Every answer settles through here, so the reads are few and grouped: answers come back as their JSON
    text, counted per distinct (member, answer, truth) — canonical answers serialise identically — and each
    distinct text is parsed once. With `with_agreement` one query over the pack's gold answers gives both
    the members' own gold record and the crowd's pooled one (it used to be two, plus a row per answer)."""

    user_ids = sorted(set(user_ids))
    if not user_ids:
        return ItemEvidence({})
    parsed: dict[str, dict] = {}

    def parse(text: str | None) -> dict:
        if text is None:
            return {}
        value = parsed.get(text)
        if value is None:
            value = parsed[text] = json.loads(text)
        return value

    statements = _evidence_statements()
    values = {"pack_id": pack.id, "user_ids": user_ids}
    scores = dict(db.session.execute(statements.scores, values).all())
    members = {user_id: MemberEvidence(scores.get(user_id, DEFAULT_REPUTATION)) for user_id in user_ids}
    evidence = ItemEvidence(members)
    for user_id, given_text, truth_text, times in db.session.execute(statements.crowd_gold if with_agreement else statements.members_gold, values):
        row = (parse(given_text), parse(truth_text), int(times))
        if user_id in members:
            members[user_id].gold.append(row)
        if with_agreement:
            evidence.crowd_gold.append(row)
    if with_agreement:
        for user_id, given_text, verified_text, times in db.session.execute(statements.agreement, values):
            members[user_id].agreement.append((parse(given_text), parse(verified_text), int(times)))
    return evidence


@dataclass(frozen=True)
class _EvidenceStatements:
    scores: Select
    crowd_gold: Select  # every gold answer in the pack (`pack_id`)
    members_gold: Select  # only those of the members (`user_ids`)
    agreement: Select


@built_once
def _evidence_statements() -> _EvidenceStatements:
    """`member_evidence`'s statements, with bind parameters `pack_id` and `user_ids`: every answer that
    reaches its item's target runs them."""
    pack_id, user_ids = bindparam("pack_id"), bindparam("user_ids", expanding=True)
    given, truth = cast(Submission.answer, Text), cast(Item.gold_answer, Text)
    crowd_gold = (
        select(Submission.user_id, given, truth, func.count())
        .join(Item, Item.id == Submission.item_id)
        .where(Submission.pack_id == pack_id, Submission.is_gold.is_(True), Submission.gold_correct.is_not(None), Item.gold_answer.is_not(None))
        .group_by(Submission.user_id, given, truth)
    )
    answered = func.coalesce(cast(Submission.fixed_answer, Text), cast(Submission.answer, Text))
    verified = cast(VerifiedLabel.answer, Text)
    return _EvidenceStatements(
        scores=select(Reputation.user_id, Reputation.score).where(Reputation.user_id.in_(user_ids)),
        crowd_gold=crowd_gold,
        members_gold=crowd_gold.where(Submission.user_id.in_(user_ids)),
        agreement=(
            select(Submission.user_id, answered, verified, func.count())
            .join(VerifiedLabel, VerifiedLabel.item_id == Submission.item_id)
            .where(Submission.pack_id == pack_id, Submission.user_id.in_(user_ids), Submission.status == "accepted", Submission.is_gold.is_(False))
            .group_by(Submission.user_id, answered, verified)
        ),
    )


def _first_label(answer: dict) -> str | None:
    return (answer.get("labels") or [None])[0]


def gold_counts(observations: Sequence[tuple[dict, dict, float]], index: dict[str, int]) -> np.ndarray:
    """(given, truth, weight) answers as counts [true class, given class]."""
    counts = np.zeros((len(index), len(index)))
    for given, truth, weight in observations:
        g, t = _first_label(given), _first_label(truth)
        if g in index and t in index:
            counts[index[t], index[g]] += weight
    return counts


def classification_decision(pack: TaskPack, votes: list[tuple[int, int, dict]], evidence: ItemEvidence) -> OnlineDecision | None:
    """Single-label classification: the online posterior of one item (`aggregation.online_posterior`):
    each member's confusion is their own evidence in the pack (gold answers, agreement with verified
    labels) shrunk toward the crowd's pooled confusion on the pack's gold items. `retirable` says
    whether the calibrated confidence may retire the item (also needs enough agreeing answers)."""
    options = list(pack.label_options or [])
    index = {label: i for i, label in enumerate(options)}
    k = len(options)
    if k < 2 or not votes:
        return None
    voters = {user_id for _, user_id, _ in votes}
    own = {
        user_id: gold_counts(member.gold + [(given, truth, AGREEMENT_EVIDENCE_WEIGHT * times) for given, truth, times in member.agreement], index)
        for user_id, member in evidence.members.items() if user_id in voters
    }
    usable = []
    for submission_id, user_id, answer in votes:
        label = _first_label(answer)
        if label in index:
            usable.append((submission_id, index[label], own.get(user_id)))
    if not usable:
        return None
    result = online_posterior(k, [(given, counts) for _, given, counts in usable], pooled_confusion(k, gold_counts(evidence.crowd_gold, index)))
    return OnlineDecision(
        answer={"labels": [options[result.best]]},
        confidence=result.confidence,
        supporting_submission_ids=[submission_id for submission_id, given, _ in usable if given == result.best],
        retirable=result.retires(confidence_threshold()),
    )


def needs_agreement(pack: TaskPack) -> bool:
    """Single-label classification weighs agreement with verified labels and the crowd's gold answers."""
    return pack.task_type in CLASSIFICATION_TYPES and not pack.multi_label


def item_decision(pack: TaskPack, submissions: list[Submission], evidence: ItemEvidence | None = None) -> OnlineDecision | None:
    """The best answer for an item from its accepted answers, weighted by what we know of each member
    (`evidence`, read here when not given: it must cover the answers' members)."""
    single_label = needs_agreement(pack)
    if evidence is None:
        evidence = member_evidence(pack, [s.user_id for s in submissions], with_agreement=single_label)
    decision = None
    if single_label:
        decision = classification_decision(pack, [(s.id, s.user_id, effective_answer(s)) for s in submissions], evidence)
    if decision is None:
        votes = []
        for submission in submissions:
            member = evidence.members[submission.user_id]
            right, total = member.count(pack)
            votes.append((submission.id, effective_answer(submission), member_skill(member.reputation, right, total)))
        decision = online_decision(pack, votes) if pack.task_type in CLASSIFICATION_TYPES else consensus_decision(pack, votes)
    if decision is not None:
        decision.voices = _voices(decision.supporting_submission_ids, submissions)
    return decision


def _voices(supporting_ids: list[int], submissions: list[Submission]) -> int:
    """Different people behind the supporting answers: their authors, and — only when the authors alone
    are too few (so the usual decision costs no query) — the reviewers who accepted or fixed one of them."""
    supporting = set(supporting_ids)
    authors = {s.user_id for s in submissions if s.id in supporting}
    if consensus.verifies(authors) or not supporting:
        return len(authors)
    reviewers = db.session.scalars(
        select(Review.reviewer_id).where(
            Review.submission_id.in_(sorted(supporting)),
            Review.is_planted.is_(False),
            Review.status == "done",
            Review.outcome.in_(("accepted", "fixed")),
            Review.reviewer_id.is_not(None),
        )
    )
    return len(authors | set(reviewers))


def _accepted_answers(item_id: int) -> list[Submission]:
    return list(db.session.scalars(_accepted_answers_statement(), {"item_id": item_id}))


@built_once
def _accepted_answers_statement() -> Select:
    return select(Submission).where(Submission.item_id == bindparam("item_id"), Submission.status == "accepted").order_by(Submission.id)


def _done_reviews(submission_ids: list[int]) -> dict[int, list[int]]:
    """The (unplanted) reviews done on these submissions, by submission, in id order."""
    reviews: dict[int, list[int]] = {}
    if submission_ids:
        for review_id, submission_id in db.session.execute(
            select(Review.id, Review.submission_id)
            .where(Review.submission_id.in_(submission_ids), Review.is_planted.is_(False), Review.status == "done").order_by(Review.id)
        ):
            reviews.setdefault(submission_id, []).append(review_id)
    return reviews


@dataclass(frozen=True)
class BatchReads:
    """What labeling a batch of items reads, read for the whole batch at once (the decision job): their
    verified labels (None: none yet) and the reviews done on their answers."""

    labels: dict[int, VerifiedLabel | None]
    reviews: dict[int, list[int]]


def read_batch(item_ids: list[int], submission_ids: list[int]) -> BatchReads:
    labels: dict[int, VerifiedLabel | None] = dict.fromkeys(item_ids)
    if item_ids:
        labels.update((label.item_id, label) for label in db.session.scalars(select(VerifiedLabel).where(VerifiedLabel.item_id.in_(item_ids))))
    return BatchReads(labels, _done_reviews(submission_ids))


def store_verified_label(item: Item, pack: TaskPack, answer: dict, confidence: float, method: str, submissions: list[Submission], now: datetime,
                         reads: BatchReads | None = None) -> VerifiedLabel:
    """Create or update the item's verified label (in the caller's unit of work) and announce it. `reads`:
    the item's label and its answers' reviews, read with its batch's (None: read here)."""
    session = db.session
    submission_ids = [s.id for s in submissions]
    contributor_ids = sorted({s.user_id for s in submissions})
    reviews = reads.reviews if reads is not None else _done_reviews(submission_ids)
    review_ids = sorted(review_id for submission_id in submission_ids for review_id in reviews.get(submission_id, ()))
    label = reads.labels[item.id] if reads is not None and item.id in reads.labels else session.get(VerifiedLabel, item.id)
    if label is not None and label.overridden_at is not None:
        return label  # a moderator's override stands (quality/overrides.py)
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
    return float(setting("QUALITY_CONFIDENCE_THRESHOLD", 0.95))


@dataclass
class DecisionWrites:
    """What decisions write besides their labels, gathered so that a batch of them writes it in a few
    statements: agreement moves reputations (locked in one statement), each pack's answers are verified or
    not in one, and the items are retired and re-targeted in one round trip each."""

    agreement: list[tuple[Submission, bool]] = field(default_factory=list)
    verdicts: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)  # pack id → (agreeing, disagreeing ids)
    retired: list[int] = field(default_factory=list)
    targets: dict[int, int] = field(default_factory=dict)  # item id → its new target

    def verify(self, pack: TaskPack, agreement: list[tuple[Submission, bool]]) -> None:
        agreeing, disagreeing = self.verdicts.setdefault(pack.id, ([], []))
        for submission, agrees in agreement:
            (agreeing if agrees else disagreeing).append(submission.id)

    def apply(self, now: datetime) -> None:
        _record_agreement(self.agreement, now)
        for pack_id, (agreeing, disagreeing) in sorted(self.verdicts.items()):
            labeling_settlement.verify_answers(pack_id, agreeing, disagreeing, now=now)
        if self.retired:
            labeling_submissions.retire_items(self.retired, now=now)
        if self.targets:
            labeling_submissions.raise_item_targets(self.targets, now=now)


def decide_item(item: Item, pack: TaskPack, submissions: list[Submission], now: datetime, evidence: ItemEvidence | None,
                writes: DecisionWrites, reads: BatchReads | None = None) -> None:
    """Adaptive redundancy for one item (locked by the caller) with its accepted answers: once it has its
    target of them, retire it with a verified label when the answers are confident enough, otherwise ask one
    more member (up to the pack's maximum, where it retires with the best answer it has if two people stand
    behind it, and is flagged as not converging otherwise). An item already verified (a late review, an
    overturned appeal) gets its label recomputed. `evidence` may hold more members than the item's (the
    decision job reads it once per pack for a whole batch; None: read here); what the decision writes
    besides its label goes into `writes`, which the caller applies with the other decisions' writes; `reads`
    holds the label's reads for the whole batch (see `read_batch`; None: read here)."""
    if item.is_gold:
        return
    if item.status != "open":
        refresh_verified_label(item, pack, now)
        return
    if len(submissions) < item.labels_target:
        return
    decision = item_decision(pack, submissions, evidence)
    if decision is None:
        return
    retirable = decision.verifiable and (decision.retirable if decision.retirable is not None else decision.confidence >= confidence_threshold())
    if not retirable and item.labels_target < pack.max_labels_per_item:
        writes.targets[item.id] = item.labels_target + 1
    elif not decision.verifiable:
        convergence.flag_no_consensus(item, pack, len(submissions), now)
    else:
        store_verified_label(item, pack, decision.answer, decision.confidence, "online_vote", submissions, now, reads)
        agreement = _agreement(pack, decision.answer, submissions)
        writes.agreement += agreement
        writes.verify(pack, agreement)
        writes.retired.append(item.id)


def refresh_verified_label(item: Item, pack: TaskPack, now: datetime) -> None:
    """Recompute a retired item's label from its accepted answers (after a review or appeal). A label no
    longer backed by two people is withdrawn and the item flagged; a flagged item that now converges (a
    reviewer accepted one of its answers) gets its label; a label a moderator overrode is left as it is."""
    label = db.session.get(VerifiedLabel, item.id)
    if (label is None and item.no_consensus_at is None) or (label is not None and label.overridden_at is not None):
        return
    submissions = _accepted_answers(item.id)
    decision = item_decision(pack, submissions) if submissions else None
    if decision is not None and decision.verifiable:
        store_verified_label(item, pack, decision.answer, decision.confidence, "online_vote", submissions, now)
        _verify_answers(pack, _agreement(pack, decision.answer, submissions), now)
        convergence.clear_no_consensus(item)
        return
    if label is not None:
        db.session.delete(label)
    if submissions:
        convergence.flag_no_consensus(item, pack, len(submissions), now)


def _agreement(pack: TaskPack, answer: dict, submissions: list[Submission]) -> list[tuple[Submission, bool]]:
    """Each accepted answer with whether it agrees with the verified label (`answers_match` by task type)."""
    return [(s, answers_match(pack, answer, effective_answer(s))) for s in submissions]


def _verify_answers(pack: TaskPack, agreement: list[tuple[Submission, bool]], now: datetime) -> None:
    """Agreeing answers are verified (paid by the next settlement batch), the others earn nothing."""
    labeling_settlement.verify_answers(
        pack.id, [s.id for s, agrees in agreement if agrees], [s.id for s, agrees in agreement if not agrees], now=now
    )


def verify_answers_by_label(item: Item, pack: TaskPack, answer: dict, now: datetime) -> None:
    """The item's waiting answers are verified, or not, by `answer` (a moderator settling an item whose
    answers never agreed)."""
    _verify_answers(pack, _agreement(pack, answer, _accepted_answers(item.id)), now)


def verified_labels(item_ids: Sequence[int]) -> dict[int, dict]:
    """{item id: verified answer} for the items that have a verified label."""
    if not item_ids:
        return {}
    return dict(db.session.execute(select(VerifiedLabel.item_id, VerifiedLabel.answer).where(VerifiedLabel.item_id.in_(list(item_ids)))).all())


def _record_agreement(agreement: list[tuple[Submission, bool]], now: datetime) -> None:
    """Agreement with the verified label moves each contributor's reputation (a few bulk statements)."""
    signals = {f"agreement:{s.id}": (s.user_id, agrees) for s, agrees in agreement}
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
    moves = []
    for key, (user_id, agrees) in pending.items():
        row = rows[user_id]
        before = row.score
        row.score = max(0, min(MAX_REPUTATION, before + reputation_step(before, REPUTATION_RATES["agreement"], agrees)))
        row.updated_at = now
        moves.append(dict(user_id=user_id, key=key, reason="agreement", delta=row.score - before, score_after=row.score, created_at=now))
    # A bulk INSERT (a decision batch moves hundreds): no ORM object per event. It flushes the scores first.
    session.execute(insert(ReputationEvent), moves)
