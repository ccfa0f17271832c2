"""Submissions: answering a leased item, fixing its reward, accepting and rejecting later.

Rewards
-------
``reward = base × difficulty multiplier × streak multiplier``, rounded down, fixed when the answer is given
(``Submission.paid_*``) and paid only for verified work (DESIGN rule 1, see `labeling.settlement`): a right
gold answer is verified at once by its known answer; any other answer is *pending* until it agrees with its
item's verified label or a reviewer accepts it. Either way a settlement batch pays it (seconds after a gold
verdict), with one ledger key per submission and currency (``submission:<id>:points`` …). An answer that
disagrees with the verified label earns nothing. Enterprise campaigns pay points and XP, dual-reward campaigns
add the partner token (ledger currency ``partner``; the symbol is in the memo), community campaigns pay XP and
record revenue shares. Packs count partner rewards and minimum stakes in whole tokens (``partner_reward``,
``min_stake``, ``Submission.paid_partner``); the ledger holds them in base units (10**-6 of a token).
Rejecting a paid submission reverses what was paid, never taking a balance below zero; rejecting an unpaid one
voids its reward.

Lock order
----------
An answer and a reviewer's verdict on the same member's earlier answer run at once, so every path takes a
member's rows in one order: the submission (or lease) row, then the member's balance rows (sorted by currency,
see `ledger.credit_many`), then the item, then reputation rows (sorted by member; a gold verdict's reputation
move runs just before the commit, see `database.before_commit`; an answer itself locks no balance row: the
settlement batch pays it). An answer no longer decides its item: it is flagged (``awaiting_decision``) and
quality's decision job locks the items of a batch, then marks their answers verified (after the items): a
reviewer rejecting one of them at that moment (its row, then the item for the freed slot) can deadlock with
it. As a safety net the calls that own their transaction run it again on a deadlock or serialization failure
(`database.retry_transaction`): everything they wrote was rolled back, and the ledger keys make a re-run pay
once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from sapien import events
from sapien.database import as_utc, built_once, is_postgres, retry_transaction, unit_of_work
from sapien.extensions import db
from sapien.failpoints import failpoint
from sapien.i18n import TOKEN_UNIT
from sapien.labeling.answers import parse_answer_form, validate_answer
from sapien.labeling.errors import AlreadySubmitted, LabelingError, LabelingNotFound, LeaseExpired
from sapien.labeling.leases import WorkItem, free_slot
from sapien.labeling.models import (
    Campaign,
    Item,
    Lease,
    Media,
    RevenueShare,
    Submission,
    TaskPack,
)
from sapien.labeling.packs import reward_multiplier, round_down
from sapien.labeling.settlement import request_settlement, revenue_shares_for
from sapien.ledger import service as ledger
from sapien.ledger.models import Balance
from sapien.progression.models import MemberProgress
from sapien.progression.streaks import streak_multiplier


@dataclass(frozen=True)
class SubmissionResult:
    submission_id: int
    status: str
    feedback: object | None  # quality's GoldFeedback(correct, expected, explanation) for gold items
    points: int
    xp: int
    partner: int = 0
    shares: int = 0
    reward_state: str = "pending"  # "verified" for a right gold answer; "void" when rejected


@dataclass(frozen=True)
class Reward:
    points: int
    xp: int
    partner: int
    shares: int


@retry_transaction
def submit_answer(user_id: int, lease_id: int, answer: dict, *, now: datetime, time_spent_ms: int | None = None) -> SubmissionResult:
    """Validate the answer, record it, let quality judge it, and pay it if it is accepted."""
    return _submit(user_id, lease_id, lambda _pack, _item: answer, now=now, time_spent_ms=time_spent_ms)[0]


@retry_transaction
def submit_answer_form(
    user_id: int, lease_id: int, form: Mapping, *, pack_slug: str, now: datetime, time_spent_ms: int | None = None
) -> tuple[SubmissionResult, WorkItem]:
    """`submit_answer` for the work page's form fields (one lookup for parsing and checking); also returns
    the item that was answered and its pack, for the feedback and the next item. A lease of another pack
    is "not yours"."""
    return _submit(user_id, lease_id, lambda pack, item: parse_answer_form(pack, item, form), now=now,
                   time_spent_ms=time_spent_ms, pack_slug=pack_slug)


def _submit(user_id: int, lease_id: int, answer_for, *, now: datetime, time_spent_ms: int | None, pack_slug: str | None = None):
    with unit_of_work() as session:
        claiming = is_postgres()  # the lease is claimed in the same statement (SQLite: just below)
        values = {"lease_id": lease_id, "pack_slug": pack_slug, "answerer_id": user_id, "answered_now": now}
        row = session.execute(_answered_lease_statement(pack_slug is not None, claiming), values).first()
        if row is None or row[0].user_id != user_id:
            raise LabelingNotFound(_l("That item is not yours."))
        # The progress row waits in the session for the streak multiplier, the judged row for the judge.
        lease, item, pack, campaign, media, _progress, _judged = row[:7]
        answered = WorkItem(lease, item, pack, media)
        # The lease as it was before this statement's claim: every way out below raises, and the rollback
        # gives the claim back.
        if lease.status == "submitted":
            raise AlreadySubmitted(_l("You already answered this item."))
        if lease.status != "active" or as_utc(lease.expires_at) <= now:
            raise LeaseExpired(_l("Your time for this item ran out, so it went back to the pool. Here is another one."))
        canonical = validate_answer(pack, item, answer_for(pack, item), media=media)
        if claiming:
            claimed = row[7] is not None
        else:
            claimed = session.execute(_submit_lease_statement(), {"submitted_lease_id": lease.id}).rowcount
        if not claimed:  # another request claimed it between our read and our claim
            raise AlreadySubmitted(_l("You already answered this item."))
        set_committed_value(lease, "status", "submitted")
        if time_spent_ms is not None and not 0 <= time_spent_ms <= 86_400_000:
            time_spent_ms = None
        with session.no_autoflush:  # the reward goes out with the submission's INSERT
            reward = reward_for(user_id, pack, campaign, now)
        submission = Submission(
            lease_id=lease.id,
            item_id=item.id,
            pack_id=pack.id,
            user_id=user_id,
            answer=canonical,
            status="pending_review",
            is_gold=item.is_gold,
            time_spent_ms=time_spent_ms,
            paid_points=reward.points,
            paid_xp=reward.xp,
            paid_partner=reward.partner,
            reward_state="pending",
            created_at=now,
        )
        session.add(submission)
        # Judged before it is written (no autoflush while the judge reads), so the row goes in once, with its status.
        with session.no_autoflush:
            judgement = events.judge_submission.ask(submission=submission, now=now)
        submission.status = judgement.status
        if judgement.status in ("accepted", "rejected"):
            submission.decided_at = now
        if judgement.status == "rejected":
            _void(submission)
        # An accepted ordinary answer waits for quality's decision job (the flag goes out with the INSERT).
        submission.awaiting_decision = judgement.status == "accepted" and not item.is_gold
        if judgement.status == "accepted" and item.is_gold:
            # Verified by its known answer (the verdict goes out with the INSERT): the next batch pays it.
            submission.reward_state, submission.verified_at = "verified", now
            request_settlement()
        session.flush()
        if submission.awaiting_decision:
            events.submission_settled.send(None, submission_id=submission.id, now=now)
        elif judgement.status == "rejected" and not item.is_gold:
            free_slot(item.id)
        # Read before the commit expires the row (reading it after would reload it).
        result = SubmissionResult(submission.id, submission.status, judgement.feedback, submission.paid_points, submission.paid_xp,
                                  submission.paid_partner, reward.shares if submission.reward_state != "void" else 0, submission.reward_state)
        failpoint("labeling.submit.before-commit")
    return result, answered


@built_once
def _answered_lease_statement(by_slug: bool, claiming: bool):
    """The lease being answered with its item, pack, campaign and media, the member's progress row (the
    streak multiplier's `session.get` then finds it loaded: one round trip fewer) and the member's row the
    judge reads (`events.judged_member_row`: their reputation, likewise); a lease of another pack is not
    found when the pack's slug is given.

    `claiming` (PostgreSQL): the statement also claims the lease, as `_submit_lease_statement` does, if it is
    the member's (`answerer_id`), active and unexpired at `answered_now`; its last column is the lease's id
    when it did, else NULL. The rows read are as they were before the claim, so the lease's status says why
    a claim failed.
    """
    judged = events.judged_member_row.ask()
    query = (
        select(Lease, Item, TaskPack, Campaign, Media, MemberProgress, judged)
        .join(Item, Item.id == Lease.item_id)
        .join(TaskPack, TaskPack.id == Lease.pack_id)
        .join(Campaign, Campaign.id == TaskPack.campaign_id)
        .outerjoin(Media, Media.id == Item.media_id)
        .outerjoin(MemberProgress, MemberProgress.user_id == Lease.user_id)
        .outerjoin(judged, judged.user_id == Lease.user_id)
        .where(Lease.id == bindparam("lease_id"))
    )
    if claiming:
        claimed = (
            update(Lease)
            .where(Lease.id == bindparam("lease_id"), Lease.user_id == bindparam("answerer_id"), Lease.status == "active",
                   Lease.expires_at > bindparam("answered_now"))
            .values(status="submitted")
            .returning(Lease.id)
            .cte("claimed")
        )
        query = query.add_columns(claimed.c.id).outerjoin(claimed, claimed.c.id == Lease.id)
    return query.where(TaskPack.slug == bindparam("pack_slug")) if by_slug else query


@built_once
def _submit_lease_statement():
    return (
        update(Lease)
        .where(Lease.id == bindparam("submitted_lease_id"), Lease.status == "active")
        .values(status="submitted")
        .execution_options(synchronize_session=False)
    )


def reward_for(user_id: int, pack: TaskPack, campaign: Campaign, now: datetime) -> Reward:
    """What an answer given now earns once verified (see the module docstring)."""
    multiplier = reward_multiplier(pack.task_type, pack.difficulty) * streak_multiplier(user_id, now)
    return Reward(
        points=round_down(pack.reward_points * multiplier) if campaign.kind in ("enterprise", "dual") else 0,
        xp=round_down(pack.reward_xp * multiplier),
        partner=round_down(pack.partner_reward * multiplier) if campaign.kind == "dual" else 0,
        shares=revenue_shares_for(pack, campaign),
    )


def _void(submission: Submission) -> None:
    """A rejected answer that was never paid earns nothing."""
    submission.reward_state = "void"
    submission.paid_points = submission.paid_xp = submission.paid_partner = 0


def _locked_submission(submission_id: int) -> tuple[Submission, Item, TaskPack, Campaign]:
    row = db.session.execute(
        select(Submission, Item, TaskPack, Campaign)
        .join(Item, Item.id == Submission.item_id)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .join(Campaign, Campaign.id == TaskPack.campaign_id)
        .where(Submission.id == submission_id)
        .with_for_update(of=Submission)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise LabelingNotFound(_l("That submission does not exist."))
    return row


@retry_transaction
def accept_submission(submission_id: int, *, now: datetime, fixed_answer: dict | None = None) -> None:
    """Accept a submission after review (optionally with the reviewer's fix) or an appeal: the accept
    verifies it, and the next settlement batch pays it."""
    with unit_of_work():
        submission, item, pack, campaign = _locked_submission(submission_id)
        if fixed_answer is not None:
            submission.fixed_answer = validate_answer(pack, item, fixed_answer)
        if submission.status == "accepted":
            _verify(submission, now)  # a spot check accepted: verified now, if it was not yet
            return
        overturned = submission.status == "rejected"
        if overturned:
            # The first reward was voided (or paid and reversed): the overturned answer earns what it would now.
            reward = reward_for(submission.user_id, pack, campaign, now)
            submission.paid_points, submission.paid_xp, submission.paid_partner = reward.points, reward.xp, reward.partner
            if not item.is_gold:
                # An overturned rejection takes its slot back, even past the item's current target.
                db.session.execute(
                    update(Item)
                    .where(Item.id == item.id)
                    .values(
                        labels_target=case((Item.slots_taken + 1 > Item.labels_target, Item.slots_taken + 1), else_=Item.labels_target),
                        slots_taken=Item.slots_taken + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        submission.status = "accepted"
        submission.decided_at = now
        submission.rejection_reason = ""
        _verify(submission, now)
        if not item.is_gold:
            submission.awaiting_decision = True  # its item is decided again with it
        db.session.flush()
        if not item.is_gold:
            events.submission_settled.send(None, submission_id=submission.id, now=now)


def _verify(submission: Submission, now: datetime) -> None:
    """A reviewer's (or moderator's) accept verifies the answer; the settlement batch pays it."""
    if submission.reward_state == "paid" and submission.reversed_at is None:
        return  # already paid
    if submission.reward_state == "paid":  # paid, reversed by a rejection, now accepted again: paid anew
        submission.reward_state = "pending"
    if submission.reward_state in ("pending", "not_verified", "void"):
        submission.reward_state, submission.verified_at = "verified", now
        request_settlement()


@retry_transaction
def reject_submission(submission_id: int, *, reason: str, now: datetime) -> None:
    """Reject a submission: reverse what it was paid (or void what it would have earned), void its revenue
    shares, free its slot."""
    with unit_of_work() as session:
        submission, item, pack, _campaign = _locked_submission(submission_id)
        if submission.status == "rejected":
            return
        was_paid = submission.reward_state == "paid" and (submission.paid_points or submission.paid_xp or submission.paid_partner)
        submission.status = "rejected"
        submission.rejection_reason = (reason or "").strip()[:2000]
        submission.decided_at = now
        if was_paid:
            _reverse(submission, pack, now)
        elif submission.reward_state != "paid":
            _void(submission)
        session.execute(
            update(RevenueShare).where(RevenueShare.submission_id == submission.id).values(void=True).execution_options(synchronize_session=False)
        )
        if not item.is_gold:
            free_slot(item.id)


def _reverse(submission: Submission, pack: TaskPack, now: datetime) -> None:
    kind = f"labeling-reversal:{pack.task_type}"
    key = f"submission:{submission.id}"
    # A payment made again after an earlier reversal (an overturned rejection) is reversed under keys of its own.
    suffix = ":repaid" if submission.reversed_at is not None else ""
    paid_amounts = (
        ("points", submission.paid_points), ("xp", submission.paid_xp), ("partner", submission.paid_partner * TOKEN_UNIT)
    )
    for currency, paid in paid_amounts:
        if not paid:
            continue
        # Never below zero: take what is there (the row lock keeps a concurrent spend from racing us).
        available = db.session.scalar(
            select(Balance.amount).where(Balance.user_id == submission.user_id, Balance.currency == currency).with_for_update()
        ) or 0
        take = min(paid, int(available))
        short = paid - take
        memo = f"reversal of #{submission.id}" + (f", {short} short" if short else "")
        if take:
            ledger.debit(submission.user_id, currency, take, kind=kind, key=f"{key}:{currency}:reversal{suffix}", now=now, memo=memo)
        if short:
            current_app.logger.info("submission %s reversal of %s %s was %s short", submission.id, paid, currency, short)
    submission.reversed_at = now


def retire_items(item_ids: Iterable[int], *, now: datetime) -> None:
    """Retire items (quality verified them, or gave up on them): nobody is offered them again."""
    with unit_of_work() as session:
        session.connection().execute(_retire_item_statement(), [{"retired_item_id": item_id} for item_id in sorted(item_ids)])


def raise_item_targets(targets: Mapping[int, int], *, now: datetime) -> None:
    """Ask for more labels on items ({item id: new target}; adaptive redundancy) in one round trip; never
    lowers a target."""
    if any(target < 1 for target in targets.values()):
        raise LabelingError(_l("An item wants at least one label."))
    with unit_of_work() as session:
        session.connection().execute(
            _raise_item_target_statement(),
            [{"raised_item_id": item_id, "new_target": target} for item_id, target in sorted(targets.items())],
        )


# Quality's decision job retires or re-targets a batch of items at once (one executemany each).
@built_once
def _retire_item_statement():
    return update(Item).where(Item.id == bindparam("retired_item_id")).values(status="retired")


@built_once
def _raise_item_target_statement():
    target = bindparam("new_target")
    return update(Item).where(Item.id == bindparam("raised_item_id"), Item.labels_target < target).values(labels_target=target)


def item_answers(item_id: int) -> list[Submission]:
    return list(
        db.session.scalars(
            select(Submission).where(Submission.item_id == item_id, Submission.status != "rejected").order_by(Submission.id)
        )
    )


def get_submission(submission_id: int) -> Submission | None:
    return db.session.get(Submission, submission_id)


@dataclass(frozen=True)
class HistoryRow:
    submission: Submission
    pack: TaskPack
    item: Item
    verified_answer: dict | None = None  # the item's verified label, shown with an answer that was not verified

    @property
    def reward(self) -> str:
        """Where the answer's reward stands, as the member's history shows it: "pending", "in_review",
        "verified" (paid by the next batch), "paid", "not_verified", "rejected" or "reversed"."""
        submission = self.submission
        if submission.status == "rejected":
            return "reversed" if submission.reversed_at is not None else "rejected"
        if submission.status == "pending_review":
            return "in_review"
        return submission.reward_state


def my_submissions(user_id: int, *, page: int = 1, per_page: int = 25) -> tuple[list[HistoryRow], int]:
    total = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.user_id == user_id)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = db.session.execute(
        select(Submission, TaskPack, Item)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .join(Item, Item.id == Submission.item_id)
        .where(Submission.user_id == user_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    # Only an answer found not verified shows its item's label (asked of quality, which owns the labels).
    unverified = [item.id for submission, _pack, item in rows if submission.reward_state == "not_verified"]
    labels = events.verified_labels.ask(item_ids=unverified) if unverified else {}
    return [HistoryRow(submission, pack, item, labels.get(item.id)) for submission, pack, item in rows], pages


def gold_feedback_for(user_id: int, submission_id: int):
    """(submission, item, pack) for the member's own answered gold item, or None."""
    row = db.session.execute(
        select(Submission, Item, TaskPack)
        .join(Item, Item.id == Submission.item_id)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .where(Submission.id == submission_id, Submission.user_id == user_id)
    ).first()
    return tuple(row) if row is not None else None
