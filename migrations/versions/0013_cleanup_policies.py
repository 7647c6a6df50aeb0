"""cleanup policies

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 22:30:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

A new table only: the cleanup rules of domains and repositories (app/services/cleanup_rules.py).
Earlier code never reads it.
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cleanup_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=True),
    sa.Column('resource_arn', sa.String(length=300), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('revision', sa.String(length=100), nullable=False),
    sa.Column('updated_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_cleanup_policies__domain_id__domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('fk_cleanup_policies__repository_id__repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cleanup_policies')),
    sa.UniqueConstraint('resource_arn', name=op.f('uq_cleanup_policies__resource_arn'))
    )
    with op.batch_alter_table('cleanup_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cleanup_policies__domain_id'), ['domain_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cleanup_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cleanup_policies__domain_id'))
    op.drop_table('cleanup_policies')
