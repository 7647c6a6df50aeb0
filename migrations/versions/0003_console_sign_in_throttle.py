"""console sign-in throttle

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:04:26.002381

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

A new table only: failed console sign-ins counted per user name and per client address, shared by
every process and node (app/services/signin.py). Earlier code never reads it.
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signin_throttle',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', app.db.models.TZDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signin_throttle')),
    sa.UniqueConstraint('scope', 'key', name=op.f('uq_signin_throttle__scope_key'))
    )
    with op.batch_alter_table('signin_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_throttle__expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('signin_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_throttle__expires_at'))

    op.drop_table('signin_throttle')
