"""Notification rules: notify once per event, count unread cheaply, mark read (only your own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from sapien.database import dialect_insert, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.notifications.models import Notification

# How each kind reads; params are filled in when shown, so the text follows the reader's language.
MESSAGES = {
    "level_up": _l("You reached level %(level)s!"),
    "badge": _l("You earned the badge “%(badge)s”."),
    "badge_revoked": _l("Your badge “%(badge)s” was revoked."),
    "quest_complete": _l("Quest complete: “%(quest)s”. Claim your reward."),
    "guild_quest_complete": _l("Your guild completed the quest “%(quest)s”. Claim your reward."),
    "review_result": _l("A reviewer marked one of your submissions as %(outcome)s."),
}


class NotificationError(DomainError):
    pass


@dataclass(frozen=True)
class ShownNotification:
    id: int
    text: str
    link: str
    created_at: datetime
    unread: bool


def notify(user_id: int, kind: str, params: dict, *, link: str = "", key: str | None = None, now: datetime) -> None:
    """Add a notification; with `key`, a repeated call for the same event adds nothing."""
    if kind not in MESSAGES:
        raise NotificationError(_l("Unknown notification kind."))
    values = dict(user_id=user_id, kind=kind, params=params, link=link[:255], dedupe_key=key, created_at=now)
    with unit_of_work() as session:
        insert = dialect_insert
        session.execute(insert(Notification).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"]))
    from sapien.progression import live

    live.mark_notified(user_id)


REVIEW_OUTCOMES = {"accepted": _l("accepted"), "rejected": _l("rejected"), "corrected": _l("corrected")}


def _shown_params(notification: Notification) -> dict:
    """Params are stored as ids and codes; names are looked up (and translated) when shown."""
    params = dict(notification.params or {})
    if "badge" in params:
        from sapien.progression.badges import get_badge

        badge = get_badge(params["badge"])
        params["badge"] = str(badge.name) if badge else params["badge"]
    if "outcome" in params:
        params["outcome"] = str(REVIEW_OUTCOMES.get(params["outcome"], params["outcome"]))
    return params


def render_text(notification: Notification) -> str:
    template = MESSAGES.get(notification.kind)
    if template is None:
        return notification.kind
    try:
        return str(template) % _shown_params(notification)
    except (KeyError, TypeError, ValueError):
        return str(template)


def unread_count(user_id: int) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ) or 0


def recent(user_id: int, limit: int = 30) -> list[ShownNotification]:
    rows = db.session.scalars(
        select(Notification).where(Notification.user_id == user_id).order_by(Notification.id.desc()).limit(limit)
    )
    return [
        ShownNotification(id=n.id, text=render_text(n), link=n.link, created_at=n.created_at, unread=n.read_at is None)
        for n in rows
    ]


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
