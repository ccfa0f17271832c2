"""Submissions: answering a leased item, paying accepted answers, accepting and rejecting later.

Rewards
-------
``reward = base × difficulty multiplier × streak multiplier``, rounded down, posted to the ledger with
one key per submission and currency (``submission:<id>:points`` …). Enterprise campaigns pay points and
XP, dual-reward campaigns add the partner token (ledger currency ``partner``; the symbol is in the memo),
community campaigns pay XP and record revenue shares. Packs count partner rewards and minimum stakes in
whole tokens (``partner_reward``, ``min_stake``, ``Submission.paid_partner``); the ledger holds them in
base units (10**-18 of a token). Rejecting a paid submission reverses what was
paid, never taking a balance below zero.

Lock order
----------
An answer and a reviewer's verdict on the same member's earlier answer run at once, so every path
takes a member's rows in one order: the submission (or lease) row, then the member's balance rows
(sorted by currency, see `ledger.credit_many`), then the item, then reputation rows (sorted by member;
a gold verdict's reputation move runs just before the commit, see `database.before_commit`). As a
safety net the calls that own their transaction run it again on a deadlock or serialization failure
(`database.retry_transaction`): everything they wrote was rolled back, and the ledger keys make a re-run
pay once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from sapien import events
from sapien.database import after_commit, as_utc, retry_transaction, unit_of_work
from sapien.extensions import db
from sapien.failpoints import failpoint
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
from sapien.labeling.packs import DIFFICULTY_MULTIPLIERS, TOKEN_UNIT, round_down
from sapien.ledger import service as ledger
from sapien.ledger.models import Balance
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
        query = (
            select(Lease, Item, TaskPack, Campaign, Media)
            .join(Item, Item.id == Lease.item_id)
            .join(TaskPack, TaskPack.id == Lease.pack_id)
            .join(Campaign, Campaign.id == TaskPack.campaign_id)
            .outerjoin(Media, Media.id == Item.media_id)
            .where(Lease.id == lease_id)
        )
        if pack_slug is not None:
            query = query.where(TaskPack.slug == pack_slug)
        row = session.execute(query).first()
        if row is None or row[0].user_id != user_id:
            raise LabelingNotFound(_l("That item is not yours."))
        lease, item, pack, campaign, media = row
        answered = WorkItem(lease, item, pack, media)
        if lease.status == "submitted":
            raise AlreadySubmitted(_l("You already answered this item."))
        if lease.status != "active" or as_utc(lease.expires_at) <= now:
            raise LeaseExpired(_l("Your time for this item ran out, so it went back to the pool. Here is another one."))
        canonical = validate_answer(pack, item, answer_for(pack, item), media=media)
        claimed = session.execute(
            update(Lease)
            .where(Lease.id == lease.id, Lease.status == "active")
            .values(status="submitted")
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            raise AlreadySubmitted(_l("You already answered this item."))
        set_committed_value(lease, "status", "submitted")
        if time_spent_ms is not None and not 0 <= time_spent_ms <= 86_400_000:
            time_spent_ms = None
        submission = Submission(
            lease_id=lease.id,
            item_id=item.id,
            pack_id=pack.id,
            user_id=user_id,
            answer=canonical,
            status="pending_review",
            is_gold=item.is_gold,
            time_spent_ms=time_spent_ms,
            created_at=now,
        )
        session.add(submission)
        session.flush()
        judgement = events.judge_submission.ask(submission_id=submission.id, now=now)
        submission.status = judgement.status
        points = xp = partner = shares = 0
        if judgement.status == "accepted":
            points, xp, partner, shares = _settle_accepted(submission, item, pack, campaign, now)
        elif judgement.status == "rejected":
            submission.decided_at = now
            if not item.is_gold:
                free_slot(item.id)
        # Read before the commit expires the row (reading it after would reload it).
        result = SubmissionResult(submission.id, submission.status, judgement.feedback, points, xp, partner, shares)
        failpoint("labeling.submit.before-commit")
    return result, answered


def _settle_accepted(submission: Submission, item: Item, pack: TaskPack, campaign: Campaign, now: datetime,
                     before_settling=None) -> tuple[int, int, int, int]:
    submission.status = "accepted"
    submission.decided_at = now
    amounts = _pay(submission, pack, campaign, now)
    db.session.flush()
    if before_settling is not None:
        before_settling()
    if not item.is_gold:
        events.submission_settled.send(None, submission_id=submission.id, now=now)
    points, xp = amounts[0], amounts[1]
    sent = dict(user_id=submission.user_id, submission_id=submission.id, pack_id=pack.id, task_type=pack.task_type, xp=xp, points=points, now=now)
    after_commit(lambda: events.submission_accepted.send(None, **sent))
    return amounts


def _pay(submission: Submission, pack: TaskPack, campaign: Campaign, now: datetime) -> tuple[int, int, int, int]:
    with db.session.no_autoflush:  # the status and amounts below go out in one UPDATE with the first posting
        multiplier = DIFFICULTY_MULTIPLIERS[pack.difficulty] * streak_multiplier(submission.user_id, now)
    kind = f"labeling:{pack.task_type}"
    # Paid once per submission; after a reversal (an overturned rejection) the new payment gets its own keys.
    suffix = ":repaid" if submission.reversed_at is not None else ""
    memo = f"{pack.name[:200]} #{submission.id}"
    points = round_down(pack.reward_points * multiplier) if campaign.kind in ("enterprise", "dual") else 0
    xp = round_down(pack.reward_xp * multiplier)
    partner = round_down(pack.partner_reward * multiplier) if campaign.kind == "dual" else 0
    shares = round_down(pack.revenue_shares * DIFFICULTY_MULTIPLIERS[pack.difficulty]) if campaign.kind == "community" else 0
    user_id, key = submission.user_id, f"submission:{submission.id}"
    submission.paid_points, submission.paid_xp, submission.paid_partner = points, xp, partner
    credits = [
        ledger.Credit("points", points, f"{key}:points{suffix}", memo),
        ledger.Credit("xp", xp, f"{key}:xp{suffix}", memo),
        ledger.Credit("partner", partner * TOKEN_UNIT, f"{key}:partner{suffix}", f"{campaign.partner_token} {memo}"[:255]),
    ]
    # One posting for the whole reward (a few statements, not a few per currency).
    ledger.credit_many(user_id, [one for one in credits if one.amount], kind=kind, now=now)
    if shares:
        share = db.session.scalar(select(RevenueShare).where(RevenueShare.submission_id == submission.id))
        if share is None:
            db.session.add(RevenueShare(campaign_id=campaign.id, pack_id=pack.id, user_id=user_id, submission_id=submission.id,
                                        shares=shares, void=False, created_at=now))
        else:
            share.shares, share.void = shares, False
    return points, xp, partner, shares


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
    """Accept a submission after review (optionally with the reviewer's fix), pay it and settle it."""
    with unit_of_work():
        submission, item, pack, campaign = _locked_submission(submission_id)
        if fixed_answer is not None:
            submission.fixed_answer = validate_answer(pack, item, fixed_answer)
        if submission.status == "accepted":
            return
        take_slot_back = None
        if submission.status == "rejected" and not item.is_gold:
            def take_slot_back():
                # An overturned rejection takes its slot back, even past the item's current target (after
                # the pay: the member's balance rows are locked before the item).
                db.session.execute(
                    update(Item)
                    .where(Item.id == item.id)
                    .values(
                        labels_target=case((Item.slots_taken + 1 > Item.labels_target, Item.slots_taken + 1), else_=Item.labels_target),
                        slots_taken=Item.slots_taken + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        submission.rejection_reason = ""
        _settle_accepted(submission, item, pack, campaign, now, before_settling=take_slot_back)


@retry_transaction
def reject_submission(submission_id: int, *, reason: str, now: datetime) -> None:
    """Reject a submission: reverse what it was paid, void its revenue shares, free its slot."""
    with unit_of_work() as session:
        submission, item, pack, _campaign = _locked_submission(submission_id)
        if submission.status == "rejected":
            return
        was_paid = submission.status == "accepted" and (submission.paid_points or submission.paid_xp or submission.paid_partner)
        submission.status = "rejected"
        submission.rejection_reason = (reason or "").strip()[:2000]
        submission.decided_at = now
        if was_paid:
            _reverse(submission, pack, now)
        session.execute(
            update(RevenueShare).where(RevenueShare.submission_id == submission.id).values(void=True).execution_options(synchronize_session=False)
        )
        if not item.is_gold:
            free_slot(item.id)


def _reverse(submission: Submission, pack: TaskPack, now: datetime) -> None:
    kind = f"labeling-reversal:{pack.task_type}"
    key = f"submission:{submission.id}"
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
            ledger.debit(submission.user_id, currency, take, kind=kind, key=f"{key}:{currency}:reversal", now=now, memo=memo)
        if short:
            current_app.logger.info("submission %s reversal of %s %s was %s short", submission.id, paid, currency, short)
    submission.reversed_at = now


def retire_item(item_id: int, *, now: datetime) -> None:
    with unit_of_work() as session:
        session.execute(update(Item).where(Item.id == item_id).values(status="retired"))


def raise_item_target(item_id: int, new_target: int, *, now: datetime) -> None:
    """Ask for more labels on an item (adaptive redundancy); never lowers the target."""
    if new_target < 1:
        raise LabelingError(_l("An item wants at least one label."))
    with unit_of_work() as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id, Item.labels_target < new_target)
            .values(labels_target=new_target)
        )


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
    ).tuples().all()
    return [HistoryRow(*row) for row in rows], pages


def gold_feedback_for(user_id: int, submission_id: int):
    """(submission, item, pack) for the member's own answered gold item, or None."""
    row = db.session.execute(
        select(Submission, Item, TaskPack)
        .join(Item, Item.id == Submission.item_id)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .where(Submission.id == submission_id, Submission.user_id == user_id)
    ).first()
    return tuple(row) if row is not None else None
