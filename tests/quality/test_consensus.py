"""Free text and boxes get a consensus (the skill-weighted medoid), every answer's agreement with it is
measurable, an item is verified only when two people stand behind its answer, and items whose answers
never converge are flagged to the pack's owner.

There is no transcription or text crowd dataset in ../shared/datasets (they are all classification), so the
texts here are written for the cases they test."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sapien.quality.consensus import (
    agreement_with_consensus,
    box_set_agreement,
    consensus,
    medoid_index,
    verifies,
)
from tests.quality.conftest import NOW, answer, decide_items, items_of, label, make_pack, make_user

TRANSCRIPTION = SimpleNamespace(task_type="audio_transcription", multi_label=False, label_options=[])
CLEANING = SimpleNamespace(task_type="text_cleaning", multi_label=False, label_options=[])
BOXES = SimpleNamespace(task_type="bounding_boxes", multi_label=False, label_options=["cell"])
CLASSES = SimpleNamespace(task_type="text_classification", multi_label=False, label_options=["pos", "neg"])


def _text(value: str) -> dict:
    return {"text": value}


def _box(x, y, w=10, h=10, name="cell") -> dict:
    return {"x": x, "y": y, "w": w, "h": h, "label": name}


# --- the measure ---------------------------------------------------------------------------------

def test_agreement_is_one_minus_the_normalised_word_edit_distance():
    # Transcripts: case and punctuation do not count (as in answers_match); one word of four wrong is 0.75.
    assert agreement_with_consensus(TRANSCRIPTION, _text("Hello, World!"), _text("hello world")) == 1.0
    assert agreement_with_consensus(TRANSCRIPTION, _text("the cat sat down"), _text("the cat sat up")) == pytest.approx(0.75)
    # A missing word is one edit over the longer length.
    assert agreement_with_consensus(TRANSCRIPTION, _text("the cat sat"), _text("the cat sat down")) == pytest.approx(0.75)
    # Cleaning: case and punctuation are what the task fixes, so they count.
    assert agreement_with_consensus(CLEANING, _text("Hello world."), _text("hello world")) == pytest.approx(0.0)
    assert agreement_with_consensus(CLEANING, _text("The cat sat."), _text("The cat sat.")) == 1.0
    assert agreement_with_consensus(TRANSCRIPTION, _text("anything"), None) == 0.0


def test_agreement_of_boxes_is_the_mean_matched_iou_and_of_classes_one_or_zero():
    assert box_set_agreement([_box(0, 0)], [_box(0, 0)]) == 1.0
    assert box_set_agreement([], []) == 1.0
    # Shifted by half its width: IoU = 50 / 150.
    assert box_set_agreement([_box(0, 0)], [_box(5, 0)]) == pytest.approx(1 / 3)
    # One of two boxes missing counts zero for it.
    assert box_set_agreement([_box(0, 0), _box(50, 50)], [_box(0, 0)]) == pytest.approx(0.5)
    # A box of another label does not match.
    assert box_set_agreement([_box(0, 0)], [_box(0, 0, name="nucleus")]) == 0.0
    assert agreement_with_consensus(BOXES, {"boxes": [_box(0, 0)]}, {"boxes": [_box(0, 0), _box(40, 40)]}) == pytest.approx(0.5)
    assert agreement_with_consensus(CLASSES, label("pos"), label("pos")) == 1.0
    assert agreement_with_consensus(CLASSES, label("neg"), label("pos")) == 0.0


# --- the medoid ----------------------------------------------------------------------------------

def test_the_medoid_is_the_answer_closest_to_all_the_others():
    answers = [
        _text("please call stella ask her to bring these things"),
        _text("please call stella and ask her to bring these things"),
        _text("please call stella ask her to bring those things"),
        _text("buy cheap watches online now"),
    ]
    found = consensus(TRANSCRIPTION, answers, [0.7] * 4)
    assert found.index == 0 and found.answer == answers[0]  # one edit from each of the other two transcripts
    assert found.supporting == [0, 1, 2]  # the junk does not match it
    assert found.agreement[0] == 1.0 and found.agreement[3] < 0.2
    assert found.agreement[1] == pytest.approx(1 - 1 / 10)
    assert 0.5 < found.confidence <= 1.0


def test_skill_weighs_the_medoid():
    answers = [_text("one two three four"), _text("one two three five"), _text("one two three five six seven")]
    # Even weights: the middle answer is closest to both others.
    assert medoid_index(TRANSCRIPTION, answers, [1.0, 1.0, 1.0]) == 1
    # A member whose skill dwarfs the others' pulls the consensus to their answer.
    assert medoid_index(TRANSCRIPTION, answers, [0.1, 0.1, 5.0]) == 2


def test_box_medoid_keeps_the_drawing_most_members_agree_with():
    a = [_box(10, 10, 20, 20)]
    near = [_box(12, 10, 20, 22)]
    near2 = [_box(11, 11, 19, 20)]
    stray = [_box(11, 10, 20, 20), _box(80, 80, 5, 5)]
    found = consensus(BOXES, [{"boxes": b} for b in (a, near, stray, near2)], [1.0] * 4)
    assert found.answer == {"boxes": near2}  # the drawing in the middle of the three that agree
    assert found.supporting == [0, 1, 3]  # the one with a stray extra box has a different number of boxes


def test_one_person_is_never_enough_to_verify():
    # A lone answer is its own medoid, but one author is one voice.
    found = consensus(TRANSCRIPTION, [_text("just me")], [0.95])
    assert found.supporting == [0] and not verifies([7])
    # The same member twice is still one voice; a second member, or a reviewer who accepted it, is two.
    assert not verifies([7, 7]) and not verifies([7], [7])
    assert verifies([7, 8]) and verifies([7], [9])


# --- online --------------------------------------------------------------------------------------

def _transcription_pack(tmp_path, *, items: int = 1, owner: int | None = None, **settings):
    from sapien.extensions import db
    from sapien.labeling.models import Campaign
    from tests.labeling.conftest import make_media_pack, wav_bytes

    files = {f"media/{n}.wav": wav_bytes() for n in range(items)}
    rows = [{"external_id": f"clip{n}", "media": f"media/{n}.wav"} for n in range(items)]
    pack, report = make_media_pack(tmp_path, "audio_transcription", labels=(), files=files, rows=rows, **settings)
    assert not report.problems, report.problems
    if owner is not None:
        db.session.get(Campaign, pack.campaign_id).created_by = owner
        db.session.commit()
    return pack


def _verified(item_id: int):
    from sapien.extensions import db
    from sapien.quality.models import VerifiedLabel

    return db.session.get(VerifiedLabel, item_id)


def _item(item_id: int):
    from sapien.extensions import db
    from sapien.labeling.models import Item

    db.session.expire_all()
    return db.session.get(Item, item_id)


def _notifications(user_id: int) -> list:
    from sapien.notifications import service

    return [n for n in service.recent(user_id) if n.kind == "no_consensus"]


def test_two_agreeing_transcripts_of_three_verify_their_medoid(ctx, tmp_path):
    pack = _transcription_pack(tmp_path, labels_per_item=3, max_labels_per_item=3)
    item = items_of(pack.id)[0]
    texts = ["Please call Stella, ask her to bring these things.", "please call stella ask her to bring those things", "no idea"]
    members = [make_user() for _ in texts]
    results = [answer(member, item.id, _text(text)) for member, text in zip(members, texts, strict=True)]
    verified = _verified(item.id)
    assert verified is not None and verified.method == "online_vote"
    found = consensus(pack, [_text(t) for t in texts], [1.0] * 3)
    assert verified.answer == found.answer and verified.answer["text"] in texts[:2]
    assert _item(item.id).status == "retired" and _item(item.id).no_consensus_at is None
    # Every answer's agreement with the label is measurable: the two that agree are close, the third is not.
    agreement = [agreement_with_consensus(pack, _text(t), verified.answer) for t in texts]
    assert min(agreement[:2]) >= 0.85 and agreement[2] == 0.0
    assert sorted(verified.submission_ids) == sorted(r.submission_id for r in results)


def test_a_lone_answer_is_never_verified_even_at_the_packs_maximum(ctx, tmp_path, config):
    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    owner = make_user(role="moderator")
    pack = _transcription_pack(tmp_path, items=2, owner=owner, labels_per_item=1, max_labels_per_item=3)
    first, second = items_of(pack.id)
    # Below the maximum one answer asks for another rather than retiring.
    answer(make_user(), first.id, _text("a confident transcript"))
    assert _verified(first.id) is None and _item(first.id).status == "open" and _item(first.id).labels_target == 2
    # At the maximum (a pack that wants one label) it is flagged, not verified.
    single = _transcription_pack(tmp_path, owner=owner, labels_per_item=1, max_labels_per_item=1)
    lone = items_of(single.id)[0]
    answer(make_user(), lone.id, _text("a confident transcript"))
    assert _verified(lone.id) is None
    assert _item(lone.id).status == "retired" and _item(lone.id).no_consensus_at is not None
    assert _verified(second.id) is None and _item(second.id).no_consensus_at is None  # never answered: nothing to flag


def test_junk_from_one_member_never_becomes_the_label(ctx, tmp_path):
    pack = _transcription_pack(tmp_path, items=3, labels_per_item=3, max_labels_per_item=3)
    spammer = make_user()
    honest = [make_user() for _ in range(2)]
    junk = "buy cheap watches online now"
    for number, item in enumerate(items_of(pack.id)):
        answer(spammer, item.id, _text(junk))
        # The two honest members heard different things on each clip: nothing agrees with anything.
        answer(honest[0], item.id, _text(f"clip {number} the weather will be fine tomorrow"))
        answer(honest[1], item.id, _text(f"number {number} is a song about the sea and sky"))
    for item in items_of(pack.id):
        assert _verified(item.id) is None
        assert _item(item.id).no_consensus_at is not None


def test_a_non_converging_item_is_flagged_its_owner_told_once_and_not_leased_again(app, ctx, tmp_path):
    from sqlalchemy import update

    from sapien.extensions import db
    from sapien.labeling import errors as labeling_errors
    from sapien.labeling import leases, packs
    from sapien.labeling.models import Submission
    from sapien.notifications.views import render_text

    owner = make_user(role="moderator")
    pack = _transcription_pack(tmp_path, owner=owner, labels_per_item=2, max_labels_per_item=3)
    item = items_of(pack.id)[0]
    texts = ["the first thing anyone said", "something else entirely here", "and a third different story"]
    results = [answer(make_user(), item.id, _text(text)) for text in texts]
    # Two disagreeing answers asked for a third; the third did not agree either, and three is the maximum.
    assert _verified(item.id) is None
    flagged = _item(item.id)
    assert flagged.status == "retired" and flagged.no_consensus_at == NOW
    (notification,) = _notifications(owner)
    assert notification.link == f"/manage/packs/{pack.slug}/results"
    assert "clip0" in render_text(notification) and pack.name in render_text(notification) and "3" in render_text(notification)
    # The decision made again (a retried job) changes nothing and tells nobody twice.
    db.session.execute(update(Submission).where(Submission.id == results[-1].submission_id).values(awaiting_decision=True))
    db.session.commit()
    assert decide_items() == 1
    assert len(_notifications(owner)) == 1 and _verified(item.id) is None
    # Nobody is offered the item again.
    with pytest.raises(labeling_errors.NoWorkLeft):
        leases.lease_next_item(make_user(), pack.id, NOW)
    assert packs.pack_counts([pack.id])[pack.id].no_consensus == 1


def test_classification_never_verifies_a_label_only_one_answer_gave(ctx, tmp_path, config):
    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2)
    item = items_of(pack.id)[0]
    answer(make_user(), item.id, label("pos"))
    answer(make_user(), item.id, label("neg"))
    assert _verified(item.id) is None and _item(item.id).no_consensus_at is not None
    # Two that agree are verified as before.
    agreeing = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2)
    other = items_of(agreeing.id)[0]
    answer(make_user(), other.id, label("pos"))
    answer(make_user(), other.id, label("pos"))
    assert _verified(other.id).answer == label("pos")


def test_a_reviewers_acceptance_is_the_second_voice_a_lone_answer_needs(ctx, tmp_path, config):
    from sapien.quality import reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    pack = make_pack(tmp_path, rows=[{"external_id": "t1", "text": "teh cat sat"}], task_type="text_cleaning",
                     labels_per_item=1, max_labels_per_item=1, review_rate_percent=100)
    item = items_of(pack.id)[0]
    answer(make_user(), item.id, _text("The cat sat."))
    assert _verified(item.id) is None  # waiting for its review
    reviewer = make_user(role="reviewer")
    review = reviews.claim_next_review(reviewer, NOW)
    reviews.decide_review(review.id, reviewer, outcome="accepted", now=NOW)
    assert decide_items() == 1  # the accept queued its item's decision
    assert _verified(item.id).answer == _text("The cat sat.") and _item(item.id).no_consensus_at is None


def test_the_answers_of_an_item_that_never_converged_go_to_review_and_an_accept_settles_it(ctx, tmp_path, config):
    """No answer waits forever: a split item's waiting answers are reviewed; the accepted one is the second
    voice, the item gets its label, the answer is paid and the one that disagrees earns nothing."""
    from sqlalchemy import select

    from jobs.labeling import settle_rewards
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.ledger import service as ledger
    from sapien.quality import reviews
    from sapien.quality.models import Review

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2, reward_points=10)
    item = items_of(pack.id)[0]
    right, wrong = make_user(), make_user()
    kept = answer(right, item.id, label("pos"))
    dropped = answer(wrong, item.id, label("neg"))
    assert _item(item.id).no_consensus_at is not None
    queued = db.session.scalars(select(Review.submission_id).where(Review.status == "queued").order_by(Review.submission_id)).all()
    assert queued == [kept.submission_id, dropped.submission_id]
    assert settle_rewards() == 0  # nothing is verified yet

    reviewer = make_user(role="reviewer")
    review = reviews.claim_next_review(reviewer, NOW)
    assert review.submission_id == kept.submission_id  # oldest first
    reviews.decide_review(review.id, reviewer, outcome="accepted", now=NOW)
    assert _verified(item.id).answer == label("pos") and _item(item.id).no_consensus_at is None
    db.session.expire_all()
    states = {s.id: s.reward_state for s in db.session.scalars(select(Submission).where(Submission.item_id == item.id))}
    assert states == {kept.submission_id: "verified", dropped.submission_id: "not_verified"}
    assert settle_rewards() == 1
    assert ledger.balance(right, "points") == 10 and ledger.balances(wrong)["points"] == 0


def test_a_moderator_sets_the_label_of_an_item_whose_answers_never_agreed(ctx, tmp_path, config):
    from sqlalchemy import select

    from jobs.labeling import settle_rewards
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.ledger import service as ledger
    from sapien.moderation.models import AuditLog
    from sapien.quality import overrides

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2, reward_points=10)
    item = items_of(pack.id)[0]
    right, wrong, moderator = make_user(), make_user(), make_user(role="moderator")
    kept = answer(right, item.id, label("pos"))
    dropped = answer(wrong, item.id, label("neg"))
    assert _verified(item.id) is None and _item(item.id).no_consensus_at is not None
    overrides.override_label(pack.id, item.id, moderator_id=moderator, answer="pos", reason="Read it: it is praise.", now=NOW)
    verified = _verified(item.id)
    assert verified.answer == label("pos") and verified.method == "moderator_override" and _item(item.id).no_consensus_at is None
    db.session.expire_all()
    states = {s.id: s.reward_state for s in db.session.scalars(select(Submission).where(Submission.item_id == item.id))}
    assert states == {kept.submission_id: "verified", dropped.submission_id: "not_verified"}
    assert settle_rewards() == 1 and ledger.balance(right, "points") == 10 and ledger.balances(wrong)["points"] == 0
    assert db.session.scalars(select(AuditLog.reason).where(AuditLog.action == "label.override")).one().endswith("Read it: it is praise.")


# --- batch and results ---------------------------------------------------------------------------

def test_batch_gives_the_online_label_and_leaves_unconverged_items_unlabelled(ctx, tmp_path):
    from sapien.extensions import db
    from sapien.quality import batch
    from sapien.quality.models import VerifiedLabel

    rows = [{"external_id": f"t{n}", "text": f"teh cat {n} sat"} for n in range(3)]
    pack = make_pack(tmp_path, rows=rows, task_type="text_cleaning", labels_per_item=3, max_labels_per_item=3)
    converging, scattered, lone = items_of(pack.id)
    members = [make_user() for _ in range(3)]
    for member, text in zip(members, ("The cat 0 sat.", "The cat 0 sat!", "The cat 0 sat."), strict=True):
        answer(member, converging.id, _text(text))
    for member, text in zip(members, ("one reading", "another reading", "a third reading"), strict=True):
        answer(member, scattered.id, _text(text))
    answer(members[0], lone.id, _text("The cat 2 sat."))  # still open, wanting two more answers
    online_label = db.session.get(VerifiedLabel, converging.id)
    assert online_label is not None and online_label.answer == _text("The cat 0 sat.")
    report = batch.aggregate_pack(pack.id, now=NOW, finalize=True)
    db.session.expire_all()
    assert report.method == "medoid" and report.labels_written == 1
    assert db.session.get(VerifiedLabel, converging.id).answer == online_label.answer
    assert db.session.get(VerifiedLabel, scattered.id) is None  # flagged online: left to its owner
    assert db.session.get(VerifiedLabel, lone.id) is None  # finalize labels open items, never from one answer


def test_results_show_each_members_agreement_and_the_unconverged_count(ctx, tmp_path):
    from sapien.quality import results

    pack = _transcription_pack(tmp_path, items=2, labels_per_item=2, max_labels_per_item=2)
    agreed, scattered = items_of(pack.id)
    careful, sloppy = make_user(), make_user()
    answer(careful, agreed.id, _text("one two three four five six seven eight nine ten"))
    answer(sloppy, agreed.id, _text("one two three four five six seven eight nine then"))
    answer(careful, scattered.id, _text("a"))
    answer(sloppy, scattered.id, _text("b"))
    report = results.pack_results(pack.id)
    assert report.items_no_consensus == 1 and report.items_verified == 1
    by_user = {m.user_id: m for m in report.members}
    # The label is one of the two transcripts: one member matches it exactly, the other is one word off.
    assert sorted(m.mean_agreement for m in by_user.values()) == [pytest.approx(0.9), 1.0]


def test_the_pack_page_tells_its_owner_and_moderators_how_many_items_never_converged(app, make_member, tmp_path):
    from sapien.extensions import db
    from sapien.labeling.models import Campaign

    owner, member = make_member(role="moderator"), make_member()
    with app.test_request_context():
        pack = _transcription_pack(tmp_path, owner=owner.id, labels_per_item=1, max_labels_per_item=1)
        slug = pack.slug
        answer(make_user(), items_of(pack.id)[0].id, _text("only one answer"))
        assert db.session.get(Campaign, pack.campaign_id).created_by == owner.id
    page = owner.client.get(f"/packs/{slug}").get_data(as_text=True)
    assert "Items without consensus" in page and 'id="pack-no-consensus">1' in page
    assert f"/manage/packs/{slug}/results" in page
    assert "Items without consensus" not in member.client.get(f"/packs/{slug}").get_data(as_text=True)
