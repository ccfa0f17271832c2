"""What the route walks share: a small world with a row behind every kind of URL id, URLs built from it,
and two ways to see that the database did not change.

- `DatabaseWrites` counts the INSERT, UPDATE, DELETE (and other writing) statements the app sends while it
  is on: a GET must send none, not even one a rollback undoes.
- `fingerprint` is a hash of every table's rows (one statement): a refused request must leave it as it was,
  whatever it tried inside a transaction it then rolled back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import event, text
from werkzeug.routing import IntegerConverter

from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|CREATE|ALTER|DROP|UPSERT|REPLACE)\b", re.IGNORECASE)
HX = {"HX-Request": "true"}

# Which table holds the rows an `<int:name>` segment names, when the name alone does not say (`<name>_id` →
# `<name>s` otherwise).
ID_TABLES = {"award_id": "badge_awards", "application_id": "guild_applications", "invitation_id": "guild_invitations",
             "proposal_id": "governance_proposals"}


class DatabaseWrites:
    """Collects the writing statements sent to the database while the block runs."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []

    def _seen(self, _conn, _cursor, statement, _parameters, _context, _executemany):
        if WRITE.match(statement):
            self.statements.append(" ".join(statement.split())[:160])

    def __enter__(self) -> DatabaseWrites:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def fingerprint(app) -> dict[str, str]:
    """{table: hash of its rows} for every table of the schema, read in one statement."""
    with app.app_context():
        tables = [table.name for table in db.metadata.sorted_tables]
        query = " UNION ALL ".join(
            f"SELECT '{name}' AS name, count(*)::text || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
            f" FROM {name} t"
            for name in tables
        )
        with db.engine.connect() as connection:
            return dict(connection.execute(text(query)).all())


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


@dataclass
class World:
    """Rows behind the walk's URLs: the values each converter is filled with."""

    pack_slug: str
    guild_slug: str
    username: str
    ids: dict[str, int] = field(default_factory=dict)

    def string_for(self, rule, name: str) -> str:
        path = rule.rule
        if name == "username":
            return self.username
        if name == "filename":
            return "css/app.css"
        if name == "tier":
            return "bronze"
        if name == "decision":
            return "accept"
        if name == "job_id":
            return "leaderboards-rebuild"
        if path.startswith("/badges"):
            return "first-label"
        if path.startswith("/guilds"):
            return self.guild_slug
        return self.pack_slug

    def id_for(self, name: str) -> int:
        if name not in self.ids:
            table = ID_TABLES.get(name, name.removesuffix("_id") + "s")
            with db.engine.connect() as connection:
                try:
                    found = connection.execute(text(f"SELECT min(id) FROM {table}")).scalar()
                except Exception:  # noqa: BLE001 - a segment this walk cannot map to a table
                    found = None
            self.ids[name] = found or 1
        return self.ids[name]

    def url(self, rule) -> str | None:
        values = {}
        for name, converter in rule._converters.items():
            values[name] = self.id_for(name) if isinstance(converter, IntegerConverter) else self.string_for(rule, name)
        try:
            return rule.build(values, append_unknown=False)[1]
        except Exception:  # noqa: BLE001 - a rule this walk cannot fill
            return None


def build_world(app, make_member, tmp_path) -> tuple[World, dict]:
    """Members of every role and a row of every kind their pages link to; returns (world, {role: member})."""
    from sapien.guilds import founding, membership
    from sapien.ledger import service as ledger
    from sapien.progression import quests
    from tests.labeling.conftest import make_pack

    members = {role: make_member(role=role) for role in ("member", "reviewer", "guild_leader", "moderator", "admin")}
    ana = members["member"]
    with app.test_request_context():
        pack = make_pack(tmp_path, items=4, gold=2, gold_rate_percent=50, review_rate_percent=100).slug
        ledger.credit(members["guild_leader"].id, "xp", 2000, kind="test", key="walk:leader-xp", now=NOW)
        guild = founding.create_guild(members["guild_leader"].id, founding.GuildDraft(name="Walkers", join_policy="application"), NOW)
        guild_slug, guild_id = guild.slug, guild.id
        quests.create_quest(
            quests.QuestDefinition(title="Label ten texts", period="daily", objective="label_items", target=10,
                                        starts_at=NOW.replace(year=2025), ends_at=None, reward_points=50, reward_xp=20),
            actor_id=members["moderator"].id, now=NOW,
        )
        membership.apply(ana.id, guild_id, "Let me in", NOW)
        # A proposal open for voting (the admin meets the thresholds: level 3, reputation 550, a staked token).
        from sapien.governance import proposals
        from tests.governance.conftest import give

        give(members["admin"].id, xp=300, stake=TOKEN_UNIT, reputation=600, tag="walk")
        proposals.create_proposal(members["admin"].id, proposals.ProposalDraft(
            "parameter", "Walk", parameter_name="reward.rate.text_classification", new_value=12_000), NOW)
    # Ana answers through the site, so submissions, reviews, notifications and badges exist.
    for _ in range(3):
        start = ana.post(f"/packs/{pack}/work/start")
        assert start.status_code == 303, start.status_code
        page = ana.client.get(f"/packs/{pack}/work").get_data(as_text=True)
        lease = re.search(r'name="lease_id" value="(\d+)"', page)
        if lease is None:
            break
        ana.post(f"/packs/{pack}/work", {"lease_id": lease.group(1), "label": "neg"})
    return World(pack_slug=pack, guild_slug=guild_slug, username=ana.username), members


def walkable(rule) -> bool:
    return rule.endpoint != "static" and "logout" not in rule.rule
