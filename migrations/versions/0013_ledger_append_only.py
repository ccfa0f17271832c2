"""ledger_entries: append-only in the database itself. Triggers refuse every UPDATE and DELETE of an entry
(corrections are new, compensating entries), on PostgreSQL and on SQLite alike.

Adding a column still works: neither `ALTER TABLE … ADD COLUMN` nor a PostgreSQL table rewrite fires row
triggers. A migration that must rewrite entries (a backfill) says so by disabling the trigger around it
(`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only`). On SQLite, a batch migration that
*recreates* the table drops its triggers with it: such a migration must create them again
(`create_append_only_triggers`); tests/ledger/test_append_only.py checks the head schema on both.
TRUNCATE (the test suite's teardown) fires no row trigger and stays allowed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 08:40:00

"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

MESSAGE = 'ledger_entries is append-only: post a compensating entry instead'

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ledger_entries_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def create_append_only_triggers():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            'CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries '
            'FOR EACH ROW EXECUTE FUNCTION ledger_entries_refuse_change()'
        )
    else:
        for operation in ('UPDATE', 'DELETE'):
            op.execute(
                f'CREATE TRIGGER ledger_entries_no_{operation.lower()} BEFORE {operation} ON ledger_entries '
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE} ({operation} refused)'); END"
            )


def upgrade():
    create_append_only_triggers()


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries')
        op.execute('DROP FUNCTION IF EXISTS ledger_entries_refuse_change()')
    else:
        op.execute('DROP TRIGGER IF EXISTS ledger_entries_no_update')
        op.execute('DROP TRIGGER IF EXISTS ledger_entries_no_delete')
