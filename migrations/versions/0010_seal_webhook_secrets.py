"""seal webhook secrets

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 22:45:00

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

Webhook secrets (the HMAC key of X-Arca-Signature-256) were stored in plain text. They are sealed
like access key secrets (app/auth/secretbox.py), bound to the webhook's id, in a wider column.
A node still running the previous release would sign deliveries with the sealed text: upgrade
the nodes together (as for seal_access_key_secrets, the revision before the previous one).
"""
from alembic import context, op
import sqlalchemy as sa
import app.db.models


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _box():
    from app.auth.secretbox import SecretBox
    from app.db.session import migration_secret_keys

    return SecretBox(migration_secret_keys(context.config))


def _rows(conn):
    return conn.execute(sa.text("SELECT id, secret FROM webhooks WHERE secret IS NOT NULL")).all()


def upgrade() -> None:
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=200), type_=sa.String(length=512),
                              existing_nullable=True)
    conn = op.get_bind()
    rows = _rows(conn)
    if rows:
        box = _box()
        for row_id, secret in rows:
            conn.execute(sa.text("UPDATE webhooks SET secret = :s WHERE id = :i"),
                         {"s": box.seal(secret, f"webhook:{row_id}"), "i": row_id})


def downgrade() -> None:
    conn = op.get_bind()
    rows = _rows(conn)
    if rows:
        box = _box()
        for row_id, sealed in rows:
            conn.execute(sa.text("UPDATE webhooks SET secret = :s WHERE id = :i"),
                         {"s": box.open(sealed, f"webhook:{row_id}")[:200], "i": row_id})
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=512), type_=sa.String(length=200),
                              existing_nullable=True)
