"""Guild clash: one guild challenges another, three members a side play the same error hunt.

The flow: a leader or officer of a guild challenges another guild (`challenge`); a leader or officer of
that guild accepts or declines (`respond`; one conditional UPDATE, so two managers accepting at once make
one clash); members of either guild take their side's places (`join`) until each side has three; the
match starts when both sides are full (`start`, which `join` calls for the sixth member). The match is an
ordinary arena match of mode "guild_clash" (its seats, answers, live hash, timer and entry fee), scored by
`clash_scoring` when it finishes; `clash_board` ranks the guilds by their clashes. The challenged guild's
managers are notified of a challenge, both guilds of its acceptance, the six players of the start.

Invariants:
- A member holds one place per clash (a unique key), so nobody plays on both sides; a side has at most
  three places (slot numbers 0–2, unique per side); joins of one clash are serialised on its row.
- Only a member of one of the two guilds joins, only their own guild's side, and not while they play
  another match or hold a place in another clash that has not finished.
- The match starts once: `start` moves the clash from "forming" to "playing" under the row lock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from sapien.accounts.models import User
from sapien.arena import items, live, matches, prizes
from sapien.arena.errors import ArenaError
from sapien.arena.models import CLASH_MODE, CLASH_TEAM_SIZE, ArenaClash, ArenaClashSlot, ArenaMatch
from sapien.database import after_commit, unit_of_work
from sapien.extensions import db
from sapien.guilds.membership import MANAGERS, guild_id_of, live_guild, member_ids, membership_of
from sapien.guilds.models import Guild, GuildMembership
from sapien.ledger import service as ledger
from sapien.notifications.service import Notice, notify_many

UNDER_WAY = ("open", "forming", "playing")
# A clash that never begins must not hold its two guilds (and its players' places) for ever: a challenge
# nobody answered, and an accepted clash whose sides did not fill, expire (the arena's sweep); until then
# a leader or officer of either guild may call it off.
ANSWER_WITHIN = timedelta(days=3)
FILL_WITHIN = timedelta(days=1)


class ClashNotFound(ArenaError):
    pass


class ClashNotReady(ArenaError):
    """Both sides are full but the match cannot start yet (a member is busy, or left their guild)."""


def get_clash(clash_id: int, lock: bool = False) -> ArenaClash:
    query = select(ArenaClash).where(ArenaClash.id == clash_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    clash = db.session.scalars(query).one_or_none()
    if clash is None:
        raise ClashNotFound(_l("There is no such guild clash."))
    return clash


def _manager_guild(user_id: int, message) -> int:
    membership = membership_of(user_id)
    if membership is None or membership.role not in MANAGERS:
        raise ArenaError(message)
    return membership.guild_id


def challenge(actor_id: int, opponent_guild_id: int, now: datetime) -> ArenaClash:
    """A leader or officer challenges another guild on their guild's behalf."""
    guild_id = _manager_guild(actor_id, _l("Only a guild's leader or officers can challenge another guild."))
    if guild_id == opponent_guild_id:
        raise ArenaError(_l("You cannot challenge your own guild."))
    with unit_of_work() as session:
        live_guild(opponent_guild_id)
        pair = or_(
            (ArenaClash.challenger_guild_id == guild_id) & (ArenaClash.opponent_guild_id == opponent_guild_id),
            (ArenaClash.challenger_guild_id == opponent_guild_id) & (ArenaClash.opponent_guild_id == guild_id),
        )
        if session.scalar(select(func.count()).select_from(ArenaClash).where(pair, ArenaClash.status.in_(UNDER_WAY))):
            raise ArenaError(_l("Your two guilds already have a clash under way: finish it first."))
        clash = ArenaClash(
            challenger_guild_id=guild_id,
            opponent_guild_id=opponent_guild_id,
            challenged_by=actor_id,
            status="open",
            challenger_points=0,
            opponent_points=0,
            created_at=now,
        )
        session.add(clash)
        session.flush()
        _tell(
            [user_id for user_id, role in _roles(opponent_guild_id) if role in MANAGERS], clash, "clash_challenged", now
        )
    return clash


def _roles(guild_id: int) -> list[tuple[int, str]]:
    return list(
        db.session.execute(
            select(GuildMembership.user_id, GuildMembership.role).where(GuildMembership.guild_id == guild_id)
        )
        .all()
    )


def _tell(user_ids: list[int], clash: ArenaClash, kind: str, now: datetime) -> None:
    """Notify members about the clash, once per member and kind (the key)."""
    names = _guild_names([clash.challenger_guild_id, clash.opponent_guild_id])
    params = {
        "guild": names[clash.challenger_guild_id][0],
        "challenger": names[clash.challenger_guild_id][0],
        "opponent": names[clash.opponent_guild_id][0],
    }
    notify_many(
        [
            Notice(user_id, kind, params, key=f"clash:{clash.id}:{kind}:{user_id}", link=f"/arena/clashes/{clash.id}")
            for user_id in sorted(set(user_ids))
        ],
        now=now,
    )


def respond(clash_id: int, actor_id: int, *, accept: bool, now: datetime) -> ArenaClash:
    """A leader or officer of the challenged guild accepts (the sides start forming) or declines; once."""
    with unit_of_work() as session:
        clash = get_clash(clash_id)
        membership = membership_of(actor_id)
        if membership is None or membership.guild_id != clash.opponent_guild_id or membership.role not in MANAGERS:
            raise ArenaError(_l("Only the challenged guild's leader or officers can answer this challenge."))
        values = (
            {"status": "forming", "accepted_by": actor_id, "accepted_at": now} if accept else {"status": "declined"}
        )
        moved = session.execute(
            update(ArenaClash)
            .where(ArenaClash.id == clash_id, ArenaClash.status == "open")
            .values(**values)
            .returning(ArenaClash.id)
        ).scalar()
        if moved is None:
            raise ArenaError(_l("That challenge was already answered."))
        if accept:
            _tell(
                member_ids(clash.challenger_guild_id) + member_ids(clash.opponent_guild_id),
                clash,
                "clash_accepted",
                now,
            )
    return get_clash(clash_id)


def call_off(clash_id: int, actor_id: int, now: datetime) -> ArenaClash:
    """A leader or officer of either guild calls the clash off before it begins; the places it held are free."""
    with unit_of_work():
        clash = get_clash(clash_id, lock=True)
        membership = membership_of(actor_id)
        if (membership is None or membership.role not in MANAGERS
                or membership.guild_id not in (clash.challenger_guild_id, clash.opponent_guild_id)):
            raise ArenaError(_l("Only a leader or officer of one of the two guilds can call this clash off."))
        if clash.status not in ("open", "forming"):
            raise ArenaError(_l("This clash has begun or ended: it can no longer be called off."))
        clash.status, clash.finished_at = "called_off", now
        managers = [user_id for guild_id in (clash.challenger_guild_id, clash.opponent_guild_id)
                    for user_id, role in _roles(guild_id) if role in MANAGERS]
        _tell(managers + [slot.user_id for slot in _slots(clash_id)], clash, "clash_called_off", now)
    return clash


def expire_stale(now: datetime) -> int:
    """Expire the challenges nobody answered within ANSWER_WITHIN and the accepted clashes whose sides did
    not fill within FILL_WITHIN; returns how many (the arena's sweep runs it every minute)."""
    with unit_of_work() as session:
        stale = or_((ArenaClash.status == "open") & (ArenaClash.created_at <= now - ANSWER_WITHIN),
                    (ArenaClash.status == "forming") & (ArenaClash.accepted_at <= now - FILL_WITHIN))
        return len(session.scalars(update(ArenaClash).where(stale).values(status="expired", finished_at=now).returning(ArenaClash.id)).all())


def _slots(clash_id: int) -> list[ArenaClashSlot]:
    return list(
        db.session.scalars(
            select(ArenaClashSlot)
            .where(ArenaClashSlot.clash_id == clash_id)
            .order_by(ArenaClashSlot.guild_id, ArenaClashSlot.slot)
        )
    )


@dataclass(frozen=True)
class Joined:
    clash_id: int
    match_id: int | None  # the match the sixth place started
    held_up: str | None = None  # why both full sides could not start yet


def join(clash_id: int, user_id: int, now: datetime) -> Joined:
    """Take a place on your guild's side; the sixth place starts the match (see `start`)."""
    with unit_of_work() as session:
        clash = get_clash(clash_id, lock=True)
        if clash.status == "open":
            raise ArenaError(_l("The challenged guild has not accepted yet."))
        if clash.status != "forming":
            raise ArenaError(_l("This clash is no longer taking players."))
        guild_id = guild_id_of(user_id)
        if guild_id not in (clash.challenger_guild_id, clash.opponent_guild_id):
            raise ArenaError(_l("Only members of the two guilds can play in this clash."))
        slots = _slots(clash_id)
        if any(slot.user_id == user_id for slot in slots):
            raise ArenaError(_l("You already have a place in this clash (a member plays on one side only)."))
        if matches.active_match_id(user_id) is not None:
            raise ArenaError(_l("You are playing another match: finish it before you join the clash."))
        elsewhere = session.scalar(
            select(ArenaClashSlot.clash_id)
            .join(ArenaClash, ArenaClash.id == ArenaClashSlot.clash_id)
            .where(
                ArenaClashSlot.user_id == user_id,
                ArenaClash.id != clash_id,
                ArenaClash.status.in_(("forming", "playing")),
            )
            .limit(1)
        )
        if elsewhere is not None:
            raise ArenaError(_l("You already have a place in another guild clash."))
        taken = {slot.slot for slot in slots if slot.guild_id == guild_id}
        free = [number for number in range(CLASH_TEAM_SIZE) if number not in taken]
        if not free:
            raise ArenaError(_l("Your guild's side is full: three members play."))
        try:
            with session.begin_nested():
                session.add(
                    ArenaClashSlot(clash_id=clash_id, guild_id=guild_id, user_id=user_id, slot=free[0], joined_at=now)
                )
                session.flush()
        except IntegrityError as error:
            raise ArenaError(_l("Your guild's side is full: three members play.")) from error
        full = len(slots) + 1 == 2 * CLASH_TEAM_SIZE
    if not full:
        return Joined(clash_id, None)
    try:
        return Joined(clash_id, start(clash_id, now).id)
    except ClashNotReady as error:
        return Joined(clash_id, None, str(error))


def leave_place(clash_id: int, user_id: int) -> None:
    """Give up your place before the match starts."""
    with unit_of_work() as session:
        clash = get_clash(clash_id, lock=True)
        if clash.status != "forming":
            raise ArenaError(_l("The clash has started: leaving now is a forfeit in the match."))
        gone = session.execute(
            delete(ArenaClashSlot).where(ArenaClashSlot.clash_id == clash_id, ArenaClashSlot.user_id == user_id)
        ).rowcount
        if not gone:
            raise ArenaError(_l("You have no place in this clash."))


def start(clash_id: int, now: datetime, rng: random.Random | None = None) -> ArenaMatch:
    """Start the clash's match once both sides are full. A member who left their guild loses their place; a
    member playing another match holds the start until they finish (anyone on the clash can start it then)."""
    with unit_of_work() as session:
        clash = get_clash(clash_id, lock=True)
        if clash.status != "forming":
            raise ArenaError(_l("This clash has already started."))
        slots = _slots(clash_id)
        if len(slots) < 2 * CLASH_TEAM_SIZE:
            raise ClashNotReady(_l("Each side needs three members before the clash starts."))
        names = dict(
            session.execute(select(User.id, User.username).where(User.id.in_([slot.user_id for slot in slots])))
            .all()
        )
        left = [slot for slot in slots if guild_id_of(slot.user_id) != slot.guild_id]
        busy = [slot for slot in slots if matches.active_match_id(slot.user_id) is not None]
        if left:
            session.execute(delete(ArenaClashSlot).where(ArenaClashSlot.id.in_([slot.id for slot in left])))
    if left:
        raise ClashNotReady(
            _l(
                "%(names)s left their guild: their place is open again.",
                names=", ".join(sorted(names[slot.user_id] for slot in left)),
            )
        )
    fee = prizes.entry_fee()
    short = [slot for slot in slots if fee and ledger.balance(slot.user_id, "points") < fee]
    if short:
        raise ClashNotReady(
            _l(
                "%(names)s needs %(points)s points for the entry fee before the clash can start.",
                names=", ".join(sorted(names[slot.user_id] for slot in short)),
                points=fee,
            )
        )
    if busy:
        raise ClashNotReady(
            _l(
                "%(names)s is still playing another match: start the clash when they are done.",
                names=", ".join(sorted(names[slot.user_id] for slot in busy)),
            )
        )
    user_ids = sorted(slot.user_id for slot in slots)
    with unit_of_work() as session:
        clash = get_clash(clash_id, lock=True)
        if clash.status != "forming":
            raise ArenaError(_l("This clash has already started."))
        hunt = items.choose_hunt(user_ids, matches.match_size(), rng)
        if hunt is None:
            raise ClashNotReady(_l("There are not enough verified items for a match right now. Try again later."))
        # Seats in user id order, as every match seats them, so two starts lock the seat index in one order.
        match = matches._open(hunt, [(user_id, False) for user_id in user_ids], now, mode=CLASH_MODE)
        clash.match_id, clash.status = match.id, "playing"
        seats = matches._seats(match.id)
        _tell(user_ids, clash, "clash_started", now)
    after_commit(lambda: live.publish(match, seats))
    return match


# --- what the pages read ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    user_id: int
    username: str


@dataclass(frozen=True)
class Side:
    guild_id: int
    name: str
    slug: str
    places: list[Place]
    points: int

    @property
    def open_places(self) -> int:
        return CLASH_TEAM_SIZE - len(self.places)


@dataclass(frozen=True)
class ClashView:
    clash: ArenaClash
    challenger: Side
    opponent: Side
    viewer_guild_id: int | None
    viewer_is_manager: bool
    viewer_has_place: bool

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.challenger, self.opponent

    @property
    def my_side(self) -> Side | None:
        return next((side for side in self.sides if side.guild_id == self.viewer_guild_id), None)

    @property
    def can_answer(self) -> bool:
        return (
            self.clash.status == "open"
            and self.viewer_is_manager
            and self.viewer_guild_id == self.clash.opponent_guild_id
        )

    @property
    def can_call_off(self) -> bool:
        return self.clash.status in ("open", "forming") and self.viewer_is_manager and self.viewer_guild_id is not None

    @property
    def can_join(self) -> bool:
        side = self.my_side
        return (
            self.clash.status == "forming" and side is not None and side.open_places > 0 and not self.viewer_has_place
        )

    @property
    def full(self) -> bool:
        return all(side.open_places == 0 for side in self.sides)


def _guild_names(ids) -> dict[int, tuple[str, str]]:
    return {
        gid: (name, slug)
        for gid, name, slug in db.session.execute(
            select(Guild.id, Guild.name, Guild.slug).where(Guild.id.in_(list(ids)))
        )
    }


def clash_view(clash_id: int, viewer_id: int) -> ClashView:
    clash = get_clash(clash_id)
    names = _guild_names([clash.challenger_guild_id, clash.opponent_guild_id])
    rows = db.session.execute(
        select(ArenaClashSlot, User.username)
        .join(User, User.id == ArenaClashSlot.user_id)
        .where(ArenaClashSlot.clash_id == clash_id)
        .order_by(ArenaClashSlot.slot)
    ).all()

    def side(guild_id: int, points: int) -> Side:
        name, slug = names.get(guild_id, ("?", ""))
        return Side(
            guild_id,
            name,
            slug,
            [Place(slot.user_id, username) for slot, username in rows if slot.guild_id == guild_id],
            points,
        )

    membership = membership_of(viewer_id)
    return ClashView(
        clash,
        side(clash.challenger_guild_id, clash.challenger_points),
        side(clash.opponent_guild_id, clash.opponent_points),
        membership.guild_id if membership else None,
        bool(membership and membership.role in MANAGERS),
        any(slot.user_id == viewer_id for slot, _name in rows),
    )


@dataclass(frozen=True)
class ClashLine:
    clash: ArenaClash
    challenger: str
    opponent: str
    places: int


def clashes_of_guild(guild_id: int | None, limit: int = 10) -> list[ClashLine]:
    """The guild's clashes, newest first (challenges to answer, sides forming, results)."""
    if guild_id is None:
        return []
    rows = list(
        db.session.scalars(
            select(ArenaClash)
            .where(or_(ArenaClash.challenger_guild_id == guild_id, ArenaClash.opponent_guild_id == guild_id))
            .order_by(ArenaClash.id.desc())
            .limit(limit)
        )
    )
    names = _guild_names({row.challenger_guild_id for row in rows} | {row.opponent_guild_id for row in rows})
    counts = (
        dict(
            db.session.execute(
                select(ArenaClashSlot.clash_id, func.count())
                .where(ArenaClashSlot.clash_id.in_([row.id for row in rows]))
                .group_by(ArenaClashSlot.clash_id)
            )
            .all()
        )
        if rows
        else {}
    )
    return [
        ClashLine(
            row,
            names.get(row.challenger_guild_id, ("?", ""))[0],
            names.get(row.opponent_guild_id, ("?", ""))[0],
            counts.get(row.id, 0),
        )
        for row in rows
    ]


def active_clash_id(user_id: int) -> int | None:
    """The clash the member has a place in that has not finished, if any."""
    return db.session.scalar(
        select(ArenaClash.id)
        .join(ArenaClashSlot, ArenaClashSlot.clash_id == ArenaClash.id)
        .where(ArenaClashSlot.user_id == user_id, ArenaClash.status.in_(("forming", "playing")))
        .limit(1)
    )
