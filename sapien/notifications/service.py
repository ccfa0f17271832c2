"""Notification rules: notify once per event, count unread cheaply, mark read (only your own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from sapien import events
from sapien.database import after_commit, dialect_insert, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.notifications.models import Notification

# How each kind reads; params are filled in when shown, so the text follows the reader's language.
MESSAGES = {
    "level_up": _l("You reached level %(level)s!"),
    "badge": _l("You earned the badge “%(badge)s”."),
    "badge_revoked": _l("Your badge “%(badge)s” was revoked."),
    "quest_complete": _l("Quest complete: “%(quest)s”. Claim your reward."),
    "streak_milestone": _l("%(days)s-day streak! Come back tomorrow to keep it going."),
    "guild_quest_complete": _l("Your guild completed the quest “%(quest)s”. Claim your reward."),
    "review_result": _l("A reviewer marked one of your submissions as %(outcome)s."),
    "no_consensus": _l("Item “%(item)s” of your pack “%(pack)s” got %(answers)s answers that never agreed: review them to verify it."),
    "reviews_escalated": _l("Answers no reviewer took went to the moderators' queue: %(count)s more to take."),
    # governance: the author's proposal was decided, or its change applied after the timelock.
    "proposal_passed": _l("Your proposal “%(title)s” passed."),
    "proposal_failed": _l("Your proposal “%(title)s” did not pass."),
    "proposal_applied": _l("Your proposal “%(title)s” is applied."),
    # A settlement batch paid the member's verified answers (one notification per member per batch).
    "answers_verified_points": _l("%(count)s answers verified: +%(amount)s points"),
    "answers_verified_xp": _l("%(count)s answers verified: +%(amount)s XP"),
    "answer_verified_points": _l("Your answer was verified: +%(amount)s points"),
    "answer_verified_xp": _l("Your answer was verified: +%(amount)s XP"),
    # The same, with the member's staking multiplier applied to the points (economy/staking.py).
    "answers_verified_points_boosted": _l("%(count)s answers verified: +%(amount)s points (×%(multiplier)s stake bonus)"),
    "answer_verified_points_boosted": _l("Your answer was verified: +%(amount)s points (×%(multiplier)s stake bonus)"),
    # economy: a moderator's slash of the member's stake, or a warning that took nothing.
    "stake_slashed": _l("A moderator slashed %(amount)s tokens of your stake (%(severity)s): %(reason)s"),
    "stake_warning": _l("A moderator warned you about fraud; your stake was not slashed this time: %(reason)s"),
    # arena: a guild clash was offered to the member's guild (its managers), accepted (every member of both
    # guilds: three of each take their places), or began (its six players).
    "clash_challenged": _l("%(guild)s challenged your guild to a clash: accept or decline it."),
    "clash_accepted": _l("The clash %(challenger)s vs %(opponent)s is on: three members of each guild take their places."),
    "clash_started": _l("Your guild clash has begun: play your part now."),
    # ... or was called off before it began (the managers of both guilds and the members who held a place).
    "clash_called_off": _l("The clash %(challenger)s vs %(opponent)s was called off before it began."),
}


class NotificationError(DomainError):
    pass


def notify(user_id: int, kind: str, params: dict, *, link: str = "", key: str | None = None, now: datetime) -> None:
    """Add a notification; with `key`, a repeated call for the same event adds nothing."""
    if kind not in MESSAGES:
        raise NotificationError(_l("Unknown notification kind."))
    values = dict(user_id=user_id, kind=kind, params=params, link=link[:255], dedupe_key=key, created_at=now)
    with unit_of_work() as session:
        insert = dialect_insert
        session.execute(insert(Notification).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"]))
    # The web layer swaps in the bell once the notification is committed (a rolled-back one shows nothing).
    after_commit(lambda: events.notification_added.send(None, user_id=user_id))


@dataclass(frozen=True)
class Notice:
    """One notification of `notify_many`."""

    user_id: int
    kind: str
    params: dict
    key: str | None = None
    link: str = ""


def notify_many(notices: list[Notice], *, now: datetime) -> None:
    """`notify` for many members at once (a settlement batch): one INSERT, the same exactly-once keys."""
    if not notices:
        return
    for notice in notices:
        if notice.kind not in MESSAGES:
            raise NotificationError(_l("Unknown notification kind."))
    rows = [dict(user_id=n.user_id, kind=n.kind, params=n.params, link=n.link[:255], dedupe_key=n.key, created_at=now) for n in notices]
    with unit_of_work() as session:
        session.execute(dialect_insert(Notification).on_conflict_do_nothing(index_elements=["dedupe_key"]), rows)
    user_ids = sorted({n.user_id for n in notices})

    def announce() -> None:
        for user_id in user_ids:
            events.notification_added.send(None, user_id=user_id)

    after_commit(announce)


def unread_count(user_id: int) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ) or 0


def recent(user_id: int, limit: int = 30) -> list[Notification]:
    return list(db.session.scalars(
        select(Notification).where(Notification.user_id == user_id).order_by(Notification.id.desc()).limit(limit)
    ))


def mark_read(user_id: int, notification_id: int, now: datetime) -> None:
    """Mark one of the member's own notifications read; someone else's id is simply not found."""
    with unit_of_work() as session:
        notification = session.get(Notification, notification_id)
        if notification is None or notification.user_id != user_id:
            raise LookupError(notification_id)
        if notification.read_at is None:
            notification.read_at = now


def mark_all_read(user_id: int, now: datetime) -> int:
    with unit_of_work() as session:
        result = session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=now)
        )
    return result.rowcount or 0
