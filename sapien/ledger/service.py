"""Ledger rules: credit, debit, transfer, balance. The only way any value changes hands.

Every movement is an appended entry with a database-unique idempotency key; the cached balance row is
moved by an atomic UPDATE (or upsert) in the same transaction, guarded so it can never go below zero.
Credits to one member in several currencies (a reward's points and XP) post together: one balance upsert
and one multi-row INSERT for all of them. Credits to many members at once (a settlement batch) post in bulk
(`credit_bulk`): entries go in with `ON CONFLICT DO NOTHING` on the key, balances move once per member and
currency, and listeners hear one event per member, currency and kind rather than one per entry.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, any_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.database import after_commit, built_once, dialect_insert, is_postgres, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.ledger.models import CURRENCIES, Balance, LedgerEntry


class LedgerError(DomainError):
    pass


class InsufficientBalance(LedgerError):
    pass


class IdempotencyConflict(LedgerError):
    """The key was already used for a different movement: a bug in the caller, never retried away."""


@dataclass(frozen=True)
class Posting:
    entry_id: int
    created: bool  # False when the idempotency key had already been posted


def _check(currency: str, amount: int, key: str) -> None:
    if currency not in CURRENCIES:
        raise LedgerError(_l("Unknown currency."))
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise LedgerError(_l("Amounts are positive whole numbers."))
    if not key or len(key) > 160:
        raise LedgerError(_l("Every ledger entry needs an idempotency key of at most 160 characters."))


def _existing(key: str) -> LedgerEntry | None:
    return db.session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))


def _same_movement(entry: LedgerEntry, user_id: int, currency: str, amount: int) -> bool:
    return (entry.user_id, entry.currency, entry.amount) == (user_id, currency, amount)


def _add_to_balance(user_id: int, currency: str, amount: int, now: datetime) -> int:
    """Atomically move the cached balance; returns the new balance. Raises if it would go negative."""
    session = db.session
    if amount < 0:
        new_amount = session.execute(
            update(Balance)
            .where(Balance.user_id == user_id, Balance.currency == currency, Balance.amount >= -amount)
            .values(amount=Balance.amount + amount, updated_at=now)
            .returning(Balance.amount)
        ).scalar()
        if new_amount is None:
            raise InsufficientBalance(_l("Not enough %(currency)s for that.", currency=currency))
        return new_amount
    statement = dialect_insert(Balance).values(user_id=user_id, currency=currency, amount=amount, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[Balance.user_id, Balance.currency],
        set_={"amount": Balance.amount + amount, "updated_at": now},
    ).returning(Balance.amount)
    return session.execute(statement).scalar_one()


@dataclass(frozen=True)
class Credit:
    """One credit of `credit_many`: a currency, a positive amount, its idempotency key and a memo."""

    currency: str
    amount: int
    key: str
    memo: str = ""


def _existing_many(keys: list[str]) -> dict[str, LedgerEntry]:
    return {entry.idempotency_key: entry for entry in db.session.scalars(select(LedgerEntry).where(LedgerEntry.idempotency_key.in_(keys)))}


def _balance_upsert():
    statement = dialect_insert(Balance)
    return statement.on_conflict_do_update(
        index_elements=[Balance.user_id, Balance.currency],
        set_={"amount": Balance.amount + statement.excluded.amount, "updated_at": statement.excluded.updated_at},
    ).returning(Balance.currency, Balance.amount)


ENTRIES_INSERT = insert(LedgerEntry).returning(LedgerEntry.idempotency_key, LedgerEntry.id, sort_by_parameter_order=True)


def _credit_balances(user_id: int, amounts: dict[str, int], now: datetime) -> dict[str, int]:
    """Add to several cached balances of one member in one upsert; returns {currency: new balance}.

    The rows go as parameters of one cached statement (SQLAlchemy batches them into one multi-row
    INSERT), not as literal VALUES, which would be compiled afresh on every call. They go sorted by
    currency: PostgreSQL locks the rows in that order, so two transactions crediting the same member
    always lock that member's balance rows in one order (the ledger's lock order, user then currency).
    """
    rows = [dict(user_id=user_id, currency=currency, amount=amount, updated_at=now) for currency, amount in sorted(amounts.items())]
    return dict(db.session.execute(_balance_upsert(), rows).all())


def _post_credits(user_id: int, credits: list[Credit], kind: str, now: datetime) -> dict[str, Posting]:
    """Post credits to one member: one balance upsert and one multi-row INSERT for all of them.

    Optimistic: the keys are not looked up first (a fresh reward's keys are new). A key already posted
    makes the entries' INSERT fail on the unique key; the savepoint undoes this attempt's balance moves,
    the posted keys are checked against what they recorded, and the rest are posted again.
    """
    session = db.session
    postings: dict[str, Posting] = {}
    pending = list(credits)
    while pending:
        try:
            # A savepoint, so a duplicate (or a racing twin) only undoes this attempt, not the caller's transaction.
            with session.begin_nested():
                balance_after = _credit_balances(user_id, {one.currency: one.amount for one in pending}, now)
                rows = [
                    dict(user_id=user_id, currency=one.currency, amount=one.amount, kind=kind, idempotency_key=one.key,
                         memo=one.memo[:255], balance_after=balance_after[one.currency], created_at=now)
                    for one in pending
                ]
                ids = dict(session.execute(ENTRIES_INSERT, rows).all())
        except IntegrityError as error:
            pending = _drop_posted(user_id, pending, postings, error)
            continue
        for row in rows:
            posted = dict(user_id=user_id, currency=row["currency"], amount=row["amount"], kind=kind,
                          entry_id=ids[row["idempotency_key"]], balance_after=row["balance_after"], now=now)
            after_commit(lambda posted=posted: events.ledger_entry_posted.send(None, **posted))
            postings[row["idempotency_key"]] = Posting(posted["entry_id"], created=True)
        break
    return postings


def _drop_posted(user_id: int, pending: list[Credit], postings: dict[str, Posting], error: IntegrityError) -> list[Credit]:
    """After a failed INSERT: record the credits whose key was already posted (the same movement, or a
    conflict) and return the others. Re-raises `error` when no key was posted: it was something else."""
    existing = _existing_many([one.key for one in pending])
    if not existing:
        raise error
    for one in pending:
        entry = existing.get(one.key)
        if entry is not None:
            if not _same_movement(entry, user_id, one.currency, one.amount):
                raise IdempotencyConflict(_l("That idempotency key was already used for another movement.")) from None
            postings[one.key] = Posting(entry.id, created=False)
    return [one for one in pending if one.key not in existing]


def _post(user_id: int, currency: str, signed_amount: int, kind: str, key: str, memo: str, now: datetime) -> Posting:
    existing = _existing(key)
    if existing is not None:
        if not _same_movement(existing, user_id, currency, signed_amount):
            raise IdempotencyConflict(_l("That idempotency key was already used for another movement."))
        return Posting(existing.id, created=False)
    session = db.session
    try:
        # A savepoint, so a racing duplicate only undoes this entry, not the caller's transaction.
        with session.begin_nested():
            balance_after = _add_to_balance(user_id, currency, signed_amount, now)
            entry = LedgerEntry(
                user_id=user_id,
                currency=currency,
                amount=signed_amount,
                kind=kind,
                idempotency_key=key,
                memo=memo[:255],
                balance_after=balance_after,
                created_at=now,
            )
            session.add(entry)
            session.flush()
    except IntegrityError:
        existing = _existing(key)
        if existing is None:
            raise
        if not _same_movement(existing, user_id, currency, signed_amount):
            raise IdempotencyConflict(_l("That idempotency key was already used for another movement.")) from None
        return Posting(existing.id, created=False)
    posted = dict(
        user_id=user_id, currency=currency, amount=signed_amount, kind=kind, entry_id=entry.id, balance_after=balance_after, now=now
    )
    after_commit(lambda: events.ledger_entry_posted.send(None, **posted))
    return Posting(entry.id, created=True)


def credit(user_id: int, currency: str, amount: int, *, kind: str, key: str, now: datetime, memo: str = "") -> Posting:
    """Add `amount` to a member's balance once per `key`; a repeated key returns the first posting."""
    _check(currency, amount, key)
    with unit_of_work():
        posting = _post_credits(user_id, [Credit(currency, amount, key, memo)], kind, now)[key]
    return posting


def credit_many(user_id: int, credits: list[Credit], *, kind: str, now: datetime) -> list[Posting]:
    """`credit` for several currencies at once (a reward's points and XP): the same rules, one posting per
    credit in the order given, but two statements for all of them instead of a few each."""
    for one in credits:
        _check(one.currency, one.amount, one.key)
    if len({one.currency for one in credits}) != len(credits) or len({one.key for one in credits}) != len(credits):
        raise ValueError("credit_many takes each currency once, each under its own key")  # a caller's bug
    if not credits:
        return []
    with unit_of_work():
        postings = _post_credits(user_id, list(credits), kind, now)
    return [postings[one.key] for one in credits]


@dataclass(frozen=True)
class BulkCredit:
    """One credit of `credit_bulk`: any member, any currency, its own kind, key and memo."""

    user_id: int
    currency: str
    amount: int
    key: str
    kind: str
    memo: str = ""


class LedgerRace(LedgerError):
    """A concurrent caller posted some of a bulk posting's keys meanwhile: run the posting again."""


BULK_CHUNK = 10_000

# PostgreSQL: the rows travel as one JSON document that json_to_recordset() turns back into rows (one
# parameter per statement: nothing to convert per value on the way, however many rows).
_BULK_ENTRIES_PG = text(
    "INSERT INTO ledger_entries (user_id, currency, amount, kind, idempotency_key, memo, balance_after, created_at)"
    " SELECT user_id, currency, amount, kind, idempotency_key, memo, balance_after, :now"
    " FROM json_to_recordset(CAST(:rows AS json)) AS batch(user_id integer, currency text, amount bigint, kind text,"
    " idempotency_key text, memo text, balance_after bigint)"
    " RETURNING idempotency_key, id"
)
_BULK_BALANCES_PG = text(
    "INSERT INTO balances (user_id, currency, amount, updated_at)"
    " SELECT user_id, currency, amount, :now FROM json_to_recordset(CAST(:rows AS json))"
    " AS batch(user_id integer, currency text, amount bigint) ORDER BY user_id, currency"
    " ON CONFLICT (user_id, currency) DO UPDATE SET amount = balances.amount + excluded.amount, updated_at = excluded.updated_at"
    " RETURNING user_id, currency, amount"
)


def _posted_keys(keys: list[str]) -> dict[str, tuple[int, str, int]]:
    """{key: (user, currency, amount)} for the keys already in the ledger."""
    found: dict[str, tuple[int, str, int]] = {}
    for start in range(0, len(keys), BULK_CHUNK):
        chunk = keys[start : start + BULK_CHUNK]
        rows = db.session.execute(
            select(LedgerEntry.idempotency_key, LedgerEntry.user_id, LedgerEntry.currency, LedgerEntry.amount)
            .where(LedgerEntry.idempotency_key == any_(bindparam("keys", chunk, type_=ARRAY(String))) if is_postgres()
                   else LedgerEntry.idempotency_key.in_(chunk))
        )
        found.update({key: (user_id, currency, amount) for key, user_id, currency, amount in rows})
    return found


def _bulk_balances(totals: dict[tuple[int, str], int], now: datetime) -> dict[tuple[int, str], int]:
    """Add each (member, currency) total to its cached balance, in (member, currency) order, the ledger's
    lock order; returns the new balances."""
    ordered = sorted(totals.items())
    after: dict[tuple[int, str], int] = {}
    for start in range(0, len(ordered), BULK_CHUNK):
        chunk = ordered[start : start + BULK_CHUNK]
        if is_postgres():
            document = json.dumps([{"user_id": u, "currency": c, "amount": a} for (u, c), a in chunk])
            rows = db.session.execute(_BULK_BALANCES_PG, {"rows": document, "now": now})
        else:  # SQLite (development): one upsert per balance
            rows = [(u, c, _add_to_balance(u, c, a, now)) for (u, c), a in chunk]
        after.update({(user_id, currency): int(amount) for user_id, currency, amount in rows})
    return after


def _bulk_entries(rows: list[dict], now: datetime) -> dict[str, int]:
    """Insert the entries; returns {key: entry id}. A key already posted fails the INSERT on the unique key."""
    ids: dict[str, int] = {}
    for start in range(0, len(rows), BULK_CHUNK):
        chunk = rows[start : start + BULK_CHUNK]
        if is_postgres():
            ids.update(db.session.execute(_BULK_ENTRIES_PG, {"rows": json.dumps(chunk), "now": now}).all())
        else:
            ids.update(db.session.execute(ENTRIES_INSERT, [dict(row, created_at=now) for row in chunk]).all())
    return ids


def credit_bulk(credits: list[BulkCredit], *, now: datetime) -> dict[str, int]:
    """Post many credits to many members in a few statements; returns {key: entry id} of the entries this
    call created (a key already posted with the same movement is skipped, as `credit` would).

    Each member's balance moves once per currency (by the sum of their new credits), and each entry's
    `balance_after` is the running balance in key order within its member, currency and kind. Listeners
    hear one `ledger_entry_posted` per member, currency and kind: its amount the group's sum, its
    `balance_after` the balance after the group, its `entry_id` the group's last entry.

    Optimistic, like `credit_many`: the keys are not looked up first (fresh rewards have fresh keys). When
    some were posted already, the INSERT fails on the unique key, the savepoint undoes the attempt and it
    runs again without them; a key a concurrent caller posts between the two raises `LedgerRace`
    (everything rolls back; run it again).
    """
    for one in credits:
        _check(one.currency, one.amount, one.key)
    if len({one.key for one in credits}) != len(credits):
        raise ValueError("credit_bulk takes each key once")  # a caller's bug
    if not credits:
        return {}
    with unit_of_work() as session:
        try:
            with session.begin_nested():
                ids, rows = _post_bulk(credits, now)
        except IntegrityError as error:
            posted = _posted_keys([one.key for one in credits])
            if not posted:
                raise  # not a key posted twice: something else
            for one in credits:
                if one.key in posted and posted[one.key] != (one.user_id, one.currency, one.amount):
                    raise IdempotencyConflict(_l("That idempotency key was already used for another movement.")) from None
            try:
                with session.begin_nested():
                    ids, rows = _post_bulk([one for one in credits if one.key not in posted], now)
            except IntegrityError:
                raise LedgerRace(_l("Some of these credits were posted meanwhile; try again.")) from error
        groups: dict[tuple[int, str, str], dict] = {}
        for row in rows:
            group = groups.setdefault((row["user_id"], row["currency"], row["kind"]), dict(amount=0))
            group["amount"] += row["amount"]
            group["balance_after"] = row["balance_after"]
            group["entry_id"] = ids[row["idempotency_key"]]
        announced = [dict(user_id=u, currency=c, kind=k, now=now, **group) for (u, c, k), group in groups.items()]

        def announce() -> None:
            # The listeners' writes (levels reached) go in one transaction, not one per member. It is begun
            # at once, so listeners that defer work to the commit (the member cache's generation bumps) do
            # it once for every member rather than once per event.
            with unit_of_work() as session:
                if not session.in_transaction():
                    session.begin()
                for payload in announced:
                    events.ledger_entry_posted.send(None, **payload)

        after_commit(announce)
    return ids


def _post_bulk(credits: list[BulkCredit], now: datetime) -> tuple[dict[str, int], list[dict]]:
    """Move the balances, then insert the entries with their running `balance_after`; returns the ids of
    the entries inserted and the rows meant to be."""
    fresh = sorted(credits, key=lambda c: (c.user_id, c.currency, c.kind, c.key))
    if not fresh:
        return {}, []
    totals: dict[tuple[int, str], int] = defaultdict(int)
    for one in fresh:
        totals[(one.user_id, one.currency)] += one.amount
    after = _bulk_balances(totals, now)
    running = {pair: after[pair] - total for pair, total in totals.items()}
    rows = []
    for one in fresh:
        pair = (one.user_id, one.currency)
        running[pair] += one.amount
        rows.append(dict(user_id=one.user_id, currency=one.currency, amount=one.amount, kind=one.kind, idempotency_key=one.key,
                         memo=one.memo[:255], balance_after=running[pair]))
    return _bulk_entries(rows, now), rows


# Two steps, so each is planned well: the credits not posted yet go to a temporary table (each key looked up
# in the unique index), then the balances move and the entries go in, joined on that table's index.
_SET_FRESH_PG = (
    "CREATE TEMPORARY TABLE ledger_fresh AS SELECT s.user_id, s.currency, s.amount, s.kind, s.idempotency_key, s.memo"
    " FROM ({source}) AS s WHERE s.amount > 0 AND s.currency IN {currencies}"
    " AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.idempotency_key = s.idempotency_key)"
)
_SET_POST_PG = """
WITH moved AS (
    INSERT INTO balances (user_id, currency, amount, updated_at)
    SELECT user_id, currency, sum(amount), :now FROM ledger_fresh GROUP BY user_id, currency ORDER BY user_id, currency
    ON CONFLICT (user_id, currency) DO UPDATE SET amount = balances.amount + excluded.amount, updated_at = excluded.updated_at
    RETURNING user_id, currency, amount
)
INSERT INTO ledger_entries (user_id, currency, amount, kind, idempotency_key, memo, balance_after, created_at)
SELECT fresh.user_id, fresh.currency, fresh.amount, fresh.kind, fresh.idempotency_key, left(fresh.memo, 255), moved.amount, :now
FROM ledger_fresh AS fresh JOIN moved ON moved.user_id = fresh.user_id AND moved.currency = fresh.currency
"""


def credit_set(source: str, params: dict, *, now: datetime) -> int:
    """Post the credits a SQL query lists, set-based, in the caller's transaction; returns how many it posted.

    For credits to a million members at once (a conversion epoch), where `credit_bulk`'s per-credit work
    in Python would take minutes. `source` is a SELECT of ``user_id, currency, amount, kind,
    idempotency_key, memo`` with at most one credit per member and currency (each entry's `balance_after`
    is the member's balance after it). The same rules hold: keys already posted are skipped (a rerun posts
    nothing), balances move in the ledger's lock order, and a key a concurrent caller posts meanwhile fails
    the INSERT on the unique key (everything rolls back; run it again). Listeners are not told entry by
    entry (a million events would cost more than the posting); PostgreSQL only, SQLite (development)
    goes through `credit_bulk`.
    """
    with unit_of_work() as session:
        if is_postgres():
            session.execute(text(_SET_FRESH_PG.format(source=source, currencies=repr(CURRENCIES))), params)
            try:
                session.execute(text("CREATE INDEX ON ledger_fresh (user_id, currency)"))
                session.execute(text("ANALYZE ledger_fresh"))
                return session.execute(text(_SET_POST_PG), {"now": now}).rowcount
            finally:
                session.execute(text("DROP TABLE ledger_fresh"))
        rows = session.execute(text(source), params).all()
        posted = credit_bulk([BulkCredit(int(user_id), currency, int(amount), key, kind, memo or "")
                              for user_id, currency, amount, kind, key, memo in rows if amount > 0
                              and not _posted_keys([key])], now=now)
        return len(posted)


def debit(user_id: int, currency: str, amount: int, *, kind: str, key: str, now: datetime, memo: str = "") -> Posting:
    """Take `amount` from a member's balance once per `key`; refuses to go below zero."""
    _check(currency, amount, key)
    with unit_of_work():
        posting = _post(user_id, currency, -amount, kind, key, memo, now)
    return posting


def transfer(
    from_user_id: int, to_user_id: int, currency: str, amount: int, *, kind: str, key: str, now: datetime, memo: str = ""
) -> tuple[Posting, Posting]:
    """Move value between members in one transaction: both legs or neither."""
    if from_user_id == to_user_id:
        raise LedgerError(_l("You cannot transfer to yourself."))
    _check(currency, amount, key)
    with unit_of_work():
        out_leg = _post(from_user_id, currency, -amount, kind, f"{key}:out", memo, now)
        in_leg = _post(to_user_id, currency, amount, kind, f"{key}:in", memo, now)
    return out_leg, in_leg


def balance(user_id: int, currency: str) -> int:
    return db.session.scalar(select(Balance.amount).where(Balance.user_id == user_id, Balance.currency == currency)) or 0


def balances(user_id: int) -> dict[str, int]:
    found = dict(db.session.execute(_balances_statement(), {"user_id": user_id}).all())
    return {currency: found.get(currency, 0) for currency in CURRENCIES}


@built_once
def _balances_statement():
    # The nav reads it on every page and after every answer.
    return select(Balance.currency, Balance.amount).where(Balance.user_id == bindparam("user_id"))


def sum_of_entries(user_id: int, currency: str) -> int:
    """The balance recomputed from the entries themselves: the truth the cached row must match."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.user_id == user_id, LedgerEntry.currency == currency
        )
    )
    return int(total)


def recent_entries(user_id: int, limit: int = 20, currency: str | None = None) -> list[LedgerEntry]:
    query = select(LedgerEntry).where(LedgerEntry.user_id == user_id)
    if currency:
        query = query.where(LedgerEntry.currency == currency)
    return list(db.session.scalars(query.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc()).limit(limit)))


def find_mismatched_balances() -> list[tuple[int, str, int, int]]:
    """(user, currency, cached, summed) for every cached balance that disagrees with its entries."""
    sums = (
        select(LedgerEntry.user_id, LedgerEntry.currency, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.user_id, LedgerEntry.currency)
        .subquery()
    )
    rows = db.session.execute(
        select(Balance.user_id, Balance.currency, Balance.amount, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, (sums.c.user_id == Balance.user_id) & (sums.c.currency == Balance.currency))
        .where(Balance.amount != func.coalesce(sums.c.total, 0))
    )
    return [tuple(row) for row in rows]
