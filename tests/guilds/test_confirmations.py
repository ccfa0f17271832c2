"""Leaving, handing over the leadership and kicking ask first: on the guild page (in place, no script needed)
and on a page of their own; a POST that was not confirmed changes nothing and leads to the question."""

from __future__ import annotations

import re

from tests.guilds.test_guilds import YES, _app, found, membership  # noqa: F401  (_app: the autouse fixture the helpers need)

HX = {"HX-Request": "true"}


def guild_with(make_member):
    leader, officer, ana = make_member("leader"), make_member("officer"), make_member("ana")
    guild_id, slug = found(leader.id, "Night Owls")
    for member in (officer, ana):
        assert member.post(f"/guilds/{slug}/join").status_code == 303
    assert leader.post(f"/guilds/{slug}/members/{officer.id}/role", {"role": "officer"}).status_code == 303
    return guild_id, slug, leader, officer, ana


def test_an_unconfirmed_post_changes_nothing_and_asks(make_member):
    guild_id, slug, leader, officer, ana = guild_with(make_member)
    response = leader.post(f"/guilds/{slug}/members/{ana.id}/kick", {"reason": "spam"})
    assert response.status_code == 303 and response.headers["Location"] == f"/guilds/{slug}/members/{ana.id}/kick"
    response = leader.post(f"/guilds/{slug}/members/{officer.id}/transfer")
    assert response.headers["Location"] == f"/guilds/{slug}/members/{officer.id}/transfer"
    response = ana.post("/guilds/leave")
    assert response.headers["Location"] == "/guilds/leave"
    assert membership(ana.id) == (guild_id, "member") and membership(leader.id) == (guild_id, "leader")
    assert membership(officer.id) == (guild_id, "officer")


def test_each_question_has_a_page_whose_form_confirms(make_member):
    guild_id, slug, leader, officer, ana = guild_with(make_member)
    page = leader.client.get(f"/guilds/{slug}/members/{ana.id}/kick").get_data(as_text=True)
    assert "<html" in page and "Kick ana from Night Owls?" in page and "Yes, kick ana" in page
    assert 'name="confirm" value="yes"' in page and 'name="csrf_token"' in page
    fragment = leader.client.get(f"/guilds/{slug}/members/{officer.id}/transfer", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and "Yes, hand over to officer" in fragment
    page = ana.client.get("/guilds/leave").get_data(as_text=True)
    assert "Leave Night Owls?" in page and "Yes, leave Night Owls" in page
    # The leader of a guild with members is told to hand over first, and gets no button to leave.
    page = leader.client.get("/guilds/leave").get_data(as_text=True)
    assert "Hand the leadership to another member before you leave." in page and "Yes, leave" not in page

    # A kick without a reason asks again, with the error beside the field and nothing lost.
    response = leader.post(f"/guilds/{slug}/members/{ana.id}/kick", {"reason": "  ", **YES})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "Give a reason" in body and "Yes, kick ana" in body
    assert 'aria-invalid="true"' in body and membership(ana.id) == (guild_id, "member")

    assert leader.post(f"/guilds/{slug}/members/{ana.id}/kick", {"reason": "copied answers", **YES}).status_code == 303
    assert membership(ana.id) is None
    assert leader.post(f"/guilds/{slug}/members/{officer.id}/transfer", YES).status_code == 303
    assert membership(officer.id) == (guild_id, "leader")
    assert leader.post("/guilds/leave", YES).status_code == 303 and membership(leader.id) is None


def test_questions_are_refused_to_who_may_not_act(make_member):
    _guild_id, slug, leader, officer, ana = guild_with(make_member)
    assert ana.client.get(f"/guilds/{slug}/members/{officer.id}/kick").status_code == 403  # a plain member
    assert officer.client.get(f"/guilds/{slug}/members/{leader.id}/kick").status_code == 403  # nobody kicks the leader
    assert officer.client.get(f"/guilds/{slug}/members/{ana.id}/kick").status_code == 200  # officers kick members
    assert officer.client.get(f"/guilds/{slug}/members/{ana.id}/transfer").status_code == 403  # only the leader hands over
    assert leader.client.get(f"/guilds/{slug}/members/{leader.id}/transfer").status_code == 403  # not to themselves
    assert leader.client.get(f"/guilds/{slug}/members/999999/kick").status_code == 404
    assert leader.client.get("/guilds/no-such-guild/members/1/kick").status_code == 404
    stranger = make_member("stranger")
    assert stranger.client.get(f"/guilds/{slug}/members/{ana.id}/kick").status_code == 403
    response = stranger.client.get("/guilds/leave")  # not in a guild: sent to "my guild" with a message
    assert response.status_code == 303 and response.headers["Location"] == "/guilds/mine"


def test_the_guild_page_gathers_each_members_controls_in_one_menu(make_member):
    _guild_id, slug, leader, officer, ana = guild_with(make_member)
    page = leader.client.get(f"/guilds/{slug}").get_data(as_text=True)
    menus = re.findall(r'<details class="menu rowmenu".*?</details>\s*</div>\s*</details>', page, re.S)
    assert len(menus) == 2  # officer and ana; none on the leader's own row
    for menu in menus:
        assert "Make " in menu and "Yes, hand over to" in menu and "Yes, kick" in menu
        assert menu.count('name="confirm" value="yes"') == 2  # handing over and kicking ask inside the menu
    # An officer's menu: only the plain member can be kicked, nothing else.
    page = officer.client.get(f"/guilds/{slug}").get_data(as_text=True)
    assert page.count('class="menu rowmenu"') == 1 and "Yes, kick ana" in page and "Yes, hand over" not in page
    # Leaving asks in place too.
    page = ana.client.get(f"/guilds/{slug}").get_data(as_text=True)
    assert "Yes, leave Night Owls" in page and page.count('class="menu rowmenu"') == 0
