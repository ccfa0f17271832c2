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


def _soft_reset(mu: float, sigma: float) -> tuple[float, float]:
    """A last season's rating as a new season's start: pulled halfway back to the default, less certain."""
    return DEFAULT_MU + (mu - DEFAULT_MU) * RESET_PULL, min(sigma + RESET_SIGMA_BUMP, DEFAULT_SIGMA)


def _carried_over(user_id: int, mode: str, season: ArenaSeason) -> tuple[float, float]:
    previous = db.session.scalar(
        select(ArenaRating).join(ArenaSeason, ArenaSeason.id == ArenaRating.season_id)
        .where(ArenaRating.user_id == user_id, ArenaRating.mode == mode, ArenaSeason.number < season.number)
        .order_by(ArenaSeason.number.desc()).limit(1)
    )
    if previous is None:
        return DEFAULT_MU, DEFAULT_SIGMA
    return _soft_reset(previous.mu, previous.sigma)


def standing(user_id: int, mode: str, season: ArenaSeason) -> Standing:
    row = None if season.id is None else db.session.get(ArenaRating, (user_id, mode, season.id))
    if row is not None:
        return Standing(row.mu, row.sigma, row.matches, row.wins)
    mu, sigma = _carried_over(user_id, mode, season)
    return Standing(mu, sigma, 0, 0)


_TABLE = ArenaRating.__table__
_KEY = [_TABLE.c.user_id, _TABLE.c.mode, _TABLE.c.season_id]
_RATED = ("mu", "sigma", "ordinal", "matches", "wins", "best_tier", "updated_at")  # what a match changes on a rating row


def _row_values(user_id: int, mode: str, season_id: int, mu: float, sigma: float, *, now: datetime) -> dict:
    """A rating row's columns for (mu, sigma); a new row starts with no matches."""
    return {"user_id": user_id, "mode": mode, "season_id": season_id, "mu": mu, "sigma": sigma, "ordinal": mu - 3 * sigma,
            "matches": 0, "wins": 0, "best_tier": tier_of(shown_rating(mu, sigma)), "updated_at": now}


@dataclass(frozen=True)
class RatingMove:
    user_id: int
    before: int
    after: int
    new_tier: str | None  # set when the member reached a tier above any they held this season


def rate(mode: str, season: ArenaSeason | int, ranked: list[tuple[int, int, bool]], now: datetime) -> list[RatingMove]:
    """Update the ratings of a finished match of one-member sides. `ranked` is (user id, rank, is_ghost) per
    seat, rank 1 best; a ghost's rating takes part but is not changed (the member it replays is not playing)."""
    return rate_teams(mode, season, [([(user_id, is_ghost)], rank) for user_id, rank, is_ghost in ranked], now)


def rate_teams(mode: str, season: ArenaSeason | int, teams: list[tuple[list[tuple[int, bool]], int]], now: datetime) -> list[RatingMove]:
    """Update the ratings of a finished match in one openskill update of its teams: `teams` is
    ([(user id, is_ghost), …], rank) per side, rank 1 best (a guild clash: two sides of three). A member
    wins when their side alone ranks first.

    Three statements whatever the seats: one read of the members' rows in this mode up to this season (a
    ghost's standing, and where a first match of the season carries over from), one upsert that makes the
    missing rows and locks every player's row, returning its values as locked, and one upsert writing the
    new values. Rows are locked in user id order, so two matches finishing at once never deadlock on them."""
    season_id = season if isinstance(season, int) else season.id
    session = db.session
    seats = [(user_id, is_ghost) for members, _rank in teams for user_id, is_ghost in members]
    user_ids = sorted({user_id for user_id, _ghost in seats})
    season_number = select(ArenaSeason.number).where(ArenaSeason.id == season_id).scalar_subquery()
    known: dict[int, tuple[float, float]] = {}  # user id → (mu, sigma) they enter the season's match with
    for user_id, row_season_id, mu, sigma in session.execute(
        select(ArenaRating.user_id, ArenaRating.season_id, ArenaRating.mu, ArenaRating.sigma)
        .join(ArenaSeason, ArenaSeason.id == ArenaRating.season_id)
        .where(ArenaRating.user_id.in_(user_ids), ArenaRating.mode == mode, ArenaSeason.number <= season_number)
        .order_by(ArenaRating.user_id, ArenaSeason.number.desc())
    ):
        if user_id not in known:  # the newest row: this season's, or the last season's to carry over
            known[user_id] = (mu, sigma) if row_season_id == season_id else _soft_reset(mu, sigma)
    players = sorted({user_id for user_id, is_ghost in seats if not is_ghost})
    current: dict[int, tuple[float, float, int, int, str]] = {}
    if players:
        fresh = [_row_values(user_id, mode, season_id, *known.get(user_id, (DEFAULT_MU, DEFAULT_SIGMA)), now=now) for user_id in players]
        # A no-op update on conflict: PostgreSQL locks the existing row and RETURNING reads it as locked. One
        # statement for every row (insertmanyvalues), compiled once and cached.
        locked = dialect_insert(_TABLE).on_conflict_do_update(index_elements=_KEY, set_={"updated_at": _TABLE.c.updated_at})
        for user_id, mu, sigma, matches, wins, best_tier in session.execute(locked.returning(
                _TABLE.c.user_id, _TABLE.c.mu, _TABLE.c.sigma, _TABLE.c.matches, _TABLE.c.wins, _TABLE.c.best_tier), fresh):
            current[user_id] = (mu, sigma, matches, wins, best_tier)

    def mu_sigma(user_id: int) -> tuple[float, float]:
        return current[user_id][:2] if user_id in current else known.get(user_id, (DEFAULT_MU, DEFAULT_SIGMA))

    model_teams = [[MODEL.rating(mu=mu_sigma(user_id)[0], sigma=mu_sigma(user_id)[1], name=str(user_id)) for user_id, _ghost in members]
                   for members, _rank in teams]
    updated = MODEL.rate(model_teams, ranks=[rank for _members, rank in teams])
    sole_winner = sum(1 for _members, rank in teams if rank == 1) == 1
    moves, writes = [], []
    for (members, rank), new_team in zip(teams, updated, strict=True):
        for (user_id, is_ghost), after in zip(members, new_team, strict=True):
            if is_ghost:
                continue
            mu, sigma, matches, wins, best_tier = current[user_id]
            new_rating = shown_rating(after.mu, after.sigma)
            tier = tier_of(new_rating)
            new_tier = tier if TIER_ORDER[tier] > TIER_ORDER[best_tier] else None
            writes.append({**_row_values(user_id, mode, season_id, after.mu, after.sigma, now=now), "matches": matches + 1,
                           "wins": wins + (1 if rank == 1 and sole_winner else 0), "best_tier": new_tier or best_tier})
            moves.append(RatingMove(user_id, shown_rating(mu, sigma), new_rating, new_tier))
    if writes:
        write = dialect_insert(_TABLE)
        session.execute(write.on_conflict_do_update(index_elements=_KEY, set_={name: write.excluded[name] for name in _RATED}),
                        sorted(writes, key=lambda one: one["user_id"]))
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
