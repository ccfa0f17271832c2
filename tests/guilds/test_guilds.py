from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime
from itertools import count

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sapien.guilds import founding, overview
from sapien.guilds import membership as guilds_membership
from sapien.guilds.models import GuildApplication, GuildMembership
from sapien.leaderboards import boards as leaderboards_boards
from sapien.leaderboards import reading
from sapien.ledger import service as ledger

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
YES = {"confirm": "yes"}  # leaving, handing over and kicking act only once confirmed
keys = count(1)
APP = {}


@pytest.fixture(autouse=True)
def _app(app):
    APP["app"] = app
    app.config["GUILD_CREATE_MIN_LEVEL"] = 3
    yield app


def ctx():
    # A short request context per service call: test clients must not share a long-lived `g`.
    return APP["app"].test_request_context()


def plain_user(username: str) -> int:
    from sapien.accounts import service as accounts

    with ctx():
        return accounts.sign_up(accounts.SignUp(username=username, email=f"{username}@example.org", password="x" * 12), now=NOW).id


def give_xp(user_id: int, amount: int, when: datetime | None = None) -> None:
    with ctx():
        ledger.credit(user_id, "xp", amount, kind="labeling:image_classification", key=f"g:{next(keys)}", now=when or datetime.now(UTC))


def found(leader_id: int, name: str, **options) -> tuple[int, str]:
    give_xp(leader_id, 300)  # level 3: enough to found a guild
    with ctx():
        guild = founding.create_guild(leader_id, founding.GuildDraft(name=name, **options), NOW)
        return guild.id, guild.slug


def membership(user_id: int):
    with ctx():
        row = guilds_membership.membership_of(user_id)
        return (row.guild_id, row.role) if row else None


def test_founding_needs_a_level_and_a_free_name(make_member):
    ana = make_member("ana")
    form = {"name": "Night Owls", "description": "", "join_policy": "open", "min_level": "1", "min_reputation": "0"}
    response = ana.post("/guilds/new", form)
    assert response.status_code == 422 and "Founding a guild needs level 3" in response.get_data(as_text=True)
    give_xp(ana.id, 300)
    response = ana.post("/guilds/new", form)
    assert response.status_code == 303 and response.headers["Location"] == "/guilds/night-owls"
    assert membership(ana.id)[1] == "leader"
    ben = make_member("ben")
    give_xp(ben.id, 300)
    response = ben.post("/guilds/new", {**form, "name": "night  OWLS"})
    assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)
    response = ben.post("/guilds/new", {**form, "name": "Zz", "join_policy": "party", "min_level": "0"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "3 to 48 characters" in body and "Choose an option" in body
    assert membership(ben.id) is None


def test_open_guild_requirements_and_one_guild_at_a_time(make_member):
    leader_a, leader_b = plain_user("leader_a"), plain_user("leader_b")
    _, slug_a = found(leader_a, "Alpha", min_level=3)
    guild_b, slug_b = found(leader_b, "Beta")
    ana = make_member("ana")
    response = ana.post(f"/guilds/{slug_a}/join")
    assert response.status_code == 422 and "asks for level 3; you are level 1" in response.get_data(as_text=True)
    give_xp(ana.id, 300)
    assert ana.post(f"/guilds/{slug_a}/join").status_code == 303
    response = ana.post(f"/guilds/{slug_b}/join")
    assert response.status_code == 422 and "already in a guild" in response.get_data(as_text=True)
    # The database refuses a second membership even if a service forgot to check.
    from sapien.extensions import db

    with ctx(), pytest.raises(IntegrityError):
        db.session.add(GuildMembership(guild_id=guild_b, user_id=ana.id, role="member", joined_at=NOW))
        db.session.commit()
    assert ana.post("/guilds/nope/join").status_code == 404


@pytest.mark.postgres_only
def test_two_joins_at_once_on_postgresql_leave_one_membership(app):
    leader_a, leader_b, racer = plain_user("leader_a"), plain_user("leader_b"), plain_user("racer")
    guild_a, _ = found(leader_a, "Alpha")
    guild_b, _ = found(leader_b, "Beta")
    outcomes = []
    barrier = threading.Barrier(2)

    def attempt(guild_id):
        with app.test_request_context():
            barrier.wait()
            try:
                guilds_membership.join(racer, guild_id, NOW)
                outcomes.append("joined")
            except guilds_membership.GuildError:
                outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(gid,)) for gid in (guild_a, guild_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["joined", "refused"]
    with ctx():
        from sapien.extensions import db

        assert len(db.session.scalars(select(GuildMembership).where(GuildMembership.user_id == racer)).all()) == 1


def test_applications_officers_and_tampering(make_member):
    leader = make_member("leader")
    guild_id, slug = found(leader.id, "Scribes", join_policy="application")
    other_leader = make_member("otherlead")
    _, other_slug = found(other_leader.id, "Others")
    ana = make_member("ana")
    assert ana.post(f"/guilds/{slug}/join").status_code == 422  # takes applications
    assert ana.post(f"/guilds/{slug}/apply", {"message": "I label birds"}).status_code == 303
    response = ana.post(f"/guilds/{slug}/apply", {"message": "again"})
    assert response.status_code == 422 and "already applied" in response.get_data(as_text=True)
    with ctx():
        from sapien.extensions import db

        application_id = db.session.scalar(select(GuildApplication.id).where(GuildApplication.user_id == ana.id))
    # Another guild's leader cannot reach this application through their own guild's URL.
    assert other_leader.post(f"/guilds/{other_slug}/applications/{application_id}/accept").status_code == 404
    # …nor through this guild's URL (they are not an officer here), nor can the applicant accept themselves.
    assert other_leader.post(f"/guilds/{slug}/applications/{application_id}/accept").status_code == 403
    assert ana.post(f"/guilds/{slug}/applications/{application_id}/accept").status_code == 403
    page = leader.client.get(f"/guilds/{slug}").get_data(as_text=True)
    assert "I label birds" in page
    assert leader.post(f"/guilds/{slug}/applications/{application_id}/accept").status_code == 303
    assert membership(ana.id) == (guild_id, "member")
    response = leader.post(f"/guilds/{slug}/applications/{application_id}/decline")
    assert response.status_code == 422 and "already answered" in response.get_data(as_text=True)


def test_invitations(make_member):
    leader = make_member("leader")
    guild_id, slug = found(leader.id, "Closed Circle", join_policy="invite", min_level=50)
    ana, ben = make_member("ana"), make_member("ben")
    assert ana.post(f"/guilds/{slug}/join").status_code == 422
    assert ana.post(f"/guilds/{slug}/invite", {"username": "ben"}).status_code == 403
    response = leader.post(f"/guilds/{slug}/invite", {"username": "nobody_here"})
    assert response.status_code == 422 and "no member with that username" in response.get_data(as_text=True)
    assert leader.post(f"/guilds/{slug}/invite", {"username": "ana"}).status_code == 303
    response = leader.post(f"/guilds/{slug}/invite", {"username": "ana"})
    assert response.status_code == 422 and "already has an invitation" in response.get_data(as_text=True)
    with ctx():
        state = overview.my_guild(ana.id)
        invitation_id = state.invitations[0][0].id
    assert "Closed Circle" in ana.client.get("/guilds/mine").get_data(as_text=True)
    assert ben.post(f"/guilds/invitations/{invitation_id}/accept").status_code == 404  # not ben's invitation
    # An invitation waives the level requirement: the leaders chose this member.
    assert ana.post(f"/guilds/invitations/{invitation_id}/accept").status_code == 303
    assert membership(ana.id) == (guild_id, "member")
    assert ana.client.get("/guilds/mine").status_code == 303


def test_roles_kicks_are_audited_and_leadership_moves(make_member):
    from sapien.moderation.models import AuditLog

    leader, officer, ana = make_member("leader"), make_member("officer"), make_member("ana")
    guild_id, slug = found(leader.id, "Night Owls")
    for member in (officer, ana):
        assert member.post(f"/guilds/{slug}/join").status_code == 303
    assert ana.post(f"/guilds/{slug}/members/{officer.id}/role", {"role": "officer"}).status_code == 403
    assert leader.post(f"/guilds/{slug}/members/{officer.id}/role", {"role": "officer"}).status_code == 303
    assert leader.post(f"/guilds/{slug}/members/{officer.id}/role", {"role": "admin"}).status_code == 422
    assert officer.post(f"/guilds/{slug}/members/{leader.id}/kick", {"reason": "coup", "confirm": "yes"}).status_code == 403
    assert ana.post(f"/guilds/{slug}/members/{officer.id}/kick", {"reason": "no", "confirm": "yes"}).status_code == 403
    response = officer.post(f"/guilds/{slug}/members/{ana.id}/kick", {"reason": "", "confirm": "yes"})
    assert response.status_code == 422 and "Give a reason" in response.get_data(as_text=True)
    assert membership(ana.id) == (guild_id, "member")
    outsider_leader = make_member("outsider")
    _, outsider_slug = found(outsider_leader.id, "Outsiders")
    # Another guild's leader cannot kick here, nor reach this member through their own guild's URL.
    assert outsider_leader.post(f"/guilds/{slug}/members/{ana.id}/kick", {"reason": "x", "confirm": "yes"}).status_code == 403
    assert outsider_leader.post(f"/guilds/{outsider_slug}/members/{ana.id}/kick", {"reason": "x", "confirm": "yes"}).status_code == 404
    assert outsider_leader.client.get(f"/guilds/{slug}/settings").status_code == 403
    assert officer.client.get(f"/guilds/{slug}/settings").status_code == 403
    assert leader.client.get(f"/guilds/{slug}/settings").status_code == 200
    assert officer.post(f"/guilds/{slug}/members/{ana.id}/kick", {"reason": "copied answers", "confirm": "yes"}).status_code == 303
    assert membership(ana.id) is None
    with ctx():
        from sapien.extensions import db

        audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "guild.kick")).one()
        assert (audit.actor_id, audit.target) == (officer.id, f"user:{ana.id}") and "copied answers" in audit.reason
    response = leader.post("/guilds/leave", YES)
    assert response.status_code == 422 and "Hand the leadership" in response.get_data(as_text=True)
    assert membership(leader.id) == (guild_id, "leader")  # must hand over first
    assert officer.post(f"/guilds/{slug}/members/{leader.id}/transfer", YES).status_code == 403
    assert leader.post(f"/guilds/{slug}/members/{officer.id}/transfer", YES).status_code == 303
    assert membership(officer.id) == (guild_id, "leader") and membership(leader.id) == (guild_id, "officer")
    assert leader.post("/guilds/leave", YES).status_code == 303 and membership(leader.id) is None
    # The last member leaving disbands the guild.
    assert officer.post("/guilds/leave", YES).status_code == 303
    assert officer.client.get(f"/guilds/{slug}").status_code == 404
    assert officer.post("/guilds/leave", YES).status_code == 303  # not in a guild: a message on "my guild"


def test_leader_dashboard_permissions_sorting_and_csv(make_member):
    leader, ana = make_member("leader"), make_member("ana")
    guild_id, slug = found(leader.id, "Night Owls")
    other_leader = make_member("otherlead")
    _, other_slug = found(other_leader.id, "Others")
    assert ana.post(f"/guilds/{slug}/join").status_code == 303
    give_xp(ana.id, 900)
    with ctx():
        from sapien import events

        for correct in (True, True, True, False):
            events.gold_answered.send(None, user_id=ana.id, item_id=1, pack_id=1, task_type="t", correct=correct, now=NOW)
    page = leader.client.get(f"/guilds/{slug}/dashboard?sort=xp")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body
    body = body[body.index('id="dashboard-table"') :]
    assert body.index("/u/ana") < body.index("/u/leader")  # 900 XP before 300 XP
    assert "75.0%" in body
    ascending = leader.client.get(f"/guilds/{slug}/dashboard?sort=xp&dir=asc", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in ascending and ascending.index("/u/leader") < ascending.index("/u/ana")
    filtered = leader.client.get(f"/guilds/{slug}/dashboard?role=member&q=an", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "/u/ana" in filtered and "/u/leader" not in filtered
    assert leader.client.get(f"/guilds/{slug}/dashboard?sort=evil&dir=sideways&role=king").status_code == 200
    assert ana.client.get(f"/guilds/{slug}/dashboard").status_code == 403
    assert other_leader.client.get(f"/guilds/{slug}/dashboard").status_code == 403
    assert other_leader.client.get(f"/guilds/{slug}/dashboard.csv").status_code == 403
    assert leader.client.get("/guilds/missing/dashboard").status_code == 404
    export = leader.client.get(f"/guilds/{slug}/dashboard.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0][:3] == ["rank", "username", "display_name"]
    assert [row[1] for row in rows[1:]] == ["ana", "leader"]
    assert rows[1][5] == "900" and rows[1][7] == "75.0"
    assert other_slug


def test_directory_search_guild_boards_follow_membership(make_member):
    leader = make_member("leader")
    guild_id, slug = found(leader.id, "Night Owls", join_policy="open")
    found(plain_user("lead2"), "Day Larks", join_policy="application")
    ana = make_member("ana")
    give_xp(ana.id, 50)
    page = ana.client.get("/guilds/?q=owl")
    assert page.status_code == 200 and "Night Owls" in page.get_data(as_text=True) and "Day Larks" not in page.get_data(as_text=True)
    fragment = ana.client.get("/guilds/?policy=application", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Day Larks" in fragment and "Night Owls" not in fragment
    assert ana.client.get("/guilds/?q=%25%25&policy=zzz&page=-1").status_code == 200
    assert ana.post(f"/guilds/{slug}/join").status_code == 303
    fragment = ana.client.get(f"/guilds/{slug}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Leave guild" in fragment
    assert "<html" in ana.client.get(f"/guilds/{slug}").get_data(as_text=True)
    now = datetime.now(UTC)
    with ctx():
        key = leaderboards_boards.Board("xp", "all", guild_id=guild_id).key(now)
        assert [e.subject_id for e in reading.top_entries(key)] == [leader.id, ana.id]
        assert leaderboards_boards.decode_xp(reading.top_entries(key)[1].score) == 50
        totals = reading.top_entries(leaderboards_boards.Board("guilds", "all").key(now))
        assert (totals[0].subject_id, int(totals[0].score)) == (guild_id, 350)
    board = ana.client.get(f"/leaderboards/?board=xp&guild={guild_id}").get_data(as_text=True)
    assert "Night Owls: members by XP" in board
    assert ana.post("/guilds/leave", YES).status_code == 303
    with ctx():
        assert [e.subject_id for e in reading.top_entries(key)] == [leader.id]
        assert int(reading.top_entries(leaderboards_boards.Board("guilds", "all").key(now))[0].score) == 300


@pytest.mark.postgres_only
def test_two_applications_or_two_acceptances_at_once_count_once(app):
    leader, officer, racer = plain_user("leader"), plain_user("officer"), plain_user("racer")
    guild_id, _ = found(leader, "Scribes", join_policy="application")
    with ctx():
        first = guilds_membership.apply(officer, guild_id, "", NOW)
        guilds_membership.decide_application(leader, guild_id, first.id, True, NOW)
        guilds_membership.set_role(leader, guild_id, officer, "officer", NOW)

    def race(action) -> list[str]:
        outcomes, barrier = [], threading.Barrier(2)

        def run(argument):
            with app.test_request_context():
                barrier.wait()
                try:
                    action(argument)
                    outcomes.append("ok")
                except guilds_membership.GuildError:
                    outcomes.append("refused")

        threads = [threading.Thread(target=run, args=(argument,)) for argument in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(outcomes)

    assert race(lambda _n: guilds_membership.apply(racer, guild_id, "please", NOW)) == ["ok", "refused"]
    with ctx():
        from sapien.extensions import db

        application_id = db.session.scalar(select(GuildApplication.id).where(GuildApplication.user_id == racer))
    deciders = {1: leader, 2: officer}
    assert race(lambda n: guilds_membership.decide_application(deciders[n], guild_id, application_id, True, NOW)) == ["ok", "refused"]
    assert membership(racer) == (guild_id, "member")
