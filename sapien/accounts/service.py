"""Account rules: sign-up, credentials, sessions, roles, bans. Plain functions; callers pass `now`."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import pycountry
from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key
from werkzeug.security import check_password_hash, generate_password_hash

from sapien import events, member_cache
from sapien.accounts import login_throttle
from sapien.accounts.models import ROLES, User
from sapien.accounts.names import has_hidden_controls, username_skeleton
from sapien.database import after_commit, unit_of_work, utcnow
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.i18n import is_valid_timezone

USERNAME_MIN, USERNAME_MAX = 3, 32
PASSWORD_MIN, PASSWORD_MAX = 10, 128


# ISO 3166-1 alpha-2 only: Babel's territory list also names regions (Eurozone, United Nations) and
# pseudo-locales (ZZ, XA, XB) that are nobody's country.
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


LOOK_ALIKE_MESSAGE = _l("That username looks too much like an existing member's. Choose another.")
HIDDEN_CONTROLS_MESSAGE = _l("Names cannot contain invisible control characters, such as those that change the text's direction.")


class AccountError(DomainError):
    """An account rule was broken; `field` names the form field the message belongs to, if any."""


@dataclass(frozen=True)
class SignUp:
    username: str
    email: str
    password: str
    display_name: str = ""
    country: str | None = None
    timezone: str = "UTC"
    locale: str | None = None


def username_key(username: str) -> str:
    return unicodedata.normalize("NFKC", username).casefold()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    # PASSWORD_HASH_METHOD: scrypt, a memory-hard modern scheme, unless configured otherwise.
    method = current_app.config["PASSWORD_HASH_METHOD"] if has_app_context() else "scrypt"
    return generate_password_hash(password, method=method)


def sign_up(data: SignUp, now: datetime, role: str = "member", password_hash: str | None = None) -> User:
    username = unicodedata.normalize("NFKC", data.username.strip())
    email = normalise_email(data.email)
    if not (USERNAME_MIN <= len(username) <= USERNAME_MAX):
        raise AccountError(_l("Usernames are 3 to 32 characters long."), "username")
    if not all(ch.isalnum() or ch in "._-" for ch in username):
        raise AccountError(_l("Use letters, digits, dots, dashes and underscores only."), "username")
    if has_hidden_controls(data.display_name):
        raise AccountError(HIDDEN_CONTROLS_MESSAGE, "display_name")
    if password_hash is None and not (PASSWORD_MIN <= len(data.password) <= PASSWORD_MAX):
        raise AccountError(_l("Passwords are 10 to 128 characters long."), "password")
    if role not in ROLES:
        raise AccountError(_l("Unknown role."), "role")
    if data.timezone and not is_valid_timezone(data.timezone):
        raise AccountError(_l("Choose a time zone from the list."), "timezone")
    if data.country and data.country.upper() not in COUNTRY_CODES:
        raise AccountError(_l("Choose a country from the list."), "country")
    with unit_of_work() as session:
        taken = _taken_by_others(username, email)
        if taken is not None:
            raise taken
        user = User(
            username=username,
            username_key=username_key(username),
            username_skeleton=username_skeleton(username),
            email=email,
            password_hash=password_hash or hash_password(data.password),
            display_name=(data.display_name or username).strip()[:64],
            role=role,
            country=(data.country or None) and data.country.upper(),
            timezone=data.timezone or "UTC",
            locale=data.locale,
            created_at=now,
            session_version=1,
        )
        try:
            # Two sign-ups racing for one name both pass the checks above: the unique keys decide, and the
            # savepoint keeps a caller's wider transaction usable.
            with session.begin_nested():
                session.add(user)
                session.flush()
        except IntegrityError as error:
            raise _taken_by_others(username, email) or duplicate_account_error(error) from error
    events.user_signed_up.send(None, user_id=user.id, now=now)
    return user


def _taken_by_others(username: str, email: str) -> AccountError | None:
    """Why another member's name or email stands in the way, read in one statement (one snapshot): checked
    one after the other, a sign-up that commits between the checks would show a racer the look-alike error
    for the very name they typed."""
    key, look = username_key(username), username_skeleton(username)
    others = db.session.execute(
        select(User.username_key, User.username_skeleton).where(or_(User.username_key == key, User.username_skeleton == look, User.email == email))
    ).all()
    if any(row.username_key == key for row in others):
        return AccountError(_l("That username is taken."), "username")
    if any(row.username_skeleton == look for row in others):
        return AccountError(LOOK_ALIKE_MESSAGE, "username")
    if others:
        return AccountError(_l("An account with that email already exists."), "email")
    return None


def duplicate_account_error(error: IntegrityError) -> AccountError:
    """The form error for a sign-up that lost a race on one of the users table's unique keys (by the key's
    name, when the row that won is not to be seen)."""
    constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None) or str(error.orig)
    if "email" in constraint:
        return AccountError(_l("An account with that email already exists."), "email")
    if "skeleton" in constraint:
        return AccountError(LOOK_ALIKE_MESSAGE, "username")
    return AccountError(_l("That username is taken."), "username")


class LoginThrottled(AccountError):
    """Too many wrong passwords for this account lately: it refuses sign-ins for `seconds` more."""

    def __init__(self, seconds: int):
        super().__init__(_l("Too many failed sign-ins for this account. Try again later."))
        self.seconds = seconds


def authenticate(login: str, password: str, now: datetime) -> User:
    """Return the user for a username-or-email and password, or raise with one vague message.

    Failures count per account (per name tried, when no account has it, so the answer does not tell which
    names exist): past a few, the account backs off (`login_throttle`) before its password is checked.
    """
    login = login.strip()
    user = db.session.scalar(
        select(User).where((User.username_key == username_key(login)) | (User.email == normalise_email(login)))
    )
    account = f"user:{user.id}" if user is not None else f"name:{username_key(login)[:254]}"
    wait = login_throttle.seconds_locked(account, now)
    if wait:
        raise LoginThrottled(wait)
    if user is None or not check_password_hash(user.password_hash, password):
        login_throttle.record_failure(account, now)
        raise AccountError(_l("That username or password is not right."))
    if user.is_banned:
        raise AccountError(_l("This account is suspended."))
    login_throttle.clear(account)
    return user


# What a signed-in request needs of its user, kept in Redis between requests (never the password hash
# or the email address); anything else is loaded from the database on first access.
SESSION_USER_FIELDS = ("username", "username_key", "display_name", "role", "country", "locale", "timezone",
                       "hide_from_boards", "session_version", "is_banned")
SESSION_USER_SECONDS = 300


def load_session_user(session_id: str) -> User | None:
    """Resolve a login id `"<user id>:<session version>"`; a stale version means a revoked session."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = _session_user(int(user_id))
    if user is None or user.session_version != int(version) or user.is_banned:
        return None
    return user


def _session_user(user_id: int) -> User | None:
    """The user row from the member cache when it is current, else from the database (and cached).

    Any change to the row bumps its own counter after commit (see `_user_changed`), so a ban or a
    revoked session is seen by the very next request; other changes (a POST, a ledger posting) leave it.
    """

    present = db.session.identity_map.get(identity_key(User, user_id))
    if present is not None:
        return present
    stamp, cached = member_cache.read(user_id, member_cache.USER_ROW, member_cache.user_row_key(user_id), generation=False)
    if cached is not None:
        user = User(id=user_id, **json.loads(cached))
        make_transient_to_detached(user)
        db.session.add(user)
        return user
    user = db.session.get(User, user_id)
    if user is not None:
        row = json.dumps({name: getattr(user, name) for name in SESSION_USER_FIELDS}).encode()
        member_cache.write(user_id, member_cache.USER_ROW, stamp, row, SESSION_USER_SECONDS)
    return user


@event.listens_for(User, "after_update")
@event.listens_for(User, "after_delete")
def _user_changed(_mapper, _connection, user: User) -> None:
    member_cache.touch_member(user.id, user_row=True)


def revoke_sessions(user_id: int) -> None:
    with unit_of_work() as session:
        user = session.get(User, user_id)
        user.session_version = User.session_version + 1


def change_password(user_id: int, current_password: str, new_password: str) -> None:
    with unit_of_work() as session:
        user = session.get(User, user_id)
        if not check_password_hash(user.password_hash, current_password):
            raise AccountError(_l("Your current password is not right."), "current_password")
        if not (PASSWORD_MIN <= len(new_password) <= PASSWORD_MAX):
            raise AccountError(_l("Passwords are 10 to 128 characters long."), "new_password")
        user.password_hash = hash_password(new_password)
        user.session_version = User.session_version + 1


def update_profile(
    user_id: int,
    *,
    display_name: str,
    bio: str,
    country: str | None,
    timezone: str,
    locale: str | None,
    hide_from_boards: bool,
    languages: dict,
) -> User:
    if not display_name.strip():
        raise AccountError(_l("Your display name cannot be empty."), "display_name")
    if has_hidden_controls(display_name):
        raise AccountError(HIDDEN_CONTROLS_MESSAGE, "display_name")
    if not is_valid_timezone(timezone):
        raise AccountError(_l("Choose a time zone from the list."), "timezone")
    if locale and locale not in languages:
        raise AccountError(_l("Choose a language from the list."), "locale")
    if country and country.upper() not in COUNTRY_CODES:
        raise AccountError(_l("Choose a country from the list."), "country")
    with unit_of_work() as session:
        user = session.get(User, user_id)
        visibility_changed = bool(user.hide_from_boards) != bool(hide_from_boards)
        user.display_name = display_name.strip()
        user.bio = bio.strip()
        user.country = country.upper() if country else None
        user.timezone = timezone
        user.locale = locale or None
        user.hide_from_boards = hide_from_boards
        now = utcnow()
        after_commit(
            lambda: events.profile_updated.send(
                None, user_id=user_id, hide_from_boards=hide_from_boards, visibility_changed=visibility_changed,
                timezone=timezone, now=now,
            )
        )
    return user


def set_locale(user_id: int, locale: str) -> None:
    with unit_of_work() as session:
        session.get(User, user_id).locale = locale


def set_role(user_id: int, role: str) -> None:
    if role not in ROLES:
        raise AccountError(_l("Unknown role."), "role")
    with unit_of_work() as session:
        session.get(User, user_id).role = role


def ban(user_id: int, reason: str) -> None:
    with unit_of_work() as session:
        user = session.get(User, user_id)
        user.is_banned = True
        user.ban_reason = reason
        user.session_version = User.session_version + 1


def unban(user_id: int) -> None:
    with unit_of_work() as session:
        user = session.get(User, user_id)
        user.is_banned = False
        user.ban_reason = None


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def get_by_username(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username_key == username_key(username)))


def count_members() -> int:
    return db.session.scalar(select(func.count(User.id))) or 0
