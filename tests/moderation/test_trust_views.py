"""The console, the member's standing page and the public ban appeal over HTTP: pages and fragments,
permissions, bad input shown in the page, signals recorded at sign-in without the clear address."""

from __future__ import annotations

from sqlalchemy import select

from sapien.extensions import db


def test_sign_in_records_a_signal_and_sets_the_device_cookie(app, make_member):
    from sapien.moderation.models import TrustSignal
    from sapien.moderation.signals import DEVICE_COOKIE

    ana = make_member("ana")
    cookie = ana.client.get_cookie(DEVICE_COOKIE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    with app.app_context():
        rows = db.session.scalars(select(TrustSignal).where(TrustSignal.user_id == ana.id)).all()
        assert [(r.kind, r.device_id) for r in rows] == [("login", cookie.value)]
        assert rows[0].network == "local" and "127.0.0.1" not in rows[0].ip_hash


def test_the_console_is_for_moderators_and_a_decision_without_a_reason_is_refused(app, make_member):
    mod, ana = make_member("mod", role="moderator"), make_member("ana")
    assert ana.client.get("/moderation/flags").status_code == 403
    page = mod.client.get("/moderation/flags")
    assert page.status_code == 200 and "Fraud flags" in page.get_data(as_text=True)
    fragment = mod.client.get("/moderation/flags", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True) and "HX-Request" in fragment.headers["Vary"]
    response = mod.post(f"/moderation/trust/{ana.id}/decide", {"members": str(ana.id), "action": "warn", "reason": " ", "scope": "labeling", "days": "7"})
    assert response.status_code == 422 and "Give a reason" in response.get_data(as_text=True)
    response = mod.post(f"/moderation/trust/{mod.id}/decide", {"members": str(mod.id), "action": "ban", "reason": "x", "scope": "labeling"})
    assert response.status_code == 422 and "cannot decide about your own account" in response.get_data(as_text=True)
    response = mod.post(f"/moderation/trust/{ana.id}/decide", {"members": str(ana.id), "action": "restrict", "scope": "review", "days": "3",
                                                             "reason": "Stamps reviews"})
    assert response.status_code == 303
    standing = ana.client.get("/standing").get_data(as_text=True)
    assert "Restricted: Reviewing" in standing and "Stamps reviews" in standing
    assert ana.client.get("/review").status_code == 403
    # Undo without the confirmation is refused in the page.
    with app.app_context():
        from sapien.moderation.models import Decision

        decision_id = db.session.scalar(select(Decision.id))
    response = mod.post(f"/moderation/decisions/{decision_id}/undo", {})
    assert response.status_code == 422 and "Tick the confirmation" in response.get_data(as_text=True)


def test_a_member_appeals_once_from_their_standing_page(app, make_member):
    mod, ana = make_member("mod", role="moderator"), make_member("ana")
    mod.post(f"/moderation/trust/{ana.id}/decide", {"members": str(ana.id), "action": "warn", "reason": "Be kind", "scope": "labeling"})
    with app.app_context():
        from sapien.moderation.models import Decision

        decision_id = db.session.scalar(select(Decision.id))
    assert ana.post(f"/standing/{decision_id}/appeal", {f"d{decision_id}-message": ""}).status_code == 422
    assert ana.post(f"/standing/{decision_id}/appeal", {f"d{decision_id}-message": "I was kind"}).status_code == 303
    again = ana.post(f"/standing/{decision_id}/appeal", {f"d{decision_id}-message": "Really"})
    assert again.status_code == 422 and "already appealed" in again.get_data(as_text=True)
    # The deciding moderator does not see it; a second one does.
    assert "I was kind" not in mod.client.get("/moderation/appeals").get_data(as_text=True)
    second = make_member("mod2", role="moderator")
    assert "I was kind" in second.client.get("/moderation/appeals").get_data(as_text=True)


def test_the_public_ban_appeal_checks_credentials_and_says_what_is_wrong(app, make_member):
    ana = make_member("ana")
    client = app.test_client()
    from tests.conftest import csrf_token_from

    token = csrf_token_from(client, "/appeal")
    response = client.post("/appeal", data={"csrf_token": token, "login": "ana", "password": "nope nope nope", "message": "hi"})
    assert response.status_code == 422 and "not right" in response.get_data(as_text=True)
    response = client.post("/appeal", data={"csrf_token": token, "login": "ana", "password": ana.password, "message": "hi"})
    assert response.status_code == 422 and "not banned" in response.get_data(as_text=True)


def test_the_scan_command_reports_what_it_found(app):
    result = app.test_cli_runner().invoke(args=["moderation", "scan"])
    assert result.exit_code == 0 and "0 member(s) scored" in result.output and "0 flag(s) opened" in result.output
    result = app.test_cli_runner().invoke(args=["moderation", "retention"])
    assert result.exit_code == 0 and "older than 90 days deleted" in result.output


def test_the_cluster_page_puts_every_kind_of_evidence_in_words(app, make_member):
    from sapien.database import utcnow
    from sapien.moderation.models import Flag

    mod, ana, bob = make_member("mod", role="moderator"), make_member("ana"), make_member("bob")
    now = utcnow()
    evidence = {
        "fast_answers": {"summary": "", "members": [], "answers": 20, "fast": 18},
        "shared_signals": {"summary": "", "members": [bob.id], "shared": ["device", "network"]},
        "collusion": {"summary": "", "members": [bob.id], "pairs": [[bob.id, 4, 40.0]]},
        "rubber_stamp": {"summary": "", "members": [], "accept_rate": 1.0, "median_seconds": None, "planted": 4, "planted_failed": 3},
        "review_ring": {"summary": "", "members": [bob.id], "rings": [[ana.id, bob.id]]},
        "signup_burst": {"summary": "", "members": [bob.id], "network": "203.0.113.0/24"},
        "model": {"summary": "0.97", "members": [], "features": [["fast_share", 0.9, 3.2]]},
    }
    with app.app_context():
        db.session.add_all([Flag(user_id=ana.id, kind=kind, score=0.9, evidence=e, status="open", created_at=now, updated_at=now)
                            for kind, e in evidence.items()])
        db.session.commit()
    text = mod.client.get(f"/moderation/trust/{ana.id}").get_data(as_text=True)
    for words in ("18 of 20 answers under the task type", "shares a device, a network with @bob", "4 identical wrong gold answers with @bob",
                  "accepts 100% of reviews", "failed 3 of 4 planted audits", "reviews in a circle with @bob",
                  "from 203.0.113.0/24 within an hour", "Share of too-fast answers"):
        assert words in text, words
    assert "@ana" in mod.client.get("/moderation/flags").get_data(as_text=True)


def test_the_undo_lists_the_rewards_and_badges_it_took_back(app, make_member, tmp_path):
    from sapien.database import utcnow
    from sapien.moderation.safety.decisions import DecisionDraft, decide
    from tests.labeling.conftest import make_pack
    from tests.moderation.rewards import FRAUD_QUEST_POINTS, earn_indirect_rewards

    mod, cheat, founder = make_member("mod", role="moderator"), make_member("cheat"), make_member("founder")
    with app.test_request_context():
        pack = make_pack(tmp_path, items=3, labels_per_item=1, max_labels_per_item=1, reward_points=10)
        earn_indirect_rewards(app, cheat.id, founder.id, pack.id, utcnow())
        decision_id = decide(mod.id, cheat.id, DecisionDraft("ban", "bot answers"), utcnow()).id
    response = mod.post(f"/moderation/decisions/{decision_id}/undo", {"confirm": "y"}, follow_redirects=True)
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Earned indirectly and taken back: 2 rewards ({FRAUD_QUEST_POINTS} points), 2 badges revoked." in text
    assert "Quest reward (Label two items): −50 points" in text and "Badge revoked: First label" in text
    # In French, the same list in French.
    mod.post("/language", {"locale": "fr"})
    french = mod.client.get(f"/moderation/trust/{cheat.id}").get_data(as_text=True)
    assert "Quest reward" not in french and "Label two items" in french
