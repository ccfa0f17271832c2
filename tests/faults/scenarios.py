"""Data for the fault tests, made through the real services and committed (the workers are other processes)."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from tests.quality.conftest import answer, items_of, label, make_pack, make_user


def answered_pack(app, tmp_path, *, items: int = 2) -> int:
    """A classification pack whose items are retired by the online vote (two agreeing answers each)."""
    with app.test_request_context():
        pack = make_pack(tmp_path, items=items, labels_per_item=2, max_labels_per_item=2)
        members = [make_user() for _ in range(2)]
        for item in items_of(pack.id, gold=False):
            for member in members:
                answer(member, item.id, label("pos"))
        return pack.id


def mark_aggregation_requested(app, pack_id: int) -> None:
    """The request row committed, the job never enqueued: a crash between the two."""
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling.models import TaskPack

    with app.app_context():
        db.session.execute(update(TaskPack).where(TaskPack.id == pack_id).values(aggregation_requested_at=utcnow()))
        db.session.commit()


def label_methods(app, pack_id: int) -> list[str]:
    from sapien.extensions import db
    from sapien.quality.models import VerifiedLabel

    with app.app_context():
        db.session.remove()
        return sorted(db.session.scalars(select(VerifiedLabel.method).where(VerifiedLabel.pack_id == pack_id)))


def aggregation_requested(app, pack_id: int) -> bool:
    from sapien.extensions import db
    from sapien.labeling.models import TaskPack

    with app.app_context():
        db.session.remove()
        return db.session.get(TaskPack, pack_id).aggregation_requested_at is not None


def member_behind_on_levels(app, xp: int = 1000) -> int:
    """A member whose XP was posted but whose level-ups were lost (listeners off, say)."""
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.progression.models import LevelUp, MemberProgress

    with app.test_request_context():
        user_id = make_user()
        ledger.credit(user_id, "xp", xp, kind="test", key=f"test:xp:{user_id}", now=utcnow())
        db.session.execute(delete(LevelUp).where(LevelUp.user_id == user_id))
        db.session.execute(update(MemberProgress).where(MemberProgress.user_id == user_id).values(level=1))
        db.session.commit()
        return user_id


def progression_of(app, user_id: int) -> dict:
    from sqlalchemy import func

    from sapien.extensions import db
    from sapien.notifications.models import Notification
    from sapien.progression.models import BadgeAward, LevelUp, MemberProgress, MintRequest

    with app.app_context():
        db.session.remove()
        return {
            "levels": sorted(db.session.scalars(select(LevelUp.level).where(LevelUp.user_id == user_id))),
            "level": db.session.scalar(select(MemberProgress.level).where(MemberProgress.user_id == user_id)),
            "badges": sorted(db.session.scalars(select(BadgeAward.badge_slug).where(BadgeAward.user_id == user_id))),
            "mints": db.session.scalar(select(func.count()).select_from(MintRequest).where(MintRequest.user_id == user_id)),
            "level_notes": db.session.scalar(
                select(func.count()).select_from(Notification).where(Notification.user_id == user_id, Notification.kind == "level_up")
            ),
        }
