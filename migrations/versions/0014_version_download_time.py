"""version download time

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 22:31:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

A nullable column only: when a file of the version was last served (written in batches by
app/services/usage.py; read by the cleanup rule that evicts cached EXTERNAL versions). Earlier
code neither writes nor reads it.
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('package_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_downloaded_at', app.db.models.TZDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('package_versions', schema=None) as batch_op:
        batch_op.drop_column('last_downloaded_at')
