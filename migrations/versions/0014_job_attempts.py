"""job_attempts: abandoned runs of each job, so a job that kills its worker every time is given up
after a few runs instead of being re-enqueued forever

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 10:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_attempts',
        sa.Column('job_id', sa.String(length=128), nullable=False),
        sa.Column('func', sa.String(length=200), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('queue', sa.String(length=32), nullable=False),
        sa.Column('abandoned_runs', sa.Integer(), nullable=False),
        sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('given_up_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('job_id'),
    )


def downgrade():
    op.drop_table('job_attempts')
