"""A new member's dashboard leads with "Start labeling" to the pack that suits them; the activity feed
shows one translated line per reward."""

from __future__ import annotations

import re

from sapien.database import utcnow
from sapien.ledger import service as ledger
from tests.labeling.conftest import make_pack


def feed_rows(page: str) -> list[str]:
    table = re.search(r'<table class="table" id="activity-feed">(.*?)</table>', page, re.S)
    assert table, "no activity feed"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1).split("<tbody>", 1)[1], re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def test_a_new_member_is_led_to_the_easiest_open_pack_until_they_answer(app, make_member, tmp_path):
    with app.test_request_context():
        make_pack(tmp_path, items=3, name="Hard one", difficulty="expert", reward_points=90)
        easy = make_pack(tmp_path, items=3, name="Gentle start", difficulty="beginner", reward_points=10).slug
        make_pack(tmp_path, items=0, name="Empty beginner", difficulty="beginner")  # nothing left to label
        make_pack(tmp_path, items=3, name="Locked", difficulty="beginner", min_level=5)
    ana = make_member()
    page = ana.client.get("/dashboard").get_data(as_text=True)
    assert page.index('id="start-labeling"') < page.index('id="dash-title"')  # it leads the page
    cta = re.search(r'<section class="card card--accent startcta".*?</section>', page, re.S).group(0)
    assert "Start labeling" in cta and f'href="/packs/{easy}/work"' in cta and "Gentle start" in cta
    fr = ana.client.get("/dashboard", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Commencer à étiqueter" in fr

    # One answer later the call to action is gone.
    token = ana.csrf()
    work = ana.client.post(f"/packs/{easy}/work/start", data={"csrf_token": token}).headers.get("Location")
    lease_id = re.search(r'name="lease_id" value="(\d+)"', ana.client.get(work or f"/packs/{easy}/work").get_data(as_text=True)).group(1)
    ana.client.post(f"/packs/{easy}/work", data={"lease_id": lease_id, "label": "pos", "csrf_token": token})
    assert 'id="start-labeling"' not in ana.client.get("/dashboard").get_data(as_text=True)


def test_with_no_open_pack_the_call_to_action_leads_to_the_packs(make_member):
    page = make_member().client.get("/dashboard").get_data(as_text=True)
    cta = re.search(r'<section class="card card--accent startcta".*?</section>', page, re.S).group(0)
    assert 'href="/work"' in cta and "Start labeling" in cta


def test_one_feed_line_per_reward_in_the_members_language(app, make_member):
    ana = make_member()
    now = utcnow()
    with app.app_context():
        ledger.credit_many(ana.id, [ledger.Credit("points", 22, "submission:1:points", "Voices #1"),
                                    ledger.Credit("xp", 10, "submission:1:xp", "Voices #1")],
                           kind="labeling:audio_transcription", now=now)
        ledger.credit_many(ana.id, [ledger.Credit("points", 5, "submission:2:points", "Voices #2"),
                                    ledger.Credit("xp", 2, "submission:2:xp", "Voices #2")],
                           kind="labeling:audio_transcription", now=now)  # same instant, another reward
        ledger.credit(ana.id, "xp", 30, kind="quest_reward", key="quest:1:xp", now=now, memo="Label 20 items today")
        ledger.credit(ana.id, "points", 40, kind="quest_reward", key="quest:1:points", now=now, memo="Label 20 items today")
    rows = feed_rows(ana.client.get("/dashboard").get_data(as_text=True))
    assert len(rows) == 3  # three rewards, six entries
    assert any(row.endswith("Audio transcription · Voices #1 +22 points · +10 XP") for row in rows)
    assert any(row.endswith("Audio transcription · Voices #2 +5 points · +2 XP") for row in rows)
    assert any(row.endswith("Quest reward · Label 20 items today +40 points · +30 XP") for row in rows)
    assert not any("Labeling:" in row for row in rows)

    ana.client.set_cookie("sapien_lang", "fr")
    rows = feed_rows(ana.client.get("/dashboard").get_data(as_text=True))
    assert any("Transcription audio · Voices #1" in row and "+22 points · +10 XP" in row for row in rows)
    assert any("Récompense de quête · Étiquetez 20 éléments aujourd’hui" in row for row in rows)
    assert len(rows) == 3
