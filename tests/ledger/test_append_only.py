"""The database itself keeps the ledger append-only: a raw UPDATE or DELETE of an entry is refused on
PostgreSQL and on SQLite, while balances still move, migrations can still add columns and TRUNCATE (the
suite's teardown) still empties the table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from sapien import create_app
from sapien.accounts import service as accounts
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry

ROOT = Path(__file__).resolve().parent.parent.parent
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
REFUSED = "ledger_entries is append-only"


def _member_with_points(name: str = "ana") -> int:
    user_id = accounts.sign_up(accounts.SignUp(name, f"{name}@example.org", ""), now=NOW, password_hash="x").id
    ledger.credit(user_id, "points", 500, kind="k", key=f"bonus:{name}", now=NOW)
    return user_id


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET amount = 1000000",
    "UPDATE ledger_entries SET memo = 'edited' WHERE id = 1",
    "DELETE FROM ledger_entries",
    "DELETE FROM ledger_entries WHERE id = 1",
])
def test_raw_updates_and_deletes_of_entries_are_refused_on_postgres(app_ctx, statement):
    _member_with_points()
    with pytest.raises(DBAPIError, match=REFUSED):
        db.session.execute(text(statement))
    db.session.rollback()
    assert db.session.scalar(text("SELECT count(*) FROM ledger_entries")) == 1
    assert db.session.scalar(text("SELECT amount FROM ledger_entries")) == 500


def test_an_orm_update_is_refused_too(app_ctx):
    _member_with_points()
    with pytest.raises(DBAPIError, match=REFUSED):
        db.session.execute(update(LedgerEntry).values(kind="forged"))
    db.session.rollback()
    entry = db.session.scalars(db.select(LedgerEntry)).one()
    db.session.delete(entry)
    with pytest.raises(DBAPIError, match=REFUSED):
        db.session.flush()
    db.session.rollback()


def test_cached_balances_still_move(app_ctx):
    ana = _member_with_points()
    ledger.debit(ana, "points", 120, kind="k", key="spend:1", now=NOW)
    ledger.credit(ana, "points", 20, kind="k", key="bonus:2", now=NOW)
    assert ledger.balance(ana, "points") == 400 == ledger.sum_of_entries(ana, "points")
    assert ledger.find_mismatched_balances() == []


def test_a_migration_can_still_add_a_column(app_ctx):
    _member_with_points()
    connection = db.session.connection()
    connection.execute(text("ALTER TABLE ledger_entries ADD COLUMN note varchar(20) NOT NULL DEFAULT 'none'"))
    connection.execute(text("ALTER TABLE ledger_entries ADD COLUMN created_by integer"))
    assert connection.execute(text("SELECT note FROM ledger_entries")).scalar_one() == "none"
    db.session.rollback()  # the schema change is undone with the transaction


def test_truncate_still_empties_the_ledger(app, app_ctx):
    from tests.conftest import _truncate_all

    _member_with_points()
    db.session.commit()
    _truncate_all(app)
    assert db.session.scalar(text("SELECT count(*) FROM ledger_entries")) == 0


def test_the_head_schema_on_sqlite_refuses_updates_and_deletes(tmp_path, app):
    sqlite_app = create_app({**app.config["TEST_OVERRIDES"], "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/ledger.db"})
    with sqlite_app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        ana = _member_with_points()
        for statement in ("UPDATE ledger_entries SET amount = 7", "DELETE FROM ledger_entries"):
            with pytest.raises(DBAPIError, match=REFUSED):
                db.session.execute(text(statement))
            db.session.rollback()
        ledger.debit(ana, "points", 100, kind="k", key="spend:1", now=NOW)
        assert ledger.balance(ana, "points") == 400 == ledger.sum_of_entries(ana, "points")
        db.session.execute(text("ALTER TABLE ledger_entries ADD COLUMN note varchar(20) NOT NULL DEFAULT 'none'"))
        db.session.commit()
        with pytest.raises(DBAPIError, match=REFUSED):
            db.session.execute(text("UPDATE ledger_entries SET note = 'x'"))
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()
