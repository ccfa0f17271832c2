"""The treasury: the platform's own ledger account (slashed stake and the treasury's part of revenue).

It is a user row no one can sign in as or sign up as ("~" is not allowed in member names), hidden from
boards, made the first time it is needed.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select

from sapien.accounts.models import User
from sapien.accounts.service import hash_password
from sapien.database import dialect_insert, unit_of_work
from sapien.extensions import db

TREASURY_USERNAME = "~treasury"


def treasury_id(now: datetime) -> int:
    found = db.session.scalar(select(User.id).where(User.username_key == TREASURY_USERNAME))
    if found is not None:
        return found
    with unit_of_work() as session:
        session.execute(
            dialect_insert(User).values(
                username=TREASURY_USERNAME, username_key=TREASURY_USERNAME, username_skeleton=TREASURY_USERNAME,
                email="treasury@sapien.invalid", password_hash=hash_password(secrets.token_urlsafe(32)), display_name="Treasury",
                bio="", role="member", timezone="UTC", hide_from_boards=True, session_version=1, is_banned=False, created_at=now,
            ).on_conflict_do_nothing(index_elements=[User.username_key])
        )
    return db.session.scalar(select(User.id).where(User.username_key == TREASURY_USERNAME))


def existing_treasury_id() -> int | None:
    return db.session.scalar(select(User.id).where(User.username_key == TREASURY_USERNAME))
