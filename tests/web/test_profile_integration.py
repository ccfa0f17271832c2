"""The public profile gathers every area: level (progression), guild (guilds) and rank (leaderboards)."""

from __future__ import annotations

from datetime import UTC, datetime

from sapien.accounts import service as accounts
from sapien.guilds import founding, membership
from sapien.ledger import service as ledger


def test_profile_shows_guild_and_all_time_rank(app, make_member):
    now = datetime.now(UTC)
    leader, ana = make_member("leader"), make_member("ana")
    with app.test_request_context():
        ledger.credit(leader.id, "xp", 900, kind="labeling:text_classification", key="p:1", now=now)
        ledger.credit(ana.id, "xp", 400, kind="labeling:text_classification", key="p:2", now=now)
        guild = founding.create_guild(leader.id, founding.GuildDraft(name="Night Owls"), now)
        membership.join(ana.id, guild.id, now)
    page = leader.client.get("/u/ana").get_data(as_text=True)
    assert 'id="profile-guild"' in page and "Night Owls" in page and "/guilds/night-owls" in page
    assert 'id="profile-rank"' in page and "#2" in page


def test_hidden_member_shows_no_rank(app, make_member):
    now = datetime.now(UTC)
    ana, viewer = make_member("ana"), make_member("viewer")
    with app.test_request_context():
        ledger.credit(ana.id, "xp", 400, kind="labeling:text_classification", key="p:2", now=now)
        accounts.update_profile(ana.id, display_name="Ana", bio="", country=None, timezone="UTC", locale="en", hide_from_boards=True, languages=app.config["LANGUAGES"])
    page = viewer.client.get("/u/ana").get_data(as_text=True)
    assert 'id="profile-rank"' not in page and 'id="profile-guild"' not in page
