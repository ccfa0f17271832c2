"""Settlement: an answer's reward is paid once the answer is verified, in batches off the answer's path.

Reward states (``Submission.reward_state``)
-------------------------------------------
``pending``
    Given, not verified yet. Its reward is fixed when it is given (``paid_*``) and shown as pending.
``verified``
    It agrees with its item's verified label (quality marks it through `verify_answers` when the item is
    verified, or verified again), a reviewer accepted it (`submissions.accept_submission`), or it is a right
    answer to a gold item (its known answer verifies it at once). It is paid by the next settlement batch.
``paid``
    Credited to the ledger (``paid_at``). A later review reject reverses it with compensating entries.
``not_verified``
    It disagrees with its item's verified label: it earns nothing (the member's history shows the label).
    A reviewer's accept, or a recomputed label it agrees with, still verifies it.
``void``
    Rejected (a wrong gold answer, a review reject) before it was paid: it earns nothing.

Gold answers are judged at once against their known answer: the member sees the verdict at once, and a
right one is paid like every verified answer (the answer's own request posts nothing to the ledger).

Settlement
----------
Verification only marks rows and asks for the job ``jobs.labeling.settle_rewards`` (one deterministic id)
after its commit, a moment ahead (`batch_jobs.run_soon`), so that one run pays what was verified meanwhile.
The job pays every verified, unpaid answer, `SETTLEMENT_BATCH` per transaction: one ledger credit per answer
and currency under the keys ``submission:<id>:points|xp|partner`` (posted in bulk, ``ON CONFLICT DO
NOTHING`` on the key), balances moved once per member and currency, one notification per member and one
`answers_paid` event per batch with each member's payout (progression: levels, quests, streaks, badges; the
boards hear the ledger's aggregated events). A batch claims its rows with ``FOR UPDATE SKIP LOCKED``, so two
runs never pay the same answer and a review reject waits for the batch holding its answer (then reverses the
pay). The reconciler finds verified rows left unpaid when the queue lost the job.

Stake multipliers
-----------------
A member's staking tier multiplies the points of every answer when it is paid (economy answers
`events.stake_multipliers`; rounded down). The answer records the points paid and the multiplier
(``stake_multiplier_bp``), so its history shows "×1.05" and a later reversal takes back what was paid.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Integer, any_, bindparam, case, false, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from sapien import events
from sapien.batch_jobs import disarm, run_soon_after_commit
from sapien.database import (
    after_commit,
    as_utc,
    built_once,
    dialect_insert,
    is_postgres,
    retry_transaction,
    unit_of_work,
)
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT
from sapien.labeling.models import Campaign, RevenueShare, Submission, TaskPack
from sapien.labeling.packs import reward_multiplier, round_down
from sapien.ledger import service as ledger
from sapien.notifications.service import Notice, notify_many
from sapien.queue import PendingWork, pending_work_source

SETTLEMENT_JOB = "jobs.labeling.settle_rewards"
SETTLEMENT_JOB_ID = "labeling-settle-rewards"
# Answers paid per transaction: events and notifications go out once per member per batch, so bigger
# batches cost less per answer (100,000 answers: one batch of a few seconds on PostgreSQL).
SETTLEMENT_BATCH = 100_000
OPEN_STATES = ("pending", "verified")  # rewards still to come
# The partial indexes' predicates (`ix_submissions_user_reward_open`, `ix_submissions_verified_unpaid`) as
# literal SQL: with the states as parameters, the plan PostgreSQL keeps for a prepared statement cannot use
# those indexes, so every run would be planned afresh.
_OPEN_REWARD = text("submissions.reward_state IN (" + ", ".join(f"'{state}'" for state in OPEN_STATES) + ")")
_VERIFIED_UNPAID = text("submissions.reward_state = 'verified'")
BASIS = 10_000  # basis points in 1× (the stake multipliers economy answers with)


def revenue_shares_for(pack: TaskPack, campaign: Campaign) -> int:
    """Community campaigns record shares of the dataset's future revenue for each verified answer."""
    return round_down(pack.revenue_shares * reward_multiplier(pack.task_type, pack.difficulty)) if campaign.kind == "community" else 0


def request_settlement() -> None:
    """Queue the settlement job once the current unit of work commits, a moment later: one run pays what was
    verified meanwhile (and each member's reactions run once for all of it)."""
    run_soon_after_commit(SETTLEMENT_JOB, job_id=SETTLEMENT_JOB_ID)


def verify_answers(pack_id: int, agreeing: Iterable[int], disagreeing: Iterable[int], *, now: datetime) -> int:
    """Mark accepted answers of one pack as verified (they agree with their item's verified label) or not
    verified (they do not), in the caller's unit of work; returns how many became verified.

    Only answers whose reward is still open move: a pending one either way, one found not verified earlier
    to verified when a recomputed label agrees with it. Paid, void and in-review answers stay as they are.
    An answer with nothing to pay (no points, XP, partner tokens or shares) is marked paid at once.
    """
    agreeing, disagreeing = sorted(set(agreeing)), sorted(set(disagreeing))
    session = db.session
    verified = 0
    if agreeing:
        pack, campaign = session.execute(
            select(TaskPack, Campaign).join(Campaign, Campaign.id == TaskPack.campaign_id).where(TaskPack.id == pack_id)
        ).one()
        pays_shares = revenue_shares_for(pack, campaign) > 0
        nothing_to_pay = false() if pays_shares else (Submission.paid_points == 0) & (Submission.paid_xp == 0) & (Submission.paid_partner == 0)
        moved = session.execute(
            update(Submission)
            .where(_one_of(Submission.id, agreeing), Submission.status == "accepted", Submission.reward_state.in_(("pending", "not_verified")))
            .values(
                reward_state=case((nothing_to_pay, "paid"), else_="verified"),
                verified_at=now,
                paid_at=case((nothing_to_pay, now), else_=None),
            )
            .returning(Submission.reward_state)
            .execution_options(synchronize_session=False)
        ).scalars().all()
        verified = sum(1 for state in moved if state == "verified")
    if disagreeing:
        session.execute(
            update(Submission)
            .where(_one_of(Submission.id, disagreeing), Submission.status == "accepted", Submission.reward_state == "pending")
            .values(reward_state="not_verified", verified_at=now)
            .execution_options(synchronize_session=False)
        )
    if verified:
        request_settlement()
    return verified


def _one_of(column, ids: list[int]):
    """`column IN ids`; on PostgreSQL as `= ANY(array)`, one parameter however many ids (a batch has 100,000)."""
    if is_postgres():
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


@dataclass
class MemberPayout:
    """What one member was paid in one batch."""

    answers: int = 0
    points: int = 0
    xp: int = 0
    task_types: Counter = field(default_factory=Counter)
    answered_at: list[datetime] = field(default_factory=list)
    first_submission_id: int = 0
    multiplier_bp: int = 10_000  # the member's stake multiplier, applied to the points


@dataclass
class SettlementReport:
    answers: int = 0
    batches: int = 0
    members: set[int] = field(default_factory=set)


def settle_verified_rewards(*, now: datetime, batch_size: int = SETTLEMENT_BATCH) -> SettlementReport:
    """Pay every verified, unpaid answer, one batch per transaction, until none is left (the job's body)."""
    disarm(SETTLEMENT_JOB_ID)
    report = SettlementReport()
    while True:
        paid = settle_batch(now=now, limit=batch_size)
        if not paid:
            return report
        report.answers += sum(payout.answers for payout in paid.values())
        report.batches += 1
        report.members |= set(paid)


_BATCH_COLUMNS = (
    Submission.id, Submission.user_id, Submission.pack_id, Submission.paid_points, Submission.paid_xp, Submission.paid_partner,
    Submission.reversed_at, Submission.created_at,
)


@retry_transaction
def settle_batch(*, now: datetime, limit: int = SETTLEMENT_BATCH) -> dict[int, MemberPayout]:
    """Pay up to `limit` verified answers in one transaction; returns what each member was paid."""
    with unit_of_work() as session:
        # Rows another run holds, or a reviewer deciding them, are skipped: what is still verified afterwards
        # goes in a later run.
        rows = session.execute(
            select(*_BATCH_COLUMNS).where(_VERIFIED_UNPAID).order_by(Submission.id).limit(limit).with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return {}
        session.execute(
            update(Submission).where(_one_of(Submission.id, [row[0] for row in rows])).values(reward_state="paid", paid_at=now)
            .execution_options(synchronize_session=False)
        )
        boosts = _apply_stake_multipliers(rows)
        packs = {
            pack.id: (pack, campaign) for pack, campaign in session.execute(
                select(TaskPack, Campaign).join(Campaign, Campaign.id == TaskPack.campaign_id).where(TaskPack.id.in_({row[2] for row in rows}))
            )
        }
        credits: list[ledger.BulkCredit] = []
        shares: list[dict] = []
        payouts: dict[int, MemberPayout] = defaultdict(MemberPayout)
        for submission_id, user_id, pack_id, points, xp, partner, reversed_at, created_at in rows:
            pack, campaign = packs[pack_id]
            points = boosted(points, boosts.get(user_id, BASIS))
            task_type, kind, key = pack.task_type, f"labeling:{pack.task_type}", f"submission:{submission_id}"
            memo = f"{pack.name[:200]} #{submission_id}"
            # After a reversal (an overturned rejection) the new payment gets keys of its own.
            suffix = ":repaid" if reversed_at is not None else ""
            if points:
                credits.append(ledger.BulkCredit(user_id, "points", points, f"{key}:points{suffix}", kind, memo))
            if xp:
                credits.append(ledger.BulkCredit(user_id, "xp", xp, f"{key}:xp{suffix}", kind, memo))
            if partner:
                credits.append(ledger.BulkCredit(user_id, "partner", partner * TOKEN_UNIT, f"{key}:partner{suffix}", kind,
                                                 f"{campaign.partner_token} {memo}"[:255]))
            if earned := revenue_shares_for(pack, campaign):
                shares.append(dict(campaign_id=campaign.id, pack_id=pack_id, user_id=user_id, submission_id=submission_id, shares=earned,
                                   void=False, created_at=now))
            payout = payouts[user_id]
            payout.multiplier_bp = boosts.get(user_id, BASIS)
            payout.answers += 1
            payout.points += points
            payout.xp += xp
            payout.task_types[task_type] += 1
            payout.answered_at.append(created_at)
            payout.first_submission_id = payout.first_submission_id or submission_id
        ledger.credit_bulk(credits, now=now)
        if shares:
            statement = dialect_insert(RevenueShare)
            session.execute(statement.on_conflict_do_update(index_elements=["submission_id"],
                                                            set_={"shares": statement.excluded.shares, "void": False}), shares)
        notify_many([_notice(user_id, payout) for user_id, payout in sorted(payouts.items()) if payout.points or payout.xp], now=now)
        announced = [
            dict(user_id=user_id, answers=payout.answers, task_types=dict(payout.task_types), answered_at=_distinct_moments(payout.answered_at),
                 points=payout.points, xp=payout.xp)
            for user_id, payout in sorted(payouts.items())
        ]
        # One event for the batch: the reactions (progression) run in one transaction, and batch what they can.
        after_commit(lambda: events.answers_paid.send(None, payouts=announced, now=now))
    return dict(payouts)


def boosted(points: int, multiplier_bp: int) -> int:
    """Points after the member's stake multiplier (rounded down)."""
    return points * multiplier_bp // BASIS


def _apply_stake_multipliers(rows) -> dict[int, int]:
    """Ask economy for the stake multipliers of the batch's members and record on each of their answers the
    points they are paid (`paid_points` times the multiplier, so a reversal takes back what was paid) and the
    multiplier; returns {member: basis points} for the members above 1×."""
    boosts = events.stake_multipliers.ask(user_ids=sorted({row[1] for row in rows}))
    by_multiplier: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row[1] in boosts and row[3]:
            by_multiplier[boosts[row[1]]].append(row[0])
    for multiplier_bp, ids in sorted(by_multiplier.items()):
        db.session.execute(
            update(Submission).where(_one_of(Submission.id, ids))
            .values(paid_points=Submission.paid_points * multiplier_bp // BASIS, stake_multiplier_bp=multiplier_bp)
            .execution_options(synchronize_session=False)
        )
    return boosts


def _distinct_moments(moments: list[datetime]) -> list[datetime]:
    """The earliest answer of each UTC quarter hour, in order: what streaks need to find the member's active
    days (a quarter hour never spans two local days, time zones being offset by whole quarter hours)."""
    earliest: dict[tuple, datetime] = {}
    for moment in moments:
        utc = as_utc(moment)
        bucket = (utc.date(), utc.hour, utc.minute // 15)
        if bucket not in earliest or utc < earliest[bucket]:
            earliest[bucket] = utc
    return sorted(earliest.values())


def _notice(user_id: int, payout: MemberPayout) -> Notice:
    """"18 answers verified: +396 points" (XP when the work paid no points), once per member per batch."""
    currency = "points" if payout.points else "xp"
    kind = f"{'answers' if payout.answers > 1 else 'answer'}_verified_{currency}"
    params = {"count": payout.answers, "amount": payout.points or payout.xp}
    if payout.points and payout.multiplier_bp > BASIS:
        kind += "_boosted"
        params["multiplier"] = f"{payout.multiplier_bp / BASIS:.2f}"
    return Notice(user_id, kind, params, key=f"answers-verified:{user_id}:{payout.first_submission_id}", link="/work/history")


@dataclass(frozen=True)
class PendingRewards:
    answers: int
    points: int
    xp: int


def pending_rewards(user_id: int) -> PendingRewards:
    """The member's rewards still to come: answers given but not verified or not paid yet."""
    answers, points, xp = db.session.execute(_pending_rewards_statement(), {"user_id": user_id}).one()
    return PendingRewards(int(answers), int(points), int(xp))


def pending_rewards_subquery(user_id):
    """`pending_rewards` as a one-row subquery (answers, points, xp), for a statement that reads it beside its
    own rows (the next item's: the nav shows both after every answer). `user_id` is a value or a bind parameter."""
    return select(
        func.count().label("pending_answers"),
        func.coalesce(func.sum(Submission.paid_points), 0).label("pending_points"),
        func.coalesce(func.sum(Submission.paid_xp), 0).label("pending_xp"),
    ).where(Submission.user_id == user_id, _OPEN_REWARD, Submission.status != "rejected").subquery("pending")


@built_once
def _pending_rewards_statement():
    return select(pending_rewards_subquery(bindparam("user_id")))


def unpaid_verified_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Submission).where(_VERIFIED_UNPAID)) or 0


@pending_work_source("labeling-settlement")
def _pending_settlement():
    if db.session.scalar(select(Submission.id).where(_VERIFIED_UNPAID).limit(1)) is not None:
        yield PendingWork(SETTLEMENT_JOB, (), SETTLEMENT_JOB_ID)
