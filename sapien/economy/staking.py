"""Staking: lock tokens for a tier's multiplier and priority, unstake after the lock and a cooldown, slashes.

Money and locks
---------------
The ledger's `stake` balance is the money; a `StakePosition` is one lock on part of it. Staking moves
tokens from the member's `token` balance to `stake` (keys ``stake:<position>:out|in``); releasing moves
them back (``unstake:<position>:out|in``). While a position is `staked` or `cooling`, its `amount` is
part of the `stake` balance: the sum of those amounts equals what economy put in the balance.

Tiers (the ``staking.tiers`` setting, docs/economy.md)
-------------------------------------------------------
A tier is a lock length, a minimum and a multiplier. A member reaches a tier when their `staked`
positions locked for at least that long add up to its minimum; their multiplier is the best tier they
reach (1× without one). Positions past their lock still count until the member asks to unstake. A lock
month is 30 days.

Unstaking
---------
After the lock a member asks to unstake: the position stops counting (`cooling`) and its tokens come
back after ``staking.cooldown_days``, when the member collects them. Before the lock ends: refused.

Slashing
--------
A moderator slashes a member for confirmed fraud with a severity and a reason: the severity's share
(``slashing.shares``: warning 0, moderate 25 %, severe 100 %) of each staked or cooling position goes to
the treasury. Every slash (a warning too) is a `Slash` row, an audit log entry and a notification.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from sapien.database import as_utc, is_postgres, unit_of_work
from sapien.economy.errors import EconomyError, EconomyNotFound
from sapien.economy.models import SLASH_SEVERITIES, Slash, StakePosition
from sapien.economy.parameters import BASIS, get_parameter
from sapien.economy.treasury import treasury_id
from sapien.extensions import db
from sapien.i18n import format_tokens
from sapien.ledger import service as ledger
from sapien.moderation import service as audit
from sapien.notifications.service import notify

LOCK_MONTH = timedelta(days=30)
MAX_REASON = 2000


@dataclass(frozen=True)
class Tier:
    months: int
    min_amount: int
    multiplier_bp: int

    @property
    def multiplier(self) -> str:
        return format_multiplier(self.multiplier_bp)


def format_multiplier(bp: int) -> str:
    """10500 → "1.05" (at most two decimals, trailing zeros kept to two: "1.50")."""
    return f"{bp / BASIS:.2f}"


def tiers() -> list[Tier]:
    return [Tier(tier["months"], tier["min_amount"], tier["multiplier_bp"]) for tier in get_parameter("staking.tiers")]


def _one_of(column, ids: list[int]):
    if is_postgres():
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def _tier_reached(locked: dict[int, int], all_tiers: list[Tier]) -> Tier | None:
    """The best tier `locked` ({lock months: amount staked}) reaches."""
    best = None
    for tier in all_tiers:
        if sum(amount for months, amount in locked.items() if months >= tier.months) >= tier.min_amount and tier.min_amount > 0:
            best = tier if best is None or tier.multiplier_bp > best.multiplier_bp else best
    return best


def stake_multipliers(user_ids: list[int]) -> dict[int, int]:
    """{member: multiplier in basis points} for the members of `user_ids` who reach a tier (others: 1×)."""
    if not user_ids:
        return {}
    rows = db.session.execute(
        select(StakePosition.user_id, StakePosition.lock_months, func.sum(StakePosition.amount))
        .where(_one_of(StakePosition.user_id, sorted(set(user_ids))), StakePosition.status == "staked")
        .group_by(StakePosition.user_id, StakePosition.lock_months)
    ).all()
    if not rows:
        return {}
    locked: dict[int, dict[int, int]] = defaultdict(dict)
    for user_id, months, amount in rows:
        locked[user_id][months] = int(amount)
    all_tiers = tiers()
    found = {}
    for user_id, by_months in locked.items():
        tier = _tier_reached(by_months, all_tiers)
        if tier is not None and tier.multiplier_bp > BASIS:
            found[user_id] = tier.multiplier_bp
    return found


def multiplier_of(user_id: int) -> int:
    return stake_multipliers([user_id]).get(user_id, BASIS)


@dataclass(frozen=True)
class StakeSummary:
    staked: int  # counting for tiers
    cooling: int
    tier: Tier | None
    multiplier_bp: int
    lock_ends_at: datetime | None  # the latest lock end among staked positions
    positions: list[StakePosition]
    slashes: list[Slash]

    @property
    def multiplier(self) -> str:
        return format_multiplier(self.multiplier_bp)


def stake_summary(user_id: int) -> StakeSummary:
    positions = list(db.session.scalars(
        select(StakePosition).where(StakePosition.user_id == user_id).order_by(StakePosition.staked_at.desc(), StakePosition.id.desc()).limit(200)
    ))
    staked = [p for p in positions if p.status == "staked"]
    locked: dict[int, int] = defaultdict(int)
    for position in staked:
        locked[position.lock_months] += position.amount
    tier = _tier_reached(locked, tiers())
    slashes = list(db.session.scalars(select(Slash).where(Slash.user_id == user_id).order_by(Slash.created_at.desc()).limit(50)))
    return StakeSummary(
        staked=sum(p.amount for p in staked),
        cooling=sum(p.amount for p in positions if p.status == "cooling"),
        tier=tier,
        multiplier_bp=tier.multiplier_bp if tier else BASIS,
        lock_ends_at=max((as_utc(p.lock_ends_at) for p in staked), default=None),
        positions=positions,
        slashes=slashes,
    )


# --- staking and unstaking ------------------------------------------------------------------------

def check_amount(amount: object) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise EconomyError(_l("Enter an amount above zero."), field="amount")
    return amount


def stake(user_id: int, amount: int, lock_months: int, *, now: datetime) -> StakePosition:
    """Lock `amount` token base units for `lock_months` (one of the tiers' locks). Refuses more than the
    member's token balance, even when two requests race (the ledger's guarded debit decides)."""
    amount = check_amount(amount)
    if lock_months not in {tier.months for tier in tiers()}:
        raise EconomyError(_l("Choose one of the lock periods offered."), field="lock_months")
    with unit_of_work() as session:
        position = StakePosition(user_id=user_id, amount=amount, staked_amount=amount, lock_months=lock_months, source="member",
                                 status="staked", staked_at=now, lock_ends_at=now + lock_months * LOCK_MONTH)
        session.add(position)
        session.flush()
        memo = f"stake #{position.id}, {lock_months} months"
        try:
            ledger.debit(user_id, "token", amount, kind="stake", key=f"stake:{position.id}:out", now=now, memo=memo)
        except ledger.InsufficientBalance:
            raise EconomyError(_l("You have %(available)s tokens to stake.", available=format_tokens(ledger.balance(user_id, "token"))),
                               field="amount") from None
        ledger.credit(user_id, "stake", amount, kind="stake", key=f"stake:{position.id}:in", now=now, memo=memo)
    return position


def _own_position(user_id: int, position_id: int) -> StakePosition:
    position = db.session.scalar(
        select(StakePosition).where(StakePosition.id == position_id, StakePosition.user_id == user_id).with_for_update()
        .execution_options(populate_existing=True)
    )
    if position is None:
        raise EconomyNotFound(_l("That stake does not exist."))
    return position


def request_unstake(user_id: int, position_id: int, *, now: datetime) -> StakePosition:
    """Start the cooldown of a position whose lock has ended; it stops counting for tiers at once."""
    with unit_of_work():
        position = _own_position(user_id, position_id)
        if position.status != "staked":
            raise EconomyError(_l("That stake is already being unstaked."))
        if as_utc(position.lock_ends_at) > now:
            raise EconomyError(_l("That stake is locked until %(date)s.", date=as_utc(position.lock_ends_at).strftime("%Y-%m-%d %H:%M UTC")))
        position.status = "cooling"
        position.unstake_requested_at = now
        position.release_at = now + timedelta(days=int(get_parameter("staking.cooldown_days")))
    return position


def collect_unstaked(user_id: int, position_id: int, *, now: datetime) -> StakePosition:
    """After the cooldown, move what is left of the position back to the member's tokens."""
    with unit_of_work():
        position = _own_position(user_id, position_id)
        if position.status != "cooling":
            raise EconomyError(_l("Ask to unstake first; the tokens come back after the cooldown."))
        if as_utc(position.release_at) > now:
            raise EconomyError(_l("The cooldown ends %(date)s.", date=as_utc(position.release_at).strftime("%Y-%m-%d %H:%M UTC")))
        position.status, position.released_at = "released", now
        if position.amount:
            memo = f"unstake #{position.id}"
            ledger.debit(user_id, "stake", position.amount, kind="unstake", key=f"unstake:{position.id}:out", now=now, memo=memo)
            ledger.credit(user_id, "token", position.amount, kind="unstake", key=f"unstake:{position.id}:in", now=now, memo=memo)
    return position


# --- slashing -------------------------------------------------------------------------------------

def slash(user_id: int, severity: str, *, reason: str, actor_id: int | None, now: datetime) -> Slash:
    """Slash a member's stake for confirmed fraud (see the module docstring)."""
    reason = (reason or "").strip()
    if severity not in SLASH_SEVERITIES:
        raise EconomyError(_l("Choose warning, moderate or severe."), field="severity")
    if not reason:
        raise EconomyError(_l("Say why: a slash needs a reason the member will read."), field="reason")
    if len(reason) > MAX_REASON:
        raise EconomyError(_l("Keep the reason under %(count)s characters.", count=MAX_REASON), field="reason")
    share = int(get_parameter("slashing.shares")[severity])
    with unit_of_work() as session:
        positions = list(session.scalars(
            select(StakePosition).where(StakePosition.user_id == user_id, StakePosition.status.in_(("staked", "cooling")))
            .order_by(StakePosition.id).with_for_update().execution_options(populate_existing=True)
        ))
        cuts = {position.id: position.amount * share // BASIS for position in positions}
        total = sum(cuts.values())
        row = Slash(user_id=user_id, severity=severity, share_bp=share, amount=total, reason=reason, actor_id=actor_id, created_at=now)
        session.add(row)
        session.flush()
        for position in positions:
            position.amount -= cuts[position.id]
        if total:
            memo = f"slash #{row.id} ({severity})"
            ledger.debit(user_id, "stake", total, kind="slash", key=f"slash:{row.id}:stake", now=now, memo=memo)
            ledger.credit(treasury_id(now), "token", total, kind="slash", key=f"slash:{row.id}:treasury", now=now, memo=memo)
        audit.record(actor_id, f"economy.slash.{severity}", f"user:{user_id}", reason, now)
        notify(user_id, "stake_slashed" if total else "stake_warning",
               {"amount": format_tokens(total), "severity": severity, "reason": reason[:300]},
               link="/economy/wallet", key=f"slash:{row.id}", now=now)
    return row
