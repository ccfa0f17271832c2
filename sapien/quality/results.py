"""A pack's results for moderators: progress, agreement, member accuracy."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select

from sapien.accounts.models import User
from sapien.extensions import db
from sapien.labeling.answers import answers_match
from sapien.labeling.models import Item, Submission, TaskPack
from sapien.labeling.packs import CLASSIFICATION_TYPES
from sapien.quality.aggregation import krippendorff_alpha_nominal
from sapien.quality.batch import answer_value
from sapien.quality.consensus import agreement_with_consensus
from sapien.quality.convergence import no_consensus_count
from sapien.quality.errors import QualityError
from sapien.quality.models import Reputation, VerifiedLabel
from sapien.quality.reputation import DEFAULT_REPUTATION


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
    agreement_sum: float = 0.0  # each compared answer's agreement with the verified label, in [0, 1]

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_total if self.gold_total else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def mean_agreement(self) -> float | None:
        """How close their answers come to the verified labels (1 − word edit distance, mean box IoU, 1/0 for classes)."""
        return self.agreement_sum / self.compared if self.compared else None


@dataclass
class PackResults:
    pack: TaskPack
    items_total: int
    gold_items: int
    items_verified: int
    items_retired: int
    items_open: int
    items_no_consensus: int  # retired without a label: their answers never agreed
    answers: int
    labels_per_verified_item: float | None
    mean_confidence: float | None
    alpha: float | None
    alpha_kind: str  # "krippendorff" (nominal) or "pairwise" (share of matching answer pairs)
    methods: dict[str, int]
    members: list[MemberAccuracy]


def pack_results(pack_id: int, member_limit: int = 200) -> PackResults:
    """Progress, agreement and each member's accuracy for a pack (moderators' results page)."""

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
    per_member: dict[int, list] = {}  # user → [answers, gold_correct, gold_total, agreed, compared, agreement sum]
    units: dict[int, list] = {}
    answers = 0
    stream = session.execute(
        select(Submission.item_id, Submission.user_id, Submission.answer, Submission.fixed_answer, Submission.is_gold, Submission.gold_correct, Submission.status)
        .where(Submission.pack_id == pack.id, Submission.status != "pending_review")
        .execution_options(yield_per=2000)
    )
    for item_id, user_id, answer, fixed, is_gold, gold_correct, status in stream:
        stats = per_member.setdefault(user_id, [0, 0, 0, 0, 0, 0.0])
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
            stats[5] += agreement_with_consensus(pack, given, verified[item_id])
    if pack.task_type in CLASSIFICATION_TYPES:
        alpha = krippendorff_alpha_nominal([answer_value(pack, a) for a in values] for values in units.values())
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
        MemberAccuracy(
            u, names.get(u, "?"), *per_member[u][:5], scores.get(u, DEFAULT_REPUTATION), agreement_sum=per_member[u][5]
        )
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
        items_no_consensus=no_consensus_count(pack.id),
        answers=answers,
        labels_per_verified_item=sum(used) / len(used) if used else None,
        mean_confidence=sum(confidences) / len(confidences) if confidences else None,
        alpha=alpha,
        alpha_kind=alpha_kind,
        methods=methods,
        members=members,
    )
