"""Appeals: a member contests a rejection; a moderator upholds or overturns it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from sapien.accounts.models import User
from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.labeling import submissions
from sapien.labeling.models import Item, Media, Submission, TaskPack
from sapien.moderation import service as moderation
from sapien.quality.errors import AlreadyAppealed, AppealError, SubmissionNotFound
from sapien.quality.models import Appeal, ReputationEvent, Review
from sapien.quality.reputation import apply_reputation

APPEAL_MESSAGE_MAX = 2000


@dataclass
class SubmissionView:
    submission: Submission
    item: Item
    pack: TaskPack
    media: Media | None
    appeal: Appeal | None
    review: Review | None

    @property
    def can_appeal(self) -> bool:
        return self.submission.status == "rejected" and self.appeal is None


def submission_view(submission_id: int, user_id: int) -> SubmissionView:
    """A member's own submission with why it was decided so (404 for anyone else's)."""
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.user_id != user_id:
        raise SubmissionNotFound(_l("There is no such submission."))
    item = db.session.get(Item, submission.item_id)
    pack = db.session.get(TaskPack, submission.pack_id)
    media = db.session.get(Media, item.media_id) if item.media_id else None
    appeal = db.session.scalar(select(Appeal).where(Appeal.submission_id == submission.id))
    review = db.session.scalar(select(Review).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))
    return SubmissionView(submission, item, pack, media, appeal, review)


def appeal_submission(submission_id: int, user_id: int, message: str, *, now: datetime) -> Appeal:
    """Contest a rejection, once."""
    with unit_of_work() as session:
        submission = session.get(Submission, submission_id, with_for_update=True)
        if submission is None or submission.user_id != user_id:
            raise SubmissionNotFound(_l("There is no such submission."))
        if submission.status != "rejected":
            raise AppealError(_l("Only a rejected submission can be appealed."))
        if session.scalar(select(Appeal.id).where(Appeal.submission_id == submission.id)) is not None:
            raise AlreadyAppealed(_l("You already appealed this rejection; each rejection can be appealed once."))
        message = (message or "").strip()
        if not message:
            raise AppealError(_l("Tell the moderators why you think your answer was right."), field="message")
        if len(message) > APPEAL_MESSAGE_MAX:
            raise AppealError(_l("Keep your appeal under %(max)s characters.", max=APPEAL_MESSAGE_MAX), field="message")
        appeal = Appeal(submission_id=submission.id, user_id=user_id, message=message, status="open", created_at=now)
        try:
            with session.begin_nested():
                session.add(appeal)
        except IntegrityError:
            raise AlreadyAppealed(_l("You already appealed this rejection; each rejection can be appealed once.")) from None
        return appeal


@dataclass
class AppealRow:
    appeal: Appeal
    submission: Submission
    item: Item
    pack: TaskPack
    media: Media | None
    author: User
    review: Review | None


def appeals_for_moderators(status: str = "open", limit: int = 50) -> list[AppealRow]:
    rows = db.session.execute(
        select(Appeal, Submission, Item, TaskPack, User)
        .join(Submission, Submission.id == Appeal.submission_id)
        .join(Item, Item.id == Submission.item_id)
        .join(TaskPack, TaskPack.id == Submission.pack_id)
        .join(User, User.id == Appeal.user_id)
        .where(Appeal.status == status)
        .order_by(Appeal.created_at, Appeal.id)
        .limit(limit)
    ).all()
    result = []
    for appeal, submission, item, pack, author in rows:
        media = db.session.get(Media, item.media_id) if item.media_id else None
        review = db.session.scalar(select(Review).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))
        result.append(AppealRow(appeal, submission, item, pack, media, author, review))
    return result


def decide_appeal(appeal_id: int, moderator_id: int, *, overturn: bool, note: str, now: datetime) -> Appeal:
    """Overturn (accept the submission, which verifies it for the settlement batch to pay, and give back the
    reputation the rejection took) or uphold (it stays rejected). Audited."""

    with unit_of_work() as session:
        appeal = session.get(Appeal, appeal_id, with_for_update=True)
        if appeal is None:
            raise AppealError(_l("There is no such appeal."))
        if appeal.status != "open":
            raise AppealError(_l("This appeal has already been decided."))
        if appeal.user_id == moderator_id:
            raise AppealError(_l("You cannot decide an appeal of your own work."))
        note = (note or "").strip()
        if not overturn and not note:
            raise AppealError(_l("Tell the member why the rejection stands."), field="note")
        if len(note) > APPEAL_MESSAGE_MAX:
            raise AppealError(_l("Keep the note under %(max)s characters.", max=APPEAL_MESSAGE_MAX), field="note")
        submission = session.get(Submission, appeal.submission_id)
        appeal.status = "overturned" if overturn else "upheld"
        appeal.decided_by, appeal.decision_note, appeal.decided_at = moderator_id, note, now
        if overturn:
            if submission.is_gold:
                submission.gold_correct = True
            submissions.accept_submission(submission.id, now=now)
            review_keys = [f"review:{rid}" for rid in session.scalars(select(Review.id).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))]
            taken = session.scalar(
                select(func.coalesce(func.sum(ReputationEvent.delta), 0)).where(
                    ReputationEvent.user_id == submission.user_id, ReputationEvent.key.in_([f"gold:{submission.id}", *review_keys])
                )
            ) or 0
            if taken < 0:
                apply_reputation(submission.user_id, f"appeal:{appeal.id}", "appeal", now, delta=-int(taken))
        moderation.record(moderator_id, "appeal.overturn" if overturn else "appeal.uphold", f"submission:{submission.id}", note, now)
        return appeal
