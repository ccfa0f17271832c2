"""A pack's results for moderators: progress, agreement, member accuracy, and the per-item browser.

Methods are named in words wherever a page shows them (`METHOD_NAMES`); exports keep the codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Text, case, cast, func, select

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

METHOD_NAMES = {
    "online_vote": _l("Online vote (weighted by member accuracy)"),
    "calibrated": _l("Calibrated (the model that scores best on gold)"),
    "dawid_skene": _l("Dawid-Skene"),
    "crowdkit_dawid_skene": _l("Dawid-Skene (crowd-kit)"),
    "wawa": _l("Agreement-weighted vote (Wawa)"),
    "majority_vote": _l("Majority vote weighted by skill"),
    "rover": _l("ROVER (texts)"),
    "box_consensus": _l("Box consensus (IoU clustering)"),
    "moderator_override": _l("Moderator override"),
}


def method_name(method: str) -> str:
    """A label's method in words ("Online vote (weighted by member accuracy)", not "online_vote")."""
    return str(METHOD_NAMES.get(method, method))


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
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(top))).all()) if top else {}
    scores = dict(session.execute(select(Reputation.user_id, Reputation.score).where(Reputation.user_id.in_(top))).all()) if top else {}
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


# --- the per-item browser ----------------------------------------------------------------------------

ITEMS_PER_PAGE = 20


def _distinct_answers():
    """How many different answers an item's accepted submissions give (canonical JSON compares as text)."""
    given = func.coalesce(cast(Submission.fixed_answer, Text), cast(Submission.answer, Text))
    return (
        select(func.count(func.distinct(given)))
        .where(Submission.item_id == Item.id, Submission.status == "accepted")
        .correlate(Item)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class ItemFilter:
    """One filter of the browser: a GET parameter whose values each name a condition on the items
    (joined with their verified label, which may be missing). A new filter is one more entry in `ITEM_FILTERS`."""

    key: str
    label: object
    options: dict[str, tuple[object, Callable[[], ColumnElement]]]


ITEM_FILTERS: tuple[ItemFilter, ...] = (
    ItemFilter("status", _l("Status"), {
        "waiting": (_l("Waiting for a label"), lambda: VerifiedLabel.item_id.is_(None) & Item.is_gold.is_(False) & Item.no_consensus_at.is_(None)),
        "no_consensus": (_l("Answers never agreed"), lambda: Item.no_consensus_at.is_not(None)),
        "verified": (_l("Verified by the crowd"), lambda: VerifiedLabel.item_id.is_not(None) & VerifiedLabel.overridden_at.is_(None)),
        "overridden": (_l("Overridden by a moderator"), lambda: VerifiedLabel.overridden_at.is_not(None)),
    }),
    ItemFilter("confidence", _l("Confidence"), {
        "low": (_l("Below 70 %"), lambda: VerifiedLabel.confidence < 0.7),
        "medium": (_l("70 % to 95 %"), lambda: (VerifiedLabel.confidence >= 0.7) & (VerifiedLabel.confidence < 0.95)),
        "high": (_l("95 % and above"), lambda: VerifiedLabel.confidence >= 0.95),
    }),
    ItemFilter("disagreement", _l("Answers"), {
        "disagree": (_l("Members disagree"), lambda: _distinct_answers() > 1),
        "agree": (_l("Members agree"), lambda: _distinct_answers() == 1),
    }),
    ItemFilter("gold", _l("Gold"), {
        "gold": (_l("Gold items only"), lambda: Item.is_gold.is_(True)),
        "ordinary": (_l("No gold items"), lambda: Item.is_gold.is_(False)),
    }),
)


def chosen_filters(args) -> dict[str, str]:
    """The known filter values among request arguments (anything else is ignored, never an error)."""
    chosen = {}
    for item_filter in ITEM_FILTERS:
        value = args.get(item_filter.key, "")
        if value in item_filter.options:
            chosen[item_filter.key] = value
    return chosen


@dataclass
class ItemAnswer:
    submission_id: int
    username: str
    answer: dict
    status: str
    fixed: bool  # a reviewer fixed it; `answer` is the fix
    agrees: bool | None  # with the verified label (or the gold answer); None when there is nothing to compare


@dataclass
class ItemResult:
    item: Item
    label: VerifiedLabel | None
    answers: list[ItemAnswer] = field(default_factory=list)
    overridden_by: str = ""

    @property
    def agreed(self) -> list[str]:
        return [answer.username for answer in self.answers if answer.agrees]


@dataclass
class ItemPage:
    pack: TaskPack
    items: list[ItemResult]
    total: int
    page: int
    pages: int
    filters: dict[str, str]


def browse_items(pack_id: int, filters: dict[str, str], page: int = 1, per_page: int = ITEMS_PER_PAGE, *, only_item_id: int | None = None) -> ItemPage:
    """One page of a pack's items with their answers, verified label and who agreed, filtered."""
    session = db.session
    pack = session.get(TaskPack, pack_id)
    if pack is None:
        raise QualityError(_l("There is no such pack."))
    conditions = [Item.pack_id == pack.id]
    if only_item_id is not None:
        conditions.append(Item.id == only_item_id)
    for item_filter in ITEM_FILTERS:
        value = filters.get(item_filter.key)
        if value in item_filter.options:
            conditions.append(item_filter.options[value][1]())
    base = select(Item.id).outerjoin(VerifiedLabel, VerifiedLabel.item_id == Item.id).where(*conditions)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = session.execute(
        select(Item, VerifiedLabel).outerjoin(VerifiedLabel, VerifiedLabel.item_id == Item.id).where(*conditions)
        .order_by(Item.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    results = {item.id: ItemResult(item, label) for item, label in rows}
    if results:
        answers = session.execute(
            select(Submission, User.username).join(User, User.id == Submission.user_id)
            .where(Submission.item_id.in_(list(results))).order_by(Submission.id)
        ).all()
        for submission, username in answers:
            result = results[submission.item_id]
            given = submission.fixed_answer if submission.fixed_answer is not None else submission.answer
            if submission.is_gold:
                agrees = submission.gold_correct
            elif result.label is not None and submission.status == "accepted":
                agrees = answers_match(pack, result.label.answer, given)
            else:
                agrees = None
            result.answers.append(ItemAnswer(submission.id, username, given, submission.status, submission.fixed_answer is not None, agrees))
        moderators = {result.label.overridden_by for result in results.values() if result.label is not None and result.label.overridden_by}
        names = dict(session.execute(select(User.id, User.username).where(User.id.in_(moderators))).all()) if moderators else {}
        for result in results.values():
            if result.label is not None and result.label.overridden_by:
                result.overridden_by = names.get(result.label.overridden_by, "")
    return ItemPage(pack, list(results.values()), total, page, pages, filters)


def item_result(pack_id: int, item_id: int) -> ItemResult | None:
    """One item as the browser shows it (its own page, and the card an override swaps in)."""
    found = browse_items(pack_id, {}, only_item_id=item_id).items
    return found[0] if found else None
