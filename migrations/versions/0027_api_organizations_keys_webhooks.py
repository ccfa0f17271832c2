"""api: client organizations and members, API keys, idempotent requests, campaign terms and payments,
webhooks and deliveries; campaigns get their organization

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 14:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'organizations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('slug', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
        sa.UniqueConstraint('slug', name=op.f('uq_organizations_slug')),
    )
    op.create_table(
        'organization_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('owner', 'member')", name=op.f('ck_organization_members_role_known')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_organization_members_organization_id_organizations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_organization_members_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_organization_members')),
        sa.UniqueConstraint('organization_id', 'user_id', name=op.f('uq_organization_members_organization_id')),
    )
    op.create_index(op.f('ix_organization_members_user_id'), 'organization_members', ['user_id'])
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('prefix', sa.String(length=24), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.String(length=8), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rotated_from_id', sa.Integer(), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write')", name=op.f('ck_api_keys_scope_known')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_api_keys_organization_id_organizations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_api_keys_created_by_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['rotated_from_id'], ['api_keys.id'], name=op.f('fk_api_keys_rotated_from_id_api_keys'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_api_keys_secret_hash')),
    )
    op.create_index(op.f('ix_api_keys_organization_id'), 'api_keys', ['organization_id'])
    op.create_table(
        'api_idempotent_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_api_idempotent_requests_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_idempotent_requests')),
        sa.UniqueConstraint('organization_id', 'key', name=op.f('uq_api_idempotent_requests_organization_id')),
    )
    op.create_index(op.f('ix_api_idempotent_requests_created_at'), 'api_idempotent_requests', ['created_at'])
    with op.batch_alter_table('campaigns') as batch_op:
        batch_op.add_column(sa.Column('organization_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_campaigns_organization_id'), ['organization_id'])
        batch_op.create_foreign_key(batch_op.f('fk_campaigns_organization_id_organizations'), 'organizations', ['organization_id'], ['id'], ondelete='SET NULL')
    op.create_table(
        'api_campaign_terms',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('budget_points', sa.BigInteger(), nullable=True),
        sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
        sa.Column('budget_low_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_api_campaign_terms_campaign_id_campaigns'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_api_campaign_terms')),
    )
    op.create_table(
        'api_campaign_payments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=8), nullable=False),
        sa.Column('external_ref', sa.String(length=200), nullable=False),
        sa.Column('recorded_by_key_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('forwarded_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('amount > 0', name=op.f('ck_api_campaign_payments_amount_positive')),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_api_campaign_payments_campaign_id_campaigns'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_api_campaign_payments_organization_id_organizations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['recorded_by_key_id'], ['api_keys.id'], name=op.f('fk_api_campaign_payments_recorded_by_key_id_api_keys'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_campaign_payments')),
        sa.UniqueConstraint('campaign_id', 'external_ref', name=op.f('uq_api_campaign_payments_campaign_id')),
    )
    op.create_index(op.f('ix_api_campaign_payments_campaign_id'), 'api_campaign_payments', ['campaign_id'])
    op.create_table(
        'api_webhooks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('secret', sa.String(length=80), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_api_webhooks_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_webhooks')),
    )
    op.create_index(op.f('ix_api_webhooks_organization_id'), 'api_webhooks', ['organization_id'])
    op.create_table(
        'api_webhook_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('webhook_id', sa.Integer(), nullable=False),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('event_key', sa.String(length=120), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f('ck_api_webhook_deliveries_status_known')),
        sa.ForeignKeyConstraint(['webhook_id'], ['api_webhooks.id'], name=op.f('fk_api_webhook_deliveries_webhook_id_api_webhooks'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_webhook_deliveries')),
        sa.UniqueConstraint('webhook_id', 'event_key', name=op.f('uq_api_webhook_deliveries_webhook_id')),
    )
    op.create_index(op.f('ix_api_webhook_deliveries_webhook_id'), 'api_webhook_deliveries', ['webhook_id'])
    op.create_index(op.f('ix_api_webhook_deliveries_status'), 'api_webhook_deliveries', ['status'])


def downgrade():
    op.drop_table('api_webhook_deliveries')
    op.drop_table('api_webhooks')
    op.drop_table('api_campaign_payments')
    op.drop_table('api_campaign_terms')
    with op.batch_alter_table('campaigns') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_campaigns_organization_id_organizations'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_campaigns_organization_id'))
        batch_op.drop_column('organization_id')
    op.drop_table('api_idempotent_requests')
    op.drop_table('api_keys')
    op.drop_table('organization_members')
    op.drop_table('organizations')
