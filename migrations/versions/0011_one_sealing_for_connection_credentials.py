"""one sealing for external connection credentials

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 23:40:00

Every migration must run against the code of the previous release too: several nodes
upgrade one after another while the others still serve.

The credentials of custom external connections (0006) were sealed by a module of their own
(AES-256-GCM under a key HKDF derived from the server key for that purpose, bound to the
connection's name). Arca now seals every secret one way (app/auth/secretbox.py: one derivation,
a key id in each value so `arca admin rotate-secret-key` can reseal them, bound here to
`external-connection:{name}`). This revision opens each stored value the old way and seals it the
new way; the downgrade does the reverse with the current server key. The old format is spelled
out below because no code reads it any more.

A value that opens with none of the server keys is left as it is: neither release could use it
(the connection answers that its credentials cannot be read; store them again with
update-external-connection). A node still running the previous release cannot read the resealed
credentials of its private remotes: upgrade the nodes together, as for the revisions before.
"""
from __future__ import annotations

import base64
import os

from alembic import context, op
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import app.db.models


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_OLD_VERSION = b"\x01"


def _keys() -> list[str]:
    from app.db.session import migration_secret_keys

    return migration_secret_keys(context.config)


def _old_key(server_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"arca-sealing-v1",
                info=b"external-connection-credentials").derive(server_key.encode())


def _old_open(server_keys: list[str], token: str, name: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except ValueError:
        return None
    if raw[:1] != _OLD_VERSION:
        return None
    for server_key in server_keys:
        try:
            return AESGCM(_old_key(server_key)).decrypt(raw[1:13], raw[13:], name.encode()).decode()
        except (InvalidTag, ValueError):
            continue
    return None


def _old_seal(server_key: str, plaintext: str, name: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_old_key(server_key)).encrypt(nonce, plaintext.encode(), name.encode())
    return base64.urlsafe_b64encode(_OLD_VERSION + nonce + sealed).decode()


def _rows(conn):
    return conn.execute(sa.text("SELECT id, name, secret FROM external_connections WHERE secret IS NOT NULL")).all()


def _context(name: str) -> str:
    return f"external-connection:{name}"  # as app/services/connections.py seals them


def upgrade() -> None:
    conn = op.get_bind()
    rows = _rows(conn)
    if not rows:
        return
    from app.auth.secretbox import SecretBox

    keys = _keys()
    box = SecretBox(keys)
    for row_id, name, token in rows:
        plain = _old_open(keys, token, name)
        if plain is not None:
            conn.execute(sa.text("UPDATE external_connections SET secret = :s WHERE id = :i"),
                         {"s": box.seal(plain, _context(name)), "i": row_id})


def downgrade() -> None:
    conn = op.get_bind()
    rows = _rows(conn)
    if not rows:
        return
    from app.auth.secretbox import SecretBox, SecretUnreadable

    keys = _keys()
    box = SecretBox(keys)
    for row_id, name, sealed in rows:
        try:
            plain = box.open(sealed, _context(name))
        except SecretUnreadable:
            continue
        conn.execute(sa.text("UPDATE external_connections SET secret = :s WHERE id = :i"),
                     {"s": _old_seal(keys[0], plain, name), "i": row_id})
