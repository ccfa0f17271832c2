"""The hooks labeling calls: gold judgement + feedback, review sampling, reputation, accuracy, reviewer gate."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sapien import events
from tests.quality.conftest import NOW, answer, items_of, label, make_pack, make_user


def test_answers_match_per_task_type():
    from sapien.labeling.answers import answers_match

    cls = SimpleNamespace(task_type="text_classification")
    assert answers_match(cls, {"labels": ["a", "b"]}, {"labels": ["b", "a"]})
    assert not answers_match(cls, {"labels": ["a"]}, {"labels": ["a", "b"]})
    cleaning = SimpleNamespace(task_type="text_cleaning")
    assert answers_match(cleaning, {"text": "The cat sat on the mat today at noon with a friend nearby now"}, {"text": "The  cat sat on the mat today at noon with a friend nearby now "})
    assert not answers_match(cleaning, {"text": "The cat sat."}, {"text": "The dog sat."})
    speech = SimpleNamespace(task_type="audio_transcription")
    assert answers_match(speech, {"text": "Hello, world! How are you today, my friend?"}, {"text": "hello world how are you today my friend"})
    assert not answers_match(speech, {"text": "hello world"}, {"text": "goodbye moon"})
    boxes = SimpleNamespace(task_type="bounding_boxes")
    expected = {"boxes": [{"x": 10, "y": 10, "w": 20, "h": 20, "label": "cell"}, {"x": 50, "y": 50, "w": 10, "h": 10, "label": "cell"}]}
    shifted = {"boxes": [{"x": 51, "y": 50, "w": 10, "h": 10, "label": "cell"}, {"x": 12, "y": 11, "w": 20, "h": 20, "label": "cell"}]}
    assert answers_match(boxes, expected, shifted)
    assert not answers_match(boxes, expected, {"boxes": shifted["boxes"][:1]})
    assert not answers_match(boxes, expected, {"boxes": [{**b, "x": b["x"] + 15} for b in expected["boxes"]]})
    assert answers_match(boxes, {"boxes": []}, {"boxes": []})


def test_gold_answer_gives_feedback_reputation_and_event(ctx, tmp_path):
    from sapien.quality.reputation import reputation_of

    pack = make_pack(tmp_path, items=0, gold=2)
    member = make_user()
    first, second = items_of(pack.id, gold=True)
    seen = []
    events.gold_answered.connect(receiver := lambda _s, **kw: seen.append(kw))
    try:
        right = answer(member, first.id, label("pos"))
        wrong = answer(member, second.id, label("neg"))
    finally:
        events.gold_answered.disconnect(receiver)
    assert right.status == "accepted" and right.feedback.correct and right.points > 0
    assert wrong.status == "rejected" and not wrong.feedback.correct and wrong.points == 0
    assert wrong.feedback.expected == {"labels": ["pos"]}
    assert wrong.feedback.explanation == "Great is positive."
    assert [e["correct"] for e in seen] == [True, False]
    assert seen[0]["pack_id"] == pack.id and seen[0]["user_id"] == member
    # 500 → +20 (4 % of the way to 1000) → 520, then −21 (4 % of the way to 0).
    assert reputation_of(member) == 520 - 21
    from sapien.extensions import db
    from sapien.labeling.models import Submission

    rejected = db.session.get(Submission, wrong.submission_id)
    assert rejected.gold_correct is False and rejected.rejection_reason == "Great is positive."


def test_gold_accuracy_by_member_counts_judged_gold(ctx, tmp_path):
    from sapien.quality.reputation import gold_accuracy_by_member

    pack = make_pack(tmp_path, items=1, gold=3)
    good, sloppy = make_user(), make_user()
    for item in items_of(pack.id, gold=True):
        answer(good, item.id, label("pos"))
    for item in items_of(pack.id, gold=True)[:2]:
        answer(sloppy, item.id, label("neg"))
    answer(sloppy, items_of(pack.id, gold=False)[0].id, label("pos"))  # not gold: not counted
    assert gold_accuracy_by_member(1) == {good: (3, 3), sloppy: (0, 2)}
    assert gold_accuracy_by_member(3) == {good: (3, 3)}


def test_reputation_defaults_and_stays_in_range(ctx):
    from sapien.quality.reputation import record_reputation, reputation_of

    member = make_user()
    assert reputation_of(member) == 500
    assert reputation_of(987654) == 500
    for n in range(300):
        record_reputation(member, key=f"t:{n}", reason="gold", good=True, now=NOW)
    assert 990 <= reputation_of(member) <= 1000
    # The same cause moves a score once.
    assert record_reputation(member, key="t:1", reason="gold", good=False, now=NOW) is None
    for n in range(400):
        record_reputation(member, key=f"u:{n}", reason="gold", good=False, now=NOW)
    assert 0 <= reputation_of(member) <= 10


def test_can_review_by_role_or_reputation(ctx, config):
    from sapien.quality.reputation import can_review, record_reputation

    member, reviewer, moderator = make_user(), make_user(role="reviewer"), make_user(role="moderator")
    assert not can_review(member)
    assert can_review(reviewer) and can_review(moderator)
    for n in range(12):
        record_reputation(member, key=f"r:{n}", reason="gold", good=True, now=NOW)
    assert can_review(member)  # 500 → ≥ 650 after a dozen good signals
    config(REVIEWER_MIN_REPUTATION=990)
    assert not can_review(member)


def test_review_sampling_follows_pack_rate(ctx, tmp_path):
    from sapien.extensions import db
    from sapien.quality.models import Review

    always = make_pack(tmp_path, items=2, review_rate_percent=100)
    never = make_pack(tmp_path, items=2, review_rate_percent=0)
    member = make_user()
    sampled = answer(member, items_of(always.id)[0].id, label("pos"))
    assert sampled.status == "pending_review" and sampled.reward_state == "pending"  # its reward waits for the review
    review = db.session.query(Review).filter_by(submission_id=sampled.submission_id).one()
    assert review.status == "queued" and review.author_id == member and not review.is_planted
    assert answer(member, items_of(never.id)[0].id, label("pos")).status == "accepted"


def test_low_reputation_is_reviewed_more(ctx, tmp_path):
    from sapien.quality.judging import review_rate_percent

    pack = SimpleNamespace(review_rate_percent=10)
    assert review_rate_percent(pack, 800) == 10
    assert review_rate_percent(pack, 500) == 10
    assert review_rate_percent(pack, 250) == pytest.approx(55)
    assert review_rate_percent(pack, 0) == 100
    assert review_rate_percent(SimpleNamespace(review_rate_percent=0), 0) == 0
