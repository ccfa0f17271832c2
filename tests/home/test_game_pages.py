"""The design page, the theme switch, the artwork routes and the dashboard's progress panels."""

from __future__ import annotations

import re
from datetime import timedelta

from sapien.database import utcnow
from sapien.ledger import service as ledger
from tests.labeling.conftest import make_pack

HX = {"HX-Request": "true"}


def test_design_page_lists_every_component_without_login(client):
    page = client.get("/design")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body
    for component in ('class="card', 'class="card stat"', 'class="ring', 'class="bar', 'class="badge', 'class="pill',
                      'class="toast', 'class="modal', 'class="tabs"', 'class="menu', 'class="medal', 'class="emblem', 'class="crest'):
        assert component in body, component
    fragment = client.get("/design", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and "Design system" in fragment


def test_theme_choice_is_kept_in_a_cookie_and_drawn_on_the_page(client, make_member):
    assert 'data-theme' not in client.get("/").get_data(as_text=True)  # the system's choice by default
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/theme?next=/design", data={"theme": "dark", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("/design")
    assert 'sapien_theme=dark' in response.headers["Set-Cookie"]
    assert '<html lang="en" data-theme="dark"' in client.get("/design").get_data(as_text=True)
    bad = client.post("/theme?next=https://evil.example/", data={"theme": "purple", "csrf_token": token}, follow_redirects=True)
    assert bad.status_code == 200 and "Choose a theme from the list." in bad.get_data(as_text=True)
    assert 'data-theme="dark"' in bad.get_data(as_text=True)  # unchanged


def test_the_cached_dashboard_follows_the_theme(make_member):
    ana = make_member()
    assert "data-theme" not in ana.client.get("/dashboard").get_data(as_text=True)
    ana.client.set_cookie("sapien_theme", "light")  # e.g. chosen on another device's session: no POST here
    assert '<html lang="en" data-theme="light"' in ana.client.get("/dashboard").get_data(as_text=True)
    ana.client.delete_cookie("sapien_theme")
    assert "data-theme" not in ana.client.get("/dashboard").get_data(as_text=True)


def test_level_emblems_are_svg_and_change_with_the_band(client):
    seven = client.get("/art/level/7.svg")
    assert seven.status_code == 200 and seven.mimetype == "image/svg+xml"
    body = seven.get_data(as_text=True)
    assert body.startswith("<svg") and ">7</text>" in body and "#a9b3c1" in body  # silver band
    assert "#e0a412" in client.get("/art/level/12.svg").get_data(as_text=True)  # gold band, with wings
    assert client.get("/art/level/1000.svg").status_code == 404


def test_guild_crests_are_deterministic_per_guild(client):
    first = client.get("/art/crest/night-owls.svg").get_data(as_text=True)
    assert first == client.get("/art/crest/night-owls.svg").get_data(as_text=True)
    others = {client.get(f"/art/crest/guild-{n}.svg").get_data(as_text=True) for n in range(12)}
    assert len(others) > 6  # different guilds, different crests
    assert client.get("/art/crest/bad%20slug.svg").status_code == 404


def test_dashboard_shows_the_ring_next_unlock_rank_gap_and_streak_calendar(app, make_member, tmp_path):
    with app.test_request_context():
        make_pack(tmp_path, items=2, name="Everyday reviews", reward_xp=10)
        make_pack(tmp_path, items=2, name="Medical imaging", min_level=3)
    ana, ben = make_member(), make_member()
    with app.app_context():
        now = utcnow()
        ledger.credit(ana.id, "xp", 120, kind="labeling:text_classification", key="t:ana", now=now)
        ledger.credit(ben.id, "xp", 150, kind="labeling:text_classification", key="t:ben", now=now)
    body = ana.client.get("/dashboard").get_data(as_text=True)
    assert 'id="level-ring"' in body and 'stroke-dasharray="10 100"' in body  # 20 of 200 XP into level 2
    # Level 3 needs 300 XP: 180 to go at 10 XP per verified answer.
    assert "18 more verified answers to unlock Medical imaging" in body
    assert "#2 this week · 31 XP to pass #1" in body
    assert body.count('class="calendar__day') == 35 and "is-today" in body


def test_dashboard_next_unlock_when_nothing_is_level_gated(app, make_member, tmp_path):
    with app.test_request_context():
        make_pack(tmp_path, items=1, name="Everyday reviews")
    ana = make_member()
    body = ana.client.get("/dashboard").get_data(as_text=True)
    assert "Every level-gated pack is open to you." in body
    assert "this week" not in body.split('id="dash-title"')[1].split("</section>")[0]  # not on the board yet: no rank chip


def test_profile_shows_the_badge_case_and_level_history(app, make_member):
    ana = make_member()
    with app.app_context():
        ledger.credit(ana.id, "xp", 350, kind="bonus", key="t:lvl", now=utcnow() - timedelta(hours=1))
    body = ana.client.get(f"/u/{ana.username}").get_data(as_text=True)
    assert "Badge case" in body and "medal--locked" in body  # badges not earned yet, shown locked
    assert 'class="leveltimeline"' in body and 'src="/art/level/3.svg"' in body
