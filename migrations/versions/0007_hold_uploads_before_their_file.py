"""hold uploads that come before their file

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 22:45:00.000000

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

A new table only: Maven checksums (and publishing maven-metadata.xml marks) that arrive before
their file in a parallel deploy, held until the file comes (app/services/held.py). Earlier code
never reads it (it answered such a checksum with 404).
"""
from alembic import op
import sqlalchemy as sa
import app.db.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('held_uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('namespace', sa.String(length=255), nullable=False),
    sa.Column('package', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=255), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('created_at', app.db.models.TZDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'],
                            name=op.f('fk_held_uploads__repository_id__repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_held_uploads')),
    sa.UniqueConstraint('repository_id', 'format', 'namespace', 'package', 'version', 'file_name', 'kind',
                        name='uq_held_uploads__slot')
    )
    with op.batch_alter_table('held_uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_held_uploads__created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('held_uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_held_uploads__created_at'))

    op.drop_table('held_uploads')
