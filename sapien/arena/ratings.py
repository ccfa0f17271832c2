"""Seasons, openskill ratings per mode, the shown rating and rank tiers.

A rating is openskill's (mu, sigma) for one member, mode and season; the number members see is
`shown_rating` = 1000 + 40 × (mu − 3σ), so a newcomer starts at 1000 and climbs as the model grows sure.
A new season soft-resets: a member's first rating in it is pulled halfway back to the default mu and
made less certain (sigma + 2, at most the default), read lazily from their last season's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from openskill.models import PlackettLuce
from sqlalchemy import select, update

from sapien.accounts.models import User
from sapien.arena.models import ArenaRating, ArenaSeason
from sapien.database import dialect_insert, unit_of_work
from sapien.extensions import db

MODEL = PlackettLuce()
DEFAULT_MU = MODEL.mu
DEFAULT_SIGMA = MODEL.sigma
RESET_PULL = 0.5
RESET_SIGMA_BUMP = 2.0

# (tier, lowest shown rating), highest first. Reaching silver or above awards the tier's badge.
TIERS = (("diamond", 1500), ("gold", 1300), ("silver", 1150), ("bronze", 0))
TIER_NAMES = {"bronze": _l("Bronze"), "silver": _l("Silver"), "gold": _l("Gold"), "diamond": _l("Diamond")}
TIER_ORDER = {name: rank for rank, (name, _floor) in enumerate(reversed(TIERS))}


def shown_rating(mu: float, sigma: float) -> int:
    return round(1000 + 40 * (mu - 3 * sigma))


def tier_of(rating: int) -> str:
    return next(name for name, floor in TIERS if rating >= floor)


def next_tier(rating: int) -> tuple[str, int] | None:
    """The next tier up and the rating it starts at, or None at the top."""
    above = [(name, floor) for name, floor in TIERS if floor > rating]
    return above[-1] if above else None


@dataclass(frozen=True)
class Standing:
    mu: float
    sigma: float
    matches: int
    wins: int

    @property
    def rating(self) -> int:
        return shown_rating(self.mu, self.sigma)

    @property
    def tier(self) -> str:
        return tier_of(self.rating)


def current_season(now: datetime) -> ArenaSeason:
    """The open season; the first one is opened on first use (two racing first uses make one)."""
    season = db.session.scalar(select(ArenaSeason).where(ArenaSeason.ended_at.is_(None)).order_by(ArenaSeason.number.desc()).limit(1))
    if season is not None:
        return season
    with unit_of_work() as session:
        session.execute(dialect_insert(ArenaSeason).values(number=1, name="Season 1", started_at=now).on_conflict_do_nothing())
    return db.session.scalar(select(ArenaSeason).where(ArenaSeason.ended_at.is_(None)).order_by(ArenaSeason.number.desc()).limit(1))


def season_to_show(now: datetime) -> ArenaSeason:
    """The open season for a page: before the first match ever, an unsaved "Season 1" (a GET writes nothing)."""
    season = db.session.scalar(select(ArenaSeason).where(ArenaSeason.ended_at.is_(None)).order_by(ArenaSeason.number.desc()).limit(1))
    return season or ArenaSeason(number=1, name="Season 1", started_at=now)


def start_season(name: str, now: datetime) -> ArenaSeason:
    """Close the open season and open the next; ratings carry over softly (see the module docstring)."""
    with unit_of_work() as session:
        season = current_season(now)
        session.execute(update(ArenaSeason).where(ArenaSeason.id == season.id, ArenaSeason.ended_at.is_(None)).values(ended_at=now))
        fresh = ArenaSeason(number=season.number + 1, name=(name or "").strip()[:80] or f"Season {season.number + 1}", started_at=now)
        session.add(fresh)
        session.flush()
    return fresh


def seasons() -> list[ArenaSeason]:
    return list(db.session.scalars(select(ArenaSeason).order_by(ArenaSeason.number.desc())))


def _carried_over(user_id: int, mode: str, season: ArenaSeason) -> tuple[float, float]:
    previous = db.session.scalar(
        select(ArenaRating).join(ArenaSeason, ArenaSeason.id == ArenaRating.season_id)
        .where(ArenaRating.user_id == user_id, ArenaRating.mode == mode, ArenaSeason.number < season.number)
        .order_by(ArenaSeason.number.desc()).limit(1)
    )
    if previous is None:
        return DEFAULT_MU, DEFAULT_SIGMA
    return DEFAULT_MU + (previous.mu - DEFAULT_MU) * RESET_PULL, min(previous.sigma + RESET_SIGMA_BUMP, DEFAULT_SIGMA)


def standing(user_id: int, mode: str, season: ArenaSeason) -> Standing:
    row = None if season.id is None else db.session.get(ArenaRating, (user_id, mode, season.id))
    if row is not None:
        return Standing(row.mu, row.sigma, row.matches, row.wins)
    mu, sigma = _carried_over(user_id, mode, season)
    return Standing(mu, sigma, 0, 0)


def _locked_row(user_id: int, mode: str, season: ArenaSeason, now: datetime) -> ArenaRating:
    """The member's rating row for the season, locked; made (carried over softly) on their first match in it."""
    query = (select(ArenaRating).where(ArenaRating.user_id == user_id, ArenaRating.mode == mode, ArenaRating.season_id == season.id)
             .with_for_update().execution_options(populate_existing=True))
    row = db.session.scalars(query).one_or_none()
    if row is not None:
        return row
    mu, sigma = _carried_over(user_id, mode, season)
    db.session.execute(
        dialect_insert(ArenaRating)
        .values(user_id=user_id, mode=mode, season_id=season.id, mu=mu, sigma=sigma, ordinal=mu - 3 * sigma, matches=0, wins=0,
                best_tier=tier_of(shown_rating(mu, sigma)), updated_at=now)
        .on_conflict_do_nothing()
    )
    return db.session.scalars(query).one()


@dataclass(frozen=True)
class RatingMove:
    user_id: int
    before: int
    after: int
    new_tier: str | None  # set when the member reached a tier above any they held this season


def rate(mode: str, season: ArenaSeason, ranked: list[tuple[int, int, bool]], now: datetime) -> list[RatingMove]:
    """Update the ratings of a finished match. `ranked` is (user id, rank, is_ghost) per seat, rank 1 best;
    a ghost's rating takes part but is not changed (the member it replays is not playing). Rows are locked
    in user id order, so two matches finishing at once never deadlock on them."""
    rows: dict[int, ArenaRating | Standing] = {}
    for user_id, _rank, is_ghost in sorted(ranked, key=lambda one: one[0]):
        rows[user_id] = standing(user_id, mode, season) if is_ghost else _locked_row(user_id, mode, season, now)
    teams = [[MODEL.rating(mu=rows[user_id].mu, sigma=rows[user_id].sigma, name=str(user_id))] for user_id, _rank, _ghost in ranked]
    updated = MODEL.rate(teams, ranks=[rank for _user, rank, _ghost in ranked])
    moves = []
    for (user_id, rank, is_ghost), [after] in zip(ranked, updated, strict=True):
        if is_ghost:
            continue
        row = rows[user_id]
        before = shown_rating(row.mu, row.sigma)
        row.mu, row.sigma, row.ordinal = after.mu, after.sigma, after.mu - 3 * after.sigma
        row.matches += 1
        row.wins += 1 if rank == 1 and sum(1 for _u, r, _g in ranked if r == 1) == 1 else 0
        row.updated_at = now
        new_rating = shown_rating(after.mu, after.sigma)
        tier = tier_of(new_rating)
        new_tier = None
        if TIER_ORDER[tier] > TIER_ORDER[row.best_tier]:
            row.best_tier = new_tier = tier
        moves.append(RatingMove(user_id, before, new_rating, new_tier))
    db.session.flush()
    return moves


def profile_standing(user_id: int, now: datetime) -> Standing | None:
    """A member's error hunt standing this season for their profile, or None before their first match."""
    season = season_to_show(now)
    row = None if season.id is None else db.session.get(ArenaRating, (user_id, "error_hunt", season.id))
    return Standing(row.mu, row.sigma, row.matches, row.wins) if row is not None and row.matches else None


@dataclass(frozen=True)
class BoardRow:
    rank: int
    user_id: int
    username: str
    rating: int
    tier: str
    matches: int
    wins: int


def season_board(season_id: int, mode: str, limit: int = 50) -> list[BoardRow]:
    """The season's rating leaderboard (one indexed range read)."""
    rows = db.session.execute(
        select(ArenaRating, User.username).join(User, User.id == ArenaRating.user_id)
        .where(ArenaRating.season_id == season_id, ArenaRating.mode == mode, ArenaRating.matches > 0)
        .order_by(ArenaRating.ordinal.desc(), ArenaRating.user_id).limit(limit)
    ).all()
    board = []
    for position, (row, username) in enumerate(rows, start=1):
        rating = shown_rating(row.mu, row.sigma)
        board.append(BoardRow(position, row.user_id, username, rating, tier_of(rating), row.matches, row.wins))
    return board
