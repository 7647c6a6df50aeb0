"""webhook dead letters

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 22:30:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

Deliveries that ran out of retries become `failed` (the dead-letter list) with the time they did;
a redelivery records when it put a delivery back and how many attempts came before, so its new
round of retries counts from there. An index finds each webhook's oldest pending delivery (the
head of its queue). Earlier code never reads the new columns and never picks up `failed` rows.
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requeued_at', app.db.models.TZDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts_before_requeue', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('failed_at', app.db.models.TZDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_deliveries__webhook_id_status_event_id'),
                              ['webhook_id', 'status', 'event_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries__webhook_id_status_event_id'))
        batch_op.drop_column('failed_at')
        batch_op.drop_column('attempts_before_requeue')
        batch_op.drop_column('requeued_at')
