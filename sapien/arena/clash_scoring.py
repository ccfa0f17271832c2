"""Scoring and settling a guild clash's match: team sums, the winning guild, team ratings and the prizes.

`matches.finish` scores every seat as in an error hunt, then asks `team_ranks` when the match is a clash:
a side's score is the sum of its three members' scores (ties go to the side whose members took less time
in total; equal on both is a draw). The clash row records both sums and the winning guild in the same
transaction. `settle` (guarded by the match's `settled_at`, like every match) rates the two teams in one
openskill update (`ratings.rate_teams`: `rate([[a, b, c], [d, e, f]])`, mode "guild_clash") and pays the winning side: the
entry fees' pot and the pool's prize for a win, shared by its three members, each with their own ledger
key (`arena:clash-pot:<match>:<user>`, `arena:clash-prize:<match>:<user>`), so a retry never pays twice.

A clash feeds the guild boards: every player earns `CLASH_XP_PER_POINT` XP for each point they scored
(kind ``arena:clash``, keyed ``arena:clash-xp:<match>:<user>``), so the guild boards, which add up their
members' XP, move by the team's sum, and a rebuild of the boards from the ledger finds it again. A
flagged clash earns it only once a moderator clears it (it is settled then).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from sapien import events
from sapien.arena import prizes, ratings
from sapien.arena.models import CLASH_MODE, ArenaClash, ArenaClashSlot, ArenaMatch, ArenaPlayer, ArenaPrizePool
from sapien.database import after_commit
from sapien.extensions import db
from sapien.ledger import service as ledger


def sides_of(clash_id: int) -> dict[int, int]:
    """{user id: guild id} of the clash's places."""
    return dict(
        db.session.execute(
            select(ArenaClashSlot.user_id, ArenaClashSlot.guild_id).where(ArenaClashSlot.clash_id == clash_id)
        )
        .all()
    )


def clash_of_match(match_id: int, lock: bool = False) -> ArenaClash | None:
    query = select(ArenaClash).where(ArenaClash.match_id == match_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return db.session.scalars(query).one_or_none()


def team_ranks(match: ArenaMatch, seats: list[ArenaPlayer], now: datetime) -> list[int]:
    """Each seat's rank as its side's rank (1 or 2, both 1 for a draw), recording the sums and the winner
    on the clash row. In `finish`'s transaction, after every seat was scored."""
    clash = clash_of_match(match.id, lock=True)
    side = sides_of(clash.id)
    guilds = (clash.challenger_guild_id, clash.opponent_guild_id)
    points = {guild: sum(seat.score for seat in seats if side.get(seat.user_id) == guild) for guild in guilds}
    times = {guild: sum(seat.time_ms or 0 for seat in seats if side.get(seat.user_id) == guild) for guild in guilds}
    first, second = guilds
    key = {guild: (-points[guild], times[guild]) for guild in guilds}
    winner = None if key[first] == key[second] else min(guilds, key=lambda guild: key[guild])
    clash.challenger_points, clash.opponent_points = points[first], points[second]
    clash.winner_guild_id, clash.status, clash.finished_at = winner, "finished", clash.finished_at or now
    rank = {guild: 1 if winner in (None, guild) else 2 for guild in guilds}
    return [rank[side[seat.user_id]] for seat in seats]


def winner_ids(match: ArenaMatch, seats: list[ArenaPlayer]) -> list[int]:
    """The members who won: the winning side's three (none for a draw)."""
    clash = clash_of_match(match.id)
    if clash is None or clash.winner_guild_id is None:
        return []
    side = sides_of(clash.id)
    return sorted(seat.user_id for seat in seats if side.get(seat.user_id) == clash.winner_guild_id)


def _rate_teams(match: ArenaMatch, seats: list[ArenaPlayer], ranks: list[int], now: datetime) -> list[ratings.RatingMove]:
    """One openskill update of the two sides (`ratings.rate_teams`), each side ranked as its guild."""
    side = sides_of(clash_of_match(match.id).id)
    teams: dict[int, tuple[list[tuple[int, bool]], int]] = {}
    for seat, rank in zip(seats, ranks, strict=True):
        teams.setdefault(side[seat.user_id], ([], rank))[0].append((seat.user_id, False))
    return ratings.rate_teams(CLASH_MODE, match.season_id, [teams[guild] for guild in sorted(teams)], now)


CLASH_XP_PER_POINT = 10


def _credit_clash_xp(match: ArenaMatch, seats: list[ArenaPlayer], now: datetime) -> None:
    for seat in sorted(seats, key=lambda one: one.user_id):
        if seat.score > 0 and not seat.is_ghost:
            ledger.credit(seat.user_id, "xp", seat.score * CLASH_XP_PER_POINT, kind="arena:clash",
                          key=f"arena:clash-xp:{match.id}:{seat.user_id}", now=now, memo=f"guild clash match {match.id}")


def _pay_side(match: ArenaMatch, winners: list[ArenaPlayer], now: datetime) -> None:
    """The winning side shares the pot of every seat's entry fee and the pool's prize for a win."""
    if not winners:
        return
    pot_each = match.entry_fee * 2  # six fees shared by three
    pool = prizes.pool()
    share = pool.prize_tokens // len(winners) if pool is not None and pool.prize_tokens > 0 else 0
    for seat in sorted(winners, key=lambda one: one.user_id):
        if pot_each > 0:
            ledger.credit(
                seat.user_id,
                "points",
                pot_each,
                kind="arena:pot",
                key=f"arena:clash-pot:{match.id}:{seat.user_id}",
                now=now,
                memo=f"guild clash match {match.id}",
            )
            set_committed_value(seat, "prize_points", pot_each)  # `matches._write_seats` stores the seats' outcome
        if share <= 0:
            continue
        wanted = prizes.staked_prize(seat.user_id, share)
        left = db.session.execute(
            select(ArenaPrizePool.budget_tokens - ArenaPrizePool.paid_tokens)
            .where(ArenaPrizePool.id == prizes.POOL_ID)
            .with_for_update()
        ).scalar_one()
        tokens = int(max(0, min(wanted, left)))
        if tokens:
            db.session.execute(
                update(ArenaPrizePool)
                .where(ArenaPrizePool.id == prizes.POOL_ID)
                .values(paid_tokens=ArenaPrizePool.paid_tokens + tokens)
            )
            ledger.credit(
                seat.user_id,
                "token",
                tokens,
                kind="arena:prize",
                key=f"arena:clash-prize:{match.id}:{seat.user_id}",
                now=now,
                memo=f"guild clash match {match.id}",
            )
            set_committed_value(seat, "prize_tokens", tokens)


def settle(match: ArenaMatch, seats: list[ArenaPlayer], ranks: list[int], now: datetime) -> None:
    """Ratings and prizes of a clash, in the caller's transaction (the caller claimed `settled_at`)."""
    moves = _rate_teams(match, seats, ranks, now)
    by_user = {move.user_id: move for move in moves}
    for seat in seats:
        set_committed_value(seat, "rating_before", by_user[seat.user_id].before)
        set_committed_value(seat, "rating_after", by_user[seat.user_id].after)
    _credit_clash_xp(match, seats, now)
    if len(set(ranks)) == 2:
        _pay_side(match, [seat for seat, rank in zip(seats, ranks, strict=True) if rank == 1], now)
    for move in moves:
        if move.new_tier:
            after_commit(
                lambda move=move: events.arena_tier_reached.send(
                    None, user_id=move.user_id, tier=move.new_tier, season_id=match.season_id, now=now
                )
            )
