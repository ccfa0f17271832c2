"""Appeals: once per rejection; moderators overturn (paid) or uphold (stays rejected), audited."""

from __future__ import annotations

import pytest

from tests.conftest import verify_and_settle
from tests.quality.conftest import NOW, answer, items_of, label, make_pack, make_user


def _rejected_gold(tmp_path):
    pack = make_pack(tmp_path, items=0, gold=1)
    member = make_user()
    result = answer(member, items_of(pack.id, gold=True)[0].id, label("neg"))
    assert result.status == "rejected"
    return member, result.submission_id


def test_appeal_once_then_overturn_pays_and_restores_reputation(ctx, tmp_path):
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.ledger import service as ledger
    from sapien.moderation.models import AuditLog
    from sapien.quality import appeals, reputation
    from sapien.quality import errors as quality_errors

    member, submission_id = _rejected_gold(tmp_path)
    assert reputation.reputation_of(member) == 480
    appeal = appeals.appeal_submission(submission_id, member, "The passage is ironic; neg is right.", now=NOW)
    with pytest.raises(quality_errors.AlreadyAppealed, match="once"):
        appeals.appeal_submission(submission_id, member, "Please!", now=NOW)
    moderator = make_user(role="moderator")
    appeals.decide_appeal(appeal.id, moderator, overturn=True, note="Fair point.", now=NOW)
    submission = db.session.get(Submission, submission_id)
    assert submission.status == "accepted" and submission.paid_points > 0 and submission.gold_correct is True
    assert submission.reward_state == "verified"  # the overturn verifies it; the settlement batch pays it
    verify_and_settle(submission_ids=[])
    assert ledger.balance(member, "points") == submission.paid_points
    assert reputation.reputation_of(member) == 500
    log = db.session.query(AuditLog).one()
    assert (log.actor_id, log.action, log.target, log.reason) == (moderator, "appeal.overturn", f"submission:{submission_id}", "Fair point.")
    with pytest.raises(quality_errors.AppealError, match="already been decided"):
        appeals.decide_appeal(appeal.id, moderator, overturn=False, note="no", now=NOW)


def test_upheld_appeal_stays_rejected_and_needs_a_note(ctx, tmp_path):
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.moderation.models import AuditLog
    from sapien.quality import appeals
    from sapien.quality import errors as quality_errors

    member, submission_id = _rejected_gold(tmp_path)
    appeal = appeals.appeal_submission(submission_id, member, "I disagree.", now=NOW)
    moderator = make_user(role="moderator")
    with pytest.raises(quality_errors.AppealError, match="why the rejection stands"):
        appeals.decide_appeal(appeal.id, moderator, overturn=False, note="", now=NOW)
    appeals.decide_appeal(appeal.id, moderator, overturn=False, note="Great is positive.", now=NOW)
    assert db.session.get(Submission, submission_id).status == "rejected"
    assert db.session.query(AuditLog).one().action == "appeal.uphold"
    with pytest.raises(quality_errors.AlreadyAppealed):
        appeals.appeal_submission(submission_id, member, "Again", now=NOW)


def test_appeal_refusals(ctx, tmp_path):
    from sapien.quality import appeals
    from sapien.quality import errors as quality_errors

    member, submission_id = _rejected_gold(tmp_path)
    other = make_user()
    with pytest.raises(quality_errors.SubmissionNotFound):
        appeals.appeal_submission(submission_id, other, "mine?", now=NOW)
    with pytest.raises(quality_errors.AppealError, match="why you think"):
        appeals.appeal_submission(submission_id, member, "   ", now=NOW)
    with pytest.raises(quality_errors.AppealError, match="under 2000"):
        appeals.appeal_submission(submission_id, member, "x" * 2001, now=NOW)
    pack = make_pack(tmp_path, items=1)
    accepted = answer(member, items_of(pack.id)[0].id, label("pos"))
    with pytest.raises(quality_errors.AppealError, match="Only a rejected"):
        appeals.appeal_submission(accepted.submission_id, member, "why not", now=NOW)
    appeal = appeals.appeal_submission(submission_id, member, "Because.", now=NOW)
    moderator_self = make_user(role="moderator")
    with pytest.raises(quality_errors.AppealError, match="own work"):
        appeals.decide_appeal(appeal.id, member, overturn=True, note="", now=NOW)
    assert moderator_self
