"""iam identity: groups, roles, inline policies, oidc providers, role sessions, revocation epoch

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 21:43:14.452584

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

New tables and nullable columns only, which earlier code never reads: groups and their members,
roles, inline identity policies (of a user, a group or a role), OIDC providers, role sessions
(temporary credentials), the revocation epoch (one row, polled by every process), a user's and a
role's `tokens_valid_after`, and when an access key was last used.
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('created_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_groups__name'))
    )
    op.create_table('identity_epoch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_epoch'))
    )
    op.execute("INSERT INTO identity_epoch (id, revision) VALUES (1, 0)")
    op.create_table('oidc_providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=255), nullable=False),
    sa.Column('client_ids', sa.JSON(), nullable=False),
    sa.Column('thumbprints', sa.JSON(), nullable=False),
    sa.Column('created_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_providers')),
    sa.UniqueConstraint('url', name=op.f('uq_oidc_providers__url'))
    )
    op.create_table('roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.Column('trust_policy', sa.Text(), nullable=False),
    sa.Column('max_session_duration', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.Column('tokens_valid_after', app.db.models.TZDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('name', name=op.f('uq_roles__name'))
    )
    op.create_table('group_members',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_group_members__group_id__groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_group_members__user_id__users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_group_members'))
    )
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_members__user_id'), ['user_id'], unique=False)

    op.create_table('identity_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('role_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_identity_policies__group_id__groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_identity_policies__role_id__roles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_identity_policies__user_id__users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_policies')),
    sa.UniqueConstraint('group_id', 'name', name=op.f('uq_identity_policies__group_id_name')),
    sa.UniqueConstraint('role_id', 'name', name=op.f('uq_identity_policies__role_id_name')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_identity_policies__user_id_name'))
    )
    op.create_table('role_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('access_key_id', sa.String(length=32), nullable=False),
    sa.Column('secret_sealed', sa.String(length=255), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('session_name', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('provider', sa.String(length=255), nullable=False),
    sa.Column('created_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_role_sessions__role_id__roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_sessions')),
    sa.UniqueConstraint('access_key_id', name=op.f('uq_role_sessions__access_key_id'))
    )
    with op.batch_alter_table('role_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_sessions__expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_sessions__role_id'), ['role_id'], unique=False)

    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', app.db.models.TZDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_service', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('last_used_region', sa.String(length=32), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tokens_valid_after', app.db.models.TZDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('tokens_valid_after')

    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.drop_column('last_used_region')
        batch_op.drop_column('last_used_service')
        batch_op.drop_column('last_used_at')

    with op.batch_alter_table('role_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_sessions__role_id'))
        batch_op.drop_index(batch_op.f('ix_role_sessions__expires_at'))

    op.drop_table('role_sessions')
    op.drop_table('identity_policies')
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_members__user_id'))

    op.drop_table('group_members')
    op.drop_table('roles')
    op.drop_table('oidc_providers')
    op.drop_table('identity_epoch')
    op.drop_table('groups')
