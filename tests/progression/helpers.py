"""Helpers for progression tests: send the other areas' events the way they do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from sapien import events
from sapien.ledger import service as ledger

_ids = count(1)
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday, ISO week 2026-W47


def accept(user_id: int, now: datetime, task_type: str = "text_classification", xp: int = 0) -> None:
    submission_id = next(_ids)
    if xp:
        ledger.credit(user_id, "xp", xp, kind=f"labeling:{task_type}", key=f"sub:{submission_id}:xp", now=now)
    paid_answer(user_id, now, task_type=task_type, xp=xp, points=3 * xp)


def paid_answer(user_id: int, now: datetime, *, task_type: str = "text_classification", xp: int = 0, points: int = 0) -> None:
    """A settlement batch paid one verified answer given at `now`."""
    events.answers_paid.send(
        None, payouts=[dict(user_id=user_id, answers=1, task_types={task_type: 1}, answered_at=[now], points=points, xp=xp)], now=now
    )


def gold(user_id: int, correct: bool, now: datetime) -> None:
    events.gold_answered.send(None, user_id=user_id, item_id=next(_ids), pack_id=1, task_type="text_classification", correct=correct, now=now)


def review(reviewer_id: int, author_id: int, now: datetime, outcome: str = "accepted") -> None:
    events.review_completed.send(None, reviewer_id=reviewer_id, submission_id=next(_ids), author_id=author_id, outcome=outcome, now=now)


def days(n: int) -> timedelta:
    return timedelta(days=n)


def make_user(username: str, timezone: str = "UTC", role: str = "member") -> int:
    from sapien.accounts import service as accounts

    user = accounts.sign_up(
        accounts.SignUp(username=username, email=f"{username}@example.org", password="correct horse battery", timezone=timezone),
        now=NOW,
        role=role,
    )
    return user.id
