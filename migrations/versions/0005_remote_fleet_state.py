"""remote breakers and fetch leases shared by the nodes of a cluster

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:00:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('remote_breakers',
    sa.Column('connection', sa.String(length=100), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('open_until', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('connection', name=op.f('pk_remote_breakers'))
    )
    op.create_table('remote_leases',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_remote_leases'))
    )


def downgrade() -> None:
    op.drop_table('remote_leases')
    op.drop_table('remote_breakers')
