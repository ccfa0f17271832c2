"""Aggregation methods on small known cases, adaptive redundancy, and Krippendorff's alpha."""

from __future__ import annotations

import pytest

from sapien.quality.aggregation import (
    Vote,
    aggregate_classification,
    calibrated_classification,
    dawid_skene,
    krippendorff_alpha_nominal,
    online_posterior,
    pooled_confusion,
    shrunk_confusion,
)
from sapien.quality.calibration import CALIBRATION_PRIOR, apply_calibration, fit_calibration, reliability
from tests.quality.conftest import NOW, answer, items_of, label, make_pack, make_user


def _votes(rows):
    return [Vote(item, user, n, value) for n, (item, user, value) in enumerate(rows)]


def test_majority_vote_and_wawa_pick_the_most_common_label():
    rows = [(1, 1, "a"), (1, 2, "a"), (1, 3, "b"), (2, 1, "b"), (2, 2, "b"), (2, 3, "b")]
    for method in ("majority_vote", "wawa", "crowdkit_dawid_skene", "dawid_skene"):
        result = aggregate_classification(_votes(rows), method=method)
        assert result[1].value == "a" and result[2].value == "b", method
        assert result[2].confidence >= result[1].confidence
    weighted = aggregate_classification(_votes(rows[:3]), method="majority_vote", skills={1: 0.1, 2: 0.1, 3: 0.9})
    assert weighted[1].value == "b"


def test_dawid_skene_learns_who_to_trust():
    # Members 1-3 are always right; 4 and 5 always answer "b". Where 1-3 are split... they never are,
    # but on items 6-8 only one reliable member answered, against both spammers.
    rows = []
    truth = {i: ("a" if i % 2 else "b") for i in range(1, 6)}
    for item, value in truth.items():
        rows += [(item, 1, value), (item, 2, value), (item, 3, value), (item, 4, "b"), (item, 5, "b")]
    for item in (6, 7, 8):
        rows += [(item, 1, "a"), (item, 4, "b"), (item, 5, "b")]
    majority = aggregate_classification(_votes(rows), method="majority_vote")
    learned = dawid_skene(_votes(rows))
    assert all(majority[i].value == "b" for i in (6, 7, 8))
    assert all(learned[i].value == "a" for i in (6, 7, 8))
    assert all(learned[i].value == truth[i] for i in truth)


def test_dawid_skene_uses_gold_to_start():
    # Two members disagree on everything; gold says member 2 is the reliable one.
    rows = [(i, 1, "a") for i in range(1, 5)] + [(i, 2, "b") for i in range(1, 5)]
    gold = [(2, "b", "b")] * 5 + [(1, "a", "b")] * 5
    assert all(r.value == "b" for r in dawid_skene(_votes(rows), gold_votes=gold).values())


def test_krippendorff_alpha_nominal_known_values():
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"], ["a", "a"]]) == pytest.approx(1.0)
    # Krippendorff's worked example (nominal, 4 coders, 12 units) gives 0.743.
    units = [
        [1, 1, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
        [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [5, 5, 5], [1, 1], [3],
    ]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=0.001)
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None


def _skilled(pack, gold_items, n_right: int):
    member = make_user()
    for item in gold_items[:n_right]:
        answer(member, item.id, label("pos"))
    return member


def test_adaptive_redundancy_retires_confident_items_early(ctx, tmp_path, config):
    from sapien.extensions import db
    from sapien.labeling.models import Item
    from sapien.quality.models import VerifiedLabel

    config(QUALITY_CONFIDENCE_THRESHOLD=0.95)
    pack = make_pack(tmp_path, items=2, gold=6, labels_per_item=2, max_labels_per_item=5)
    golds = items_of(pack.id, gold=True)
    first, second = _skilled(pack, golds, 6), _skilled(pack, golds, 6)
    item = items_of(pack.id, gold=False)[0]
    answer(first, item.id, label("neg"))
    answer(second, item.id, label("neg"))
    db.session.expire_all()
    assert db.session.get(Item, item.id).status == "retired"
    verified = db.session.get(VerifiedLabel, item.id)
    assert verified.answer == label("neg") and verified.labels_used == 2 and verified.confidence >= 0.95
    assert verified.contributor_ids == sorted([first, second]) and verified.method == "online_vote"


def test_adaptive_redundancy_asks_more_when_members_disagree(ctx, tmp_path, config):
    from sapien.extensions import db
    from sapien.labeling.models import Item
    from sapien.quality.models import VerifiedLabel

    config(QUALITY_CONFIDENCE_THRESHOLD=0.95)
    # Gold of both labels: members known to be right on each (one seen right on "pos" only is, for all
    # the pack knows, a member who answers "pos" to everything).
    rows = [{"external_id": "i0", "text": "Item."}]
    rows += [{"external_id": f"g{value}{n}", "text": "Gold.", "gold": {"labels": [value]}} for value in ("pos", "neg") for n in range(3)]
    pack = make_pack(tmp_path, rows=rows, labels_per_item=2, max_labels_per_item=3)
    golds = items_of(pack.id, gold=True)
    members = []
    for _ in range(3):
        member = make_user()
        for gold_item in golds:
            answer(member, gold_item.id, gold_item.gold_answer)
        members.append(member)
    item = items_of(pack.id, gold=False)[0]
    answer(members[0], item.id, label("neg"))
    answer(members[1], item.id, label("pos"))
    db.session.expire_all()
    row = db.session.get(Item, item.id)
    assert row.status == "open" and row.labels_target == 3
    assert db.session.get(VerifiedLabel, item.id) is None
    answer(members[2], item.id, label("pos"))
    db.session.expire_all()
    assert db.session.get(Item, item.id).status == "retired"  # at the maximum: retires with its best answer
    assert db.session.get(VerifiedLabel, item.id).answer == label("pos")


def test_batch_aggregation_writes_labels_with_provenance(ctx, tmp_path, config):
    from sapien.extensions import db
    from sapien.quality import batch
    from sapien.quality import errors as quality_errors
    from sapien.quality.models import VerifiedLabel

    config(QUALITY_CONFIDENCE_THRESHOLD=0.999)
    pack = make_pack(tmp_path, items=2, gold=1, labels_per_item=3, max_labels_per_item=3)
    members = [make_user() for _ in range(3)]
    first, second = items_of(pack.id, gold=False)
    for member, value in zip(members, ("pos", "pos", "neg"), strict=True):
        answer(member, first.id, label(value))
    answer(members[0], second.id, label("neg"))
    report = batch.aggregate_pack(pack.id, now=NOW)
    assert report.labels_written == 1 and report.items == 2  # only the retired item without finalize
    label_row = db.session.get(VerifiedLabel, first.id)
    assert label_row.answer == label("pos") and label_row.method == "calibrated" and label_row.labels_used == 3
    assert label_row.contributor_ids == sorted(members) and len(label_row.submission_ids) == 3
    assert batch.aggregate_pack(pack.id, now=NOW, finalize=True).labels_written == 2
    assert db.session.get(VerifiedLabel, second.id).answer == label("neg")
    for method in ("dawid_skene", "wawa", "majority_vote", "crowdkit_dawid_skene"):
        assert batch.aggregate_pack(pack.id, now=NOW, method=method).labels_written == 1
    with pytest.raises(quality_errors.QualityError):
        batch.aggregate_pack(pack.id, now=NOW, method="medoid")


def test_batch_aggregation_of_texts_and_boxes(ctx, tmp_path):
    from sapien.extensions import db
    from sapien.quality import batch
    from sapien.quality.models import VerifiedLabel

    rows = [{"external_id": "t1", "text": "teh cat sat"}]
    pack = make_pack(tmp_path, rows=rows, task_type="text_cleaning", labels_per_item=3, max_labels_per_item=3)
    item = items_of(pack.id)[0]
    for text in ("the cat sat", "the cat sat", "the cat sat."):
        answer(make_user(), item.id, {"text": text})
    batch.aggregate_pack(pack.id, now=NOW, finalize=True)
    verified = db.session.get(VerifiedLabel, item.id)
    assert verified.answer == {"text": "the cat sat"} and verified.method == "medoid"


# --- calibration ---------------------------------------------------------------------------------

def test_reliability_table_and_expected_calibration_error():
    # 4 labels said 55 % sure, 2 right; 6 said 95 % sure, all right: |0.55 − 0.5| × 0.4 + |0.95 − 1| × 0.6
    error, rows = reliability([0.55] * 4 + [0.95] * 6, [True, False, True, False] + [True] * 6)
    assert error == pytest.approx(0.05)
    assert [(row.low, row.count, row.accuracy) for row in rows] == [(pytest.approx(0.5), 4, 0.5), (pytest.approx(0.9), 6, 1.0)]
    assert reliability([1.0, 1.0], [True, False])[0] == pytest.approx(0.5)  # a confidence of exactly 1 is in the last bin
    assert reliability([], []) == (0.0, [])


def test_calibration_learns_how_often_sure_labels_are_right():
    assert fit_calibration([], []) == CALIBRATION_PRIOR  # nothing to learn from: the prior
    # 400 gold items the model calls 99.99 % sure, of which only 70 % are right
    a, b = fit_calibration([0.9999] * 400, [n % 10 < 7 for n in range(400)])
    assert apply_calibration([0.9999], (a, b))[0] == pytest.approx(0.7, abs=0.02)
    stated = apply_calibration([0.6, 0.9, 0.999, 1.0], (a, b))
    assert list(stated) == sorted(stated)  # still ordered: a surer posterior never says less


def test_calibrated_classification_says_how_often_it_is_right():
    # 300 items, 3 answers each from 30 members right 70 % of the time (mistakes spread over 3 classes),
    # 60 gold items. Dawid-Skene's own posterior claims far more than it delivers; calibrated, the gap shrinks by over a
    # third (the gold fit holds its intercept near 0, GOLD_FIT_PRIOR: on the real crowds the model chosen on gold
    # flatters itself there, so a freely fitted intercept says too much; here that costs a little).
    import numpy as np

    rng = np.random.default_rng(3)
    truth = {item: int(rng.integers(4)) for item in range(300)}
    votes = []
    for item, true in truth.items():
        for member in rng.choice(30, 3, replace=False):
            given = true if rng.random() < 0.7 else int(rng.choice([c for c in range(4) if c != true]))
            votes.append(Vote(item, int(member), len(votes), given))
    gold = {item: truth[item] for item in range(60)}
    result = calibrated_classification(votes, gold_truth=gold)
    raw = dawid_skene(votes)
    scored = [item for item in truth if item not in gold]
    right = [result.labels[i].value == truth[i] for i in scored]
    calibrated_error = reliability([result.labels[i].confidence for i in scored], right)[0]
    raw_error = reliability([raw[i].confidence for i in scored], [raw[i].value == truth[i] for i in scored])[0]
    assert result.model in result.gold_accuracy and result.gold_accuracy[result.model] == max(result.gold_accuracy.values())
    assert calibrated_error < raw_error * 0.65


# --- the online posterior: shrinkage toward the crowd -----------------------------------------------

def test_a_member_with_no_history_counts_as_the_crowd_and_history_outweighs_it():
    import numpy as np

    crowd = pooled_confusion(2, np.array([[30.0, 30.0], [30.0, 30.0]]))  # the crowd is a coin on gold
    assert np.allclose(shrunk_confusion(None, crowd), crowd)
    veteran = shrunk_confusion(np.array([[100.0, 0.0], [0.0, 100.0]]), crowd)
    assert veteran[0, 0] > 0.99 and crowd[0, 0] < 0.55
    # A newcomer's answer says next to nothing about a coin-flipping crowd; a veteran's says a lot.
    assert online_posterior(2, [(0, None)], crowd).posterior[0] < 0.55
    assert online_posterior(2, [(0, np.array([[100.0, 0.0], [0.0, 100.0]]))], crowd).posterior[0] > 0.99


def _four_class_pack(tmp_path, gold_per_class: int = 6, **settings):
    rows = [{"external_id": f"i{n}", "text": f"Item {n}."} for n in range(2)]
    rows += [{"external_id": f"g{c}{n}", "text": f"Gold {c}{n}.", "gold": {"labels": [c]}} for c in "abcd" for n in range(gold_per_class)]
    return make_pack(tmp_path, rows=rows, label_options=["a", "b", "c", "d"], **settings)


def test_newcomers_who_agree_do_not_retire_an_item_veterans_do(ctx, tmp_path, config):
    # Two members without history agreeing on one of four classes: a symmetric prior made each a 72.5 %
    # worker and the pair 95.4 % sure, which retired the item. Calibrated, it is about 80 %.
    from sapien.extensions import db
    from sapien.labeling.models import Item

    config(QUALITY_CONFIDENCE_THRESHOLD=0.95)
    pack = _four_class_pack(tmp_path, labels_per_item=2, max_labels_per_item=4)
    first, second = items_of(pack.id, gold=False)
    answer(make_user(), first.id, label("b"))
    answer(make_user(), first.id, label("b"))
    db.session.expire_all()
    assert db.session.get(Item, first.id).status == "open" and db.session.get(Item, first.id).labels_target == 3
    golds = items_of(pack.id, gold=True)
    veterans = []
    for _ in range(2):
        member = make_user()
        for gold_item in golds:
            answer(member, gold_item.id, gold_item.gold_answer)
        veterans.append(member)
    for member in veterans:
        answer(member, second.id, label("c"))
    db.session.expire_all()
    assert db.session.get(Item, second.id).status == "retired"


def test_one_member_never_retires_an_item_alone(ctx, tmp_path, config):
    # Right on all 40 gold items, so sure of themselves that one answer used to reach 96 %.
    from sapien.extensions import db
    from sapien.labeling.models import Item

    config(QUALITY_CONFIDENCE_THRESHOLD=0.95)
    pack = _four_class_pack(tmp_path, gold_per_class=10, labels_per_item=1, max_labels_per_item=3)
    member = make_user()
    for gold_item in items_of(pack.id, gold=True):
        answer(member, gold_item.id, gold_item.gold_answer)
    item = items_of(pack.id, gold=False)[0]
    answer(member, item.id, label("a"))
    db.session.expire_all()
    assert db.session.get(Item, item.id).status == "open" and db.session.get(Item, item.id).labels_target == 2



def test_a_finished_pack_labels_a_flagged_item_three_answers_stand_behind_but_pays_none_of_them(ctx, tmp_path):
    """A 2-to-1 item flagged as never converging gets the batch model's label when the pack is finalized (a
    client's dataset needs every item it can have); a 1-to-1 split keeps none. Both stay flagged, no answer
    of either is paid, and neither is announced as verified."""
    from sqlalchemy import select, update

    from sapien import events
    from sapien.extensions import db
    from sapien.labeling.models import Item, Submission
    from sapien.quality import batch
    from sapien.quality.models import VerifiedLabel

    pack = make_pack(tmp_path, items=2, labels_per_item=3, max_labels_per_item=3)
    three, two = items_of(pack.id, gold=False)
    ana, bob, cyd = make_user(), make_user(), make_user()
    for member, name in ((ana, "pos"), (bob, "pos"), (cyd, "neg")):
        answer(member, three.id, label(name))
    for member, name in ((ana, "pos"), (bob, "neg")):
        answer(member, two.id, label(name))
    db.session.execute(update(Item).where(Item.id.in_([three.id, two.id])).values(no_consensus_at=NOW, status="retired"))
    db.session.execute(update(Submission).where(Submission.item_id.in_([three.id, two.id])).values(reward_state="pending"))
    db.session.execute(VerifiedLabel.__table__.delete().where(VerifiedLabel.item_id.in_([three.id, two.id])))
    db.session.commit()
    announced = []

    def hear(_sender=None, **payload):
        announced.append(payload["item_id"])

    with events.item_verified.connected_to(hear):
        batch.aggregate_pack(pack.id, now=NOW, finalize=True)
    labels = dict(db.session.execute(select(VerifiedLabel.item_id, VerifiedLabel.answer)).all())
    assert labels.get(three.id) == {"labels": ["pos"]} and two.id not in labels
    db.session.expire_all()
    assert db.session.get(Item, three.id).no_consensus_at is not None  # still flagged for the pack's owner
    states = set(db.session.scalars(select(Submission.reward_state).where(Submission.item_id.in_([three.id, two.id]))))
    assert states == {"pending"}  # nobody verified nor paid on the model's word
    assert three.id not in announced and two.id not in announced
    # The owner settles it: the moderator's answer replaces the model's, clears the flag, verifies the answers.
    from sapien.quality.overrides import override_label

    override_label(pack.id, three.id, moderator_id=make_user(role="moderator"), answer="neg", reason="Read it again: it is negative.", now=NOW)
    db.session.expire_all()
    assert db.session.get(Item, three.id).no_consensus_at is None
    assert db.session.get(VerifiedLabel, three.id).answer == {"labels": ["neg"]}
    by_member = dict(db.session.execute(select(Submission.user_id, Submission.reward_state).where(Submission.item_id == three.id)).all())
    assert by_member == {ana: "not_verified", bob: "not_verified", cyd: "verified"}
