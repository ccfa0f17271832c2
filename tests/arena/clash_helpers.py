"""Two guilds ready for a clash: each with a leader, an officer and members (shared by the clash tests)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from tests.arena.conftest import NOW, make_user

_guilds = count(1)


@dataclass
class Guilds:
    red: int
    blue: int
    red_slug: str
    blue_slug: str
    red_members: list[int]  # leader, officer, then members
    blue_members: list[int]


def two_guilds(config, members_each: int = 4, prefix: str = "") -> Guilds:
    """Guilds "Red n" and "Blue n": the first member leads, the second is an officer."""
    from sapien.guilds import founding, membership

    config(GUILD_CREATE_MIN_LEVEL=1)
    number = next(_guilds)
    made = {}
    for colour in ("red", "blue"):
        ids = [make_user(f"{prefix}{colour}{number}m{index}") for index in range(members_each)]
        guild = founding.create_guild(ids[0], founding.GuildDraft(name=f"{colour.title()} {number}"), NOW)
        for user_id in ids[1:]:
            membership.join(user_id, guild.id, NOW)
        membership.set_role(ids[0], guild.id, ids[1], "officer", NOW)
        made[colour] = (guild.id, guild.slug, ids)
    return Guilds(made["red"][0], made["blue"][0], made["red"][1], made["blue"][1], made["red"][2], made["blue"][2])


def ready_clash(guilds: Guilds, now=NOW):
    """Red challenged Blue, Blue accepted, three a side took their places: the match runs."""
    from sapien.arena import clash

    row = clash.challenge(guilds.red_members[0], guilds.blue, now)
    clash.respond(row.id, guilds.blue_members[0], accept=True, now=now)
    joined = None
    for user_id in guilds.red_members[:3] + guilds.blue_members[:3]:
        joined = clash.join(row.id, user_id, now)
    assert joined.match_id is not None, joined.held_up
    return clash.get_clash(row.id)


class SignedIn:
    """A client signed in as an existing member (the members above are made without a client)."""

    def __init__(self, app, user_id: int):
        from sapien.accounts.models import User
        from sapien.extensions import db
        from tests.conftest import csrf_token_from

        with app.app_context():
            self.username = db.session.get(User, user_id).username
        self.id = user_id
        self.client = app.test_client()
        response = self.client.post(
            "/login",
            data={
                "login": self.username,
                "password": "correct horse battery",
                "csrf_token": csrf_token_from(self.client),
            },
        )
        assert response.status_code == 303

    def post(self, path: str, data: dict | None = None, **kwargs):
        from tests.conftest import csrf_token_from

        data = dict(data or {})
        data.setdefault("csrf_token", csrf_token_from(self.client, "/dashboard"))
        return self.client.post(path, data=data, **kwargs)
