"""Points to tokens, in epochs.

Epochs
------
An epoch lasts ``conversion.epoch_days`` (7: a week, starting on Mondays 00:00 UTC); the next one starts
where the last ended (a changed length applies from the next epoch). Epochs are rows, numbered 1, 2, ….

What converts
-------------
Points stay the member's score (boards and levels keep them); what converts is the points earned since
the member's last conversion: their points balance minus every point they converted before (never
below zero, so a reversal after a conversion is made up by later points). At the current
``conversion.tokens_per_1000_points``, ``conversion.auto_stake_bp`` of the tokens are staked at once on
the shortest lock (an `auto` stake position), the rest go to the member's tokens.

Exactly once per member per epoch
---------------------------------
A `Conversion` row is unique per (epoch, member) and its ledger keys are ``convert:<epoch>:<member>:token``
and ``…:stake``. It happens either when the member asks ("convert now", `convert_member`: the current
epoch's conversion, done at once) or when the epoch closes (`close_epoch`, the job
``jobs.economy.convert_epoch``, run by the reconciler once the epoch has ended): the close converts every
member with points who has no conversion in that epoch yet, `CHUNK` member ids per transaction (on
PostgreSQL set-based: three statements per chunk, ``ECONOMY_CLOSE_WORKERS`` chunks side by side, see
`_close_set_based`), then writes the epoch's totals
(the moderators' report) and closes it. Running it twice converts nobody twice: the rows' unique key,
the auto-stakes' unique conversion and the ledger keys hold. A member whose token or stake balance would
pass the ledger's BIGINT limit is left out; the report counts the members left with points to convert.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, any_, bindparam, false, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from sapien.accounts.models import User
from sapien.database import as_utc, dialect_insert, is_postgres, unit_of_work, utcnow
from sapien.economy.errors import EconomyError
from sapien.economy.models import Conversion, ConversionEpoch, StakePosition
from sapien.economy.parameters import BASIS, LEDGER_MAX, get_parameter
from sapien.economy.staking import LOCK_MONTH, tiers
from sapien.extensions import db
from sapien.i18n import format_tokens
from sapien.ledger import service as ledger
from sapien.ledger.models import Balance
from sapien.queue import PendingWork, pending_work_source

CHUNK = 50_000
CONVERT_JOB = "jobs.economy.convert_epoch"


def epoch_job_id(number: int) -> str:
    return f"economy-convert-epoch-{number}"


def _one_of(column, ids: list[int]):
    if is_postgres():
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


# --- epochs ---------------------------------------------------------------------------------------

def _week_start(now: datetime) -> datetime:
    now = as_utc(now)
    return (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def _epoch_holding(now: datetime) -> tuple[ConversionEpoch | None, int, datetime, datetime]:
    """The stored epoch `now` falls in, or None with the number and bounds that epoch will have."""
    last = db.session.scalar(select(ConversionEpoch).order_by(ConversionEpoch.number.desc()).limit(1))
    if last is not None and as_utc(last.starts_at) <= now < as_utc(last.ends_at):
        return last, last.number, as_utc(last.starts_at), as_utc(last.ends_at)
    length = timedelta(days=int(get_parameter("conversion.epoch_days")))
    if last is None:
        number, starts_at = 1, _week_start(now)
    else:
        number, starts_at = last.number + 1, as_utc(last.ends_at)
        if now >= starts_at + length:  # nobody came by for a while: the new epoch is the one holding now
            starts_at += ((now - starts_at) // length) * length
    return None, number, starts_at, starts_at + length


def current_epoch(now: datetime) -> ConversionEpoch:
    """The epoch `now` falls in, opened if it is not there yet."""
    stored, number, starts_at, ends_at = _epoch_holding(now)
    if stored is not None:
        return stored
    with unit_of_work() as session:
        session.execute(
            dialect_insert(ConversionEpoch).values(number=number, starts_at=starts_at, ends_at=ends_at, status="open",
                                                   members=0, points=0, tokens=0, staked=0, skipped=0)
            .on_conflict_do_nothing(index_elements=[ConversionEpoch.number])
        )
    return db.session.scalar(select(ConversionEpoch).where(ConversionEpoch.number == number))


def epoch_to_show(now: datetime) -> ConversionEpoch:
    """The epoch `now` falls in, for a page: an unsaved one when nobody has opened it yet (a GET writes nothing)."""
    stored, number, starts_at, ends_at = _epoch_holding(now)
    return stored or ConversionEpoch(number=number, starts_at=starts_at, ends_at=ends_at, status="open",
                                     members=0, points=0, tokens=0, staked=0, skipped=0)


def due_epochs(now: datetime) -> list[ConversionEpoch]:
    return list(db.session.scalars(
        select(ConversionEpoch).where(ConversionEpoch.status == "open", ConversionEpoch.ends_at <= now).order_by(ConversionEpoch.number)
    ))


@pending_work_source("economy-conversion")
def _pending_conversions():
    for epoch in due_epochs(utcnow()):
        yield PendingWork(CONVERT_JOB, (epoch.id,), epoch_job_id(epoch.number))


# --- what a member would get ----------------------------------------------------------------------

@dataclass(frozen=True)
class Rates:
    tokens_per_1000_points: int
    auto_stake_bp: int
    auto_lock_months: int

    def tokens_for(self, points: int) -> tuple[int, int]:
        """(tokens in all, of which staked) for `points`."""
        tokens = points * self.tokens_per_1000_points // 1000
        return tokens, tokens * self.auto_stake_bp // BASIS


def current_rates() -> Rates:
    return Rates(int(get_parameter("conversion.tokens_per_1000_points")), int(get_parameter("conversion.auto_stake_bp")),
                 min(tier.months for tier in tiers()))


def _convertible(user_ids: list[int]) -> dict[int, int]:
    """{member: points not converted yet} (zero when reversals took back more than was earned since)."""
    balances = dict(db.session.execute(
        select(Balance.user_id, Balance.amount).where(_one_of(Balance.user_id, user_ids), Balance.currency == "points")
    ).all())
    converted = dict(db.session.execute(
        select(Conversion.user_id, func.sum(Conversion.points)).where(_one_of(Conversion.user_id, user_ids)).group_by(Conversion.user_id)
    ).all())
    return {user_id: max(0, int(balances.get(user_id, 0)) - int(converted.get(user_id, 0))) for user_id in user_ids}


@dataclass(frozen=True)
class Outlook:
    epoch: ConversionEpoch
    points: int
    tokens: int
    staked: int
    converted_this_epoch: Conversion | None


def outlook(user_id: int, now: datetime) -> Outlook:
    """The member's next conversion: the epoch, its end, and what their points would make now."""
    epoch = epoch_to_show(now)
    points = _convertible([user_id])[user_id]
    tokens, staked = current_rates().tokens_for(points)
    done = None if epoch.id is None else db.session.scalar(
        select(Conversion).where(Conversion.epoch_id == epoch.id, Conversion.user_id == user_id)
    )
    return Outlook(epoch, points, tokens, staked, done)


def history(user_id: int, limit: int = 50) -> list[tuple[Conversion, ConversionEpoch]]:
    return list(db.session.execute(
        select(Conversion, ConversionEpoch).join(ConversionEpoch, ConversionEpoch.id == Conversion.epoch_id)
        .where(Conversion.user_id == user_id).order_by(Conversion.id.desc()).limit(limit)
    ))


# --- converting -----------------------------------------------------------------------------------

def _convert(epoch: ConversionEpoch, points: dict[int, int], balances: dict[tuple[int, str], int], *, requested: bool,
             now: datetime) -> tuple[int, int]:
    """Convert these members' points in the caller's transaction; returns (converted, skipped) counts."""
    rates = current_rates()
    rows, skipped = [], 0
    for user_id, amount in sorted(points.items()):
        tokens, staked = rates.tokens_for(amount)
        if tokens <= 0:
            continue
        if (balances.get((user_id, "token"), 0) + tokens - staked > LEDGER_MAX
                or balances.get((user_id, "stake"), 0) + staked > LEDGER_MAX):
            skipped += 1
            continue
        rows.append(dict(epoch_id=epoch.id, user_id=user_id, points=amount, tokens=tokens, staked=staked,
                         rate=rates.tokens_per_1000_points, requested=requested, created_at=now))
    if not rows:
        return 0, skipped
    # A member who converted meanwhile (asked while the close ran) keeps their one row: theirs is skipped here.
    inserted = _insert_conversions(rows, now)
    credits, stakes = [], []
    for row in rows:
        if row["user_id"] not in inserted:
            continue
        user_id, key, memo = row["user_id"], f"convert:{epoch.number}:{row['user_id']}", f"epoch {epoch.number}: {row['points']} points"
        if row["tokens"] - row["staked"]:
            credits.append(ledger.BulkCredit(user_id, "token", row["tokens"] - row["staked"], f"{key}:token", "conversion", memo))
        if row["staked"]:
            credits.append(ledger.BulkCredit(user_id, "stake", row["staked"], f"{key}:stake", "conversion", memo))
            stakes.append(dict(user_id=user_id, amount=row["staked"], staked_amount=row["staked"], lock_months=rates.auto_lock_months,
                               source="auto", conversion_id=inserted[user_id], status="staked", staked_at=now,
                               lock_ends_at=now + rates.auto_lock_months * LOCK_MONTH))
    ledger.credit_bulk(credits, now=now)
    if stakes:
        _insert_stakes(stakes, now)
    return len(inserted), skipped


# PostgreSQL: the rows travel as one JSON document (as the ledger's bulk credits do), one statement a chunk.
_CONVERSIONS_PG = text(
    "INSERT INTO economy_conversions (epoch_id, user_id, points, tokens, staked, rate, requested, created_at)"
    " SELECT epoch_id, user_id, points, tokens, staked, rate, requested, :now FROM json_to_recordset(CAST(:rows AS json))"
    " AS batch(epoch_id integer, user_id integer, points bigint, tokens bigint, staked bigint, rate bigint, requested boolean)"
    " ON CONFLICT (epoch_id, user_id) DO NOTHING RETURNING user_id, id"
)
_STAKES_PG = text(
    "INSERT INTO economy_stakes (user_id, amount, staked_amount, lock_months, source, conversion_id, status, staked_at, lock_ends_at)"
    " SELECT user_id, amount, staked_amount, lock_months, source, conversion_id, status, :now, CAST(lock_ends_at AS timestamptz)"
    " FROM json_to_recordset(CAST(:rows AS json)) AS batch(user_id integer, amount bigint, staked_amount bigint, lock_months integer,"
    " source text, conversion_id bigint, status text, lock_ends_at text)"
)


def _insert_conversions(rows: list[dict], now: datetime) -> dict[int, int]:
    """Insert the rows that are not there yet; returns {member: conversion id} of those inserted."""
    if is_postgres():
        document = json.dumps([{key: value for key, value in row.items() if key != "created_at"} for row in rows])
        return dict(db.session.execute(_CONVERSIONS_PG, {"rows": document, "now": now}).all())
    return dict(db.session.execute(
        dialect_insert(Conversion.__table__).on_conflict_do_nothing(index_elements=["epoch_id", "user_id"])
        .returning(Conversion.__table__.c.user_id, Conversion.__table__.c.id, sort_by_parameter_order=True), rows
    ).all())


def _insert_stakes(stakes: list[dict], now: datetime) -> None:
    if is_postgres():
        document = json.dumps([dict(row, staked_at=None, lock_ends_at=row["lock_ends_at"].isoformat()) for row in stakes])
        db.session.execute(_STAKES_PG, {"rows": document, "now": now})
    else:
        db.session.execute(StakePosition.__table__.insert(), stakes)


def _balances(user_ids: list[int]) -> dict[tuple[int, str], int]:
    return {(user_id, currency): int(amount) for user_id, currency, amount in db.session.execute(
        select(Balance.user_id, Balance.currency, Balance.amount)
        .where(_one_of(Balance.user_id, user_ids), Balance.currency.in_(("token", "stake")))
    )}


def convert_member(user_id: int, *, now: datetime) -> Conversion:
    """"Convert now": the member's conversion of the current epoch, at once (once per epoch)."""
    epoch = current_epoch(now)
    with unit_of_work() as session:
        # Serialise the member's own requests (two tabs): the second sees the first's row.
        session.execute(select(User.id).where(User.id == user_id).with_for_update())
        done = session.scalar(select(Conversion).where(Conversion.epoch_id == epoch.id, Conversion.user_id == user_id))
        if done is not None:
            raise EconomyError(_l("You converted in this epoch already; the next one starts %(date)s.",
                                  date=as_utc(epoch.ends_at).strftime("%Y-%m-%d %H:%M UTC")))
        points = _convertible([user_id])[user_id]
        tokens, _staked = current_rates().tokens_for(points)
        if tokens <= 0:
            raise EconomyError(_l("You have no points to convert yet (or too few for a token unit)."))
        converted, skipped = _convert(epoch, {user_id: points}, _balances([user_id]), requested=True, now=now)
        if skipped or not converted:
            raise EconomyError(_l("Your balance is at the ledger's limit: withdraw tokens before converting more."))
        conversion = session.scalar(select(Conversion).where(Conversion.epoch_id == epoch.id, Conversion.user_id == user_id))
    return conversion


@dataclass(frozen=True)
class EpochReport:
    number: int
    members: int
    points: int
    tokens: int
    staked: int
    skipped: int

    @property
    def tokens_text(self) -> str:
        return format_tokens(self.tokens)


def close_epoch(epoch_id: int, *, now: datetime, chunk: int = CHUNK, workers: int | None = None) -> EpochReport:
    """Convert every member not converted in this (ended) epoch, then close it with its totals. Safe to run
    twice, and alongside members converting: each member converts once."""
    epoch = db.session.get(ConversionEpoch, epoch_id)
    if epoch is None:
        raise EconomyError(_l("That epoch does not exist."))
    if epoch.status == "open" and as_utc(epoch.ends_at) > now:
        raise EconomyError(_l("That epoch has not ended yet."))
    if epoch.status == "open" and is_postgres():
        workers = workers or current_app.config["ECONOMY_CLOSE_WORKERS"]
        skipped = _close_set_based(epoch, now=now, chunk=chunk, workers=workers)
    else:
        skipped = _close_member_by_member(epoch, now=now, chunk=chunk) if epoch.status == "open" else 0
    with unit_of_work() as session:
        epoch = session.scalar(select(ConversionEpoch).where(ConversionEpoch.id == epoch_id).with_for_update()
                               .execution_options(populate_existing=True))
        if epoch.status == "open":
            members, points, tokens, staked = session.execute(
                select(func.count(), func.coalesce(func.sum(Conversion.points), 0), func.coalesce(func.sum(Conversion.tokens), 0),
                       func.coalesce(func.sum(Conversion.staked), 0)).where(Conversion.epoch_id == epoch.id)
            ).one()
            session.execute(update(ConversionEpoch).where(ConversionEpoch.id == epoch.id).values(
                status="closed", closed_at=now, members=members, points=points, tokens=tokens, staked=staked, skipped=skipped))
        current_epoch(now)  # the next one is open for members
    epoch = db.session.get(ConversionEpoch, epoch_id)
    db.session.refresh(epoch)
    return report_of(epoch)


def _close_member_by_member(epoch: ConversionEpoch, *, now: datetime, chunk: int) -> int:
    """The close through `_convert`, `chunk` members per transaction (SQLite, in development); returns how
    many members were skipped."""
    skipped, after = 0, 0
    while True:
        with unit_of_work() as session:
            ids = list(session.scalars(
                select(Balance.user_id).join(User, User.id == Balance.user_id)
                .where(Balance.currency == "points", Balance.amount > 0, Balance.user_id > after, User.is_banned == false())
                .order_by(Balance.user_id).limit(chunk)
            ))
            if not ids:
                break
            after = ids[-1]
            done = set(session.scalars(select(Conversion.user_id).where(Conversion.epoch_id == epoch.id, _one_of(Conversion.user_id, ids))))
            todo = [user_id for user_id in ids if user_id not in done]
            points = {user_id: amount for user_id, amount in _convertible(todo).items() if amount > 0} if todo else {}
            if points:
                skipped += _convert(epoch, points, _balances(list(points)), requested=False, now=now)[1]
    return skipped


# The set-based close (PostgreSQL): per range of member ids, three statements. The conversions, computed in
# numeric arithmetic (points × rate cannot overflow) and left out where a balance would pass the ledger's
# limit; the members' token and stake credits (`ledger.credit_set`, keyed as in `_convert`, so members
# who converted on their own are not paid twice); the auto-stake positions (one per conversion, unique).
_CONVERT_RANGE = text(
    "INSERT INTO economy_conversions (epoch_id, user_id, points, tokens, staked, rate, requested, created_at)"
    " SELECT :epoch, c.user_id, c.points, CAST(c.tokens AS bigint), CAST(floor(c.tokens * :auto / 10000) AS bigint), :rate, false, :now"
    " FROM (SELECT b.user_id, b.amount - coalesce(done.points, 0) AS points,"
    "  floor(CAST(b.amount - coalesce(done.points, 0) AS numeric) * :rate / 1000) AS tokens,"
    "  coalesce(t.amount, 0) AS token_balance, coalesce(s.amount, 0) AS stake_balance"
    "  FROM balances b JOIN users u ON u.id = b.user_id AND u.is_banned = false"
    "  LEFT JOIN (SELECT user_id, sum(points) AS points FROM economy_conversions WHERE user_id > :after AND user_id <= :upto"
    "   GROUP BY user_id) done ON done.user_id = b.user_id"
    "  LEFT JOIN balances t ON t.user_id = b.user_id AND t.currency = 'token'"
    "  LEFT JOIN balances s ON s.user_id = b.user_id AND s.currency = 'stake'"
    "  WHERE b.currency = 'points' AND b.user_id > :after AND b.user_id <= :upto AND b.amount > coalesce(done.points, 0)) c"
    " WHERE c.tokens > 0 AND c.tokens <= :max AND c.token_balance + c.tokens - floor(c.tokens * :auto / 10000) <= :max"
    " AND c.stake_balance + floor(c.tokens * :auto / 10000) <= :max"
    " ON CONFLICT (epoch_id, user_id) DO NOTHING"
)
_CREDITS_OF_RANGE = (
    "SELECT user_id, 'token' AS currency, tokens - staked AS amount, 'conversion' AS kind,"
    " 'convert:' || CAST(:number AS text) || ':' || CAST(user_id AS text) || ':' || 'token' AS idempotency_key,"
    " 'epoch ' || CAST(:number AS text) || ': ' || CAST(points AS text) || ' points' AS memo"
    " FROM economy_conversions WHERE epoch_id = :epoch AND user_id > :after AND user_id <= :upto AND tokens > staked"
    " UNION ALL"
    " SELECT user_id, 'stake', staked, 'conversion', 'convert:' || CAST(:number AS text) || ':' || CAST(user_id AS text) || ':' || 'stake',"
    " 'epoch ' || CAST(:number AS text) || ': ' || CAST(points AS text) || ' points'"
    " FROM economy_conversions WHERE epoch_id = :epoch AND user_id > :after AND user_id <= :upto AND staked > 0"
)
_AUTO_STAKES_OF_RANGE = text(
    "INSERT INTO economy_stakes (user_id, amount, staked_amount, lock_months, source, conversion_id, status, staked_at, lock_ends_at)"
    " SELECT user_id, staked, staked, :months, 'auto', id, 'staked', :now, :lock_ends FROM economy_conversions"
    " WHERE epoch_id = :epoch AND user_id > :after AND user_id <= :upto AND staked > 0"
    " ON CONFLICT (conversion_id) DO NOTHING"
)
_LEFT_UNCONVERTED = text(
    "SELECT count(*) FROM balances b JOIN users u ON u.id = b.user_id AND u.is_banned = false"
    " LEFT JOIN (SELECT user_id, sum(points) AS points FROM economy_conversions GROUP BY user_id) done ON done.user_id = b.user_id"
    " WHERE b.currency = 'points' AND b.amount > coalesce(done.points, 0)"
    " AND NOT EXISTS (SELECT 1 FROM economy_conversions c WHERE c.epoch_id = :epoch AND c.user_id = b.user_id)"
)


def _close_set_based(epoch: ConversionEpoch, *, now: datetime, chunk: int, workers: int) -> int:
    """Convert the epoch's members `chunk` member ids per transaction, `workers` ranges at a time; returns
    how many members still have points to convert (too few for a token unit, or at the ledger's limit):
    the report's "skipped".

    The ranges share no member, so they run side by side on their own connections (the work is inserts
    and foreign-key checks, which one backend does on one core). A range that fails leaves the others
    committed; the close is rerun as a whole and skips what is done.
    """
    rates = current_rates()
    top = db.session.scalar(select(func.max(Balance.user_id)).where(Balance.currency == "points")) or 0
    params = dict(epoch=epoch.id, number=epoch.number, rate=rates.tokens_per_1000_points, auto=rates.auto_stake_bp, max=LEDGER_MAX,
                  months=rates.auto_lock_months, lock_ends=now + rates.auto_lock_months * LOCK_MONTH, now=now)
    db.session.commit()  # end the caller's read transaction: the ranges commit on other connections
    starts = range(0, top, chunk)
    if workers <= 1 or len(starts) <= 1:
        for after in starts:
            _convert_range(dict(params, after=after, upto=after + chunk))
    else:
        app = current_app._get_current_object()

        def convert_in_own_context(after: int) -> None:
            with app.app_context():  # its own session, so its own connection
                _convert_range(dict(params, after=after, upto=after + chunk))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(convert_in_own_context, starts))
    return int(db.session.scalar(_LEFT_UNCONVERTED, {"epoch": epoch.id}) or 0)


def _convert_range(bounds: dict) -> None:
    with unit_of_work() as session:
        session.execute(_CONVERT_RANGE, bounds)
        ledger.credit_set(_CREDITS_OF_RANGE, bounds, now=bounds["now"])
        session.execute(_AUTO_STAKES_OF_RANGE, bounds)


def report_of(epoch: ConversionEpoch) -> EpochReport:
    return EpochReport(epoch.number, int(epoch.members), int(epoch.points), int(epoch.tokens), int(epoch.staked), int(epoch.skipped))


def close_due_epochs(now: datetime) -> list[EpochReport]:
    return [close_epoch(epoch.id, now=now) for epoch in due_epochs(now)]


def epochs(limit: int = 52) -> list[ConversionEpoch]:
    return list(db.session.scalars(select(ConversionEpoch).order_by(ConversionEpoch.number.desc()).limit(limit)))
