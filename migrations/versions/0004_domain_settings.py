"""domain settings (dependency-confusion protection)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 20:00:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: the previous release never writes it, and NULL means "the defaults".
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settings', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_column('settings')
