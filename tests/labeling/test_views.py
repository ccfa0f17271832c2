"""Labeling pages over HTTP: page vs fragment, permissions, CSRF, answer errors, gold feedback."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from sapien.extensions import db
from sapien.labeling import leases, packs, submissions
from sapien.labeling.models import Submission
from tests.conftest import decide_items, verify_and_settle

from .conftest import NOW, make_pack, make_user

HX = {"HX-Request": "true"}


def pack_for(app, tmp_path, **settings):
    with app.test_request_context():
        return make_pack(tmp_path, **settings).slug


def lease_id_in(body: str) -> int:
    return int(re.search(r'name="lease_id" value="(\d+)"', body).group(1))


def start_work(member, slug: str) -> str:
    """Take the next item the way the work page's Start form does through htmx: the work fragment."""
    response = member.post(f"/packs/{slug}/work/start", headers=HX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_marketplace_page_and_fragment(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, name="Movie reviews")
    locked = pack_for(app, tmp_path, name="Expert reviews", min_level=5)
    ana = make_member()
    page = ana.client.get("/work")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and "HX-Request" in page.headers["Vary"]
    assert "Movie reviews" in body and "Expert reviews" in body and "Reach level 5 (you are level 1)." in body
    assert f'/packs/{slug}/work' in body and f'/packs/{locked}/work' not in body
    fragment = ana.client.get("/work?unlocked=locked&sort=newest", headers=HX)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text and 'id="pack-list"' in text
    assert "Expert reviews" in text and "Movie reviews" not in text
    filtered = ana.client.get("/work?task_type=bounding_boxes", headers=HX).get_data(as_text=True)
    assert "No pack matches" in filtered


def test_work_submit_htmx_shows_feedback_and_next_item(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=3, reward_points=10, reward_xp=5)
    ana = make_member()
    page = ana.client.get(f"/packs/{slug}/work")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="lease_id"' not in body and f'hx-post="/packs/{slug}/work/start"' in body
    body = start_work(ana, slug)
    assert 'id="answer-form"' in body and 'name="label"' in body and "<html" not in body
    first = lease_id_in(body)
    assert lease_id_in(ana.client.get(f"/packs/{slug}/work").get_data(as_text=True)) == first  # the page shows the lease held
    response = ana.client.post(f"/packs/{slug}/work", data={"lease_id": first, "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in text
    assert "Submitted and accepted." in text and "+10 pending" in text  # paid once verified
    assert lease_id_in(text) != first


def test_answers_refresh_the_pending_chip_and_the_bell_only_when_notified(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=3, reward_points=10, reward_xp=5)
    ana = make_member()
    lease = lease_id_in(start_work(ana, slug))
    bodies = []
    for _ in range(2):
        response = ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease, "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
        bodies.append(response.get_data(as_text=True))
        lease = lease_id_in(bodies[-1])
    first, second = bodies
    for body in bodies:  # the pending reward moved (only the nav's chip is swapped); nothing is paid or notified before verification
        assert 'id="nav-pending-slot" hx-swap-oob="true"' in body and 'id="nav-pending"' in body
        assert 'id="statusbar" hx-swap-oob' not in body
        assert 'id="bell"' not in body  # nothing new to ring about: the bell's poll keeps it fresh
    assert "+10 pending" in first and "+20 pending" in second
    assert "+20 pending" in ana.client.get(f"/packs/{slug}/work").get_data(as_text=True)  # the whole page's nav, read with the item
    with app.app_context():
        assert verify_and_settle() == 2
    # Settled: the batch's notification and the first-label badge reach the bell; nothing is pending any more.
    page = ana.client.get("/notifications").get_data(as_text=True)
    assert "2 answers verified: +20 points" in page
    assert 'id="nav-pending"' not in ana.client.get("/dashboard").get_data(as_text=True)


def test_plain_post_redirects_and_shows_feedback(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=2, gold=3, gold_rate_percent=50)
    ana = make_member()
    with app.test_request_context():
        pack = packs.get_pack_by_slug(slug)
        gold_item = next(item for item in packs.pack_items(pack.id) if item.is_gold)
        leases.lease_item(ana.id, gold_item.id, NOW.replace(year=2100))  # the work page resumes this lease
    lease = lease_id_in(start_work(ana, slug))
    response = ana.post(f"/packs/{slug}/work", {"lease_id": lease, "label": "neg"})
    assert response.status_code == 303 and "feedback=" in response.headers["Location"]
    body = ana.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Not quite" in body and "Great is positive." in body and 'class="chip">pos<' in body


def test_bad_answer_is_422_and_keeps_the_item(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=2)
    ana = make_member()
    lease = lease_id_in(start_work(ana, slug))
    response = ana.post(f"/packs/{slug}/work", {"lease_id": lease, "label": "meh"}, headers=HX)
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "is not one of this pack" in text and lease_id_in(text) == lease
    response = ana.post(f"/packs/{slug}/work", {"lease_id": lease}, headers=HX)
    assert response.status_code == 422 and "Choose a label." in response.get_data(as_text=True)
    # The refused answers gave the lease back (its claim is taken in the statement that reads it): it still takes a good one.
    response = ana.post(f"/packs/{slug}/work", {"lease_id": lease, "label": "pos"}, headers=HX)
    assert response.status_code == 200 and "You already answered" not in response.get_data(as_text=True)
    with app.app_context():
        assert packs.get_lease(lease).status == "submitted"
        assert db.session.scalar(select(func.count()).select_from(Submission).where(Submission.lease_id == lease)) == 1


def test_a_lease_sent_to_another_packs_page_is_404_and_stays_answerable(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=2)
    other = pack_for(app, tmp_path, items=2)
    ana = make_member()
    lease = lease_id_in(start_work(ana, slug))
    assert ana.post(f"/packs/{other}/work", {"lease_id": lease, "label": "pos"}, headers=HX).status_code == 404
    with app.app_context():
        assert packs.get_lease(lease).status == "active"
    assert ana.post(f"/packs/{slug}/work", {"lease_id": lease, "label": "pos"}, headers=HX).status_code == 200


def test_someone_elses_lease_is_404_and_csrf_is_required(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=2)
    ana, ben = make_member(), make_member()
    lease = lease_id_in(start_work(ana, slug))
    assert ben.post(f"/packs/{slug}/work", {"lease_id": lease, "label": "pos"}).status_code == 404
    assert ben.post(f"/packs/{slug}/skip", {"lease_id": lease}).status_code == 404
    assert ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease, "label": "pos"}).status_code == 400
    with app.app_context():
        assert packs.get_lease(lease).status == "active"


def test_members_cannot_reach_moderator_pages(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path)
    ana = make_member()
    for path in ("/manage/campaigns", "/manage/campaigns/new", f"/manage/packs/{slug}/items", "/manage/campaigns/1/packs/new"):
        assert ana.client.get(path).status_code == 403, path
    assert ana.post("/manage/campaigns/new", {"name": "Mine", "kind": "enterprise"}).status_code == 403
    assert ana.post(f"/manage/packs/{slug}/status", {"status": "closed"}).status_code == 403
    anonymous = app.test_client().get("/work")
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["Location"]


def test_moderator_creates_campaign_and_pack_from_the_browser(app, make_member):
    mod = make_member(role="moderator")
    assert mod.client.get("/manage/campaigns").status_code == 200
    response = mod.post("/manage/campaigns/new", {"name": "x", "kind": "dual", "partner_token": ""})
    assert response.status_code == 422 and "3 to 120 characters" in response.get_data(as_text=True)
    response = mod.post("/manage/campaigns/new", {"name": "Partner data", "kind": "dual", "partner_token": ""})
    assert response.status_code == 422 and "partner token" in response.get_data(as_text=True)
    response = mod.post("/manage/campaigns/new", {"name": "Partner data", "kind": "dual", "partner_token": "acme"})
    assert response.status_code == 303
    new_pack_url = response.headers["Location"]
    form = {
        "name": "Cats", "slug": "cats", "task_type": "image_classification", "label_options": "cat\ndog", "instructions": "Look.",
        "examples": "", "difficulty": "advanced", "reward_points": "5", "reward_xp": "5", "partner_reward": "2", "revenue_shares": "0",
        "labels_per_item": "3", "max_labels_per_item": "5", "gold_rate_percent": "10", "review_rate_percent": "10", "daily_cap": "100",
        "lease_minutes": "10", "estimated_seconds": "15", "min_level": "1", "min_reputation": "0", "min_stake": "0", "exam_size": "5",
        "exam_pass_percent": "80",
    }
    bad = mod.post(new_pack_url, {**form, "label_options": "cat", "gold_rate_percent": "95"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Between 0 and 90" in text
    bad = mod.post(new_pack_url, {**form, "label_options": "cat"})
    assert bad.status_code == 422 and "at least two labels" in bad.get_data(as_text=True)
    good = mod.post(new_pack_url, form)
    assert good.status_code == 303 and good.headers["Location"] == "/manage/packs/cats/items"
    with app.app_context():
        pack = packs.get_pack_by_slug("cats")
        assert pack.partner_reward == 2 and pack.difficulty == "advanced" and pack.label_options == ["cat", "dog"]


def test_media_is_served_only_to_those_who_may_see_the_pack(app, make_member, tmp_path):
    from .conftest import make_media_pack, png_bytes

    with app.test_request_context():
        pack, _report = make_media_pack(tmp_path, "image_classification", labels=("cat", "dog"), min_level=2,
                                        files={"media/a.png": png_bytes(20, 10)})
        item = packs.pack_items(pack.id)[0]
        media_id, slug = item.media_id, pack.slug
    ana, mod = make_member(), make_member(role="moderator")
    assert ana.client.get(f"/media/{media_id}").status_code == 404  # locked pack, never shown the item
    response = mod.client.get(f"/media/{media_id}")
    assert response.status_code == 200 and response.mimetype == "image/png" and response.data == png_bytes(20, 10)
    assert "private" in response.headers["Cache-Control"] and response.headers["X-Content-Type-Options"] == "nosniff"
    assert mod.client.get("/media/999999").status_code == 404
    assert app.test_client().get(f"/media/{media_id}").status_code in (302, 303)
    with app.test_request_context():
        from sapien.ledger import service as ledger

        ledger.credit(ana.id, "xp", 100, kind="test", key="ana-xp", now=NOW)  # level 2: the pack unlocks
    assert ana.client.get(f"/media/{media_id}").status_code == 200
    body = start_work(ana, slug)
    assert f"/media/{media_id}" in body and 'name="label"' in body


def test_exam_pages(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=2, exam=2, exam_required=True, exam_size=2, exam_pass_percent=50)
    ana = make_member()
    pack_page = ana.client.get(f"/packs/{slug}").get_data(as_text=True)
    assert "qualification exam." in pack_page and f"/packs/{slug}/exam" in pack_page
    work = ana.client.get(f"/packs/{slug}/work")
    assert work.status_code == 303 and work.headers["Location"].endswith(f"/packs/{slug}")
    page = ana.client.get(f"/packs/{slug}/exam").get_data(as_text=True)
    assert "Start the exam" in page
    assert ana.post(f"/packs/{slug}/exam/start").status_code == 303
    for _ in range(2):
        page = ana.client.get(f"/packs/{slug}/exam").get_data(as_text=True)
        attempt = re.search(r'name="attempt_id" value="(\d+)"', page).group(1)
        item = re.search(r'name="item_id" value="(\d+)"', page).group(1)
        bad = ana.post(f"/packs/{slug}/exam", {"attempt_id": attempt, "item_id": item, "label": "zzz"})
        assert bad.status_code == 422 and "is not one of this pack" in bad.get_data(as_text=True)
        assert ana.post(f"/packs/{slug}/exam", {"attempt_id": attempt, "item_id": item, "label": "neg"}).status_code == 303
    assert "You passed this exam." in ana.client.get(f"/packs/{slug}/exam").get_data(as_text=True)
    assert ana.client.get(f"/packs/{slug}/work").status_code == 200
    no_exam = pack_for(app, tmp_path)
    assert ana.client.get(f"/packs/{no_exam}/exam").status_code == 404


def test_history_lists_submissions_with_status_and_reward(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=3, labels_per_item=1, reward_points=10, reward_xp=0)
    ana = make_member()
    for _ in range(2):
        lease = lease_id_in(start_work(ana, slug))
        ana.post(f"/packs/{slug}/work", {"lease_id": lease, "label": "pos"})
    page = ana.client.get("/work/history")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and body.count('data-reward="pending"') == 2 and "10 points pending" in body
    with app.app_context():
        verify_and_settle()
    body = ana.client.get("/work/history").get_data(as_text=True)
    assert body.count('data-reward="paid"') == 2 and body.count(">Paid<") == 2 and "+10 points" in body
    fragment = ana.client.get("/work/history", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and 'id="history"' in fragment
    assert "No submissions yet." in make_member().client.get("/work/history").get_data(as_text=True)


def test_history_shows_why_a_gold_answer_was_rejected(app, make_member, tmp_path):
    slug = pack_for(app, tmp_path, items=1, gold=1)
    ana = make_member()
    with app.test_request_context():
        gold_item = next(item for item in packs.pack_items(packs.get_pack_by_slug(slug).id) if item.is_gold)
        lease = leases.lease_item(ana.id, gold_item.id, NOW.replace(year=2100))
        submissions.submit_answer(ana.id, lease.id, {"labels": ["neg"]}, now=NOW.replace(year=2100))
    body = ana.client.get("/work/history").get_data(as_text=True)
    assert "Rejected" in body and ("Great is positive." in body or "/submissions/" in body)


def test_history_and_dashboard_show_where_each_reward_stands(app, make_member, tmp_path):
    """Pending, in review, paid, not verified (with the verified label) and rejected, as the member sees them."""
    from datetime import timedelta

    with app.test_request_context():
        crowd = make_pack(tmp_path, items=1, labels_per_item=3, max_labels_per_item=3, reward_points=20, reward_xp=10).id
        waiting = make_pack(tmp_path, items=2, labels_per_item=3, reward_points=7, reward_xp=3).id
        reviewed = make_pack(tmp_path, items=1, labels_per_item=3, review_rate_percent=100, reward_points=5, reward_xp=1).id
    ana = make_member()
    with app.app_context():
        others = [make_user(), make_user()]

        def answer(user_id, pack_id, label, seconds):
            lease = leases.lease_next_item(user_id, pack_id, NOW + timedelta(seconds=seconds))
            return submissions.submit_answer(user_id, lease.id, {"labels": [label]}, now=NOW + timedelta(seconds=seconds)).submission_id

        junk = answer(ana.id, crowd, "neg", 0)  # the crowd says "pos": this one is not verified
        answer(others[0], crowd, "pos", 1)
        answer(others[1], crowd, "pos", 2)
        decide_items()  # the decision job verifies the crowd item
        pending = answer(ana.id, waiting, "pos", 3)
        paid = answer(ana.id, waiting, "neg", 4)
        in_review = answer(ana.id, reviewed, "pos", 5)
        verify_and_settle(submission_ids=[paid])
        from jobs.labeling import settle_rewards
        settle_rewards()  # the crowd item's two agreeing answers

    page = ana.client.get("/work/history").get_data(as_text=True)
    rows = dict(re.findall(r'<tr id="submission-(\d+)" data-reward="(\w+)">', page))
    assert rows == {str(junk): "not_verified", str(pending): "pending", str(paid): "paid", str(in_review): "in_review"}
    assert "It disagreed with the verified label:" in page and 'class="chip">pos<' in page
    assert "+7 points · 3 XP" in page and "7 points · 3 XP pending" in page and "5 points · 1 XP pending" in page
    dashboard = ana.client.get("/dashboard").get_data(as_text=True)
    assert 'id="dashboard-pending">+12 points<' in dashboard and "2 answers waiting for verification" in dashboard
    assert 'id="nav-pending"' in dashboard and "+12 pending" in dashboard
    assert ana.client.get("/statusbar", headers=HX).get_data(as_text=True).count('id="nav-pending"') == 1
    assert ana.client.get("/statusbar").status_code == 303  # a plain visit goes to the dashboard


def test_an_answer_that_ends_the_day_or_meets_a_restriction_claims_no_next_item(app, make_member, tmp_path):
    """The next item is claimed in the statement that reads the member's day and restrictions: where they may
    take none, none is claimed (the answer's transaction commits, so a claimed slot would stay taken)."""
    from sapien.database import utcnow
    from sapien.labeling.models import Item, Lease
    from sapien.moderation.safety.decisions import DecisionDraft, decide

    capped = pack_for(app, tmp_path, items=4, labels_per_item=1, daily_cap=1)
    watched = pack_for(app, tmp_path, items=4, labels_per_item=1)
    ana, mod = make_member(), make_member(role="moderator")

    def answer(slug: str, restrict: bool = False) -> str:
        lease_id = lease_id_in(start_work(ana, slug))
        if restrict:
            with app.app_context():
                pack_id = packs.get_pack_by_slug(slug).id
                decide(mod.id, ana.id, DecisionDraft("restrict", "copying answers", scope="pack", pack_id=pack_id, days=2), utcnow())
        response = ana.client.post(f"/packs/{slug}/work", data={"lease_id": lease_id, "label": "pos", "csrf_token": ana.csrf()}, headers=HX)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def slots_and_leases(slug: str) -> tuple[int, int]:
        with app.app_context():
            pack_id = packs.get_pack_by_slug(slug).id
            slots = db.session.scalar(select(func.sum(Item.slots_taken)).where(Item.pack_id == pack_id))
            return slots, db.session.scalar(select(func.count()).select_from(Lease).where(Lease.pack_id == pack_id))

    text = answer(capped)
    assert "Submitted and accepted." in text and "Come back tomorrow" in text and 'name="lease_id"' not in text
    assert slots_and_leases(capped) == (1, 1)
    text = answer(watched, restrict=True)
    assert "copying answers" in text and 'name="lease_id"' not in text
    assert slots_and_leases(watched) == (1, 1)
