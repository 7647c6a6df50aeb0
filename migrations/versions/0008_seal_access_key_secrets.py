"""seal access key secrets

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

Access key secrets were stored in plain text (access_keys.secret). They become
access_keys.secret_sealed: AES-256-GCM under a key derived from the server key with HKDF, bound to
the access key id (app/auth/secretbox.py). The server key is the one the server runs with
(passed in by app.db.session.upgrade), or, for `alembic upgrade` from a shell, the one
ARCA_SECRET_KEY / $ARCA_DATA_DIR/secret.key names.

The exception to the rule above: keeping the plaintext column for the previous release would
keep the plaintext. Nodes still running it answer SigV4 requests (the control plane) with an
error until they are upgraded; their data plane (tokens) keeps working. Upgrade the nodes
together (docs/identity.md, "Upgrading to sealed secrets").
"""
from alembic import context, op
import sqlalchemy as sa
import app.db.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _box():
    from app.auth.secretbox import SecretBox
    from app.db.session import migration_secret_keys

    return SecretBox(migration_secret_keys(context.config))


def _context(key_id: str) -> str:
    return f"access-key:{key_id}"  # as app/services/identity.py seals them


def upgrade() -> None:
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_sealed', sa.String(length=255), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, access_key_id, secret FROM access_keys")).all()
    if rows:
        box = _box()
        for row_id, key_id, secret in rows:
            conn.execute(sa.text("UPDATE access_keys SET secret_sealed = :s WHERE id = :i"),
                         {"s": box.seal(secret, _context(key_id)), "i": row_id})
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.drop_column('secret')
        batch_op.alter_column('secret_sealed', existing_type=sa.String(length=255), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, access_key_id, secret_sealed FROM access_keys")).all()
    if rows:
        box = _box()
        for row_id, key_id, sealed in rows:
            conn.execute(sa.text("UPDATE access_keys SET secret = :s WHERE id = :i"),
                         {"s": box.open(sealed, _context(key_id)), "i": row_id})
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.drop_column('secret_sealed')
        batch_op.alter_column('secret', existing_type=sa.String(length=64), nullable=False)
