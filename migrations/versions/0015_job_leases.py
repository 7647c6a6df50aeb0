"""job leases

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 22:32:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

A new table only: which process of the installation runs a scheduled job (the cleanup rules)
and when it last ran (app/services/jobs.py). Earlier code never reads it.
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=True),
    sa.Column('lease_until', app.db.models.TZDateTime(timezone=True), nullable=True),
    sa.Column('last_started_at', app.db.models.TZDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', app.db.models.TZDateTime(timezone=True), nullable=True),
    sa.Column('last_report', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_leases'))
    )


def downgrade() -> None:
    op.drop_table('job_leases')
