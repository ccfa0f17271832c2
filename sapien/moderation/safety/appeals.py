"""Appeals against moderation decisions: once per decision, decided by a second moderator.

A member appeals a warning, restriction or ban from their standing page; a banned member, who cannot sign
in, appeals from the public appeal page by proving who they are with their username and password (failed
attempts count towards the account's sign-in back-off). The moderator who made the decision never decides
its appeal. Overturning lifts the restriction (and the ban: the member can sign in again); every step is
audited.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from sapien.accounts import login_throttle
from sapien.accounts.models import User
from sapien.accounts.service import normalise_email, username_key
from sapien.database import unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.moderation import service as audit
from sapien.moderation import users
from sapien.moderation.models import Decision, DecisionAppeal

MESSAGE_MAX = 1000


class AppealError(DomainError):
    pass


def _message(message: str) -> str:
    message = (message or "").strip()
    if not message:
        raise AppealError(_l("Tell the moderators why the decision should change."), "message")
    if len(message) > MESSAGE_MAX:
        raise AppealError(_l("Keep your appeal under 1,000 characters."), "message")
    return message


def appeal(user_id: int, decision_id: int, message: str, now: datetime) -> DecisionAppeal:
    message = _message(message)
    with unit_of_work() as session:
        decision = session.get(Decision, decision_id)
        if decision is None or decision.user_id != user_id or decision.action == "dismiss":
            raise AppealError(_l("There is no such decision to appeal."))
        if session.scalar(select(DecisionAppeal.id).where(DecisionAppeal.decision_id == decision_id)) is not None:
            raise AppealError(_l("You have already appealed this decision: an appeal is heard once."))
        row = DecisionAppeal(decision_id=decision_id, user_id=user_id, message=message, status="open", created_at=now)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError as error:
            raise AppealError(_l("You have already appealed this decision: an appeal is heard once.")) from error
        audit.record(user_id, "moderation.appeal", f"user:{user_id}", f"decision #{decision_id}", now)
    return row


def banned_member(login: str, password: str, now: datetime) -> User:
    """The banned member these credentials belong to (the public appeal page), or one vague error."""
    login = (login or "").strip()
    user = db.session.scalar(select(User).where((User.username_key == username_key(login)) | (User.email == normalise_email(login))))
    account = f"user:{user.id}" if user is not None else f"name:{username_key(login)[:254]}"
    if login_throttle.seconds_locked(account, now):
        raise AppealError(_l("Too many failed attempts for this account. Try again later."))
    if user is None or not check_password_hash(user.password_hash, password or ""):
        login_throttle.record_failure(account, now)
        raise AppealError(_l("That username or password is not right."))
    if not user.is_banned:
        raise AppealError(_l("This account is not banned: sign in and appeal from your standing page."))
    return user


def latest_ban(user_id: int) -> Decision | None:
    return db.session.scalar(
        select(Decision).where(Decision.user_id == user_id, Decision.action == "ban", Decision.lifted_at.is_(None)).order_by(Decision.id.desc())
    )


def appeal_ban(login: str, password: str, message: str, now: datetime) -> DecisionAppeal:
    message = _message(message)
    user = banned_member(login, password, now)
    decision = latest_ban(user.id)
    if decision is None:
        raise AppealError(_l("There is no ban decision to appeal: write to the moderators."))
    return appeal(user.id, decision.id, message, now)


def open_appeals(moderator_id: int) -> list[tuple[DecisionAppeal, Decision, User]]:
    """Open appeals this moderator may decide: never those against their own decisions."""
    rows = db.session.execute(
        select(DecisionAppeal, Decision, User)
        .join(Decision, Decision.id == DecisionAppeal.decision_id)
        .join(User, User.id == DecisionAppeal.user_id)
        .where(DecisionAppeal.status == "open", (Decision.moderator_id.is_(None)) | (Decision.moderator_id != moderator_id))
        .order_by(DecisionAppeal.id)
    ).all()
    return list(rows)


def decide_appeal(moderator_id: int, appeal_id: int, overturn: bool, note: str, now: datetime) -> DecisionAppeal:
    note = (note or "").strip()
    if not note:
        raise AppealError(_l("Give a reason: the member sees it."), "note")
    if len(note) > MESSAGE_MAX:
        raise AppealError(_l("Keep your appeal under 1,000 characters."), "note")
    with unit_of_work() as session:
        row = session.get(DecisionAppeal, appeal_id, with_for_update=True)
        moderator = session.get(User, moderator_id)
        if row is None or moderator is None or not moderator.has_role("moderator"):
            raise AppealError(_l("There is no such appeal."))
        if row.status != "open":
            raise AppealError(_l("This appeal has already been decided."))
        decision = session.get(Decision, row.decision_id)
        if decision.moderator_id == moderator_id:
            raise AppealError(_l("A second moderator hears the appeal: you made this decision."))
        row.status, row.decided_by, row.decision_note, row.decided_at = ("overturned" if overturn else "upheld"), moderator_id, note, now
        if overturn:
            decision.lifted_at = now
            member = session.get(User, decision.user_id)
            if decision.action == "ban" and member.is_banned:
                users.unban(moderator_id, member.id, f"appeal #{row.id} overturned decision #{decision.id}: {note}", now)
        audit.record(moderator_id, f"moderation.appeal_{row.status}", f"user:{decision.user_id}", f"decision #{decision.id}: {note}", now)
    return row


def appeals_for(user_id: int) -> dict[int, DecisionAppeal]:
    return {row.decision_id: row for row in db.session.scalars(select(DecisionAppeal).where(DecisionAppeal.user_id == user_id))}
