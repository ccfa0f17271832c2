"""What members read about a guild clash's match: each player's run and each team's sum, item by item."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from sapien.accounts.models import User
from sapien.arena.clash_scoring import sides_of
from sapien.arena.models import ArenaAnswer, ArenaClash, ArenaMatch, ArenaPlayer
from sapien.arena.results import BreakdownRow
from sapien.extensions import db
from sapien.labeling.models import Item, TaskPack


@dataclass(frozen=True)
class PlayerLine:
    seat: ArenaPlayer
    username: str
    guild_id: int


@dataclass(frozen=True)
class TeamLine:
    guild_id: int
    players: list[PlayerLine]
    points: int
    outcome: str  # won, lost or draw

    @property
    def found(self) -> int:
        return sum(player.seat.found for player in self.players)

    @property
    def false_alarms(self) -> int:
        return sum(player.seat.false_alarms for player in self.players)


@dataclass(frozen=True)
class ItemLine:
    row: BreakdownRow  # the item with my own answer (`mine`)
    right: dict[int, int]  # guild id → how many of its players judged the item right


@dataclass(frozen=True)
class ClashBreakdown:
    teams: list[TeamLine]  # challenger first
    items: list[ItemLine]
    pack: TaskPack


def _judged_right(answer: ArenaAnswer | None, key: str, match: ArenaMatch) -> bool:
    if answer is None:
        return False
    if key in match.planted:
        return answer.flagged and answer.label == match.truth.get(key)
    return not answer.flagged


def breakdown(clash: ArenaClash, match: ArenaMatch, viewer_id: int) -> ClashBreakdown:
    """The finished clash: both teams with their players' runs, and every item with what the viewer said and
    how many of each side judged it right. Read only once the match is over (it shows the truth)."""
    side = sides_of(clash.id)
    players = [
        PlayerLine(seat, username, side.get(seat.user_id, 0))
        for seat, username in db.session.execute(
            select(ArenaPlayer, User.username)
            .join(User, User.id == ArenaPlayer.user_id)
            .where(ArenaPlayer.match_id == match.id)
            .order_by(ArenaPlayer.seat)
        )
    ]
    teams = []
    for guild_id, points in (
        (clash.challenger_guild_id, clash.challenger_points),
        (clash.opponent_guild_id, clash.opponent_points),
    ):
        outcome = "draw" if clash.winner_guild_id is None else ("won" if clash.winner_guild_id == guild_id else "lost")
        teams.append(
            TeamLine(
                guild_id,
                sorted((p for p in players if p.guild_id == guild_id), key=lambda p: -p.seat.score),
                points,
                outcome,
            )
        )
    answers = {
        (one.user_id, one.item_id): one
        for one in db.session.scalars(select(ArenaAnswer).where(ArenaAnswer.match_id == match.id))
    }
    texts = {item.id: item for item in db.session.scalars(select(Item).where(Item.id.in_(match.item_ids)))}
    pack = db.session.get(TaskPack, match.pack_id)
    lines = []
    for item_id in match.item_ids:
        key, item = str(item_id), texts.get(item_id)
        row = BreakdownRow(
            item_id=item_id,
            text=(item.payload or {}).get("text", "") if item else "",
            shown=match.shown.get(key, ""),
            truth=match.truth.get(key, ""),
            planted=key in match.planted,
            guideline=((item.gold_explanation if item else "") or pack.instructions),
            mine=answers.get((viewer_id, item_id)),
            theirs=None,
        )
        right = {
            team.guild_id: sum(
                1 for p in team.players if _judged_right(answers.get((p.seat.user_id, item_id)), key, match)
            )
            for team in teams
        }
        lines.append(ItemLine(row, right))
    return ClashBreakdown(teams, lines, pack)
