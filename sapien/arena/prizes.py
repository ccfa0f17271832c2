"""Arena prizes: the entry fee in points, the winner's pot of fees and the token prize from the admins' pool.

Every movement goes through the ledger with a key made from the match (`arena:fee:<match>:<user>`,
`arena:pot:<match>`, `arena:prize:<match>`), so a retried or raced payout posts once. The pool row is
moved by one guarded UPDATE: the tokens paid never pass the budget (a database check says so too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from sapien.arena.errors import ArenaError
from sapien.arena.models import ArenaPrizePool
from sapien.database import dialect_insert, unit_of_work
from sapien.economy.parameters import BASIS
from sapien.economy.staking import multiplier_of
from sapien.extensions import db
from sapien.i18n import TOKEN_DECIMALS
from sapien.ledger import service as ledger

TOKEN_UNIT = 10**TOKEN_DECIMALS
POOL_ID = 1


def staked_prize(user_id: int, prize: int) -> int:
    """A prize scaled by the member's staking tier, as every reward is (integer base units, rounded down)."""
    return int(prize) * multiplier_of(user_id) // BASIS


def pool() -> ArenaPrizePool | None:
    return db.session.get(ArenaPrizePool, POOL_ID)


@dataclass(frozen=True)
class PoolSettings:
    budget_tokens: int  # base units
    prize_tokens: int  # base units per win
    entry_fee_points: int


def set_pool(settings: PoolSettings, *, actor_id: int, now: datetime) -> ArenaPrizePool:
    """An admin sets the budget (never below what was already paid), the prize per win and the entry fee."""
    if min(settings.budget_tokens, settings.prize_tokens, settings.entry_fee_points) < 0:
        raise ArenaError(_l("Amounts cannot be negative."))
    with unit_of_work() as session:
        session.execute(
            dialect_insert(ArenaPrizePool).values(id=POOL_ID, budget_tokens=0, paid_tokens=0, prize_tokens=0, entry_fee_points=0,
                                                  updated_at=now).on_conflict_do_nothing()
        )
        row = session.scalars(select(ArenaPrizePool).where(ArenaPrizePool.id == POOL_ID).with_for_update()
                              .execution_options(populate_existing=True)).one()
        if settings.budget_tokens < row.paid_tokens:
            raise ArenaError(_l("The budget cannot be less than the tokens already paid out."), "budget")
        row.budget_tokens, row.prize_tokens = settings.budget_tokens, settings.prize_tokens
        row.entry_fee_points, row.updated_by, row.updated_at = settings.entry_fee_points, actor_id, now
    return row


def entry_fee() -> int:
    row = pool()
    return row.entry_fee_points if row else 0


def charge_entry_fee(match_id: int, user_id: int, amount: int, now: datetime) -> None:
    if amount > 0:
        try:
            ledger.debit(user_id, "points", amount, kind="arena:fee", key=f"arena:fee:{match_id}:{user_id}", now=now,
                         memo=f"arena match {match_id}")
        except ledger.InsufficientBalance as error:
            raise ArenaError(_l("You need %(points)s points for the entry fee.", points=amount)) from error


@dataclass(frozen=True)
class Prize:
    tokens: int
    points: int


def pay_winner(match_id: int, user_id: int, pot_points: int, now: datetime) -> Prize:
    """Pay the winner the entry fees' pot and the pool's prize, scaled by the staking multiplier and capped
    by what is left of the budget. Called once per match (its settlement is guarded), keyed in any case."""
    if pot_points > 0:
        ledger.credit(user_id, "points", pot_points, kind="arena:pot", key=f"arena:pot:{match_id}", now=now, memo=f"arena match {match_id}")
    row = pool()
    tokens = 0
    if row is not None and row.prize_tokens > 0:
        wanted = staked_prize(user_id, row.prize_tokens)
        left = db.session.execute(
            select(ArenaPrizePool.budget_tokens - ArenaPrizePool.paid_tokens).where(ArenaPrizePool.id == POOL_ID).with_for_update()
        ).scalar_one()
        tokens = int(max(0, min(wanted, left)))
        if tokens:
            db.session.execute(update(ArenaPrizePool).where(ArenaPrizePool.id == POOL_ID).values(paid_tokens=ArenaPrizePool.paid_tokens + tokens))
            ledger.credit(user_id, "token", tokens, kind="arena:prize", key=f"arena:prize:{match_id}", now=now, memo=f"arena match {match_id}")
    return Prize(tokens, pot_points)
