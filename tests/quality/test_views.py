"""Quality pages: full page vs htmx fragment, permissions, forms and their error messages."""

from __future__ import annotations

from tests.quality.conftest import NOW, answer, items_of, label, make_pack, make_user

HX = {"HX-Request": "true"}


def _in_app(app, fn):
    with app.test_request_context():
        return fn()


def _pending_for_review(app, tmp_path, author):
    """An answer queued for review just now (the pages read the clock: one queued at the fixed NOW would
    have waited past the escalation time and be the moderators')."""
    from sapien.database import utcnow

    def build():
        pack = make_pack(tmp_path, items=1, review_rate_percent=100)
        return pack, answer(author.id, items_of(pack.id)[0].id, label("pos"), now=utcnow())

    return _in_app(app, build)


def test_review_queue_page_fragment_and_permissions(app, make_member, tmp_path, config):
    config(PLANTED_REVIEW_RATE_PERCENT=0)
    member, reviewer = make_member(), make_member(role="reviewer")
    assert member.client.get("/review").status_code == 403
    assert "Reviewing opens at a reputation of 650" in member.client.get("/review").get_data(as_text=True)
    assert member.post("/review/claim").status_code == 403
    page = reviewer.client.get("/review")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True) and "HX-Request" in page.headers["Vary"]
    fragment = reviewer.client.get("/review", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and 'id="review"' in fragment
    assert app.test_client().get("/review").status_code in (302, 303)


def test_review_flow_through_http(app, make_member, tmp_path, config):
    from sapien.extensions import db
    from sapien.labeling.models import Submission

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    author, reviewer = make_member(), make_member(role="reviewer")
    _pack, result = _pending_for_review(app, tmp_path, author)
    claimed = reviewer.post("/review/claim")
    assert claimed.status_code == 303
    page = reviewer.client.get("/review").get_data(as_text=True)
    assert "Check this answer" in page and 'name="label"' in page  # the answer widget, for a fix
    with app.app_context():
        from sapien.quality.models import Review

        review_id = db.session.query(Review).one().id
    missing_reason = reviewer.post(f"/review/{review_id}/decide", {"outcome": "rejected", "reason": ""})
    assert missing_reason.status_code == 422 and "Say why you reject it" in missing_reason.get_data(as_text=True)
    bad_fix = reviewer.post(f"/review/{review_id}/decide", {"outcome": "fixed", "label": "nonsense"}, headers=HX)
    assert bad_fix.status_code == 422 and "<html" not in bad_fix.get_data(as_text=True)
    done = reviewer.post(f"/review/{review_id}/decide", {"outcome": "fixed", "label": "neg"})
    assert done.status_code == 303
    with app.app_context():
        submission = db.session.get(Submission, result.submission_id)
        assert submission.status == "accepted" and submission.fixed_answer == {"labels": ["neg"]}
    # Someone else's review id is a 404.
    other = make_member(role="reviewer")
    assert other.post(f"/review/{review_id}/decide", {"outcome": "accepted"}).status_code == 404


def test_reviewing_own_work_by_id_is_refused_clearly(app, make_member, tmp_path):
    reviewer = make_member(role="reviewer")
    _pending_for_review(app, tmp_path, reviewer)
    with app.app_context():
        from sapien.extensions import db
        from sapien.quality.models import Review

        review_id = db.session.query(Review).one().id
    response = reviewer.post(f"/review/{review_id}/claim")
    assert response.status_code == 403 and "You cannot review your own work." in response.get_data(as_text=True)


def test_submission_page_is_private_and_appeal_works_once(app, make_member, tmp_path):
    author, stranger = make_member(), make_member()

    def build():
        pack = make_pack(tmp_path, items=0, gold=1)
        return answer(author.id, items_of(pack.id, gold=True)[0].id, label("neg"))

    result = _in_app(app, build)
    url = f"/submissions/{result.submission_id}"
    assert stranger.client.get(url).status_code == 404
    assert stranger.post(url + "/appeal", {"message": "hi"}).status_code == 404
    page = author.client.get(url).get_data(as_text=True)
    assert "Why it was rejected" in page and "Great is positive." in page and "Appeal this rejection" in page
    assert "<html" not in author.client.get(url, headers=HX).get_data(as_text=True)
    empty = author.post(url + "/appeal", {"message": ""})
    assert empty.status_code == 422 and "why you think your answer was right" in empty.get_data(as_text=True)
    assert author.post(url + "/appeal", {"message": "Ironic."}).status_code == 303
    again = author.post(url + "/appeal", {"message": "Again."})
    assert again.status_code == 422 and "each rejection can be appealed once" in again.get_data(as_text=True)
    assert "Waiting for a moderator" in author.client.get(url).get_data(as_text=True)


def test_moderators_decide_appeals(app, make_member, tmp_path):
    author, moderator = make_member(), make_member(role="moderator")

    def build():
        from sapien.quality import appeals

        pack = make_pack(tmp_path, items=0, gold=1)
        result = answer(author.id, items_of(pack.id, gold=True)[0].id, label("neg"))
        return appeals.appeal_submission(result.submission_id, author.id, "Ironic.", now=NOW).id

    appeal_id = _in_app(app, build)
    assert author.client.get("/manage/appeals").status_code == 403
    page = moderator.client.get("/manage/appeals").get_data(as_text=True)
    assert "Ironic." in page
    prefix = f"a{appeal_id}-"
    no_note = moderator.post(f"/manage/appeals/{appeal_id}/decide", {prefix + "decision": "uphold", prefix + "note": ""})
    assert no_note.status_code == 422 and "why the rejection stands" in no_note.get_data(as_text=True)
    ok = moderator.post(f"/manage/appeals/{appeal_id}/decide", {prefix + "decision": "overturn", prefix + "note": ""}, headers=HX)
    assert ok.status_code == 200 and ok.headers.get("HX-Redirect")
    assert "No open appeals." in moderator.client.get("/manage/appeals").get_data(as_text=True)


def test_results_page_exports_and_permissions(app, make_member, tmp_path, config):
    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    author, moderator = make_member(), make_member(role="moderator")

    def build():
        pack = make_pack(tmp_path, items=2, labels_per_item=2, max_labels_per_item=2)
        second = make_user()  # two who agree: one answer alone is never verified
        for item in items_of(pack.id):
            answer(author.id, item.id, label("pos"))
            answer(second, item.id, label("pos"))
        return pack.slug

    slug = _in_app(app, build)
    base = f"/manage/packs/{slug}/results"
    assert author.client.get(base).status_code == 403
    assert author.client.get(base + "/export.csv").status_code == 403
    page = moderator.client.get(base)
    assert page.status_code == 200 and "Krippendorff" in page.get_data(as_text=True)
    assert "<html" not in moderator.client.get(base, headers=HX).get_data(as_text=True)
    jsonl = moderator.client.get(base + "/export.jsonl")
    assert jsonl.status_code == 200 and jsonl.is_streamed and len(jsonl.get_data(as_text=True).splitlines()) == 2
    assert "attachment" in jsonl.headers["Content-Disposition"]
    assert moderator.client.get(base + "/export.csv").get_data(as_text=True).startswith("item_id,external_id,answer")
    assert moderator.client.get(base + "/export.coco.json").status_code == 404  # not a boxes pack
    assert moderator.client.get("/manage/packs/nope/results").status_code == 404
    bad = moderator.post(base + "/aggregate", {"method": "rover"})
    assert bad.status_code == 422 and "Choose an option from the list." in bad.get_data(as_text=True)
    assert moderator.post(base + "/aggregate", {"method": "wawa"}).status_code == 303


def test_reputation_page(app, make_member, tmp_path):
    member = make_member()
    empty = member.client.get("/reputation").get_data(as_text=True)
    assert "Nothing has moved your reputation yet" in empty and "repchart" not in empty

    def build():
        pack = make_pack(tmp_path, items=0, gold=2)
        for item in items_of(pack.id, gold=True):
            answer(member.id, item.id, label("pos"))

    _in_app(app, build)
    page = member.client.get("/reputation").get_data(as_text=True)
    assert "539" in page and "Known-answer item" in page and "<polyline" in page and " style=" not in page.split("<main")[-1]
    assert "<html" not in member.client.get("/reputation", headers=HX).get_data(as_text=True)
    assert app.test_client().get("/reputation").status_code in (302, 303)


def test_moderators_take_an_escalated_review_through_http(app, make_member, tmp_path, config):
    """Issue 10 over HTTP: the moderators' queue with the queue's age, the member's "With a moderator",
    taking and deciding the review as plain forms and through htmx."""
    from datetime import timedelta

    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.quality.models import Review

    config(PLANTED_REVIEW_RATE_PERCENT=0, REVIEW_ESCALATION_MINUTES=15)
    author, reviewer, moderator = make_member(), make_member(role="reviewer"), make_member(role="moderator")

    def build():
        pack = make_pack(tmp_path, items=1, review_rate_percent=100)
        return answer(author.id, items_of(pack.id)[0].id, label("pos"), now=utcnow() - timedelta(minutes=20))

    result = _in_app(app, build)
    assert author.client.get("/manage/reviews").status_code == 403
    assert reviewer.client.get("/manage/reviews").status_code == 403
    assert "With a moderator" in author.client.get("/work/history").get_data(as_text=True)
    # The reviewers' queue no longer offers it.
    assert "0 answers are waiting for review." in reviewer.client.get("/review").get_data(as_text=True)

    page = moderator.client.get("/manage/reviews").get_data(as_text=True)
    assert "Reviews to take" in page and "Take this review" in page
    assert "20 minutes" in page  # the review's age, and the oldest one's in the queue's health
    assert 'data-stat="waiting">1<' in page and 'data-stat="escalated">1<' in page
    jobs = moderator.client.get("/moderation/jobs").get_data(as_text=True)
    assert "Answers waiting for review" in jobs and "20 minutes" in jobs
    with app.app_context():
        review_id = db.session.query(Review).one().id
    assert moderator.post("/manage/reviews/999999/claim").status_code == 404
    taken = moderator.post(f"/manage/reviews/{review_id}/claim", headers=HX)
    assert taken.status_code == 200 and taken.headers["HX-Redirect"] == "/manage/reviews"
    page = moderator.client.get("/manage/reviews").get_data(as_text=True)
    assert "Check this answer" in page and "Yours, above" in page
    # Taking it recorded the escalation, and told the moderators once.
    notes = moderator.client.get("/notifications").get_data(as_text=True)
    assert notes.count("Answers no reviewer took went to the moderators&#39; queue: 1 more to take.") == 1
    missing_reason = moderator.post(f"/manage/reviews/{review_id}/decide", {"outcome": "rejected", "reason": ""}, headers=HX)
    fragment = missing_reason.get_data(as_text=True)
    assert missing_reason.status_code == 422 and "Say why you reject it" in fragment and "<html" not in fragment and 'id="escalated"' in fragment
    done = moderator.post(f"/manage/reviews/{review_id}/decide", {"outcome": "accepted"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/manage/reviews")
    with app.app_context():
        assert db.session.get(Submission, result.submission_id).status == "accepted"
        assert db.session.get(Review, review_id).escalated_at is not None
    assert "No answer is waiting for a moderator" in moderator.client.get("/manage/reviews").get_data(as_text=True)
    history = author.client.get("/work/history").get_data(as_text=True)
    row = history.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "With a moderator" not in row and "Verified, paying" in row  # accepted: paid by the next settlement batch


def test_a_moderator_who_answered_the_item_is_told_another_must_review_it(app, make_member, tmp_path, config):
    from sapien.extensions import db
    from sapien.quality.models import Review

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    author, moderator = make_member(), make_member(role="moderator")

    def build():
        pack = make_pack(tmp_path, items=1, review_rate_percent=100, labels_per_item=2, max_labels_per_item=2)
        item = items_of(pack.id)[0]
        answer(moderator.id, item.id, label("pos"))
        return answer(author.id, item.id, label("pos"))

    result = _in_app(app, build)
    page = moderator.client.get("/manage/reviews").get_data(as_text=True)
    assert "You answered this item: another moderator must review it." in page and "Take this review" not in page
    with app.app_context():
        review_id = db.session.query(Review).filter_by(submission_id=result.submission_id).one().id
    refused = moderator.post(f"/manage/reviews/{review_id}/claim")
    assert refused.status_code == 303
    assert "You answered this item yourself, so another moderator must review it." in moderator.client.get("/manage/reviews").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Review, review_id).reviewer_id is None
