"""custom external connections (private remotes)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:00:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('external_connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('allowed_prefixes', sa.JSON(), nullable=False),
    sa.Column('auth', sa.JSON(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=True),
    sa.Column('created_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_connections')),
    sa.UniqueConstraint('name', name=op.f('uq_external_connections__name'))
    )


def downgrade() -> None:
    op.drop_table('external_connections')
