"""Qualification exams: state, attempts and answers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from sapien.database import as_utc, unit_of_work
from sapien.extensions import db
from sapien.labeling.answers import answers_match, validate_answer
from sapien.labeling.errors import ExamError, LabelingNotFound
from sapien.labeling.models import (
    ExamAttempt,
    Item,
    Media,
    TaskPack,
)


def _exam_cooldown() -> timedelta:
    return timedelta(hours=int(current_app.config.get("EXAM_RETAKE_COOLDOWN_HOURS", 12)))


@dataclass(frozen=True)
class ExamState:
    pack: TaskPack
    attempt: ExamAttempt | None  # the attempt in progress, or the latest finished one
    passed: bool
    retake_at: datetime | None  # when a failed member may try again
    next_item: Item | None
    next_media: Media | None
    answered: int
    total: int


def exam_state(user_id: int, pack_id: int, now: datetime) -> ExamState:
    pack = db.session.get(TaskPack, pack_id)
    if pack is None:
        raise LabelingNotFound(_l("That pack does not exist."))
    attempt = db.session.scalar(
        select(ExamAttempt).where(ExamAttempt.pack_id == pack.id, ExamAttempt.user_id == user_id).order_by(ExamAttempt.id.desc()).limit(1)
    )
    passed = bool(
        db.session.scalar(
            select(ExamAttempt.id).where(ExamAttempt.pack_id == pack.id, ExamAttempt.user_id == user_id, ExamAttempt.passed.is_(True)).limit(1)
        )
    )
    retake_at = None
    next_item = next_media = None
    answered = total = 0
    if attempt is not None:
        total = len(attempt.item_ids)
        answered = len(attempt.answers)
        if attempt.finished_at is None:
            next_id = next((item_id for item_id in attempt.item_ids if str(item_id) not in attempt.answers), None)
            if next_id is not None:
                next_item = db.session.get(Item, next_id)
                next_media = db.session.get(Media, next_item.media_id) if next_item and next_item.media_id else None
        elif not passed:
            when = as_utc(attempt.finished_at) + _exam_cooldown()
            retake_at = when if when > now else None
    return ExamState(pack, attempt, passed, retake_at, next_item, next_media, answered, total)


@dataclass(frozen=True)
class ExamQuestion:
    """One question of a finished attempt, as gold feedback shows it: the member's answer and the right one."""

    number: int
    item: Item
    media: Media | None
    answer: dict | None
    expected: dict | None
    correct: bool
    explanation: str


def exam_review(attempt: ExamAttempt) -> list[ExamQuestion]:
    """Every question of a finished attempt, in the order asked (two queries, whatever its size)."""
    if attempt.finished_at is None:
        return []
    items = {item.id: item for item in db.session.scalars(select(Item).where(Item.id.in_(attempt.item_ids)))}
    media_ids = [item.media_id for item in items.values() if item.media_id]
    media = {m.id: m for m in db.session.scalars(select(Media).where(Media.id.in_(media_ids)))} if media_ids else {}
    questions = []
    for number, item_id in enumerate(attempt.item_ids, start=1):
        item = items.get(item_id)
        if item is None:
            continue
        given = attempt.answers.get(str(item_id)) or {}
        questions.append(
            ExamQuestion(number, item, media.get(item.media_id) if item.media_id else None, given.get("answer"), item.gold_answer,
                         bool(given.get("correct")), item.gold_explanation or "")
        )
    return questions


def start_exam(user_id: int, pack_id: int, now: datetime) -> ExamAttempt:
    """Begin (or resume) the pack's qualification exam: a random set of its exam items, in order."""
    with unit_of_work() as session:
        state = exam_state(user_id, pack_id, now)
        pack = state.pack
        if state.passed:
            raise ExamError(_l("You already passed this exam."))
        if state.attempt is not None and state.attempt.finished_at is None:
            return state.attempt
        if state.retake_at is not None:
            raise ExamError(_l("You can retake the exam after a short break: come back later today."))
        exam_ids = list(session.scalars(select(Item.id).where(Item.pack_id == pack.id, Item.is_exam.is_(True), Item.status == "open")))
        if not exam_ids:
            raise ExamError(_l("This pack's exam has no questions yet."))
        chosen = random.sample(exam_ids, min(pack.exam_size, len(exam_ids)))
        attempt = ExamAttempt(pack_id=pack.id, user_id=user_id, item_ids=chosen, answers={}, correct=0, started_at=now)
        session.add(attempt)
        session.flush()
    return attempt


def answer_exam_item(user_id: int, attempt_id: int, item_id: int, answer: dict, *, now: datetime) -> ExamAttempt:
    """Record the answer to the exam's current question; the last answer scores the attempt."""
    with unit_of_work() as session:
        attempt = session.scalar(select(ExamAttempt).where(ExamAttempt.id == attempt_id).with_for_update())
        if attempt is None or attempt.user_id != user_id:
            raise LabelingNotFound(_l("That exam is not yours."))
        if attempt.finished_at is not None:
            raise ExamError(_l("This exam attempt is already finished."))
        expected = next((i for i in attempt.item_ids if str(i) not in attempt.answers), None)
        if expected != item_id:
            raise ExamError(_l("Answer the exam's questions in order."))
        item = session.get(Item, item_id)
        pack = session.get(TaskPack, attempt.pack_id)
        canonical = validate_answer(pack, item, answer)
        correct = bool(answers_match(pack, item.gold_answer, canonical))
        attempt.answers = {**attempt.answers, str(item_id): {"answer": canonical, "correct": correct}}
        attempt.correct += int(correct)
        if len(attempt.answers) == len(attempt.item_ids):
            attempt.finished_at = now
            attempt.passed = attempt.correct * 100 >= pack.exam_pass_percent * len(attempt.item_ids)
    return attempt
