"""The schema is made only by migrations, on SQLite as on PostgreSQL; demo data seeds once."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import inspect

from sapien import create_app
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT

ROOT = Path(__file__).resolve().parent.parent


def test_migrations_build_the_whole_schema_on_sqlite(tmp_path, app):
    sqlite_app = create_app({**app.config["TEST_OVERRIDES"], "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/m.db"})
    with sqlite_app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        tables = set(inspect(db.engine).get_table_names())
        assert {table.name for table in db.metadata.sorted_tables} <= tables
        db.engine.dispose()


def test_models_and_migrations_agree_on_postgres(app_ctx):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == [], f"models differ from migrations: {diff}"


def test_demo_seed_creates_a_community_once_with_every_role(app_ctx):
    from sapien.accounts import service as accounts
    from sapien.database import utcnow
    from sapien.demo import DEMO_LOGINS, seed_demo

    assert seed_demo(members=30, now=utcnow()) is True
    assert seed_demo(members=30, now=utcnow()) is False
    for role, username in DEMO_LOGINS.items():
        assert accounts.get_by_username(username).role == role
    from sapien.moderation.safety.demo_ring import RING_SIZE
    from sapien.moderation.verdicts import flagged_member_ids, shared_signal_clusters

    assert accounts.count_members() == 30 + len(DEMO_LOGINS) + RING_SIZE
    # The seeded ring of cheats is one cluster, and flagged.
    ring = shared_signal_clusters()[0].member_ids
    assert len(ring) == RING_SIZE and set(ring) <= flagged_member_ids(utcnow())
    from sapien.ledger import service as ledger

    assert ledger.find_mismatched_balances() == []
    _the_airdrop_example_runs_over_the_demo_data(app_ctx)


def _the_airdrop_example_runs_over_the_demo_data(app) -> None:
    """docs/examples/airdrop.json is a working config for the demo data (run here, where the demo is seeded)."""
    from sapien.airdrops.models import AirdropSnapshot

    result = app.test_cli_runner().invoke(args=["airdrops", "run", str(ROOT / "docs" / "examples" / "airdrop.json")])
    assert result.exit_code == 0, result.output
    snapshot = db.session.get(AirdropSnapshot, int(result.output.strip().splitlines()[-1]))
    assert snapshot.merkle_root and snapshot.eligible_count >= 5 and snapshot.excluded_count >= 1
    assert int(snapshot.allocated_amount) == 100_000 * TOKEN_UNIT


def test_data_commands_on_a_database_nobody_upgraded_say_what_to_run(tmp_path, app):
    fresh = create_app({**app.config["TEST_OVERRIDES"], "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/fresh.db"})
    runner = fresh.test_cli_runner()
    for command in (["quality", "replay", str(tmp_path)], ["labeling", "import-folder", str(tmp_path)], ["demo", "seed"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 1, (command, result.output)
        assert "the database has no schema yet: run `flask --app app db upgrade` first" in result.output


def test_the_skeleton_migration_keeps_older_look_alike_names(tmp_path, app):
    """Names from before the look-alike rule all get a skeleton; an older look-alike pair both stay."""
    from sqlalchemy import text

    from sapien.accounts.names import username_skeleton

    sqlite_app = create_app({**app.config["TEST_OVERRIDES"], "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/s.db"})
    with sqlite_app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="0008")
        for number, name in enumerate(["demo_admin", "demо_admin", "ana"], start=1):
            db.session.execute(text(
                "INSERT INTO users (id, username, username_key, email, password_hash, display_name, bio, role, timezone,"
                " hide_from_boards, session_version, is_banned, created_at) VALUES (:id, :name, :name, :email, 'x', :name,"
                " '', 'member', 'UTC', false, 1, false, '2026-01-01')"), {"id": number, "name": name, "email": f"{number}@example.org"})
        db.session.commit()
        upgrade(directory=str(ROOT / "migrations"))
        rows = db.session.execute(text("SELECT id, username_skeleton FROM users ORDER BY id")).all()
        assert rows == [(1, username_skeleton("demo_admin")), (2, username_skeleton("demo_admin") + "#2"), (3, "ana")]
        db.session.remove()
        db.engine.dispose()
