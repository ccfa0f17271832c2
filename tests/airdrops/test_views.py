"""The pages: moderators only where it matters, clear errors for bad configs in the page, the status row
as a polled fragment and as a full page, plain form POSTs that redirect, public pages for frozen airdrops."""

from __future__ import annotations

from datetime import timedelta

from sapien.database import utcnow
from sapien.i18n import TOKEN_UNIT
from tests.airdrops.conftest import add_member


def form(**changes) -> dict:
    data = {"name": "Season 1", "as_of": (utcnow() - timedelta(hours=1)).isoformat(), "total_tokens": "1000", "weight_points": "2", "min_points": ""}
    data.update(changes)
    return data


def test_snapshot_pages_are_for_moderators_only(app, make_member):
    member = make_member()
    assert member.client.get("/airdrops/manage").status_code == 403
    assert member.post("/airdrops/snapshots", form()).status_code == 403
    assert app.test_client().get("/airdrops/manage").status_code in (302, 303, 401, 403)
    assert member.client.get("/airdrops/").status_code == 200


def test_a_bad_config_is_shown_in_the_page_with_every_problem(app, make_member):
    moderator = make_member(role="moderator")
    response = moderator.post("/airdrops/snapshots", form(weight_points="-1", total_tokens="0", as_of=(utcnow() + timedelta(days=1)).isoformat()))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The weight of Points cannot be negative." in page
    assert "The total amount must be more than zero." in page
    assert "The as-of time is in the future" in page
    assert 'value="Season 1"' in page  # nothing typed is lost


def test_preview_shows_each_criterions_effect_as_a_fragment_for_htmx(app, make_member):
    moderator = make_member(role="moderator")
    with app.app_context():
        add_member("ana", points=40, at=utcnow() - timedelta(hours=3))
        add_member("bob", points=5, at=utcnow() - timedelta(hours=3))
    response = moderator.post("/airdrops/preview", form(min_points="10"), headers={"HX-Request": "true"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert "<html" not in page and 'id="preview-table"' in page
    assert "1 of 2 members eligible" in page and "Below a minimum: 1" in page  # bob is below the minimum


def test_running_redirects_to_a_status_row_that_polls_and_the_result_table(app, make_member):
    moderator = make_member(role="moderator")
    with app.app_context():
        add_member("ana", points=40, at=utcnow() - timedelta(hours=3))
    response = moderator.post("/airdrops/snapshots", form())
    assert response.status_code == 303
    location = response.headers["Location"]
    snapshot_id = int(location.rstrip("/").rsplit("/", 1)[1])
    fragment = moderator.client.get(f"/airdrops/snapshots/{snapshot_id}/status", headers={"HX-Request": "true"})
    assert "HX-Request" in fragment.headers["Vary"] and "<html" not in fragment.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in fragment.get_data(as_text=True)  # queued: still polling
    full = moderator.client.get(f"/airdrops/snapshots/{snapshot_id}/status")
    assert "<html" in full.get_data(as_text=True)

    from jobs.airdrops import run_snapshot

    with app.app_context():
        assert run_snapshot(snapshot_id) == "done"
    page = moderator.client.get(location).get_data(as_text=True)
    assert 'id="results-table"' in page and "ana" in page and "Propose freezing" in page
    fragment = moderator.client.get(f"/airdrops/snapshots/{snapshot_id}/status", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "every 1s" not in fragment and 'data-status="done"' in fragment
    # Propose, then approve as the same moderator: refused with a clear message.
    assert moderator.post(f"/airdrops/snapshots/{snapshot_id}/propose").status_code == 303
    moderator.post(f"/airdrops/snapshots/{snapshot_id}/approve")
    page = moderator.client.get(location).get_data(as_text=True)
    assert "You proposed this freeze: another moderator must approve it." in page
    assert moderator.client.get(f"/airdrops/{snapshot_id}").status_code == 404  # not public until frozen
    second = make_member(role="moderator")
    assert second.post(f"/airdrops/snapshots/{snapshot_id}/approve").status_code == 303
    public = moderator.client.get(f"/airdrops/{snapshot_id}")
    assert public.status_code == 200
    tree = app.test_client().get(f"/airdrops/{snapshot_id}/tree.json").get_json()
    assert tree["format"] == "standard-v1"
    csv_text = app.test_client().get(f"/airdrops/{snapshot_id}/allocations.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "address,amount"
    assert moderator.client.get("/airdrops/compare?left=1&right=99999").status_code == 404


def test_a_moderator_recognizes_a_guild_and_its_members_meet_the_criterion(app, make_member):
    from jobs.airdrops import run_snapshot
    from sapien.airdrops.config import parse_config
    from sapien.airdrops.snapshots import create_snapshot, entries
    from sapien.database import unit_of_work
    from sapien.guilds.models import Guild, GuildMembership

    moderator = make_member(role="moderator")
    earlier = utcnow() - timedelta(hours=3)
    with app.app_context():
        inside, _ = add_member("inside", points=10, at=earlier)
        outside, _ = add_member("outside", points=10, at=earlier)
        with unit_of_work() as session:
            guild = Guild(slug="owls", name="Owls", name_key="owls", created_by=inside, created_at=earlier)
            session.add(guild)
            session.flush()
            session.add(GuildMembership(guild_id=guild.id, user_id=inside, role="leader", joined_at=earlier))
            guild_id = guild.id
    assert "Owls" in moderator.client.get("/airdrops/manage").get_data(as_text=True)
    assert make_member().post(f"/airdrops/guilds/{guild_id}/recognize", {"recognized": "1"}).status_code == 403
    assert moderator.post(f"/airdrops/guilds/{guild_id}/recognize", {"recognized": "1"}).status_code == 303
    with app.app_context():
        config = parse_config({"name": "guilds", "as_of": (utcnow() - timedelta(minutes=1)).isoformat(), "total_tokens": "90",
                               "weights": {"points": 1, "recognized_guild": 2}}, utcnow())
        snapshot_id = create_snapshot(config, moderator.id, utcnow()).id
        assert run_snapshot(snapshot_id) == "done"
        rows = {entry.user_id: entry for entry, _name in entries(snapshot_id)}
        assert rows[inside].values["recognized_guild"] == 1 and rows[outside].values["recognized_guild"] == 0
        assert int(rows[inside].amount) == 135 * TOKEN_UNIT // 2 and int(rows[outside].amount) == 45 * TOKEN_UNIT // 2  # scores 1+2 and 1
